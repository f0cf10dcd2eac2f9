//! `Systemctl` against a real systemd, inside a test host booted by the xtask harness.
//!
//! The test boots one host (its own cluster name, so a developer's cluster
//! is not disturbed), copies this test binary into the host's `/opt/bin`
//! and runs this same test there with `SHOAL_IN_HOST=1`, where it drives
//! the host's systemd through `Systemctl`. It needs root and this machine's
//! tools; where hosts cannot be made it FAILS, unless `SHOAL_SKIP_HOSTS=1`,
//! in which case it says loudly that it skipped.

use shoal::systemd::{ErrorKind, Systemctl, Systemd, UnitState};
use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};
use xtask::hosts::Cluster;

const TEST: &str = "systemctl_drives_a_real_systemd_in_a_test_host";

#[test]
fn systemctl_drives_a_real_systemd_in_a_test_host() {
    if std::env::var_os("SHOAL_IN_HOST").is_some() {
        return inside_the_host();
    }
    if std::env::var("SHOAL_SKIP_HOSTS").as_deref() == Ok("1") {
        // Straight to stderr: libtest captures eprintln! of passing tests.
        let _ = writeln!(
            std::io::stderr(),
            "\n!!!!! SKIPPED {TEST}: SHOAL_SKIP_HOSTS=1, real systemd NOT tested !!!!!\n"
        );
        return;
    }
    let name = format!("shoalt{}", std::process::id() % 100_000);
    let cluster = Cluster::new(&xtask::hosts::base_dir(), &name).unwrap();
    let guard = Down(cluster.clone());
    let cannot = |e: String| -> ! {
        panic!(
            "cannot make a test host for {TEST}: {e}\n\
             (needs root, systemd-nspawn, network namespaces; \
             set SHOAL_SKIP_HOSTS=1 to skip this test on purpose)"
        )
    };
    let bin = cluster
        .prepare()
        .map(|_| cluster.bin_dir())
        .unwrap_or_else(|e| cannot(e));
    let exe = std::env::current_exe().expect("test binary path");
    std::fs::copy(&exe, bin.join("real_systemd")).unwrap_or_else(|e| cannot(e.to_string()));
    let took = cluster.up(1).unwrap_or_else(|e| cannot(e));
    eprintln!("test host booted in {:.2} s", took.as_secs_f64());
    let argv = [
        "/opt/bin/real_systemd",
        TEST,
        "--exact",
        "--nocapture",
        "--test-threads=1",
    ];
    let out = cluster
        .command(1, &[("SHOAL_IN_HOST", "1")], &argv)
        .unwrap_or_else(|e| cannot(e))
        .output()
        .expect("nsenter");
    eprintln!(
        "--- inside the host ---\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    drop(guard);
    assert!(out.status.success(), "the test failed inside the host");
}

/// Takes the test cluster down however the test ends.
struct Down(Cluster);

impl Drop for Down {
    fn drop(&mut self) {
        match self.0.down() {
            // Only once nothing is mounted: the copied test binary goes too.
            Ok(()) => {
                let _ = std::fs::remove_dir_all(self.0.dir());
            }
            Err(e) => eprintln!("cleaning up the test hosts: {e}"),
        }
    }
}

const SLEEPER: &str = "[Service]\nExecStart=/bin/sleep infinity\n";
const ONESHOT: &str = "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n";
const FAILING: &str = "[Service]\nExecStart=/bin/false\n";
const BAD_SETTING: &str = "[Service]\nExecStart=relative/path\n";

fn wait_for(sd: &mut Systemctl, want: &[(&str, &str, &str)]) -> BTreeMap<String, UnitState> {
    let units: Vec<&str> = want.iter().map(|w| w.0).collect();
    let t0 = Instant::now();
    loop {
        let states = sd.states(&units).unwrap();
        let done = want
            .iter()
            .all(|(u, a, s)| states[*u].active_state == *a && states[*u].sub_state == *s);
        if done {
            eprintln!("reached {want:?} in {:?}", t0.elapsed());
            return states;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "waiting for {want:?}: {states:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn systemctl(args: &[&str]) {
    let ok = std::process::Command::new("systemctl")
        .args(args)
        .status()
        .unwrap();
    assert!(ok.success(), "systemctl {args:?}");
}

fn inside_the_host() {
    // A unit shoal did not install, running: it must stay untouched.
    std::fs::write("/etc/systemd/system/foreign.service", SLEEPER).unwrap();
    systemctl(&["daemon-reload"]);
    systemctl(&["start", "foreign.service"]);

    let mut sd = Systemctl::default();
    assert!(sd.list_owned().unwrap().is_empty());
    // Removing is a no-op: shoal only ever deletes in its own directory.
    sd.remove("foreign.service").unwrap();
    assert!(std::path::Path::new("/etc/systemd/system/foreign.service").exists());
    for r in [
        sd.install("foreign.service", FAILING),
        sd.start("foreign.service"),
        sd.stop("foreign.service"),
    ] {
        assert!(matches!(r.unwrap_err().kind, ErrorKind::NotOwned));
    }
    // /etc is not shoal's directory, but /run would shadow it: refuse too.
    std::fs::write("/run/systemd/system/foreign.service", SLEEPER).unwrap();
    assert!(matches!(
        sd.install("foreign.service", FAILING).unwrap_err().kind,
        ErrorKind::NotOwned
    ));
    std::fs::remove_file("/run/systemd/system/foreign.service").unwrap();

    let t0 = Instant::now();
    sd.install("sleeper.service", SLEEPER).unwrap();
    sd.install("oneshot.service", ONESHOT).unwrap();
    sd.install("failing.service", FAILING).unwrap();
    let states = sd
        .states(&[
            "sleeper.service",
            "oneshot.service",
            "failing.service",
            "nope.service",
        ])
        .unwrap();
    eprintln!("install 3 + reload + states: {:?}", t0.elapsed());
    assert_eq!(sd.reloads(), 1, "three installs, one reload");
    assert_eq!(
        states["sleeper.service"],
        UnitState::new("loaded", "inactive", "dead")
    );
    assert_eq!(states["nope.service"].load_state, "not-found");

    let t0 = Instant::now();
    for u in ["sleeper.service", "oneshot.service", "failing.service"] {
        sd.start(u).unwrap();
    }
    eprintln!("3 starts (--no-block): {:?}", t0.elapsed());
    wait_for(
        &mut sd,
        &[
            ("sleeper.service", "active", "running"),
            ("oneshot.service", "active", "exited"),
            ("failing.service", "failed", "failed"),
        ],
    );

    sd.install("badsetting.service", BAD_SETTING).unwrap();
    let e = sd.start("badsetting.service").unwrap_err();
    eprintln!("bad setting: {e}");
    assert_eq!(e.unit.as_deref(), Some("badsetting.service"));
    assert!(
        matches!(e.kind, ErrorKind::Failed { ref stderr, .. } if stderr.contains("badsetting.service"))
    );
    assert_eq!(
        sd.states(&["badsetting.service"]).unwrap()["badsetting.service"].load_state,
        "bad-setting"
    );

    sd.stop("sleeper.service").unwrap();
    wait_for(&mut sd, &[("sleeper.service", "inactive", "dead")]);

    let owned = sd.list_owned().unwrap();
    assert_eq!(owned.len(), 4, "{owned:?}");
    for u in &owned {
        sd.stop(u).unwrap();
        sd.remove(u).unwrap();
    }
    assert!(sd.list_owned().unwrap().is_empty());
    let s = sd.states(&["sleeper.service", "foreign.service"]).unwrap();
    assert_eq!(s["sleeper.service"].load_state, "not-found");
    assert_eq!(
        s["foreign.service"],
        UnitState::new("loaded", "active", "running")
    );
    assert!(std::fs::read_dir("/run/systemd/system")
        .unwrap()
        .flatten()
        .all(|e| !e.file_name().to_string_lossy().contains("shoal")));
}
