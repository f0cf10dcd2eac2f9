//! `shoal plan` and `shoal why`: placement from files, with no cluster.
//!
//! Architecture invariant: reads only the files named on the command line and
//! calls the same `schedule::place` the agents run.

use std::io::Write;

use super::command::PlacementArgs;
use super::exit::{EXIT_BAD_INPUT, EXIT_OK, EXIT_UNMET};
use super::input::{load_machines, load_running, load_units, InputError};
use super::output::{json_string, Table};
use crate::control::{Client, Endpoint, Request, Response};
use crate::schedule::{explain, place, Decision, Job, MachineId, Member, Metadata, Running};
use crate::unit::{parse_unit, Unit};

/// The loaded inputs of an offline command.
struct World {
    members: Vec<Member>,
    running: Running,
    units: Vec<Unit>,
}

impl World {
    fn jobs(&self) -> Vec<Job> {
        self.units
            .iter()
            .enumerate()
            .map(|(seq, unit)| Job {
                name: unit.name.to_string(),
                seq: seq as u64,
                options: unit.options.clone(),
            })
            .collect()
    }
}

/// The live cluster as the local agent places it (its members, what runs where by its
/// reckoning, its units in start order), followed by `unit_files` (which replace
/// cluster units of the same name): `why` explains what the member decided from.
fn live_world(
    endpoint: &Endpoint,
    unit_files: &[String],
    err: &mut dyn Write,
) -> Result<World, (i32, String)> {
    let fail = |e: String| (EXIT_UNMET, e);
    let mut client = Client::connect(endpoint).map_err(|e| {
        fail(format!(
            "without --machines FILE, the live cluster is asked: {e}"
        ))
    })?;
    let view = match client.call(&Request::PlacementView) {
        Ok(Response::View(view)) => view,
        Ok(Response::Error(e)) | Err(e) => return Err(fail(e)),
        Ok(_) => return Err(fail("unexpected answer to the placement view".into())),
    };
    let members = view
        .members
        .iter()
        .map(|(id, metadata)| Member {
            id: MachineId(id.clone()),
            metadata: Metadata::parse(metadata).unwrap_or_default(),
        })
        .collect();
    let running: Running = crate::btree::map(
        view.running
            .into_iter()
            .map(|(unit, on)| (unit, crate::btree::set(on.into_iter().map(MachineId)))),
    );
    let given = load_units(unit_files).map_err(|e| (EXIT_BAD_INPUT, e.to_string()))?;
    let mut cluster = view.units;
    crate::sort::sort_by(&mut cluster, |a, b| a.seq.cmp(&b.seq));
    let mut units = Vec::new();
    for u in cluster {
        if given.iter().any(|g| g.name.as_str() == u.name) {
            continue;
        }
        let Some(text) = u.text else {
            return Err(fail(format!(
                "{}: the unit file has not reached this member yet",
                u.name
            )));
        };
        match parse_unit(&u.name, &u.name, &text) {
            Ok(unit) => units.push(unit),
            Err(e) => {
                let _ = writeln!(err, "shoal: warning: cluster unit {e}");
            }
        }
    }
    units.extend(given);
    Ok(World {
        members,
        running,
        units,
    })
}

fn load(
    args: &PlacementArgs,
    unit_files: &[String],
    endpoint: &Endpoint,
    err: &mut dyn Write,
) -> Result<World, (i32, String)> {
    if args.machines.is_none() {
        return live_world(endpoint, unit_files, err);
    }
    load_files(args, unit_files, err).map_err(|e| (EXIT_BAD_INPUT, e.to_string()))
}

fn load_files(
    args: &PlacementArgs,
    unit_files: &[String],
    err: &mut dyn Write,
) -> Result<World, InputError> {
    let members = match &args.machines {
        Some(path) => load_machines(path)?,
        None => Vec::new(),
    };
    let running = match &args.running {
        Some(path) => load_running(path)?,
        None => Running::new(),
    };
    let units = load_units(unit_files)?;
    for unit in &units {
        for warning in &unit.warnings {
            let _ = writeln!(err, "shoal: warning: {warning}");
        }
    }
    // Nothing silently dropped: a running unit that is not among the units given
    // plays no part in the plan, and the user should know.
    for unit in running.keys() {
        if !units.iter().any(|u| u.name.as_str() == unit) {
            let file = args
                .running
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            let _ = writeln!(
                err,
                "shoal: warning: {file}: {unit} is not among the unit files given; ignored"
            );
        }
    }
    Ok(World {
        members,
        running,
        units,
    })
}

pub fn plan(
    args: &PlacementArgs,
    endpoint: &Endpoint,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let world = match load(args, &args.unit_files, endpoint, err) {
        Ok(world) => world,
        Err((code, e)) => {
            let _ = writeln!(err, "shoal: {e}");
            return code;
        }
    };
    let placement = place(&world.members, &world.jobs(), &world.running);
    let all_placed = placement
        .units
        .values()
        .all(|d| matches!(d, Decision::Placed(_)));
    if args.json {
        let units: Vec<String> = placement
            .units
            .iter()
            .map(|(name, decision)| {
                let (machines, reason) = match decision {
                    Decision::Placed(ms) => (
                        ms.iter()
                            .map(|m| json_string(m.as_str()))
                            .collect::<Vec<_>>(),
                        "null".to_string(),
                    ),
                    Decision::Waiting(reason) => (Vec::new(), json_string(reason)),
                };
                format!(
                    "{{\"name\":{},\"machines\":[{}],\"reason\":{}}}",
                    json_string(name),
                    machines.join(","),
                    reason
                )
            })
            .collect();
        let _ = writeln!(out, "{{\"units\":[{}]}}", units.join(","));
    } else {
        let mut table = Table::new(&["UNIT", "MACHINE", "REASON"]);
        for (name, decision) in &placement.units {
            match decision {
                Decision::Placed(machines) => {
                    for machine in machines {
                        let shown = if args.full {
                            machine.to_string()
                        } else {
                            machine.short()
                        };
                        table.row(vec![name.clone(), shown, String::new()]);
                    }
                }
                Decision::Waiting(reason) => {
                    table.row(vec![name.clone(), "-".into(), reason.clone()])
                }
            }
        }
        let _ = write!(out, "{}", table.render());
    }
    if all_placed {
        EXIT_OK
    } else {
        EXIT_UNMET
    }
}

pub fn why(
    unit: &str,
    args: &PlacementArgs,
    endpoint: &Endpoint,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let world = match load(args, &args.unit_files, endpoint, err) {
        Ok(world) => world,
        Err((code, e)) => {
            let _ = writeln!(err, "shoal: {e}");
            return code;
        }
    };
    let Some(explanation) = explain(&world.members, &world.jobs(), &world.running, unit) else {
        let _ = writeln!(
            err,
            "shoal: {unit} is not among the units given or the cluster's"
        );
        return EXIT_BAD_INPUT;
    };
    let short = |id: &crate::schedule::MachineId| {
        if args.full {
            id.to_string()
        } else {
            id.short()
        }
    };
    let status = match &explanation.decision {
        Decision::Placed(machines) => {
            let on: Vec<String> = machines.iter().map(short).collect();
            let _ = writeln!(out, "{unit}: placed on {}", on.join(", "));
            EXIT_OK
        }
        Decision::Waiting(reason) => {
            let _ = writeln!(out, "{unit}: not placed: {reason}");
            EXIT_UNMET
        }
    };
    let mut table = Table::new(&["MACHINE", "METADATA", "VERDICT"]);
    for (id, verdict) in &explanation.members {
        let metadata = world
            .members
            .iter()
            .find(|m| &m.id == id)
            .map(|m| m.metadata.to_string())
            .unwrap_or_default();
        table.row(vec![
            short(id),
            if metadata.is_empty() {
                "-".into()
            } else {
                metadata
            },
            verdict.to_string(),
        ]);
    }
    let _ = write!(out, "{}", table.render());
    status
}
