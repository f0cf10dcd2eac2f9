//! Commands that change the cluster's desired state: `submit`, `load`, `start`, `stop`,
//! `unload`, `destroy`.
//!
//! Architecture invariant: unit files are read and checked here, on the client side,
//! as fleetctl does: a bad file is refused (file, line, reason; exit 2) before the
//! cluster hears of it.

use std::io::Write;

use super::command::{unit_name, WaitOpts};
use super::exit::{EXIT_BAD_INPUT, EXIT_OK};
use super::input::load_units;
use super::session::{Fail, Session};
use super::wait::wait;
use crate::control::{Endpoint, Request};
use crate::unit::Unit;

/// Submits the units the cluster does not know yet, reading their files here (a known
/// unit is used as the cluster has it, as fleetctl does). Returns the names in order.
fn submit_missing(
    s: &mut Session,
    args: &[String],
    err: &mut dyn Write,
) -> Result<Vec<String>, Fail> {
    let known: Vec<String> = s.units()?.into_iter().map(|u| u.name).collect();
    let mut missing = Vec::new();
    let mut names = Vec::new();
    for a in args {
        let n = unit_name(a);
        if !known.contains(&n) {
            missing.push(a.clone());
        }
        if !names.contains(&n) {
            names.push(n);
        }
    }
    let units = load_units(&missing).map_err(|e| Fail(EXIT_BAD_INPUT, e.to_string()))?;
    submit_units(s, units, err)?;
    Ok(names)
}

/// Submits parsed units, printing each one's parser warnings first.
fn submit_units(s: &mut Session, units: Vec<Unit>, err: &mut dyn Write) -> Result<(), Fail> {
    for u in units {
        for w in &u.warnings {
            let _ = writeln!(err, "shoal: warning: {w}");
        }
        s.call(&Request::Submit {
            name: u.name.to_string(),
            text: u.text,
        })?;
    }
    Ok(())
}

/// `submit FILE...`: files are read and checked before connecting, so a bad file
/// changes nothing.
pub fn submit(endpoint: &Endpoint, files: &[String], err: &mut dyn Write) -> Result<i32, Fail> {
    let units = load_units(files).map_err(|e| Fail(EXIT_BAD_INPUT, e.to_string()))?;
    let mut s = Session::open(endpoint)?;
    submit_units(&mut s, units, err)?;
    Ok(EXIT_OK)
}

/// `load` (`launch` false) or `start` (`launch` true): submits what the cluster does
/// not know yet, asks for the target state, then waits unless told not to.
pub fn load_or_start(
    endpoint: &Endpoint,
    args: &[String],
    launch: bool,
    o: &WaitOpts,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32, Fail> {
    let mut s = Session::open(endpoint)?;
    let names = submit_missing(&mut s, args, err)?;
    for n in &names {
        let req = if launch {
            Request::Start { name: n.clone() }
        } else {
            Request::Load { name: n.clone() }
        };
        s.call(&req)?;
    }
    match o.block {
        None => Ok(EXIT_OK),
        Some(_) => wait(&mut s, &names, launch, o, out, err),
    }
}

/// What `stop`, `unload` and `destroy` ask of each unit.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Lower {
    /// Stop, and wait (unless `--no-block`) until stopped.
    Stop,
    Unload,
    Destroy,
}

/// `stop`, `unload`, `destroy` of the units `names`.
pub fn lower(
    endpoint: &Endpoint,
    names: &[String],
    to: Lower,
    wait_opts: Option<&WaitOpts>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32, Fail> {
    let mut s = Session::open(endpoint)?;
    for n in names {
        let name = n.clone();
        let req = match to {
            Lower::Stop => Request::Stop { name },
            Lower::Unload => Request::Unload { name },
            Lower::Destroy => Request::Destroy { name },
        };
        s.call(&req)?;
        match to {
            Lower::Unload => {
                let _ = writeln!(out, "Unit {n} inactive");
            }
            Lower::Destroy => {
                let _ = writeln!(out, "Destroyed {n}");
            }
            Lower::Stop => {}
        }
    }
    match wait_opts {
        Some(o) if to == Lower::Stop && o.block.is_some() => {
            wait(&mut s, names, false, o, out, err)
        }
        _ => Ok(EXIT_OK),
    }
}
