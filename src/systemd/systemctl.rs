//! The real [`Systemd`]: unit files in a directory, `systemctl` as a child process.
//!
//! Defaults are runtime paths: units go to `/run/systemd/system` and
//! ownership markers to `/run/shoal/owned`, both on tmpfs, so a reboot
//! forgets the files and their ownership together, and the agent installs
//! again from its own replicated state. A marker is an empty file named
//! after the unit; the unit file also starts with a comment for humans.

use super::list::{parse_list_units, LIST_ARGS};
use super::show::{parse_show, PROPERTIES};
use super::{check_name, is_unit_name, ErrorKind, Observed, Systemd, SystemdError, UNITS_PER_CALL};
use crate::states::LoadState;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::ErrorKind as IoKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The first line of every unit file shoal writes.
pub const HEADER: &str = "# Installed by shoal; it removes this file when the unit is unloaded.\n";

/// `systemctl`'s exit code for "unit not loaded" (LSB: not installed).
const NOT_LOADED: i32 = 5;

/// Units per `systemctl show` call, to stay far below the argument limit.
const SHOW_BATCH_MAX: usize = 200;

/// A unit every systemd has (v205 on): asked when a `show` fails, to tell a
/// name systemd refuses from a systemd that does not answer.
const ROOT_SLICE: &str = "-.slice";

/// The real implementation. See the module docs for the paths.
#[derive(Debug)]
pub struct Systemctl {
    unit_dir: PathBuf,
    owned_dir: PathBuf,
    program: PathBuf,
    needs_reload: bool,
    /// Units installed from scratch that systemd had not loaded (`not-found`):
    /// systemd loads such a file on demand when it is started, so their start
    /// needs no `daemon-reload` (a reload costs ~200 ms and blocks PID 1). Only
    /// a changed file of a unit systemd has loaded, or a removed one, does.
    fresh: BTreeSet<String>,
    reloads: u64,
}

impl Default for Systemctl {
    fn default() -> Self {
        Systemctl::new("/run/systemd/system", "/run/shoal/owned")
    }
}

impl Systemctl {
    /// Unit files in `unit_dir`, ownership markers in `owned_dir`.
    pub fn new(unit_dir: impl Into<PathBuf>, owned_dir: impl Into<PathBuf>) -> Systemctl {
        Systemctl {
            unit_dir: unit_dir.into(),
            owned_dir: owned_dir.into(),
            program: PathBuf::from("systemctl"),
            needs_reload: false,
            fresh: BTreeSet::new(),
            reloads: 0,
        }
    }

    /// Uses `program` instead of `systemctl` from PATH (tests use a script).
    pub fn with_program(mut self, program: impl Into<PathBuf>) -> Systemctl {
        self.program = program.into();
        self
    }

    /// How many `daemon-reload`s this instance has run.
    pub fn reloads(&self) -> u64 {
        self.reloads
    }

    pub fn unit_path(&self, unit: &str) -> PathBuf {
        self.unit_dir.join(unit)
    }

    fn marker(&self, unit: &str) -> PathBuf {
        self.owned_dir.join(unit)
    }

    fn owns(&self, unit: &str) -> bool {
        self.marker(unit).is_file()
    }

    fn systemctl(
        &self,
        op: &'static str,
        unit: Option<&str>,
        args: &[&str],
    ) -> Result<String, SystemdError> {
        let mut cmd = Command::new(&self.program);
        cmd.arg("--no-pager")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let out = super::spawn_unless_busy(&mut cmd)
            .and_then(|c| c.wait_with_output())
            .map_err(|e| SystemdError::new(op, unit, ErrorKind::Io(e)))?;
        if !out.status.success() {
            let kind = ErrorKind::Failed {
                code: out.status.code(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            };
            return Err(SystemdError::new(op, unit, kind));
        }
        String::from_utf8(out.stdout)
            .map_err(|_| SystemdError::new(op, unit, ErrorKind::Output("not UTF-8".into())))
    }

    /// Whether systemd already knows `unit` from another file (in `/etc`,
    /// `/lib`, a template, or masked). A file of ours in `/run` would be
    /// shadowed by `/etc` or would change someone else's unit, and starting
    /// or stopping it would then act on theirs: such a unit is not ours.
    /// A unit still loaded from our own path (removed, reload pending) is ours.
    /// Also says whether systemd has no such unit at all (`not-found`).
    fn known_elsewhere(&self, unit: &str) -> Result<(bool, bool), SystemdError> {
        let args = ["show", "--property=LoadState,FragmentPath", "--", unit];
        let out = self.systemctl("install", Some(unit), &args)?;
        let prop = |k: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
                .map(str::trim)
        };
        let state = prop("LoadState").ok_or_else(|| {
            let why = format!("no LoadState in {out:?}");
            SystemdError::new("install", Some(unit), ErrorKind::Output(why))
        })?;
        let ours = prop("FragmentPath").is_some_and(|f| Path::new(f) == self.unit_path(unit));
        let not_found = LoadState::parse(state) == LoadState::NotFound;
        Ok((!not_found && !ours, not_found))
    }

    fn require_owned(&self, op: &'static str, unit: &str) -> Result<(), SystemdError> {
        check_name(op, unit)?;
        if self.owns(unit) {
            Ok(())
        } else {
            Err(SystemdError::new(op, Some(unit), ErrorKind::NotOwned))
        }
    }
}

impl Systemctl {
    /// One `systemctl start --no-block` of `chunk`. systemd enqueues every
    /// start it can; a non-zero exit says one failed, not which, so the
    /// caller reads each unit's state afterwards.
    fn start_chunk(&mut self, chunk: &[&str]) -> Option<SystemdError> {
        let unit = (chunk.len() == 1).then(|| chunk[0]);
        let args = verb_args("start", chunk);
        // `remove` on each unit, not `all`: every fresh mark is used up here.
        let fresh: Vec<bool> = chunk.iter().map(|u| self.fresh.remove(*u)).collect();
        if fresh.iter().all(|&f| f) {
            // No reload for new units: systemd loads their files now. Should
            // systemd still hold a stale `not-found` for one (a systemd older
            // than 245 keeps one; a newer one keeps it when the directory's
            // mtime did not move), its start fails: reload and start the
            // chunk once more (a start of a unit already starting is a no-op).
            match self.systemctl("start", unit, &args) {
                Ok(_) => return None,
                Err(e) => {
                    log::debug!("{e}; reloading and starting {} again", chunk.join(" "));
                    self.needs_reload = true;
                }
            }
        }
        if let Err(e) = self.daemon_reload() {
            return Some(e);
        }
        self.systemctl("start", unit, &args).err()
    }

    /// One `systemctl show` of `batch`, every unit answered or an error.
    fn show(&self, batch: &[&str]) -> Result<BTreeMap<String, Observed>, SystemdError> {
        const OP: &str = "states";
        let property = format!("--property={PROPERTIES}");
        let mut args = vec!["show", property.as_str(), "--"];
        args.extend_from_slice(batch);
        let unit = (batch.len() == 1).then(|| batch[0]);
        let out = self.systemctl(OP, unit, &args)?;
        parse_show(&out, batch).map_err(|why| SystemdError::new(OP, unit, ErrorKind::Output(why)))
    }

    /// `batch` asked in halves until each failing unit stands alone; a unit
    /// systemd will not answer for is left out.
    fn show_split(&self, batch: &[&str]) -> BTreeMap<String, Observed> {
        let mut all = BTreeMap::new();
        let (a, b) = batch.split_at(batch.len() / 2);
        for half in [a, b] {
            match self.show(half) {
                Ok(states) => all.extend(states),
                Err(_) if half.len() > 1 => all.extend(self.show_split(half)),
                Err(e) => log::debug!("{e}"),
            }
        }
        all
    }
}

/// `systemctl VERB --no-block -- UNIT...`.
fn verb_args<'a>(verb: &'a str, units: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![verb, "--no-block", "--"];
    args.extend_from_slice(units);
    args
}

/// systemctl's "unit not loaded" exit.
fn not_loaded(e: &SystemdError) -> bool {
    matches!(
        e.kind,
        ErrorKind::Failed {
            code: Some(NOT_LOADED),
            ..
        }
    )
}

fn io(op: &'static str, unit: Option<&str>, path: &Path, e: std::io::Error) -> SystemdError {
    let e = std::io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    SystemdError::new(op, unit, ErrorKind::Io(e))
}

impl Systemd for Systemctl {
    fn install(&mut self, unit: &str, text: &str) -> Result<(), SystemdError> {
        const OP: &str = "install";
        check_name(OP, unit)?;
        let path = self.unit_path(unit);
        let exists = path.exists() || path.is_symlink();
        if exists && !self.owns(unit) {
            return Err(SystemdError::new(OP, Some(unit), ErrorKind::NotOwned));
        }
        // A new file of a unit systemd does not know: it is loaded on demand.
        let mut fresh = false;
        if !exists && !self.owns(unit) {
            let (elsewhere, not_found) = self.known_elsewhere(unit)?;
            if elsewhere {
                return Err(SystemdError::new(OP, Some(unit), ErrorKind::NotOwned));
            }
            fresh = not_found;
        }
        let content = format!("{HEADER}{text}");
        if exists && fs::read_to_string(&path).is_ok_and(|old| old == content) {
            return Ok(());
        }
        // Marker first: a crash in between leaves an owned unit without a
        // file (harmless, removed later), never a file nobody owns.
        fs::create_dir_all(&self.owned_dir).map_err(|e| io(OP, Some(unit), &self.owned_dir, e))?;
        let marker = self.marker(unit);
        fs::write(&marker, "").map_err(|e| io(OP, Some(unit), &marker, e))?;
        fs::create_dir_all(&self.unit_dir).map_err(|e| io(OP, Some(unit), &self.unit_dir, e))?;
        // Through a rename, so systemd never reads half a file. The dot name
        // has no unit suffix, so systemd ignores it meanwhile.
        let tmp = self.unit_dir.join(format!(".{unit}.shoal-tmp"));
        fs::write(&tmp, content).map_err(|e| io(OP, Some(unit), &tmp, e))?;
        if let Err(e) = fs::rename(&tmp, &path) {
            let _ = fs::remove_file(&tmp);
            return Err(io(OP, Some(unit), &path, e));
        }
        if fresh {
            self.fresh.insert(unit.to_string());
        } else {
            // systemd may have loaded the old file (states() loads on demand too).
            self.fresh.remove(unit);
            self.needs_reload = true;
        }
        Ok(())
    }

    fn remove(&mut self, unit: &str) -> Result<(), SystemdError> {
        const OP: &str = "remove";
        check_name(OP, unit)?;
        let path = self.unit_path(unit);
        let exists = path.exists() || path.is_symlink();
        if !self.owns(unit) {
            return if exists {
                Err(SystemdError::new(OP, Some(unit), ErrorKind::NotOwned))
            } else {
                Ok(())
            };
        }
        self.fresh.remove(unit);
        // File first, marker last: the mirror image of install.
        match fs::remove_file(&path) {
            Ok(()) => self.needs_reload = true,
            Err(e) if e.kind() == IoKind::NotFound => {}
            Err(e) => return Err(io(OP, Some(unit), &path, e)),
        }
        let marker = self.marker(unit);
        match fs::remove_file(&marker) {
            Err(e) if e.kind() != IoKind::NotFound => Err(io(OP, Some(unit), &marker, e)),
            _ => Ok(()),
        }
    }

    fn daemon_reload(&mut self) -> Result<(), SystemdError> {
        if self.needs_reload {
            self.systemctl("daemon-reload", None, &["daemon-reload"])?;
            self.needs_reload = false;
            self.reloads += 1;
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
        for chunk in ours.chunks(UNITS_PER_CALL) {
            errors.extend(self.start_chunk(chunk));
        }
        errors
    }

    fn stop_all(&mut self, units: &[&str]) -> Vec<SystemdError> {
        let (ours, mut errors) = super::split_owned(units, |u| self.require_owned("stop", u));
        for chunk in ours.chunks(UNITS_PER_CALL) {
            if let Err(e) = self.daemon_reload() {
                errors.push(e);
                continue;
            }
            let unit = (chunk.len() == 1).then(|| chunk[0]);
            match self.systemctl("stop", unit, &verb_args("stop", chunk)) {
                // A unit systemd has not loaded (e.g. a bad file it dropped):
                // nothing runs, which is what stop asks for. systemctl still
                // stops the chunk's other units; their states tell the rest.
                Err(e) if not_loaded(&e) => {}
                Err(e) => errors.push(e),
                Ok(_) => {}
            }
        }
        errors
    }

    fn states(&mut self, units: &[&str]) -> Result<BTreeMap<String, Observed>, SystemdError> {
        self.daemon_reload()?;
        let mut all = BTreeMap::new();
        for batch in units.chunks(SHOW_BATCH_MAX) {
            // A name shoal would never write is never passed to systemctl.
            let asked: Vec<&str> = batch.iter().copied().filter(|u| is_unit_name(u)).collect();
            if asked.is_empty() {
                continue;
            }
            match self.show(&asked) {
                Ok(states) => all.extend(states),
                Err(e) => {
                    // systemctl stops at the first unit systemd refuses (e.g.
                    // a template name: "neither a valid invocation ID nor unit
                    // name") and loses the rest. If systemd answers at all (the
                    // root slice always exists), ask again in halves, so one
                    // refused name costs only itself.
                    self.show(&[ROOT_SLICE])?;
                    log::debug!("{e}; asking again in halves");
                    all.extend(self.show_split(&asked));
                }
            }
        }
        // What was refused, by shoal or by systemd, is no unit systemd has.
        for u in units {
            if !all.contains_key(*u) {
                log::warn!("states {u}: a name systemd refuses; taken as not-found");
                all.insert(
                    u.to_string(),
                    Observed::new("not-found", "inactive", "dead"),
                );
            }
        }
        Ok(all)
    }

    fn loaded(&mut self) -> Option<Result<BTreeMap<String, Observed>, SystemdError>> {
        let listed = self.daemon_reload().and_then(|()| {
            self.systemctl("list-units", None, &LIST_ARGS)
                .map(|out| parse_list_units(&out))
        });
        Some(listed)
    }

    fn list_owned(&self) -> Result<BTreeSet<String>, SystemdError> {
        let rd = match fs::read_dir(&self.owned_dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == IoKind::NotFound => return Ok(BTreeSet::new()),
            Err(e) => return Err(io("list-owned", None, &self.owned_dir, e)),
        };
        let mut owned = BTreeSet::new();
        for entry in rd {
            let entry = entry.map_err(|e| io("list-owned", None, &self.owned_dir, e))?;
            if let Some(name) = entry.file_name().to_str() {
                if super::is_unit_name(name) {
                    owned.insert(name.to_string());
                }
            }
        }
        Ok(owned)
    }
}

#[cfg(test)]
mod tests;
