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
      # Like systemd 252: a template name ends the call, the rest unanswered.
      [ "$u" = t@.service ] && { echo "Unit name $u is not valid." >&2; exit 1; }
      printf 'Id=%s\nLoadState=loaded\nActiveState=inactive\nSubState=dead\n\n' "$u"; done ;;
  start) case " $* " in *" broken.service "*)
       echo "Unit broken.service has a bad unit file setting." >&2; exit 1 ;; esac ;;
  list-units) printf 'a.service loaded active running A\n  x.mount not-found inactive dead x\n' ;;
esac
exit 0
"#;

fn setup(name: &str) -> (PathBuf, Systemctl) {
    let dir = std::env::temp_dir().join(format!("shoal-systemctl-{}-{name}", std::process::id()));
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
    // A name shoal refuses never reaches systemctl (the old assertion was
    // that the whole call failed with BadName: now it costs only itself).
    let before = calls(&dir).len();
    let s = sd.states(&["../x.service", "-x.service"]).unwrap();
    assert_eq!(s["../x.service"].load_state, LoadState::NotFound);
    assert_eq!(s["-x.service"].load_state, LoadState::NotFound);
    assert_eq!(calls(&dir).len(), before, "{:?}", calls(&dir));
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn a_name_systemd_refuses_costs_only_itself_in_a_batch_read() {
    let (dir, mut sd) = setup("refused");
    let s = sd
        .states(&["a.service", "t@.service", "b.service", "../x.service"])
        .unwrap();
    assert_eq!(s.len(), 4);
    assert_eq!(s["a.service"], Observed::new("loaded", "inactive", "dead"));
    assert_eq!(s["b.service"], Observed::new("loaded", "inactive", "dead"));
    assert_eq!(s["t@.service"].load_state, LoadState::NotFound);
    assert_eq!(s["../x.service"].load_state, LoadState::NotFound);
    let p = "--no-pager show --property=Id,LoadState,ActiveState,SubState --";
    assert_eq!(
        calls(&dir),
        [
            format!("{p} a.service t@.service b.service"),
            format!("{p} -.slice"),
            format!("{p} a.service"),
            format!("{p} t@.service b.service"),
            format!("{p} t@.service"),
            format!("{p} b.service"),
        ]
    );
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn a_batch_starts_in_one_call_and_one_bad_unit_fails_only_itself() {
    let (dir, mut sd) = setup("start-all");
    for u in ["a.service", "broken.service", "c.service"] {
        sd.install(u, "[Service]\n").unwrap();
    }
    let errors = sd.start_all(&["a.service", "broken.service", "c.service", "sshd.service"]);
    // sshd is not ours: refused before any call; broken fails in the call.
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(matches!(errors[0].kind, ErrorKind::NotOwned));
    let start = "--no-pager start --no-block -- a.service broken.service c.service";
    assert_eq!(calls(&dir)[3..], [start, "--no-pager daemon-reload", start]);
    let errors = sd.stop_all(&["a.service", "broken.service", "c.service"]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        calls(&dir).last().unwrap(),
        "--no-pager stop --no-block -- a.service broken.service c.service"
    );
    let listed = sd.loaded().unwrap().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(
        listed["a.service"],
        Observed::new("loaded", "active", "running")
    );
    let _ = fs::remove_dir_all(dir);
}
