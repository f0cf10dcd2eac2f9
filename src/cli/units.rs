//! Commands that change the cluster's desired state: `submit`, `load`, `start`, `stop`,
//! `unload`, `destroy`.
//!
//! Architecture invariant: unit files are read and checked here, on the client side,
//! as fleetctl does: a bad file is refused (file, line, reason; exit 2) before the
//! cluster hears of it.

use std::io::Write;

use super::batch;
use super::command::{unit_name, WaitOpts};
use super::exit::{EXIT_BAD_INPUT, EXIT_OK};
use super::input::load_units;
use super::session::{Fail, Session};
use super::wait::wait;
use crate::control::{Endpoint, Verb};
use crate::unit::Unit;

/// The units the cluster does not know yet, read from their files here (a known unit
/// is used as the cluster has it, as fleetctl does), and every unit's name in order.
fn missing_units(s: &mut Session, args: &[String]) -> Result<(Vec<Unit>, Vec<String>), Fail> {
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
    Ok((units, names))
}

/// Submits `units`, then asks `verb` of `names`, as one batch. Each submitted unit's
/// parser warnings are printed first, up to the one the agent refused (as when each
/// unit was its own request).
fn submit_then(
    s: &mut Session,
    units: Vec<Unit>,
    verb: Option<Verb>,
    names: &[String],
    err: &mut dyn Write,
) -> Result<(), Fail> {
    let submit: Vec<(String, String)> = units
        .iter()
        .map(|u| (u.name.to_string(), u.text.clone()))
        .collect();
    let (applied, fail) = batch::send(s, &submit, verb, names);
    let tried = if fail.is_some() { applied + 1 } else { applied };
    for u in units.iter().take(tried) {
        for w in &u.warnings {
            let _ = writeln!(err, "shoal: warning: {w}");
        }
    }
    fail.map_or(Ok(()), Err)
}

/// `submit FILE...`: files are read and checked before connecting, so a bad file
/// changes nothing.
pub fn submit(endpoint: &Endpoint, files: &[String], err: &mut dyn Write) -> Result<i32, Fail> {
    let units = load_units(files).map_err(|e| Fail(EXIT_BAD_INPUT, e.to_string()))?;
    let mut s = Session::open(endpoint)?;
    submit_then(&mut s, units, None, &[], err)?;
    Ok(EXIT_OK)
}

/// `load` (`launch` false) or `start` (`launch` true): submits what the cluster does
/// not know yet and asks for the target state in one batch, then waits unless told not to.
pub fn load_or_start(
    endpoint: &Endpoint,
    args: &[String],
    launch: bool,
    o: &WaitOpts,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32, Fail> {
    let mut s = Session::open(endpoint)?;
    let (units, names) = missing_units(&mut s, args)?;
    let verb = if launch { Verb::Start } else { Verb::Load };
    submit_then(&mut s, units, Some(verb), &names, err)?;
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
    let verb = match to {
        Lower::Stop => Verb::Stop,
        Lower::Unload => Verb::Unload,
        Lower::Destroy => Verb::Destroy,
    };
    let (applied, fail) = batch::send(&mut s, &[], Some(verb), names);
    for n in names.iter().take(applied) {
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
    if let Some(f) = fail {
        return Err(f);
    }
    match wait_opts {
        Some(o) if to == Lower::Stop && o.block.is_some() => {
            wait(&mut s, names, false, o, out, err)
        }
        _ => Ok(EXIT_OK),
    }
}
