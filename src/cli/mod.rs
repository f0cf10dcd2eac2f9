//! The command line: parse once ([`command`]), then run the typed command.
//!
//! Architecture invariant: commands write to the given streams and return an exit
//! status ([`exit`]: 0 ok, 1 something could not be placed or done, 2 bad input);
//! nothing here calls `process::exit`, so tests run commands in-process. Commands
//! that talk to the agent go through its control socket only; every call has a
//! timeout and every wait a bound.

mod agent_cmd;
mod batch;
pub mod command;
mod demo;
pub mod exit;
mod help;
mod input;
mod lists;
mod logs;
mod offline;
mod output;
mod session;
mod units;
mod wait;

use std::ffi::OsString;
use std::io::Write;

use command::{ClientCommand, Invocation, Usage};
pub use exit::{EXIT_BAD_INPUT, EXIT_OK, EXIT_UNMET};
pub use input::{load_machines, load_running, load_units, InputError};
use session::Fail;
use units::Lower;

/// Runs the command line `args` (without the program name).
pub fn run(args: Vec<OsString>, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    match command::parse(args, std::env::var("SHOAL_ENDPOINT").ok()) {
        Ok(invocation) => execute(invocation, out, err),
        Err(Usage(text)) => {
            let _ = write!(err, "{text}");
            EXIT_BAD_INPUT
        }
    }
}

fn execute(invocation: Invocation, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let Invocation { endpoint, command } = invocation;
    match command {
        ClientCommand::Help(text) => {
            let _ = write!(out, "{text}");
            EXIT_OK
        }
        ClientCommand::Version => {
            let _ = writeln!(out, "shoal {}", env!("CARGO_PKG_VERSION"));
            EXIT_OK
        }
        ClientCommand::Agent(args) => agent_cmd::main(args, out, err),
        ClientCommand::Keygen => agent_cmd::keygen(out, err),
        ClientCommand::Demo => demo::demo(out),
        ClientCommand::Plan(args) => offline::plan(&args, &endpoint, out, err),
        ClientCommand::Why { unit, args } => offline::why(&unit, &args, &endpoint, out, err),
        online => {
            let name = online.name();
            match ask_agent(online, &endpoint, out, err) {
                Ok(code) => code,
                Err(Fail(code, message)) => {
                    let _ = writeln!(err, "shoal {name}: {message}");
                    code
                }
            }
        }
    }
}

/// Runs a command that talks to the agent (fleetctl's commands).
fn ask_agent(
    command: ClientCommand,
    endpoint: &crate::control::Endpoint,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32, Fail> {
    match command {
        ClientCommand::Submit { files } => units::submit(endpoint, &files, err),
        ClientCommand::Load { units, wait } => {
            units::load_or_start(endpoint, &units, false, &wait, out, err)
        }
        ClientCommand::Start { units, wait } => {
            units::load_or_start(endpoint, &units, true, &wait, out, err)
        }
        ClientCommand::Stop { units, wait } => {
            units::lower(endpoint, &units, Lower::Stop, Some(&wait), out, err)
        }
        ClientCommand::Unload { units } => {
            units::lower(endpoint, &units, Lower::Unload, None, out, err)
        }
        ClientCommand::Destroy { units } => {
            units::lower(endpoint, &units, Lower::Destroy, None, out, err)
        }
        ClientCommand::ListUnits(o) => lists::list_units(endpoint, &o, out, err),
        ClientCommand::ListUnitFiles(o) => lists::list_unit_files(endpoint, &o, out),
        ClientCommand::ListMachines(o) => lists::list_machines(endpoint, &o, out),
        ClientCommand::Cat { unit } => lists::cat(endpoint, &unit, out),
        ClientCommand::Status { units } => logs::status_or_journal(endpoint, &units, None, out),
        ClientCommand::Journal { units, lines } => {
            logs::status_or_journal(endpoint, &units, Some(lines), out)
        }
        ClientCommand::Follow { unit, lines } => {
            let mut s = session::Session::open(endpoint)?;
            logs::follow(&mut s, &unit, lines, out, err)
        }
        other => Err(Fail(
            EXIT_BAD_INPUT,
            format!("{} does not talk to the agent", other.name()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_help_with_an_example() {
        let commands = [
            "submit",
            "load",
            "start",
            "stop",
            "unload",
            "destroy",
            "list-units",
            "list-unit-files",
            "list-machines",
            "cat",
            "status",
            "journal",
            "plan",
            "why",
            "agent",
            "keygen",
        ];
        for c in commands {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let args = vec![OsString::from(c), OsString::from("--help")];
            assert_eq!(crate::cli::run(args, &mut out, &mut err), EXIT_OK, "{c}");
            let text = String::from_utf8(out).unwrap();
            assert!(text.starts_with(&format!("shoal {c}: ")), "{c}: {text}");
            assert!(text.contains("EXAMPLE"), "{c} has no example");
        }
    }

    #[test]
    fn an_unreachable_agent_is_an_error_not_a_hang() {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let args = ["--endpoint", "unix:///nonexistent/shoal.sock", "list-units"];
        let code = crate::cli::run(
            args.iter().map(OsString::from).collect(),
            &mut out,
            &mut err,
        );
        assert_eq!(code, EXIT_UNMET);
        assert!(String::from_utf8(err)
            .unwrap()
            .contains("cannot reach the shoal agent"));
    }

    /// An agent of another protocol version makes any command fail with one line.
    #[test]
    fn a_version_mismatch_is_one_line_and_exit_status_1() {
        use crate::control::protocol::{self, Request, Response, PROTOCOL_VERSION};
        let dir = std::env::temp_dir().join(format!("shoal-cli-version-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let agent = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let hello = protocol::read_frame::<Request>(&mut s).ok();
            let answer = Response::Hello {
                version: PROTOCOL_VERSION - 1,
                machine: "m".into(),
            };
            std::io::Write::write_all(&mut s, &protocol::encode(&answer).unwrap()).unwrap();
            hello
        });
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let args = ["--endpoint", path.to_str().unwrap(), "list-units"];
        let code = run(
            args.iter().map(OsString::from).collect(),
            &mut out,
            &mut err,
        );
        assert_eq!(
            agent.join().unwrap(),
            Some(Request::Hello {
                version: PROTOCOL_VERSION
            })
        );
        let err = String::from_utf8(err).unwrap();
        assert_eq!(code, EXIT_UNMET);
        assert!(out.is_empty());
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("shoal list-units: this shoal speaks control protocol version"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
