//! `shoal plan` and `shoal why`: placement from files, with no cluster.
//!
//! Architecture invariant: reads only the files named on the command line and
//! calls the same `schedule::place` the agents run.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use super::input::{load_machines, load_running, load_units, InputError};
use super::output::{json_string, Table};
use super::{EXIT_BAD_INPUT, EXIT_OK, EXIT_UNMET};
use crate::schedule::{explain, place, Decision, Job, Member, Running};
use crate::unit::Unit;

pub const PLAN_HELP: &str = "\
shoal plan: show where units would run, without a cluster

USAGE:
    shoal plan --machines FILE [--running FILE] [--json] [-l] UNITFILE...

Units are started in the order given, as `fleetctl start a b c` does. A path
such as dir/common@2.service that does not exist is made from the template
dir/common@.service, as fleetctl does.

OPTIONS:
    --machines FILE   The members, one a line: `ID [key=value,...]`; # comments
    --running FILE    What runs where now, one `UNIT MACHINE` a line; a unit
                      stays on its member while that member still satisfies it
                      (a member missing from --machines is a lost member)
    --json            Print {\"units\":[{\"name\",\"machines\",\"reason\"}]}
    -l, --full        Print full machine ids

EXIT STATUS:
    0 every unit is placed, 1 some unit cannot be placed, 2 bad input

EXAMPLE:
    shoal plan --machines deploy/examples/machines.txt \\
        deploy/examples/example_02.service deploy/examples/common@1.service
";

pub const WHY_HELP: &str = "\
shoal why: explain, member by member, where one unit can and cannot run

USAGE:
    shoal why UNIT --machines FILE [--running FILE] [-l] UNITFILE...

UNITFILE... are all the units started, in order (UNIT among them), as for
`shoal plan`. For each member, why prints `chosen`, `eligible` or the first
constraint that rules the member out.

EXIT STATUS:
    0 the unit is placed, 1 it cannot be placed, 2 bad input
";

/// What `plan` and `why` read from their arguments.
struct OfflineArgs {
    machines: Option<PathBuf>,
    running: Option<PathBuf>,
    json: bool,
    full: bool,
    positional: Vec<String>,
}

fn parse_args(args: Vec<OsString>) -> Result<OfflineArgs, String> {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_args(args);
    let mut parsed = OfflineArgs {
        machines: None,
        running: None,
        json: false,
        full: false,
        positional: Vec::new(),
    };
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Long("machines") => {
                parsed.machines = Some(parser.value().map_err(|e| e.to_string())?.into())
            }
            Long("running") => {
                parsed.running = Some(parser.value().map_err(|e| e.to_string())?.into())
            }
            Long("json") => parsed.json = true,
            Short('l') | Long("full") => parsed.full = true,
            Value(v) => parsed.positional.push(v.to_string_lossy().into_owned()),
            other => return Err(other.unexpected().to_string()),
        }
    }
    Ok(parsed)
}

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

/// Checks that the arguments name what every offline command needs.
fn check_required(args: &OfflineArgs, unit_files: &[String]) -> Result<(), String> {
    if args.machines.is_none() {
        return Err("--machines FILE is required (one member a line: `ID [key=value,...]`)".into());
    }
    if unit_files.is_empty() {
        return Err("no unit files given".into());
    }
    Ok(())
}

fn load(
    args: &OfflineArgs,
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

fn usage_error(err: &mut dyn Write, message: &str, help: &str) -> i32 {
    let _ = writeln!(err, "shoal: {message}\n\n{help}");
    EXIT_BAD_INPUT
}

pub fn plan(args: Vec<OsString>, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let args = match parse_args(args) {
        Ok(args) => args,
        Err(message) => return usage_error(err, &message, PLAN_HELP),
    };
    if let Err(message) = check_required(&args, &args.positional) {
        return usage_error(err, &message, PLAN_HELP);
    }
    let world = match load(&args, &args.positional, err) {
        Ok(world) => world,
        Err(e) => {
            let _ = writeln!(err, "shoal: {e}");
            return EXIT_BAD_INPUT;
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

pub fn why(args: Vec<OsString>, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let args = match parse_args(args) {
        Ok(args) => args,
        Err(message) => return usage_error(err, &message, WHY_HELP),
    };
    let Some((unit, unit_files)) = args.positional.split_first() else {
        return usage_error(err, "which unit? give UNIT before the unit files", WHY_HELP);
    };
    if let Err(message) = check_required(&args, unit_files) {
        return usage_error(err, &message, WHY_HELP);
    }
    let world = match load(&args, unit_files, err) {
        Ok(world) => world,
        Err(e) => {
            let _ = writeln!(err, "shoal: {e}");
            return EXIT_BAD_INPUT;
        }
    };
    let Some(explanation) = explain(&world.members, &world.jobs(), &world.running, unit) else {
        let _ = writeln!(err, "shoal: {unit} is not among the unit files given");
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
