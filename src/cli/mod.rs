//! The command line: argument parsing, help, and dispatch to each command.
//!
//! Architecture invariant: commands write to the given streams and return an exit
//! status (0 ok, 1 something could not be placed or done, 2 bad input); nothing
//! here calls `process::exit`, so tests run commands in-process.

mod agent_cmd;
mod demo;
pub mod exit;
mod help;
mod input;
mod offline;
mod online;
mod output;

use std::ffi::OsString;
use std::io::Write;

pub use input::{load_machines, load_running, load_units, InputError};

pub use exit::{EXIT_BAD_INPUT, EXIT_OK, EXIT_UNMET};
use help::HELP;


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
        "agent" => agent_cmd::main(rest, out, err),
        "keygen" => agent_cmd::keygen(out, err),
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
        Some(c) if help::of(c).is_some() => help::of(c).unwrap_or(HELP),
        Some(other) => {
            let _ = writeln!(err, "shoal: no help for {other:?}\n\n{HELP}");
            return EXIT_BAD_INPUT;
        }
    };
    let _ = write!(out, "{text}");
    EXIT_OK
}
