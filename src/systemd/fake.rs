//! [`FakeSystemd`]: an in-memory systemd for tests and the simulation.
//!
//! It keeps three things apart as systemd does: the files on disk, what the
//! manager has loaded (changed only by a reload), and each unit's runtime
//! state. Starting and stopping take time in a real systemd; here a start
//! leaves the unit `activating` until the test calls [`FakeSystemd::finish`]
//! (or [`FakeSystemd::fail`]), so tests choose the interleaving and no clock
//! is involved. Like systemd, it keeps in memory only units that are not
//! inactive ([`Systemd::loaded`] lists those): an inactive unit is unloaded.

use super::{check_name, ErrorKind, Observed, Systemd, SystemdError};
use crate::states::ActiveState;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug)]
struct File {
    text: String,
    owned: bool,
}

/// In-memory [`Systemd`]. Every call is also written to [`FakeSystemd::log`].
#[derive(Clone, Debug, Default)]
pub struct FakeSystemd {
    files: BTreeMap<String, File>,
    loaded: BTreeMap<String, String>,
    /// (ActiveState, SubState); absent means inactive/dead.
    runtime: BTreeMap<String, (ActiveState, String)>,
    needs_reload: bool,
    /// Units whose file systemd cannot use (`bad-setting`): a start fails.
    broken: BTreeSet<String>,
    /// `daemon-reload`s run so far.
    pub reloads: u64,
    /// One line per call that changed something, e.g. `start a.service b.service`
    /// (one line per `start_all`, as one `systemctl start` would be).
    pub log: Vec<String>,
    /// `states` calls (`systemctl show`) so far: counted, not logged.
    pub shows: u64,
    /// `loaded` calls (`systemctl list-units`) so far.
    pub lists: u64,
}

impl FakeSystemd {
    pub fn new() -> FakeSystemd {
        FakeSystemd::default()
    }

    /// A unit that exists and is loaded but is not shoal's (e.g. sshd).
    pub fn add_foreign(&mut self, unit: &str, text: &str) {
        let file = File {
            text: text.to_string(),
            owned: false,
        };
        self.files.insert(unit.to_string(), file);
        self.loaded.insert(unit.to_string(), text.to_string());
    }

    /// The text of `unit`'s file, as shoal wrote it.
    pub fn file(&self, unit: &str) -> Option<&str> {
        self.files.get(unit).map(|f| f.text.as_str())
    }

    /// Whether a reload is pending.
    pub fn needs_reload(&self) -> bool {
        self.needs_reload
    }

    /// Completes a pending start or stop of `unit`: `activating` becomes
    /// `active/running`, `deactivating` becomes `inactive/dead`.
    pub fn finish(&mut self, unit: &str) {
        let next = match self.runtime.get(unit).map(|(a, _)| a) {
            Some(ActiveState::Activating) => Some((ActiveState::Active, "running")),
            Some(ActiveState::Deactivating) => None,
            _ => return,
        };
        self.set(unit, next);
    }

    /// Completes every pending start and stop.
    pub fn finish_all(&mut self) {
        let units: Vec<String> = self.runtime.keys().cloned().collect();
        for u in units {
            self.finish(&u);
        }
    }

    /// `unit`'s file has a setting systemd rejects: it loads as `bad-setting`
    /// and a start of it fails at once (the other units of the call start).
    pub fn break_file(&mut self, unit: &str) {
        self.broken.insert(unit.to_string());
    }

    /// The unit's process fails (a start that fails, or a crash later).
    pub fn fail(&mut self, unit: &str) {
        self.set(unit, Some((ActiveState::Failed, "failed")));
    }

    fn set(&mut self, unit: &str, state: Option<(ActiveState, &str)>) {
        match state {
            Some((a, s)) => {
                self.runtime.insert(unit.to_string(), (a, s.to_string()));
            }
            None => {
                self.runtime.remove(unit);
            }
        }
    }

    fn require_owned(&self, op: &'static str, unit: &str) -> Result<(), SystemdError> {
        check_name(op, unit)?;
        match self.files.get(unit) {
            Some(f) if f.owned => Ok(()),
            _ => Err(SystemdError::new(op, Some(unit), ErrorKind::NotOwned)),
        }
    }

    fn failed(op: &'static str, unit: &str, stderr: String) -> SystemdError {
        let kind = ErrorKind::Failed {
            code: Some(5),
            stderr,
        };
        SystemdError::new(op, Some(unit), kind)
    }

    fn active_state(&self, unit: &str) -> &ActiveState {
        self.runtime
            .get(unit)
            .map_or(&ActiveState::Inactive, |(a, _)| a)
    }

    fn start_one(&mut self, unit: &str) -> Result<(), SystemdError> {
        if self.broken.contains(unit) {
            let why = format!("Unit {unit} has a bad unit file setting.\n");
            return Err(Self::failed("start", unit, why));
        }
        if !self.loaded.contains_key(unit) {
            return Err(Self::failed(
                "start",
                unit,
                format!("Unit {unit} not found.\n"),
            ));
        }
        // systemd: a start of a unit that is up or coming up is a no-op.
        if !matches!(
            self.active_state(unit),
            ActiveState::Active | ActiveState::Activating
        ) {
            self.set(unit, Some((ActiveState::Activating, "start")));
        }
        Ok(())
    }

    fn stop_one(&mut self, unit: &str) {
        match self.active_state(unit).clone() {
            ActiveState::Active | ActiveState::Activating => {
                self.set(unit, Some((ActiveState::Deactivating, "stop")))
            }
            // systemctl stop also clears a failed unit back to inactive.
            ActiveState::Failed => self.set(unit, None),
            _ => {}
        }
    }

    /// What `systemctl show` would say of `unit`.
    fn observed(&self, unit: &str) -> Observed {
        // Like systemd: a running unit whose file was removed stays
        // running, and shows `not-found` after the reload.
        let load = if check_name("states", unit).is_err() || !self.loaded.contains_key(unit) {
            "not-found"
        } else if self.broken.contains(unit) {
            "bad-setting"
        } else {
            "loaded"
        };
        let (active, sub) = self
            .runtime
            .get(unit)
            .map_or(("inactive", "dead"), |(a, s)| (a.as_str(), s.as_str()));
        Observed::new(load, active, sub)
    }
}

impl Systemd for FakeSystemd {
    fn install(&mut self, unit: &str, text: &str) -> Result<(), SystemdError> {
        check_name("install", unit)?;
        match self.files.get(unit) {
            Some(f) if !f.owned => {
                return Err(SystemdError::new(
                    "install",
                    Some(unit),
                    ErrorKind::NotOwned,
                ))
            }
            Some(f) if f.text == text => return Ok(()),
            _ => {}
        }
        let file = File {
            text: text.to_string(),
            owned: true,
        };
        self.files.insert(unit.to_string(), file);
        self.needs_reload = true;
        Ok(())
    }

    fn remove(&mut self, unit: &str) -> Result<(), SystemdError> {
        check_name("remove", unit)?;
        match self.files.get(unit) {
            None => Ok(()),
            Some(f) if !f.owned => {
                Err(SystemdError::new("remove", Some(unit), ErrorKind::NotOwned))
            }
            Some(_) => {
                self.files.remove(unit);
                self.needs_reload = true;
                Ok(())
            }
        }
    }

    fn daemon_reload(&mut self) -> Result<(), SystemdError> {
        if self.needs_reload {
            self.loaded = self
                .files
                .iter()
                .map(|(u, f)| (u.clone(), f.text.clone()))
                .collect();
            self.needs_reload = false;
            self.reloads += 1;
            self.log.push("daemon-reload".into());
        }
        Ok(())
    }

    fn start(&mut self, unit: &str) -> Result<(), SystemdError> {
        super::first_error(self.start_all(&[unit]))
    }

    fn stop(&mut self, unit: &str) -> Result<(), SystemdError> {
        super::first_error(self.stop_all(&[unit]))
    }

    fn start_all(&mut self, units: &[&str]) -> Vec<SystemdError> {
        let (ours, mut errors) = super::split_owned(units, |u| self.require_owned("start", u));
        if ours.is_empty() {
            return errors;
        }
        let _ = self.daemon_reload();
        self.log.push(format!("start {}", ours.join(" ")));
        // Like systemctl: every start it can, whatever one of them says.
        errors.extend(ours.iter().filter_map(|u| self.start_one(u).err()));
        errors
    }

    fn stop_all(&mut self, units: &[&str]) -> Vec<SystemdError> {
        let (ours, errors) = super::split_owned(units, |u| self.require_owned("stop", u));
        if ours.is_empty() {
            return errors;
        }
        let _ = self.daemon_reload();
        self.log.push(format!("stop {}", ours.join(" ")));
        for u in ours {
            self.stop_one(u);
        }
        errors
    }

    fn states(&mut self, units: &[&str]) -> Result<BTreeMap<String, Observed>, SystemdError> {
        self.daemon_reload()?;
        self.shows += 1;
        // A name shoal refuses is no unit systemd has: not-found, like the real one.
        Ok(units
            .iter()
            .map(|u| (u.to_string(), self.observed(u)))
            .collect())
    }

    fn loaded(&mut self) -> Option<Result<BTreeMap<String, Observed>, SystemdError>> {
        if let Err(e) = self.daemon_reload() {
            return Some(Err(e));
        }
        self.lists += 1;
        let in_memory = self.runtime.keys().map(|u| (u.clone(), self.observed(u)));
        Some(Ok(in_memory.collect()))
    }

    fn list_owned(&self) -> Result<BTreeSet<String>, SystemdError> {
        Ok(self
            .files
            .iter()
            .filter(|(_, f)| f.owned)
            .map(|(u, _)| u.clone())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEB: &str = "[Service]\nExecStart=/bin/sleep 1000\n";

    #[test]
    fn installing_many_units_then_starting_them_costs_one_reload() {
        let mut sd = FakeSystemd::new();
        for u in ["a.service", "b.service", "c.service"] {
            sd.install(u, WEB).unwrap();
        }
        for u in ["a.service", "b.service", "c.service"] {
            sd.start(u).unwrap();
        }
        assert_eq!(sd.reloads, 1);
        sd.install("a.service", WEB).unwrap();
        assert!(!sd.needs_reload(), "same text again is not a change");
    }

    #[test]
    fn a_start_stays_activating_until_the_test_finishes_it() {
        let mut sd = FakeSystemd::new();
        sd.install("web.service", WEB).unwrap();
        sd.start("web.service").unwrap();
        let s = sd.states(&["web.service"]).unwrap();
        assert_eq!(
            s["web.service"],
            Observed::new("loaded", "activating", "start")
        );
        sd.finish("web.service");
        let s = sd.states(&["web.service"]).unwrap();
        assert_eq!(s["web.service"].active_state, ActiveState::Active);
        assert!(s["web.service"].active_state.is_running());
        sd.stop("web.service").unwrap();
        sd.finish_all();
        let s = sd.states(&["web.service"]).unwrap();
        assert_eq!(
            s["web.service"],
            Observed::new("loaded", "inactive", "dead")
        );
    }

    #[test]
    fn units_shoal_did_not_install_are_never_touched() {
        let mut sd = FakeSystemd::new();
        sd.add_foreign("sshd.service", WEB);
        for r in [
            sd.install("sshd.service", "x"),
            sd.remove("sshd.service"),
            sd.start("sshd.service"),
            sd.stop("sshd.service"),
        ] {
            assert!(matches!(r.unwrap_err().kind, ErrorKind::NotOwned));
        }
        assert_eq!(sd.file("sshd.service"), Some(WEB));
        assert!(sd.list_owned().unwrap().is_empty());
        assert!(sd.log.is_empty());
    }

    #[test]
    fn a_removed_running_unit_keeps_running_and_shows_not_found() {
        let mut sd = FakeSystemd::new();
        sd.install("web.service", WEB).unwrap();
        sd.start("web.service").unwrap();
        sd.finish("web.service");
        sd.remove("web.service").unwrap();
        let s = sd.states(&["web.service"]).unwrap();
        assert_eq!(
            s["web.service"],
            Observed::new("not-found", "active", "running")
        );
        assert!(sd.list_owned().unwrap().is_empty());
        sd.remove("web.service").unwrap();
    }

    #[test]
    fn a_failed_unit_is_reported_and_a_stop_clears_it() {
        let mut sd = FakeSystemd::new();
        sd.install("bad.service", WEB).unwrap();
        sd.start("bad.service").unwrap();
        sd.fail("bad.service");
        assert_eq!(
            sd.states(&["bad.service"]).unwrap()["bad.service"].active_state,
            ActiveState::Failed
        );
        sd.stop("bad.service").unwrap();
        let s = sd.states(&["bad.service"]).unwrap();
        assert_eq!(s["bad.service"].active_state, "inactive");
    }
}
