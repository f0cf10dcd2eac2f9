//! Commands that show the cluster: `list-units`, `list-unit-files`, `list-machines`, `cat`.

use std::io::Write;

use super::command::TableOpts;
use super::exit::EXIT_OK;
use super::output::{machine_rows, print_table, unit_file_rows, unit_rows};
use super::session::{unexpected, Fail, Session};
use crate::catalog::Target;
use crate::control::{Endpoint, Request, Response};

/// `list-units`: rows on stdout; why a loaded unit is not placed on stderr.
pub fn list_units(
    endpoint: &Endpoint,
    o: &TableOpts,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32, Fail> {
    let mut s = Session::open(endpoint)?;
    let (units, machines) = (s.units()?, s.machines()?);
    print_table(
        out,
        &["UNIT", "MACHINE", "ACTIVE", "SUB"],
        &unit_rows(&units, &machines, o.full),
        o,
    )?;
    for u in units.iter().filter(|u| u.dstate != Target::Inactive) {
        if let Some(r) = &u.reason {
            let _ = writeln!(err, "shoal: {} is not placed: {r}", u.name);
        }
    }
    Ok(EXIT_OK)
}

pub fn list_unit_files(
    endpoint: &Endpoint,
    o: &TableOpts,
    out: &mut dyn Write,
) -> Result<i32, Fail> {
    let mut s = Session::open(endpoint)?;
    let (units, machines) = (s.units()?, s.machines()?);
    print_table(
        out,
        &["UNIT", "HASH", "DSTATE", "STATE", "TARGET"],
        &unit_file_rows(&units, &machines, o.full),
        o,
    )?;
    Ok(EXIT_OK)
}

pub fn list_machines(endpoint: &Endpoint, o: &TableOpts, out: &mut dyn Write) -> Result<i32, Fail> {
    let mut s = Session::open(endpoint)?;
    let machines = s.machines()?;
    print_table(
        out,
        &["MACHINE", "IP", "METADATA"],
        &machine_rows(&machines, o.full),
        o,
    )?;
    Ok(EXIT_OK)
}

/// `cat UNIT`: the file as submitted.
pub fn cat(endpoint: &Endpoint, name: &str, out: &mut dyn Write) -> Result<i32, Fail> {
    let mut s = Session::open(endpoint)?;
    match s.call(&Request::Cat {
        name: name.to_string(),
    })? {
        Response::Text(t) => {
            let _ = write!(out, "{t}");
            Ok(EXIT_OK)
        }
        other => Err(unexpected(&other)),
    }
}
