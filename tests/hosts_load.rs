//! Membership that load cannot fool, on real hosts: 2,000 units started on five members while two of them run a CPU hog, with no member ever declared down.
//!
//! Boots five test hosts (own cluster name, taken down however the test
//! ends), starts an agent in each, puts a busy loop (`hog.service`, one
//! `sh` spinning) on hosts 4 and 5, then one `shoal start --no-block` of
//! 2,000 instances of a template from host 1. It requires, as a user
//! would see it:
//! - `list-units` shows all 2,000 active within [`ALL_ACTIVE`];
//! - no agent logged `member down` from the start of the run to its end
//!   (every member was alive the whole time: a false down is how a unit
//!   comes to run twice);
//! - each host's own systemd runs exactly what `list-units` says it runs,
//!   and no instance is active on two hosts, once things settle.
//!
//! `harness = false`; prints `N passed, M failed`. Skipped (loudly) with
//! `SHOAL_SKIP_HOSTS=1`, like the other real-host tests.
//!
//! Not yet part of the default `cargo test` run: it is issue 8's acceptance
//! test and does not pass yet (see the notes for the last figures).
//! Run it with `SHOAL_LOAD_TEST=1 cargo test --test hosts_load`; the default
//! run says loudly that it did not run. It joins the default run when it passes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use xtask::agents::{Shoal, Watchdog, UNIT_DIR};
use xtask::bench::scale;
use xtask::hosts::Cluster;

type Result<T> = std::result::Result<T, String>;

const HOSTS: u32 = 5;
const UNITS: u32 = 2_000;
/// Hosts that run a CPU hog during the run.
const HOGGED: [u32; 2] = [4, 5];
/// A bound for this shared 2-core machine (the goal on real hardware is 15 s).
const ALL_ACTIVE: Duration = Duration::from_secs(240);
/// How long the cluster may take to agree once all are active.
const SETTLE: Duration = Duration::from_secs(60);
const TEARDOWN_ENV: &str = "SHOAL_LOAD_TEARDOWN";

fn main() {
    if let Ok(name) = std::env::var(TEARDOWN_ENV) {
        teardown(&name);
        return;
    }
    if std::env::var("SHOAL_LOAD_TEST").as_deref() != Ok("1") {
        let _ = writeln!(
            std::io::stderr(),
            "\n!!!!! NOT RUN hosts_load: issue 8's load test does not pass yet; \
             run it with SHOAL_LOAD_TEST=1 !!!!!\n"
        );
        println!("0 passed, 0 failed (NOT RUN: SHOAL_LOAD_TEST=1 runs it)");
        return;
    }
    if std::env::var("SHOAL_SKIP_HOSTS").as_deref() == Ok("1") {
        let _ = writeln!(
            std::io::stderr(),
            "\n!!!!! SKIPPED hosts_load: SHOAL_SKIP_HOSTS=1, shoal under load NOT tested !!!!!\n"
        );
        println!("0 passed, 0 failed (SKIPPED)");
        return;
    }
    let name = format!("shoall{}", std::process::id() % 100_000);
    let t = Instant::now();
    eprintln!("hosts_load: about 3 minutes");
    let result = Cluster::new(&xtask::hosts::base_dir(), &name).and_then(|cluster| {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let exe = exe.to_string_lossy().into_owned();
        let watchdog = Watchdog::arm(&[&exe], &[(TEARDOWN_ENV, &name)])
            .map_err(|e| eprintln!("no Ctrl-C teardown: {e}"))
            .ok();
        let r = std::panic::catch_unwind(|| run(&cluster))
            .unwrap_or_else(|_| Err("panicked (see above)".into()));
        let t = Instant::now();
        teardown(&name);
        eprintln!("hosts down in {:.1} s", t.elapsed().as_secs_f64());
        if let Some(w) = watchdog {
            w.disarm();
        }
        r
    });
    let name = "two_thousand_units_on_five_hosts_two_hogged_and_no_member_down";
    let secs = t.elapsed().as_secs_f64();
    match result {
        Ok(()) => println!("test {name} ... ok ({secs:.1} s)\n1 passed, 0 failed"),
        Err(e) => {
            println!("test {name} ... FAILED ({secs:.1} s)\n{e}\n0 passed, 1 failed");
            std::process::exit(101);
        }
    }
}

fn run(cluster: &Cluster) -> Result<()> {
    cluster.prepare().map_err(|e| {
        format!("cannot make the test hosts: {e}\n(set SHOAL_SKIP_HOSTS=1 to skip on purpose)")
    })?;
    Shoal::new(cluster.clone(), HOSTS).install_binary()?;
    let s = scale::boot(cluster, HOSTS, |i| format!("host=h{i},disk=ssd"))?;
    let template = "[Unit]\nDescription=load %i\n\n[X-Fleet]\nMachineMetadata=disk=ssd\n\n\
                    [Service]\nExecStart=/bin/sleep infinity\n";
    s.put(1, &format!("{UNIT_DIR}/load@.service"), template, 0o644)?;
    for i in HOGGED {
        cluster.exec(
            i,
            &[
                "systemd-run",
                "--unit=hog",
                "sh",
                "-c",
                "while :; do :; done",
            ],
        )?;
    }
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u128);
    let t0 = Instant::now();
    let paths: Vec<String> = (1..=UNITS)
        .map(|i| format!("{UNIT_DIR}/load@{i}.service"))
        .collect();
    let mut args = vec!["start", "--no-block"];
    args.extend(paths.iter().map(String::as_str));
    s.client_ok(1, &args)?;
    println!("submitted in {:.1} s", t0.elapsed().as_secs_f64());
    let active = |s: &Shoal| -> Result<BTreeMap<String, u32>> {
        Ok(s.list_units(1)?
            .into_iter()
            .filter(|r| r.unit.starts_with("load@") && r.active == "active")
            .filter_map(|r| Some((r.unit, r.host?)))
            .collect())
    };
    let mut listed = BTreeMap::new();
    while t0.elapsed() < ALL_ACTIVE && listed.len() < UNITS as usize {
        std::thread::sleep(Duration::from_secs(1));
        listed = active(&s)?;
    }
    let took = t0.elapsed().as_secs_f64();
    println!(
        "{} of {UNITS} listed active after {took:.1} s",
        listed.len()
    );
    let downs = member_downs(&s, since);
    if listed.len() < UNITS as usize {
        return Err(format!(
            "only {} of {UNITS} units active after {} s; member down lines: {downs:?}\n{}",
            listed.len(),
            ALL_ACTIVE.as_secs(),
            stalls(&s, since)
        ));
    }
    let settled = settle(&s, &active).map_err(|e| format!("{e}\n{}", stalls(&s, since)))?;
    let downs = member_downs(&s, since);
    if !downs.is_empty() {
        return Err(format!(
            "members were declared down under load: {downs:?}\n{}",
            stalls(&s, since)
        ));
    }
    println!("systemd agrees with list-units on every host after {settled:.1} s more");
    Ok(())
}

/// Waits until every host's systemd runs exactly what `list-units` places
/// there; the seconds it took, or what still differs.
fn settle(s: &Shoal, active: &dyn Fn(&Shoal) -> Result<BTreeMap<String, u32>>) -> Result<f64> {
    let t = Instant::now();
    loop {
        let listed = active(s)?;
        let mut by_host: BTreeMap<u32, BTreeSet<String>> = BTreeMap::new();
        let mut twice = BTreeSet::new();
        let mut seen = BTreeSet::new();
        for i in 1..=HOSTS {
            let out = s.cluster.exec(
                i,
                &[
                    "systemctl",
                    "list-units",
                    "load@*",
                    "--state=active",
                    "--no-legend",
                    "--plain",
                ],
            )?;
            for unit in out.lines().filter_map(|l| l.split_whitespace().next()) {
                if !seen.insert(unit.to_string()) {
                    twice.insert(unit.to_string());
                }
                by_host.entry(i).or_default().insert(unit.to_string());
            }
        }
        let wrong: Vec<&String> = listed
            .iter()
            .filter(|(u, m)| !by_host.get(*m).is_some_and(|set| set.contains(*u)))
            .map(|(u, _)| u)
            .collect();
        if twice.is_empty() && wrong.is_empty() && seen.len() == UNITS as usize {
            return Ok(t.elapsed().as_secs_f64());
        }
        if t.elapsed() >= SETTLE {
            return Err(format!(
                "after {} s: {} units active on two hosts (e.g. {:?}), {} not where list-units \
                 says (e.g. {:?}), {} active in all",
                SETTLE.as_secs(),
                twice.len(),
                twice.iter().take(3).collect::<Vec<_>>(),
                wrong.len(),
                wrong.iter().take(3).collect::<Vec<_>>(),
                seen.len()
            ));
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// Per host, how many `member down` lines its agent logged since `since`
/// (epoch s); hosts with none are left out.
fn member_downs(s: &Shoal, since: u128) -> BTreeMap<u32, usize> {
    (1..=HOSTS)
        .filter_map(|i| {
            let n = scale::member_down(s, i, since).map_or(usize::MAX, |v| v.len());
            (n > 0).then_some((i, n))
        })
        .collect()
}

/// Per host, the agent's warnings about a busy event loop since `since`
/// (epoch s): how many, and the last few (what a failure is read with).
fn stalls(s: &Shoal, since: u128) -> String {
    let script = "journalctl -u shoal.service --since \"@$1\" --no-pager -o cat \
                  | grep -e 'event loop busy' -e 'member down' | tail -n 6";
    (1..=HOSTS)
        .map(|i| {
            let out = s
                .cluster
                .exec(i, &["sh", "-c", script, "sh", &since.to_string()])
                .unwrap_or_else(|e| e);
            format!("--- h{i}:\n{out}")
        })
        .collect()
}

fn teardown(name: &str) {
    xtask::hosts::teardown(name);
}
