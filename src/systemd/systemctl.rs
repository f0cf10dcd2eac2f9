//! The real [`Systemd`]: unit files in a directory, `systemctl` as a child process.
//!
//! Defaults are runtime paths: units go to `/run/systemd/system` and
//! ownership markers to `/run/shoal/owned`, both on tmpfs, so a reboot
//! forgets the files and their ownership together, and the agent installs
//! again from its own replicated state. A marker is an empty file named
//! after the unit; the unit file also starts with a comment for humans.

use super::show::{parse_show, PROPERTIES};
use super::{check_name, ErrorKind, Observed, Systemd, SystemdError};
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
        self.require_owned("start", unit)?;
        let args = ["start", "--no-block", "--", unit];
        if self.fresh.remove(unit) {
            // No reload for a new unit: systemd loads its file now. Should
            // systemd still hold a stale `not-found` for it (a systemd older
            // than 245 keeps one; a newer one keeps it when the directory's
            // mtime did not move), the start fails: reload and try once more.
            match self.systemctl("start", Some(unit), &args) {
                Ok(_) => return Ok(()),
                Err(e) => {
                    log::debug!("{e}; reloading and starting {unit} again");
                    self.needs_reload = true;
                }
            }
        }
        self.daemon_reload()?;
        self.systemctl("start", Some(unit), &args).map(drop)
    }

    fn stop(&mut self, unit: &str) -> Result<(), SystemdError> {
        self.require_owned("stop", unit)?;
        self.daemon_reload()?;
        match self.systemctl("stop", Some(unit), &["stop", "--no-block", "--", unit]) {
            // systemd has no such unit loaded (e.g. a bad file it dropped):
            // nothing runs, which is what stop asks for.
            Err(e)
                if matches!(
                    e.kind,
                    ErrorKind::Failed {
                        code: Some(NOT_LOADED),
                        ..
                    }
                ) =>
            {
                Ok(())
            }
            r => r.map(drop),
        }
    }

    fn states(&mut self, units: &[&str]) -> Result<BTreeMap<String, Observed>, SystemdError> {
        const OP: &str = "states";
        for u in units {
            check_name(OP, u)?;
        }
        self.daemon_reload()?;
        let mut all = BTreeMap::new();
        let property = format!("--property={PROPERTIES}");
        for batch in units.chunks(SHOW_BATCH_MAX) {
            let mut args = vec!["show", property.as_str(), "--"];
            args.extend_from_slice(batch);
            let out = self.systemctl(OP, None, &args)?;
            let states = parse_show(&out, batch)
                .map_err(|why| SystemdError::new(OP, None, ErrorKind::Output(why)))?;
            all.extend(states);
        }
        Ok(all)
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
mod tests {
    //! Against a shell script standing in for `systemctl`: it logs its
    //! arguments and answers `show`, so files, ownership, batching and
    //! argument forms are checked without a systemd. The real systemd is
    //! exercised in `tests/real_systemd.rs`.
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const FAKE: &str = r#"#!/bin/sh
echo "$*" >> "$(dirname "$0")/calls"
case "$2" in
  show) [ "$3" = --property=LoadState,FragmentPath ] && { echo LoadState=not-found; exit 0; }
        shift 4; for u in "$@"; do
          printf 'Id=%s\nLoadState=loaded\nActiveState=inactive\nSubState=dead\n\n' "$u"; done ;;
  start) [ "$5" = broken.service ] && { echo "Unit broken.service has a bad unit file setting." >&2; exit 1; } ;;
esac
exit 0
"#;

    fn setup(name: &str) -> (PathBuf, Systemctl) {
        let dir =
            std::env::temp_dir().join(format!("shoal-systemctl-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let prog = dir.join("systemctl");
        fs::write(&prog, FAKE).unwrap();
        fs::set_permissions(&prog, fs::Permissions::from_mode(0o755)).unwrap();
        let sd = Systemctl::new(dir.join("units"), dir.join("owned")).with_program(&prog);
        (dir, sd)
    }

    fn calls(dir: &Path) -> Vec<String> {
        fs::read_to_string(dir.join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn new_units_start_without_a_reload_and_a_changed_file_reloads_once() {
        let (dir, mut sd) = setup("batch");
        sd.install("a.service", "[Service]\nExecStart=/bin/true\n")
            .unwrap();
        sd.install("b.service", "[Service]\nExecStart=/bin/true\n")
            .unwrap();
        let text = fs::read_to_string(dir.join("units/a.service")).unwrap();
        assert!(text.starts_with(HEADER) && text.ends_with("ExecStart=/bin/true\n"));
        // systemd knew neither: it loads their files on demand.
        sd.start("a.service").unwrap();
        sd.start("b.service").unwrap();
        // The same text again changes nothing.
        sd.install("a.service", "[Service]\nExecStart=/bin/true\n")
            .unwrap();
        sd.stop("a.service").unwrap();
        // A changed file of a loaded unit: one reload before the next start or stop.
        sd.install("a.service", "[Service]\nExecStart=/bin/false\n")
            .unwrap();
        sd.install("b.service", "[Service]\nExecStart=/bin/false\n")
            .unwrap();
        sd.start("a.service").unwrap();
        sd.stop("b.service").unwrap();
        assert_eq!(
            calls(&dir),
            [
                "--no-pager show --property=LoadState,FragmentPath -- a.service",
                "--no-pager show --property=LoadState,FragmentPath -- b.service",
                "--no-pager start --no-block -- a.service",
                "--no-pager start --no-block -- b.service",
                "--no-pager stop --no-block -- a.service",
                "--no-pager daemon-reload",
                "--no-pager start --no-block -- a.service",
                "--no-pager stop --no-block -- b.service",
            ]
        );
        assert_eq!(sd.reloads(), 1);
        let owned: Vec<String> = sd.list_owned().unwrap().into_iter().collect();
        assert_eq!(owned, ["a.service", "b.service"]);
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn a_new_unit_whose_start_fails_is_started_again_after_one_reload() {
        let (dir, mut sd) = setup("retry");
        sd.install("broken.service", "[Service]\n").unwrap();
        let e = sd.start("broken.service").unwrap_err();
        assert!(e.to_string().contains("bad unit file setting"), "{e}");
        assert_eq!(
            calls(&dir),
            [
                "--no-pager show --property=LoadState,FragmentPath -- broken.service",
                "--no-pager start --no-block -- broken.service",
                "--no-pager daemon-reload",
                "--no-pager start --no-block -- broken.service",
            ]
        );
        // Only once: the next start reloads no more.
        sd.start("broken.service").unwrap_err();
        assert_eq!(sd.reloads(), 1);
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn a_unit_file_shoal_did_not_write_is_left_alone() {
        let (dir, mut sd) = setup("foreign");
        fs::create_dir_all(dir.join("units")).unwrap();
        fs::write(dir.join("units/sshd.service"), "mine").unwrap();
        for r in [
            sd.install("sshd.service", "x"),
            sd.remove("sshd.service"),
            sd.start("sshd.service"),
            sd.stop("sshd.service"),
        ] {
            assert!(matches!(r.unwrap_err().kind, ErrorKind::NotOwned));
        }
        assert_eq!(
            fs::read_to_string(dir.join("units/sshd.service")).unwrap(),
            "mine"
        );
        assert!(calls(&dir).is_empty());
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn remove_deletes_file_and_ownership_and_is_idempotent() {
        let (dir, mut sd) = setup("remove");
        sd.install("a.service", "[Service]\n").unwrap();
        sd.remove("a.service").unwrap();
        sd.remove("a.service").unwrap();
        assert!(!dir.join("units/a.service").exists());
        assert!(sd.list_owned().unwrap().is_empty());
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn states_asks_many_units_in_one_call_and_errors_carry_stderr() {
        let (dir, mut sd) = setup("states");
        let s = sd.states(&["a.service", "b.timer"]).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s["b.timer"], Observed::new("loaded", "inactive", "dead"));
        assert_eq!(
            calls(&dir),
            ["--no-pager show --property=Id,LoadState,ActiveState,SubState -- a.service b.timer"]
        );
        sd.install("broken.service", "[Service]\n").unwrap();
        let e = sd.start("broken.service").unwrap_err();
        assert_eq!(e.unit.as_deref(), Some("broken.service"));
        assert!(e.to_string().contains("bad unit file setting"), "{e}");
        assert!(matches!(
            sd.states(&["../x.service"]).unwrap_err().kind,
            ErrorKind::BadName
        ));
        let _ = fs::remove_dir_all(dir);
    }
}
