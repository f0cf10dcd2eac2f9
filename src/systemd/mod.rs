//! The agent's only door to systemd: install unit files, reload, start, stop, read states.
//!
//! [`Systemd`] is the trait the agent runtime drives; [`Systemctl`] is the
//! real one (files plus `systemctl` as a child process, no D-Bus) and
//! [`FakeSystemd`] the in-memory one for tests and the simulation.
//!
//! Architecture invariant: shoal never touches a unit it did not install.
//! Ownership is recorded by shoal itself (never guessed from a unit's name or
//! text), and install, remove, start and stop refuse other units.

mod fake;
mod list;
mod show;
mod systemctl;

pub use fake::FakeSystemd;
pub use list::parse_list_units;
pub use show::parse_show;
pub use systemctl::Systemctl;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::states::{ActiveState, LoadState};

/// Most unit names one `systemctl` call is given: 500 names of at most 256
/// bytes are 128 KiB, far below the kernel's argument limit (ARG_MAX, 2 MiB
/// or a quarter of the stack limit).
pub const UNITS_PER_CALL: usize = 500;

/// What systemd says about one unit, its observed state (what the cluster wants
/// of it is [`crate::catalog::Desired`]): `systemctl show`'s `LoadState`,
/// `ActiveState`, `SubState`. The states are typed words ([`crate::states`]):
/// new systemd versions add more, and an unknown one is kept, not lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    pub load_state: LoadState,
    /// Judged only through [`ActiveState::is_running`] and its documented kin.
    pub active_state: ActiveState,
    /// Type-specific detail: `running`, `dead`, `exited`, `start`, ...
    pub sub_state: String,
}

impl Observed {
    /// From systemd's three words.
    pub fn new(load: &str, active: &str, sub: &str) -> Observed {
        Observed {
            load_state: LoadState::parse(load),
            active_state: ActiveState::parse(active),
            sub_state: sub.to_string(),
        }
    }
}

/// The operations the agent needs from systemd.
///
/// Changes to unit files are batched: `install` and `remove` only mark that a
/// `daemon-reload` is due, and the next `daemon_reload`, `start`, `stop` or
/// `states` runs it once, so placing many units costs one reload. A new file
/// of a unit systemd does not know needs none: systemd loads it on demand.
pub trait Systemd {
    /// Writes `unit`'s file with `text` and records that shoal owns it.
    /// Rewriting the same text changes nothing (no reload is due).
    /// Refuses a unit that is not shoal's: a file of that name in shoal's
    /// unit directory, or a unit systemd already loads from elsewhere.
    fn install(&mut self, unit: &str, text: &str) -> Result<(), SystemdError>;

    /// Deletes `unit`'s file and shoal's ownership of it. Does not stop it:
    /// the caller stops first. Removing a unit that is not there is a no-op;
    /// removing someone else's unit is refused.
    fn remove(&mut self, unit: &str) -> Result<(), SystemdError>;

    /// Runs `systemctl daemon-reload` if an install or remove is pending.
    fn daemon_reload(&mut self) -> Result<(), SystemdError>;

    /// Asks systemd to start `unit` (an owned unit) without waiting for the
    /// job to finish: `states` shows the progress.
    fn start(&mut self, unit: &str) -> Result<(), SystemdError>;

    /// Asks systemd to stop `unit` (an owned unit) without waiting.
    fn stop(&mut self, unit: &str) -> Result<(), SystemdError>;

    /// Asks systemd to start all of `units` in one `systemctl start` (per
    /// [`UNITS_PER_CALL`]), without waiting. Returns what failed; a failure
    /// never hides the others' outcome: systemd enqueues every start it can
    /// and the caller reads each unit's state afterwards, not the exit code.
    fn start_all(&mut self, units: &[&str]) -> Vec<SystemdError> {
        units.iter().filter_map(|u| self.start(u).err()).collect()
    }

    /// Like [`Systemd::start_all`], for stops.
    fn stop_all(&mut self, units: &[&str]) -> Vec<SystemdError> {
        units.iter().filter_map(|u| self.stop(u).err()).collect()
    }

    /// The state of each of `units` (`systemctl show`); unknown units come
    /// back with `load_state` `not-found`. Read-only, so any unit may be
    /// asked. A name systemd (or shoal) refuses is no unit systemd can have:
    /// it comes back `not-found` too, and never costs the others their
    /// answer. An error means systemd could not be asked at all.
    fn states(&mut self, units: &[&str]) -> Result<BTreeMap<String, Observed>, SystemdError>;

    /// Every unit systemd holds in memory now, with its states, in one cheap
    /// call (`systemctl list-units --all`): much cheaper than [`Systemd::states`]
    /// for many units, which asks systemd for every property of each. A unit
    /// not listed is not running (systemd unloads a unit that is inactive and
    /// unneeded), but whether its file loads is unknown: ask `states`.
    /// `None` when this systemd cannot list (then callers use `states`).
    fn loaded(&mut self) -> Option<Result<BTreeMap<String, Observed>, SystemdError>> {
        None
    }

    /// The units shoal owns now (installed and not removed).
    fn list_owned(&self) -> Result<BTreeSet<String>, SystemdError>;
}

/// A failed [`Systemd`] operation. Nothing is half-done by a failed call:
/// ownership and files are either both written or the error says which
/// file could not be.
#[derive(Debug)]
pub struct SystemdError {
    /// The operation: `install`, `start`, `daemon-reload`, ...
    pub op: &'static str,
    /// The unit concerned, when there is one.
    pub unit: Option<String>,
    pub kind: ErrorKind,
}

#[derive(Debug)]
pub enum ErrorKind {
    /// Not a unit name shoal writes to disk (`[a-zA-Z0-9:_.@-]`, a systemd
    /// suffix, no leading dot). Checked before any file or command.
    BadName,
    /// The unit exists but shoal did not install it.
    NotOwned,
    /// A file operation failed.
    Io(std::io::Error),
    /// `systemctl` exited non-zero: its exit code (None if killed by a
    /// signal) and stderr.
    Failed { code: Option<i32>, stderr: String },
    /// `systemctl` printed something we cannot read.
    Output(String),
}

impl SystemdError {
    pub fn new(op: &'static str, unit: Option<&str>, kind: ErrorKind) -> SystemdError {
        SystemdError {
            op,
            unit: unit.map(str::to_string),
            kind,
        }
    }
}

impl fmt::Display for SystemdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.op)?;
        if let Some(u) = &self.unit {
            write!(f, " {u}")?;
        }
        match &self.kind {
            ErrorKind::BadName => write!(f, ": not a unit name shoal can manage"),
            ErrorKind::NotOwned => write!(f, ": unit exists and is not managed by shoal"),
            ErrorKind::Io(e) => write!(f, ": {e}"),
            ErrorKind::Failed { code, stderr } => {
                let code = code.map_or("killed".to_string(), |c| format!("exit code {c}"));
                write!(f, ": systemctl failed ({code}): {}", stderr.trim())
            }
            ErrorKind::Output(why) => write!(f, ": unreadable systemctl output: {why}"),
        }
    }
}

impl std::error::Error for SystemdError {}

/// Whether `name` is safe to use as a file name in the unit directory and
/// as a `systemctl` argument: a valid unit name (systemd's characters, a known
/// suffix, at most 255 bytes, see [`UnitName::parse`]) that does not start with
/// a dot or a dash (no hidden files, no options).
pub fn is_unit_name(name: &str) -> bool {
    crate::unit::name::is_safe_unit_name(name)
}

fn check_name(op: &'static str, unit: &str) -> Result<(), SystemdError> {
    if is_unit_name(unit) {
        Ok(())
    } else {
        Err(SystemdError::new(op, Some(unit), ErrorKind::BadName))
    }
}

/// Splits `units` into those `check` lets through and the errors for the others.
fn split_owned<'a>(
    units: &[&'a str],
    check: impl Fn(&str) -> Result<(), SystemdError>,
) -> (Vec<&'a str>, Vec<SystemdError>) {
    let mut ours = Vec::new();
    let mut errors = Vec::new();
    for u in units {
        match check(u) {
            Ok(()) => ours.push(*u),
            Err(e) => errors.push(e),
        }
    }
    (ours, errors)
}

/// The first error of a batch, for the one-unit forms.
fn first_error(errors: Vec<SystemdError>) -> Result<(), SystemdError> {
    errors.into_iter().next().map_or(Ok(()), Err)
}

/// Spawns `cmd`, trying again a few times while the kernel says its program is
/// busy being written (`ETXTBSY`): a package upgrade replacing `systemctl`, or,
/// in tests, a script another thread's child still holds open between its fork
/// and its exec.
pub fn spawn_unless_busy(cmd: &mut std::process::Command) -> std::io::Result<std::process::Child> {
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 10 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10 * tries));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_names_that_could_escape_the_unit_directory_are_refused() {
        for ok in ["web.service", "a@1.service", "a@.service", "x:y_z-1.timer"] {
            assert!(is_unit_name(ok), "{ok}");
        }
        for bad in [
            "",
            "../x.service",
            "a/b.service",
            ".hidden.service",
            "-x.service",
            "web",
            "web.nope",
            ".service",
            "a b.service",
        ] {
            assert!(!is_unit_name(bad), "{bad}");
        }
    }

    #[test]
    fn errors_name_the_operation_the_unit_and_systemctls_words() {
        let e = SystemdError::new(
            "start",
            Some("web.service"),
            ErrorKind::Failed {
                code: Some(5),
                stderr: "Failed to start web.service: Unit web.service not found.\n".into(),
            },
        );
        assert_eq!(
            e.to_string(),
            "start web.service: systemctl failed (exit code 5): \
             Failed to start web.service: Unit web.service not found."
        );
    }
}
