//! The command line, parsed once into a typed [`ClientCommand`].
//!
//! Architecture invariant: every usage error (bad option, missing unit, a bad
//! endpoint) is found here, before anything is read or any agent is asked; the
//! commands themselves match on the enum, never on strings.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use super::help::{self, HELP, PLAN_HELP, WHY_HELP};
use crate::control::Endpoint;

/// How long `start`/`load`/`stop` wait by default for the units to get there.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// A parsed command line: where the agent is, and what to do.
#[derive(Debug)]
pub struct Invocation {
    pub endpoint: Endpoint,
    pub command: ClientCommand,
}

/// A command line that cannot run: the exact text for stderr (exit status 2).
#[derive(Debug, PartialEq, Eq)]
pub struct Usage(pub String);

/// Everything `shoal` can be asked to do, with its options.
#[derive(Debug)]
pub enum ClientCommand {
    /// Print this help text.
    Help(&'static str),
    Version,
    /// `shoal agent`, with the agent's own flags (parsed by `agent::config`).
    Agent(Vec<OsString>),
    Keygen,
    Demo,
    Plan(PlacementArgs),
    Why {
        unit: String,
        args: PlacementArgs,
    },
    /// Unit files to read, check and submit.
    Submit {
        files: Vec<String>,
    },
    /// Units by name or file (unknown ones are submitted from their file first).
    Load {
        units: Vec<String>,
        wait: WaitOpts,
    },
    Start {
        units: Vec<String>,
        wait: WaitOpts,
    },
    /// The commands below take unit names (a path is reduced to its file name).
    Stop {
        units: Vec<String>,
        wait: WaitOpts,
    },
    Unload {
        units: Vec<String>,
    },
    Destroy {
        units: Vec<String>,
    },
    ListUnits(TableOpts),
    ListUnitFiles(TableOpts),
    ListMachines(TableOpts),
    Cat {
        unit: String,
    },
    Status {
        units: Vec<String>,
    },
    Journal {
        units: Vec<String>,
        lines: u32,
    },
    /// `journal -f`.
    Follow {
        unit: String,
        lines: u32,
    },
}

impl ClientCommand {
    /// The name the user typed, for error messages.
    pub fn name(&self) -> &'static str {
        match self {
            ClientCommand::Help(_) => "help",
            ClientCommand::Version => "version",
            ClientCommand::Agent(_) => "agent",
            ClientCommand::Keygen => "keygen",
            ClientCommand::Demo => "demo",
            ClientCommand::Plan(_) => "plan",
            ClientCommand::Why { .. } => "why",
            ClientCommand::Submit { .. } => "submit",
            ClientCommand::Load { .. } => "load",
            ClientCommand::Start { .. } => "start",
            ClientCommand::Stop { .. } => "stop",
            ClientCommand::Unload { .. } => "unload",
            ClientCommand::Destroy { .. } => "destroy",
            ClientCommand::ListUnits(_) => "list-units",
            ClientCommand::ListUnitFiles(_) => "list-unit-files",
            ClientCommand::ListMachines(_) => "list-machines",
            ClientCommand::Cat { .. } => "cat",
            ClientCommand::Status { .. } => "status",
            ClientCommand::Journal { .. } | ClientCommand::Follow { .. } => "journal",
        }
    }
}

/// How a listing is printed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableOpts {
    /// Full machine ids and hashes (`-l`).
    pub full: bool,
    pub no_legend: bool,
    pub json: bool,
    /// `--fields`, lowercased; checked against the columns when printing.
    pub fields: Option<Vec<String>>,
}

/// How `load`/`start`/`stop` wait for the units to get there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaitOpts {
    /// `None` with `--no-block`.
    pub block: Option<Duration>,
    /// Full machine ids in what is printed.
    pub full: bool,
}

/// What `plan` and `why` read: files (offline) or the live cluster (no `--machines`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlacementArgs {
    pub machines: Option<PathBuf>,
    pub running: Option<PathBuf>,
    pub json: bool,
    pub full: bool,
    /// The units started, in order.
    pub unit_files: Vec<String>,
}

/// Parses the command line `args` (without the program name); `endpoint_env` is
/// `SHOAL_ENDPOINT`, which `--endpoint` overrides.
pub fn parse(args: Vec<OsString>, endpoint_env: Option<String>) -> Result<Invocation, Usage> {
    let mut args = args.into_iter().peekable();
    let mut endpoint_text = endpoint_env;
    while let Some(a) = args.peek().map(|a| a.to_string_lossy().into_owned()) {
        if a == "--endpoint" {
            args.next();
            endpoint_text = args.next().map(|v| v.to_string_lossy().into_owned());
            if endpoint_text.is_none() {
                return Err(Usage("shoal: --endpoint needs a value\n".into()));
            }
        } else if let Some(v) = a.strip_prefix("--endpoint=") {
            endpoint_text = Some(v.to_string());
            args.next();
        } else {
            break;
        }
    }
    let endpoint = match endpoint_text.as_deref().map(Endpoint::parse) {
        None => Endpoint::default(),
        Some(Ok(e)) => e,
        Some(Err(e)) => return Err(Usage(format!("shoal: {e}\n"))),
    };
    let Some(command) = args.next() else {
        return Err(Usage(HELP.into()));
    };
    let command = command.to_string_lossy().into_owned();
    let rest: Vec<OsString> = args.collect();
    Ok(Invocation {
        endpoint,
        command: parse_command(&command, rest)?,
    })
}

fn parse_command(command: &str, rest: Vec<OsString>) -> Result<ClientCommand, Usage> {
    // `agent` reads its own flags, `--help` among them.
    let wants_help = rest.iter().any(|a| a == "--help" || a == "-h");
    if wants_help && command != "agent" {
        return help_of(Some(command));
    }
    if let Some(help) = online_help(command) {
        return online(command, help, rest);
    }
    Ok(match command {
        "agent" => ClientCommand::Agent(rest),
        "keygen" => ClientCommand::Keygen,
        "plan" => ClientCommand::Plan(plan(rest)?),
        "why" => why(rest)?,
        "demo" => ClientCommand::Demo,
        "help" | "--help" | "-h" => {
            let topic = rest.first().map(|s| s.to_string_lossy().into_owned());
            return help_of(topic.as_deref());
        }
        "version" | "--version" | "-V" => ClientCommand::Version,
        other => {
            return Err(Usage(format!(
                "shoal: unknown command {other:?}\n\n{HELP}\n"
            )))
        }
    })
}

fn help_of(topic: Option<&str>) -> Result<ClientCommand, Usage> {
    match topic {
        None => Ok(ClientCommand::Help(HELP)),
        Some(c) => help::of(c)
            .map(ClientCommand::Help)
            .ok_or_else(|| Usage(format!("shoal: no help for {c:?}\n\n{HELP}\n"))),
    }
}

/// The help of a command that talks to the agent, or `None` for any other.
fn online_help(command: &str) -> Option<&'static str> {
    match command {
        "plan" | "why" | "agent" | "keygen" | "demo" => None,
        c => help::of(c),
    }
}

/// The options every command that talks to the agent accepts (each uses its own).
#[derive(Default)]
struct Opts {
    table: TableOpts,
    no_block: bool,
    wait: Option<Duration>,
    lines: u32,
    follow: bool,
    positional: Vec<String>,
}

fn parse_opts(args: Vec<OsString>) -> Result<Opts, String> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args);
    let mut o = Opts {
        lines: 10,
        ..Opts::default()
    };
    let value = |p: &mut lexopt::Parser| -> Result<String, String> {
        p.value()
            .map_err(|e| e.to_string())?
            .into_string()
            .map_err(|_| "not UTF-8".to_string())
    };
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        match arg {
            Short('l') | Long("full") => o.table.full = true,
            Long("no-legend") => o.table.no_legend = true,
            Long("json") => o.table.json = true,
            Long("no-block") => o.no_block = true,
            Short('f') | Long("follow") => o.follow = true,
            Long("fields") => {
                let v = value(&mut p)?;
                o.table.fields = Some(v.split(',').map(|f| f.trim().to_lowercase()).collect());
            }
            Long("block-attempts") => {
                let v = value(&mut p)?;
                let n: u64 = v
                    .parse()
                    .map_err(|_| format!("--block-attempts {v:?}: expected a number"))?;
                o.wait = Some(Duration::from_secs(n.max(1)));
            }
            Short('n') | Long("lines") => {
                let v = value(&mut p)?;
                o.lines = v
                    .parse()
                    .ok()
                    .filter(|n| *n <= crate::node::MAX_JOURNAL_LINES)
                    .ok_or(format!("--lines {v:?}: expected a number up to 10000"))?;
            }
            Value(v) => o.positional.push(v.to_string_lossy().into_owned()),
            other => return Err(other.unexpected().to_string()),
        }
    }
    Ok(o)
}

/// The options of a listing (`list-units --json -l ...`), as tests build them.
#[cfg(test)]
pub fn table_opts(args: &[&str]) -> Result<TableOpts, String> {
    parse_opts(args.iter().map(OsString::from).collect()).map(|o| o.table)
}

/// A commands that talks to the agent, from its arguments.
fn online(command: &str, help: &str, args: Vec<OsString>) -> Result<ClientCommand, Usage> {
    let o = parse_opts(args).map_err(|e| Usage(format!("shoal {command}: {e}\n\n{help}\n")))?;
    let lists = matches!(command, "list-units" | "list-unit-files" | "list-machines");
    if !lists && o.positional.is_empty() {
        return Err(Usage(format!("shoal {command}: which unit?\n\n{help}\n")));
    }
    let wait = WaitOpts {
        block: (!o.no_block).then(|| o.wait.unwrap_or(DEFAULT_WAIT)),
        full: o.table.full,
    };
    let names: Vec<String> = o.positional.iter().map(|a| unit_name(a)).collect();
    Ok(match command {
        "submit" => ClientCommand::Submit {
            files: o.positional,
        },
        "load" => ClientCommand::Load {
            units: o.positional,
            wait,
        },
        "start" => ClientCommand::Start {
            units: o.positional,
            wait,
        },
        "stop" => ClientCommand::Stop { units: names, wait },
        "unload" => ClientCommand::Unload { units: names },
        "destroy" => ClientCommand::Destroy { units: names },
        "list-units" => ClientCommand::ListUnits(o.table),
        "list-unit-files" => ClientCommand::ListUnitFiles(o.table),
        "list-machines" => ClientCommand::ListMachines(o.table),
        "cat" => ClientCommand::Cat {
            unit: names[0].clone(),
        },
        "status" => ClientCommand::Status { units: names },
        "journal" if o.follow => match names.as_slice() {
            [unit] => ClientCommand::Follow {
                unit: unit.clone(),
                lines: o.lines,
            },
            _ => return Err(Usage("shoal journal: --follow takes one unit\n".into())),
        },
        "journal" => ClientCommand::Journal {
            units: names,
            lines: o.lines,
        },
        other => return Err(Usage(format!("shoal {other}: unknown command\n"))),
    })
}

/// A unit's name from a name or a path.
pub fn unit_name(arg: &str) -> String {
    std::path::Path::new(arg)
        .file_name()
        .map_or(arg.to_string(), |n| n.to_string_lossy().into_owned())
}

fn placement_args(args: Vec<OsString>, help: &str) -> Result<PlacementArgs, Usage> {
    use lexopt::prelude::*;
    let usage = |message: String| Usage(format!("shoal: {message}\n\n{help}\n"));
    let mut parser = lexopt::Parser::from_args(args);
    let mut parsed = PlacementArgs::default();
    let value = |parser: &mut lexopt::Parser| parser.value().map_err(|e| usage(e.to_string()));
    while let Some(arg) = parser.next().map_err(|e| usage(e.to_string()))? {
        match arg {
            Long("machines") => parsed.machines = Some(value(&mut parser)?.into()),
            Long("running") => parsed.running = Some(value(&mut parser)?.into()),
            Long("json") => parsed.json = true,
            Short('l') | Long("full") => parsed.full = true,
            Value(v) => parsed.unit_files.push(v.to_string_lossy().into_owned()),
            other => return Err(usage(other.unexpected().to_string())),
        }
    }
    Ok(parsed)
}

/// Offline, the member list and at least one unit are needed (against the live
/// cluster, the cluster's own units are enough).
fn check_required(args: &PlacementArgs, help: &str) -> Result<(), Usage> {
    if args.machines.is_some() && args.unit_files.is_empty() {
        return Err(Usage(format!("shoal: no unit files given\n\n{help}\n")));
    }
    Ok(())
}

fn plan(rest: Vec<OsString>) -> Result<PlacementArgs, Usage> {
    let args = placement_args(rest, PLAN_HELP)?;
    check_required(&args, PLAN_HELP)?;
    Ok(args)
}

fn why(rest: Vec<OsString>) -> Result<ClientCommand, Usage> {
    let mut args = placement_args(rest, WHY_HELP)?;
    if args.unit_files.is_empty() {
        return Err(Usage(format!(
            "shoal: which unit? give UNIT before the unit files\n\n{WHY_HELP}\n"
        )));
    }
    let unit = args.unit_files.remove(0);
    check_required(&args, WHY_HELP)?;
    Ok(ClientCommand::Why { unit, args })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_args(args: &[&str]) -> Result<ClientCommand, Usage> {
        parse(args.iter().map(OsString::from).collect(), None).map(|i| i.command)
    }

    #[test]
    fn one_parse_gives_typed_commands() {
        assert!(matches!(
            parse_args(&["stop", "--no-block", "dir/a.service"]),
            Ok(ClientCommand::Stop { units, wait }) if units == ["a.service"] && wait.block.is_none()
        ));
        assert!(matches!(
            parse_args(&["start", "--block-attempts", "3", "dir/a.service"]),
            Ok(ClientCommand::Start { units, wait })
                if units == ["dir/a.service"] && wait.block == Some(Duration::from_secs(3))
        ));
        assert!(matches!(
            parse_args(&["journal", "-f", "-n", "5", "a.service"]),
            Ok(ClientCommand::Follow { unit, lines: 5 }) if unit == "a.service"
        ));
        assert!(matches!(
            parse_args(&["why", "a.service", "--machines", "m.txt", "a.service"]),
            Ok(ClientCommand::Why { unit, args }) if unit == "a.service" && args.unit_files == ["a.service"]
        ));
        assert!(matches!(
            parse_args(&["--endpoint", "/tmp/s", "list-units", "-l"]),
            Ok(ClientCommand::ListUnits(TableOpts { full: true, .. }))
        ));
    }

    #[test]
    fn usage_errors_are_found_before_anything_runs() {
        let err = |args: &[&str]| parse_args(args).err().map(|u| u.0).unwrap_or_default();
        assert_eq!(
            err(&["journal", "-f", "a", "b"]),
            "shoal journal: --follow takes one unit\n"
        );
        assert!(err(&["stop"]).starts_with("shoal stop: which unit?\n\nshoal stop: "));
        assert!(err(&["plan", "--machines", "m.txt"]).starts_with("shoal: no unit files given"));
        assert!(err(&["nope"]).starts_with("shoal: unknown command \"nope\""));
        assert_eq!(err(&["--endpoint"]), "shoal: --endpoint needs a value\n");
        assert_eq!(err(&[]), HELP);
    }
}
