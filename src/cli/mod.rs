//! The command line: argument parsing, help, and dispatch to each command.
//!
//! Architecture invariant: commands write to the given streams and return an exit
//! status (0 ok, 1 something could not be placed or done, 2 bad input); nothing
//! here calls `process::exit`, so tests run commands in-process.

mod demo;
mod input;
mod offline;
mod online;
mod output;

use std::ffi::OsString;
use std::io::Write;

pub use input::{load_machines, load_running, load_units, InputError};

/// Exit status: everything asked for was done.
pub const EXIT_OK: i32 = 0;
/// Exit status: the input was fine but something could not be placed or done.
pub const EXIT_UNMET: i32 = 1;
/// Exit status: bad input (arguments, files); nothing was changed.
pub const EXIT_BAD_INPUT: i32 = 2;

const HELP: &str = "\
shoal: fleet's unit scheduling for bare-metal clusters, with no etcd and no leader

USAGE:
    shoal [--endpoint unix:///run/shoal/shoal.sock] <COMMAND> [OPTIONS]

MEMBER:
    agent            Run this member (see `shoal agent --help`)
    keygen           Print a new cluster key

CLUSTER COMMANDS (fleetctl's names; talk to the local agent's socket):
    submit           Make units known (desired state inactive)
    load             Place units and install their files
    start            Place units and start them; waits until they are active
    stop             Stop units (still placed)
    unload           Stop units and remove their files (still known)
    destroy          Forget units everywhere
    list-units       UNIT MACHINE ACTIVE SUB
    list-unit-files  UNIT HASH DSTATE STATE TARGET
    list-machines    MACHINE IP METADATA
    cat              Print a unit's file
    status           systemctl status, on the member that holds the unit
    journal          The unit's journal, from the member that holds it

PLACEMENT (with --machines: offline; without: against the live cluster):
    plan             Show where units would run
    why              Explain, member by member, where one unit can and cannot run
    demo             The fleet chapter's scenarios, placed offline (no files needed)

OTHER:
    help [COMMAND]   Show help for a command (also COMMAND --help)
    version          Print the version

GLOBAL OPTIONS:
    --endpoint URL   The agent's control socket [default: unix:///run/shoal/shoal.sock;
                     also SHOAL_ENDPOINT]

Unit files use fleet's [X-Fleet] keys: MachineID, MachineOf, MachineMetadata,
Conflicts, Global, Replaces.

EXAMPLE:
    shoal start deploy/examples/hello.service && shoal list-units
";

/// Runs the command line `args` (without the program name).
pub fn run(args: Vec<OsString>, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let mut args = args.into_iter().peekable();
    let mut endpoint_text = std::env::var("SHOAL_ENDPOINT").ok();
    while let Some(a) = args.peek().map(|a| a.to_string_lossy().into_owned()) {
        if a == "--endpoint" {
            args.next();
            endpoint_text = args.next().map(|v| v.to_string_lossy().into_owned());
            if endpoint_text.is_none() {
                let _ = writeln!(err, "shoal: --endpoint needs a value");
                return EXIT_BAD_INPUT;
            }
        } else if let Some(v) = a.strip_prefix("--endpoint=") {
            endpoint_text = Some(v.to_string());
            args.next();
        } else {
            break;
        }
    }
    let endpoint = match endpoint_text
        .as_deref()
        .map(crate::control::Endpoint::parse)
    {
        None => crate::control::Endpoint::default(),
        Some(Ok(e)) => e,
        Some(Err(e)) => {
            let _ = writeln!(err, "shoal: {e}");
            return EXIT_BAD_INPUT;
        }
    };
    let Some(command) = args.next() else {
        let _ = write!(err, "{HELP}");
        return EXIT_BAD_INPUT;
    };
    let rest: Vec<OsString> = args.collect();
    let command = command.to_string_lossy().into_owned();
    let wants_help = rest.iter().any(|a| a == "--help" || a == "-h");
    if wants_help && command != "agent" {
        return help(Some(command), out, err);
    }
    if let Some(code) = online::run(&command, rest.clone(), &endpoint, out, err) {
        return code;
    }
    match command.as_str() {
        "agent" => crate::agent::main(rest, out, err),
        "keygen" => crate::agent::keygen(out, err),
        "plan" => offline::plan(rest, &endpoint, out, err),
        "why" => offline::why(rest, &endpoint, out, err),
        "demo" => demo::demo(out),
        "help" | "--help" | "-h" => help(
            rest.first().map(|s| s.to_string_lossy().into_owned()),
            out,
            err,
        ),
        "version" | "--version" | "-V" => {
            let _ = writeln!(out, "shoal {}", env!("CARGO_PKG_VERSION"));
            EXIT_OK
        }
        other => {
            let _ = writeln!(err, "shoal: unknown command {other:?}\n\n{HELP}");
            EXIT_BAD_INPUT
        }
    }
}

fn help(topic: Option<String>, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let text = match topic.as_deref() {
        None => HELP,
        Some("plan") => offline::PLAN_HELP,
        Some("why") => offline::WHY_HELP,
        Some("agent") => crate::agent::AGENT_HELP,
        Some("keygen") => crate::agent::KEYGEN_HELP,
        Some(c) if online::help_of(c).is_some() => online::help_of(c).unwrap_or(HELP),
        Some("demo") => demo::DEMO_HELP,
        Some(other) => {
            let _ = writeln!(err, "shoal: no help for {other:?}\n\n{HELP}");
            return EXIT_BAD_INPUT;
        }
    };
    let _ = write!(out, "{text}");
    EXIT_OK
}
