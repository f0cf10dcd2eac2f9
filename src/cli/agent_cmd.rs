//! `shoal agent` and `shoal keygen`: the command-line side of running a member.
//!
//! Architecture invariant: argument handling and exit statuses only; the agent
//! runtime ([`crate::agent`]) knows nothing of the command line's conventions.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;

use super::exit::{EXIT_BAD_INPUT, EXIT_OK, EXIT_UNMET};
use super::help::AGENT_HELP;

/// `shoal agent ARGS`: exit status 0 after a graceful leave, 2 for bad settings, 1 otherwise.
pub fn main(args: Vec<OsString>, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let flags = match crate::agent::config::parse_flags(args) {
        Ok(f) => f,
        Err(e) => {
            let _ = writeln!(err, "shoal agent: {e}\n\n{AGENT_HELP}");
            return EXIT_BAD_INPUT;
        }
    };
    if flags.help {
        let _ = write!(out, "{AGENT_HELP}");
        return EXIT_OK;
    }
    let env: BTreeMap<String, String> = crate::btree::map(std::env::vars());
    let prepared = crate::agent::Settings::load(&flags, &env).and_then(|settings| {
        let machine_id = crate::agent::config::read_machine_id(&settings.machine_id_file)?;
        let keys = crate::agent::config::read_keys(&settings.key_file)?;
        Ok(crate::agent::Agent {
            settings,
            machine_id,
            keys,
            systemd: Box::new(crate::systemd::Systemctl::default()),
            tools: crate::agent::tools::Tools::default(),
        })
    });
    let agent = match prepared {
        Ok(a) => a,
        Err(e) => {
            let _ = writeln!(err, "shoal agent: {e}");
            return EXIT_BAD_INPUT;
        }
    };
    crate::agent::logger::init();
    match crate::agent::run(agent) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            log::error!("{e}");
            EXIT_UNMET
        }
    }
}

/// `shoal keygen`: a new key on stdout.
pub fn keygen(out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    match crate::agent::random_seed() {
        Ok(bytes) => {
            let _ = writeln!(out, "{}", crate::agent::base64::encode(&bytes));
            EXIT_OK
        }
        Err(e) => {
            let _ = writeln!(err, "shoal keygen: {e}");
            EXIT_UNMET
        }
    }
}
