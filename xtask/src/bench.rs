//! `cargo xtask bench`: the placement micro-benchmark, then start latency, failover time, binary size and idle cost measured on real hosts; `--scale` and `--idle` (in `bench/`) measure many units and idle members.
//!
//! Host timings use one clock: the test hosts share this machine's kernel,
//! so `CLOCK_REALTIME` read here just before the client is invoked (or the
//! member is killed) and `date +%s%N` read inside the member that runs the
//! unit are directly comparable. The measured units record `date +%s%N` as
//! the first thing their main process does (systemd counts a simple
//! service active once it has forked it, so this is at or just after
//! "active"), into a file under `/var/tmp` that the bench reads from outside
//! through the host's root directory every 2 ms. An earlier version polled
//! `systemctl is-active` in every host every 5 ms: on this 2-core machine
//! nine such loops saturated the CPU and slowed the very agents measured.

mod idle;
mod probe;
mod report;
pub mod scale;
mod stats;
mod suite;
mod watch;

use crate::agents::{self, Shoal, Watchdog};
use crate::hosts::{Cluster, Result};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const USAGE: &str =
    "usage: cargo xtask bench [--quick] [--hosts N[,N...]] [--runs R] [--no-placement]
  --quick         3 runs, 3 hosts only, a 3 s idle window, the placement bench's quick mode
  --hosts 3,10    cluster sizes for the host measurements (default 3,10)
  --runs 7        runs per measurement; medians are reported (default 7)
  --no-placement  skip `cargo bench --bench placement`
  --scale, --idle many units / idle members on real hosts (see cargo xtask bench --scale --help)
env: SHOAL_HOSTS_DIR; the hosts are the cluster `shoalbench` (taken down at the end)";

const GOAL_START_MS: f64 = 250.0;
const GOAL_FAILOVER_MS: f64 = 2000.0;
const GOAL_BINARY: u64 = 1024 * 1024;
const GOAL_RSS_KIB: u64 = 2048;
/// The longest one measured event may take before the run is a failure.
const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

struct Options {
    quick: bool,
    hosts: Vec<u32>,
    runs: usize,
    placement: bool,
}

fn options(args: &[String]) -> Result<Options> {
    let mut o = Options {
        quick: false,
        hosts: vec![3, 10],
        runs: 7,
        placement: true,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => {
                o.quick = true;
                o.hosts = vec![3];
                o.runs = 3;
            }
            "--hosts" => {
                let v = it.next().ok_or(USAGE)?;
                o.hosts = v
                    .split(',')
                    .map(|n| n.parse().ok().filter(|n| (2..=50).contains(n)))
                    .collect::<Option<Vec<u32>>>()
                    .ok_or("--hosts: sizes of 2..=50, comma separated")?;
            }
            "--runs" => {
                o.runs = it
                    .next()
                    .and_then(|r| r.parse().ok())
                    .filter(|r| (1..=101).contains(r))
                    .ok_or("--runs: 1..=101")?;
            }
            "--no-placement" => o.placement = false,
            _ => return Err(USAGE.into()),
        }
    }
    Ok(o)
}

/// What one cluster size gave.
struct Figures {
    hosts: u32,
    start_ms: Vec<f64>,
    client_ms: Vec<f64>,
    failover_ms: Vec<f64>,
    /// `shoal version` through nsenter: the part of a client call that is
    /// process spawning and namespace entry, not shoal.
    spawn_ms: Vec<f64>,
    idle: Option<(u64, f64)>,
}

pub fn main(args: &[String]) -> Result<()> {
    if args.iter().any(|a| a == "--scale" || a == "--idle") {
        return suite::main(args);
    }
    let o = options(args)?;
    let rerun = format!("cargo xtask bench {}", args.join(" "))
        .trim_end()
        .to_string();
    if o.placement {
        placement(o.quick)?;
    }
    let cluster = Cluster::new(&crate::hosts::base_dir(), "shoalbench")?;
    // Ctrl-C in the middle of a run must not leave ten hosts behind.
    let exe = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
    let watchdog = Watchdog::arm(
        &[&exe.to_string_lossy(), "hosts", "down"],
        &[("SHOAL_HOSTS_CLUSTER", cluster.name())],
    )?;
    let shoal = Shoal::new(cluster.clone(), 1);
    let bin = shoal.install_binary()?;
    let size = std::fs::metadata(&bin)
        .map_err(|e| format!("{}: {e}", bin.display()))?
        .len();
    let mut all = Vec::new();
    for &n in &o.hosts {
        // A cluster of each size from scratch, taken down even on error.
        let _ = cluster.down();
        let r = measure(&cluster, n, &o);
        let down = cluster.down();
        all.push(r?);
        down?;
    }
    watchdog.disarm();
    println!("\n== shoal on real hosts ({rerun})");
    println!(
        "binary (static musl, release): {size} bytes = {:.0} KiB   goal < 1 MiB: {}",
        size as f64 / 1024.0,
        verdict(size < GOAL_BINARY)
    );
    for f in &all {
        let (s, c, fo) = (
            median(&f.start_ms),
            median(&f.client_ms),
            median(&f.failover_ms),
        );
        println!(
            "{} hosts: start -> active median {s:.0} ms (runs {})   goal < {GOAL_START_MS:.0} ms: {}",
            f.hosts,
            list(&f.start_ms),
            verdict(s < GOAL_START_MS)
        );
        println!(
            "{} hosts: `shoal start` client returned median {c:.0} ms (runs {}); of which \
             spawning a command in a host (`shoal version` via nsenter) median {:.0} ms",
            f.hosts,
            list(&f.client_ms),
            median(&f.spawn_ms)
        );
        println!(
            "{} hosts: member killed -> unit active elsewhere median {fo:.0} ms (runs {})   goal < {GOAL_FAILOVER_MS:.0} ms: {}",
            f.hosts,
            list(&f.failover_ms),
            verdict(fo < GOAL_FAILOVER_MS)
        );
        if let Some((rss, cpu)) = f.idle {
            println!(
                "{} hosts: idle agent RSS {rss} KiB   goal < {GOAL_RSS_KIB} KiB: {}; CPU {cpu:.2}% of one core",
                f.hosts,
                verdict(rss < GOAL_RSS_KIB)
            );
        }
    }
    println!("rerun: {rerun}");
    Ok(())
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

fn list(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.0}"))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

/// `cargo bench --bench placement`, its output passed through.
fn placement(quick: bool) -> Result<()> {
    println!("== placement micro-benchmark (cargo bench --bench placement)");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut c = Command::new(cargo);
    c.current_dir(agents::workspace_root())
        .args(["bench", "--bench", "placement"]);
    if quick {
        c.args(["--", "--quick"]);
    }
    let status = c.status().map_err(|e| format!("cargo bench: {e}"))?;
    if !status.success() {
        return Err(format!("cargo bench --bench placement failed ({status})"));
    }
    Ok(())
}

/// Host 1 runs the client and no measured unit (`role=client`); the
/// others are `role=worker`, where the measured units run.
fn metadata(i: u32) -> String {
    let role = if i == 1 { "client" } else { "worker" };
    format!("host=h{i},role={role}")
}

fn measure(cluster: &Cluster, n: u32, o: &Options) -> Result<Figures> {
    println!("\n== {n} hosts");
    let s = Shoal::new(cluster.clone(), n);
    let key = s.keygen()?;
    let took = cluster.up(n)?;
    println!("{n} hosts booted in {:.2} s", took.as_secs_f64());
    for i in 1..=n {
        s.configure(i, &metadata(i), &key)?;
    }
    for i in 1..=n {
        s.start_agent(i)?;
    }
    let all: Vec<u32> = (1..=n).collect();
    s.wait_members(&all, Duration::from_secs(60))?;
    let mut f = Figures {
        hosts: n,
        start_ms: Vec::new(),
        client_ms: Vec::new(),
        failover_ms: Vec::new(),
        spawn_ms: Vec::new(),
        idle: None,
    };
    for _ in 0..o.runs {
        let t0 = now_ns();
        s.client_ok(1, &["version"])?;
        f.spawn_ms.push(ms(now_ns(), t0));
    }
    // Idle first, before any unit ran: the agent with membership only.
    let window = if o.quick { 3 } else { 10 };
    f.idle = Some(idle(&s, window)?);
    for r in 0..o.runs {
        let target = 2 + (r as u32) % (n - 1);
        let (total, client) = start_latency(&s, r, target)?;
        println!("start run {r}: h{target} active after {total:.0} ms (client {client:.0} ms)");
        f.start_ms.push(total);
        f.client_ms.push(client);
    }
    for r in 0..o.runs {
        let ms = failover(&s, r)?;
        println!("failover run {r}: {ms:.0} ms");
        f.failover_ms.push(ms);
    }
    Ok(f)
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Where a measured unit records when it started, inside its host.
fn stamp_path(unit: &str) -> String {
    format!("/var/tmp/shoal-bench-{unit}")
}

/// Forgets any earlier stamp of `unit` in the hosts `among`.
fn clear_stamps(s: &Shoal, among: &[u32], unit: &str) {
    for &i in among {
        let p = s
            .cluster
            .machine(i)
            .root()
            .join(stamp_path(unit).trim_start_matches('/'));
        let _ = std::fs::remove_file(p);
    }
}

/// Waits (polling every 2 ms, at most [`EVENT_TIMEOUT`]) until one of the hosts
/// `among` has a start stamp for `unit`: (host, ns since the epoch).
fn wait_stamp(s: &Shoal, among: &[u32], unit: &str) -> Option<(u32, u128)> {
    let paths: Vec<(u32, std::path::PathBuf)> = among
        .iter()
        .map(|&i| {
            (
                i,
                s.cluster
                    .machine(i)
                    .root()
                    .join(stamp_path(unit).trim_start_matches('/')),
            )
        })
        .collect();
    let deadline = std::time::Instant::now() + EVENT_TIMEOUT;
    while std::time::Instant::now() < deadline {
        for (i, p) in &paths {
            if let Ok(text) = std::fs::read_to_string(p) {
                if let Ok(t) = text.trim().parse() {
                    return Some((*i, t));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    None
}

fn unit_text(host: &str) -> String {
    format!(
        "[Unit]\nDescription=shoal bench\n\n[X-Fleet]\nMachineMetadata={host}\n\n[Service]\n\
         ExecStart=/bin/sh -c 'date +%%s%%N > {}.tmp && mv {}.tmp {} && exec sleep infinity'\n",
        stamp_path("%n"),
        stamp_path("%n"),
        stamp_path("%n")
    )
}

/// One `shoal start` of a unit pinned to `target`: (client invoked ->
/// active in target, client invoked -> client returned), in ms.
fn start_latency(s: &Shoal, r: usize, target: u32) -> Result<(f64, f64)> {
    let unit = format!("bench-start-{r}.service");
    let path = format!("{}/{unit}", agents::UNIT_DIR);
    s.put(1, &path, &unit_text(&format!("host=h{target}")), 0o644)?;
    clear_stamps(s, &[target], &unit);
    let t0 = now_ns();
    let out = s.client(1, &["start", &path]);
    let t_client = now_ns();
    let t_active = wait_stamp(s, &[target], &unit).map(|(_, t)| t);
    let out = out?;
    if !out.status.success() {
        return Err(format!(
            "shoal start {path}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let t_active = t_active.ok_or_else(|| format!("{unit} never active in h{target}"))?;
    s.client_ok(1, &["destroy", &unit])?;
    Ok((ms(t_active, t0), ms(t_client, t0)))
}

fn ms(later: u128, earlier: u128) -> f64 {
    later.saturating_sub(earlier) as f64 / 1e6
}

/// Starts a worker unit, kills the member that runs it, and times until
/// another member runs it; then brings the member back.
fn failover(s: &Shoal, r: usize) -> Result<f64> {
    let unit = format!("bench-failover-{r}.service");
    let path = format!("{}/{unit}", agents::UNIT_DIR);
    s.put(1, &path, &unit_text("role=worker"), 0o644)?;
    s.client_ok(1, &["start", &path])?;
    let mut victim = None;
    agents::wait(EVENT_TIMEOUT, || {
        victim = s
            .list_units(1)
            .ok()
            .and_then(|rows| {
                rows.into_iter()
                    .find(|x| x.unit == unit && x.active == "active")
            })
            .and_then(|row| row.host);
        victim.is_some()
    })
    .map_err(|t| format!("{unit} not active after {t:?}"))?;
    let victim = victim.unwrap_or(0);
    let others: Vec<u32> = (2..=s.n).filter(|&i| i != victim).collect();
    clear_stamps(s, &others, &unit);
    let t0 = now_ns();
    s.cluster.kill(victim)?;
    let (_, t) = wait_stamp(s, &others, &unit).ok_or_else(|| {
        format!("{unit} not active on any other member after h{victim} was killed")
    })?;
    s.cluster.start(victim)?;
    let all: Vec<u32> = (1..=s.n).collect();
    s.wait_members(&all, Duration::from_secs(60))?;
    s.client_ok(1, &["destroy", &unit])?;
    Ok(ms(t, t0))
}

/// Idle agent in host 1 over `secs` seconds: (VmRSS KiB, CPU % of one core).
fn idle(s: &Shoal, secs: u32) -> Result<(u64, f64)> {
    let script = r#"pid=$(systemctl show -p MainPID --value shoal.service)
[ "$pid" -gt 0 ] || exit 1
t() { set -- $(cut -d' ' -f14,15 /proc/$pid/stat); echo $(($1 + $2)); }
a=$(t); sleep "$1"; b=$(t)
echo "$(awk '/^VmRSS/ {print $2}' /proc/$pid/status) $((b - a)) $(getconf CLK_TCK)""#;
    let out = s
        .cluster
        .exec(1, &["sh", "-c", script, "sh", &secs.to_string()])?;
    let v: Vec<f64> = out
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() != 3 || v[2] <= 0.0 {
        return Err(format!("idle measurement: unexpected {out:?}"));
    }
    let cpu = v[1] / v[2] / f64::from(secs) * 100.0;
    println!(
        "idle agent in h1 over {secs} s: VmRSS {} KiB, {} ticks of CPU ({cpu:.2}%)",
        v[0], v[1]
    );
    Ok((v[0] as u64, cpu))
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_odd_and_even_runs() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}
