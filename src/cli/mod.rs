//! The command line: argument parsing, help, and dispatch to each command.
//!
//! Architecture invariant: commands write to the given streams and return an exit
//! status (0 ok, 1 something could not be placed or done, 2 bad input); nothing
//! here calls `process::exit`, so tests run commands in-process.

mod demo;
mod input;
mod offline;
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
    shoal <COMMAND> [OPTIONS]

OFFLINE COMMANDS (no cluster needed):
    plan   Show where units would run, from unit files and a member list
    why    Explain, member by member, where one unit can and cannot run

    demo   The fleet chapter's scenarios, placed offline (no files needed)

OTHER:
    help [COMMAND]   Show help for a command
    version          Print the version

Run `shoal help plan` for an example. Unit files use fleet's [X-Fleet] keys:
MachineID, MachineOf, MachineMetadata, Conflicts, Global, Replaces.
";

/// Runs the command line `args` (without the program name).
pub fn run(args: Vec<OsString>, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let mut args = args.into_iter();
    let Some(command) = args.next() else {
        let _ = write!(err, "{HELP}");
        return EXIT_BAD_INPUT;
    };
    let rest: Vec<OsString> = args.collect();
    match command.to_string_lossy().as_ref() {
        "plan" => offline::plan(rest, out, err),
        "why" => offline::why(rest, out, err),
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
        Some("demo") => demo::DEMO_HELP,
        Some(other) => {
            let _ = writeln!(err, "shoal: no help for {other:?}\n\n{HELP}");
            return EXIT_BAD_INPUT;
        }
    };
    let _ = write!(out, "{text}");
    EXIT_OK
}
