//! Tests that need a real host: `Systemctl` against a real systemd, the store on a really full disk.
//!
//! `real_host_tests` boots one host with the xtask harness (its own cluster
//! name, so a developer's cluster is not disturbed), copies this test
//! binary into the host's `/opt/bin` and runs the `inside_host_*` tests
//! there with `SHOAL_IN_HOST=1`. The file is its own harness (`harness = false`):
//! one binary that is the outer test on this machine and the inner one in the host. It needs
//! root and this machine's tools; where hosts cannot be made it FAILS,
//! unless `SHOAL_SKIP_HOSTS=1`, in which case it says loudly that it skipped.

use shoal::systemd::{ErrorKind, Observed, Systemctl, Systemd};
use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};
use xtask::hosts::Cluster;

const TEST: &str = "real_host_tests";
/// How many inner tests there are (all must run and pass).
const INNER_COUNT: usize = 2;

/// The checks that run inside the host, by name.
const INNER: [(&str, fn()); INNER_COUNT] = [
    (
        "inside_host_systemctl_drives_a_real_systemd",
        inside_host_systemctl_drives_a_real_systemd,
    ),
    (
        "inside_host_store_reports_a_really_full_disk_and_keeps_the_old_snapshot",
        inside_host_store_reports_a_really_full_disk_and_keeps_the_old_snapshot,
    ),
];

/// Runs each test, reporting like libtest; the process fails if any test did.
fn run_all(tests: &[(&str, fn())]) {
    let mut failed = 0;
    for (name, test) in tests {
        match std::panic::catch_unwind(test) {
            Ok(()) => println!("test {name} ... ok"),
            Err(_) => {
                println!("test {name} ... FAILED");
                failed += 1;
            }
        }
    }
    println!("{} passed, {failed} failed", tests.len() - failed);
    if failed > 0 {
        std::process::exit(101);
    }
}

fn main() {
    if std::env::var_os("SHOAL_IN_HOST").is_some() {
        run_all(&INNER);
    } else {
        run_all(&[(TEST, real_host_tests)]);
    }
}

fn real_host_tests() {
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
    std::fs::copy(&exe, bin.join("in_host")).unwrap_or_else(|e| cannot(e.to_string()));
    let took = cluster.up(1).unwrap_or_else(|e| cannot(e));
    eprintln!("test host booted in {:.2} s", took.as_secs_f64());
    let argv = ["/opt/bin/in_host"];
    let out = cluster
        .command(1, &[("SHOAL_IN_HOST", "1")], &argv)
        .unwrap_or_else(|e| cannot(e))
        .output()
        .expect("nsenter");
    eprintln!(
        "--- inside the host ---\n{}",
        // Indented, so the inner summary is not read as this binary's own.
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .chain(String::from_utf8_lossy(&out.stderr).lines())
            .map(|line| format!("  | {line}\n"))
            .collect::<String>()
    );
    drop(guard);
    assert!(out.status.success(), "a test failed inside the host");
    let all_ran = format!("{INNER_COUNT} passed");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&all_ran),
        "expected {all_ran}"
    );
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

fn wait_for(sd: &mut Systemctl, want: &[(&str, &str, &str)]) -> BTreeMap<String, Observed> {
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

fn assert_inside_a_host() {
    assert!(
        std::env::var_os("SHOAL_IN_HOST").is_some(),
        "this test changes systemd and mounts: it runs inside a test host, started by {TEST}"
    );
}

fn inside_host_systemctl_drives_a_real_systemd() {
    assert_inside_a_host();
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
    eprintln!("install 3 + states: {:?}", t0.elapsed());
    assert_eq!(
        sd.reloads(),
        0,
        "three new units: systemd loads their files on demand, no reload"
    );
    assert_eq!(
        states["sleeper.service"],
        Observed::new("loaded", "inactive", "dead")
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

    // A changed file of a unit systemd has loaded: the start must run the new
    // file (a reload first), not the one systemd loaded before.
    let reloads = sd.reloads();
    sd.install("sleeper.service", ONESHOT).unwrap();
    sd.start("sleeper.service").unwrap();
    wait_for(&mut sd, &[("sleeper.service", "active", "exited")]);
    assert_eq!(sd.reloads(), reloads + 1, "a changed file, one reload");
    sd.install("sleeper.service", SLEEPER).unwrap();
    sd.stop("sleeper.service").unwrap();
    wait_for(&mut sd, &[("sleeper.service", "inactive", "dead")]);

    // Removed and installed again before any reload, while systemd keeps
    // it loaded (active units are not garbage-collected) from shoal's own
    // file: that must not count as someone else's unit.
    sd.remove("oneshot.service").unwrap();
    sd.install("oneshot.service", ONESHOT).unwrap();

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
        Observed::new("loaded", "active", "running")
    );
    assert!(std::fs::read_dir("/run/systemd/system")
        .unwrap()
        .flatten()
        .all(|e| !e.file_name().to_string_lossy().contains("shoal")));
}

fn inside_host_store_reports_a_really_full_disk_and_keeps_the_old_snapshot() {
    use shoal::store::{read_snapshot, temp_path, write_snapshot, StoreErrorKind};
    assert_inside_a_host();
    let mnt = std::path::Path::new("/mnt/full");
    std::fs::create_dir_all(mnt).unwrap();
    let mount = |args: &[&str]| {
        let ok = std::process::Command::new(args[0])
            .args(&args[1..])
            .status()
            .unwrap();
        assert!(ok.success(), "{args:?}");
    };
    mount(&[
        "mount",
        "-t",
        "tmpfs",
        "-o",
        "size=64k",
        "shoal-full",
        "/mnt/full",
    ]);
    let p = mnt.join("state");
    write_snapshot(&p, b"old state").unwrap();
    let e = write_snapshot(&p, &vec![7u8; 1 << 20]).unwrap_err();
    eprintln!("full disk: {e}");
    assert!(matches!(e.kind, StoreErrorKind::DiskFull(_)), "{e:?}");
    assert_eq!(read_snapshot(&p).unwrap().unwrap(), b"old state");
    assert!(!temp_path(&p).exists());
    write_snapshot(&p, b"new state").unwrap();
    assert_eq!(read_snapshot(&p).unwrap().unwrap(), b"new state");
    mount(&["umount", "/mnt/full"]);
}
