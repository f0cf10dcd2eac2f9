//! `cargo xtask bench --scale`: one `shoal start --no-block` of N template instances on real hosts, timed to all active, with the agents' cost during and after.
//!
//! As a user would: `scale@.service` (`MachineMetadata=disk=ssd`, every host
//! has `disk=ssd`) sits in `/root/units` of host 1, and one client call
//! there names `scale@1.service ... scale@N.service`; the client makes each
//! instance from the template. Each unit's main process first writes
//! `date +%s%N` to a stamp file under [`STAMP_DIR`], which the bench counts
//! from outside the host every 500 ms (the hosts share this kernel's
//! clock, so stamps and the bench's own clock compare directly);
//! Each start appends a line, so a unit that moves or runs twice shows
//! in several hosts' files. `list-units` is asked every 2 s, every 500 ms once all units have
//! stamped, and the run ends when it shows all N active or at the cap.

use super::probe::{self, Host};
use super::stats;
use super::watch::{self, Seen, Watch, SAMPLE, STAMP_DIR};
use crate::agents::{Shoal, UNIT_DIR};
use crate::hosts::{Cluster, Result};
use std::fs;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How often `list-units` is asked while units are still starting.
const LIST_EVERY: Duration = Duration::from_secs(2);
/// How long the members may take to see each other after boot.
const JOIN_TIMEOUT: Duration = Duration::from_secs(120);
/// `list-units` calls timed after the run (median reported).
const LIST_TIMINGS: usize = 3;

/// What one run of N units gave.
#[derive(Clone, Debug, Default)]
pub struct ScaleRun {
    pub units: u32,
    /// When the client was invoked, ns since the epoch.
    pub t0_ns: u128,
    /// The `shoal start --no-block` client's wall time (nsenter included).
    pub submit_s: f64,
    /// `shoal version` through nsenter: the spawn overhead in `submit_s`.
    pub spawn_ms: f64,
    /// The units' starts, from their stamp files (s after the client was
    /// invoked), read after the idle window.
    pub starts: stats::Starts,
    /// Per host, `scale@` units systemd has active at the end of the run.
    pub systemd_active: Vec<usize>,
    /// Instances systemd has active in more than one host at the end.
    pub active_twice: usize,
    /// Per host, the `scale@` units systemd has active at the end.
    pub systemd_active_names: Vec<std::collections::BTreeSet<String>>,
    /// Units systemd has active on a host where they never wrote a stamp.
    pub active_unstamped: usize,
    /// Instances started somewhere when the watch ended (all active, or the cap).
    pub started_at_end: usize,
    /// When `member down` lines were logged (any host), s after invocation.
    pub member_down_s: Vec<f64>,
    /// When `list-units` (polled) first showed all N active, s after invocation.
    pub listed_s: Option<f64>,
    /// Active rows in the last `list-units` of the run.
    pub listed_active: usize,
    /// The cap, when the run hit it.
    pub capped: Option<u64>,
    /// Per host: agent CPU % of one core during the run, and PID 1's CPU s.
    pub run_cpu_pct: Vec<f64>,
    pub pid1_cpu_s: Vec<f64>,
    pub seen: Seen,
    /// Per host, after the run: agent CPU % over the idle window, VmRSS.
    pub idle_cpu_pct: Vec<f64>,
    pub rss_kib: Vec<f64>,
    pub snapshot_bytes: Vec<f64>,
    pub member_down: Vec<Option<u64>>,
    pub restarts: Vec<u64>,
    pub list_ms: f64,
}

impl ScaleRun {
    /// How many hosts the run watched.
    pub fn hosts_watched(&self) -> usize {
        self.seen.systemctl_max.len()
    }

    /// Seconds until every unit had started somewhere, when all did.
    pub fn stamped_all_s(&self) -> Option<f64> {
        let first = &self.starts.first_s;
        (first.len() >= self.units as usize).then(|| first.iter().copied().fold(0.0, f64::max))
    }
}

/// Boots hosts 1..=n of `cluster` with `metadata(i)`, starts an agent in
/// each, and waits until all see each other.
pub fn boot(cluster: &Cluster, n: u32, metadata: impl Fn(u32) -> String) -> Result<Shoal> {
    let s = Shoal::new(cluster.clone(), n);
    let key = s.keygen()?;
    let took = cluster.up(n)?;
    println!("{n} hosts booted in {:.1} s", took.as_secs_f64());
    for i in 1..=n {
        s.configure(i, &metadata(i), &key)?;
    }
    for i in 1..=n {
        s.start_agent(i)?;
    }
    let all: Vec<u32> = (1..=n).collect();
    let took = s.wait_members(&all, JOIN_TIMEOUT)?;
    println!(
        "{n} members see each other after {:.1} s",
        took.as_secs_f64()
    );
    Ok(s)
}

/// Every host's view from outside; an error if one is not running.
pub fn hosts(s: &Shoal) -> Result<Vec<Host>> {
    (1..=s.n)
        .map(|i| Host::find(s, i).ok_or_else(|| format!("h{i} is not running")))
        .collect()
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// The template every instance is made from.
pub fn template() -> String {
    format!(
        "[Unit]\nDescription=shoal scale bench %i\n\n[X-Fleet]\nMachineMetadata=disk=ssd\n\n\
         [Service]\nExecStart=/bin/sh -c 'date +%%s%%N >> {STAMP_DIR}/%i && exec sleep infinity'\n"
    )
}

/// One run of `n` units on hosts 1..=`hosts` (booted here, from scratch).
pub fn run(cluster: &Cluster, hosts: u32, n: u32, cap: Duration, window: u64) -> Result<ScaleRun> {
    println!(
        "\n== {n} units on {hosts} hosts (load {})",
        probe::loadavg()
    );
    let s = boot(cluster, hosts, |i| format!("host=h{i},disk=ssd"))?;
    s.put(1, &format!("{UNIT_DIR}/scale@.service"), &template(), 0o644)?;
    let view = self::hosts(&s)?;
    for h in &view {
        let d = watch::stamp_dir(h);
        fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let mut r = ScaleRun {
        units: n,
        ..ScaleRun::default()
    };
    let spawn: Vec<f64> = (0..3)
        .map(|_| {
            let t = Instant::now();
            s.client_ok(1, &["version"])
                .map(|_| t.elapsed().as_secs_f64() * 1e3)
        })
        .collect::<Result<_>>()?;
    r.spawn_ms = super::median(&spawn);
    let clk = probe::clk_tck();
    let before: Vec<(Option<u64>, Option<u64>)> = view
        .iter()
        .map(|h| (h.agent_ticks(), h.pid1_ticks()))
        .collect();
    let elapsed = submit_and_watch(&s, &view, &mut r, cap, clk)?;
    for (h, (a, p)) in view.iter().zip(before) {
        let (a2, p2) = (h.agent_ticks(), h.pid1_ticks());
        let d = |x: Option<u64>, y: Option<u64>| x.zip(y).map_or(0, |(x, y)| x.saturating_sub(y));
        r.run_cpu_pct.push(watch::pct(d(a2, a), elapsed, clk));
        r.pid1_cpu_s.push(d(p2, p) as f64 / clk);
    }
    after(&s, &mut r, window, clk)?;
    Ok(r)
}

/// Spawns the client and watches until all active or `cap`; returns the
/// run's length in seconds.
fn submit_and_watch(
    s: &Shoal,
    view: &[Host],
    r: &mut ScaleRun,
    cap: Duration,
    clk: f64,
) -> Result<f64> {
    let n = r.units;
    let t0_ns = now_ns();
    r.t0_ns = t0_ns;
    let t0 = Instant::now();
    let (mut child, out_path) = spawn_client(s, n)?;
    let mut w = Watch::new(view, t0, clk);
    let mut submitted = false;
    let mut next_list = t0;
    let mut listed = None;
    let mut stamped = 0;
    // Bounded: one turn per SAMPLE (plus at most one list-units) until the cap.
    while t0.elapsed() < cap {
        let was = stamped;
        stamped = w.sample();
        if stamped >= n as usize && was < n as usize {
            next_list = Instant::now();
        }
        if !submitted {
            if let Some(status) = wait_child(&mut child, SAMPLE)? {
                r.submit_s = t0.elapsed().as_secs_f64();
                submitted = true;
                let out = fs::read_to_string(&out_path).unwrap_or_default();
                println!("  submitted in {:.2} s ({status})", r.submit_s);
                if !status.success() {
                    return Err(format!("shoal start --no-block failed ({status}): {out}"));
                }
            }
        }
        if submitted && Instant::now() >= next_list {
            let l = count_active(s)?;
            listed = Some(l);
            if l >= n as usize {
                r.listed_s = Some(t0.elapsed().as_secs_f64());
                break;
            }
            let pace = if stamped >= n as usize {
                SAMPLE
            } else {
                LIST_EVERY
            };
            next_list = Instant::now() + pace;
        }
        w.progress(stamped, listed, n);
        if submitted {
            std::thread::sleep(SAMPLE);
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    if !submitted {
        // Our own child, by its pid; the hosts are taken down next anyway.
        let _ = child.kill();
        let _ = child.wait();
        r.submit_s = elapsed;
    }
    if r.listed_s.is_none() {
        r.capped = Some(cap.as_secs());
        println!(
            "  not reached in {} s: {} of {n} listed active, {stamped} stamped",
            cap.as_secs(),
            listed.unwrap_or(0)
        );
    }
    r.listed_active = listed.unwrap_or(0);
    r.seen = w.seen();
    r.started_at_end = stamped;
    Ok(elapsed)
}

/// Starts `shoal start --no-block UNIT_DIR/scale@1.service ...` in host 1,
/// its output to a file (a pipe could fill up while nobody reads it).
fn spawn_client(s: &Shoal, n: u32) -> Result<(Child, std::path::PathBuf)> {
    let paths: Vec<String> = (1..=n)
        .map(|i| format!("{UNIT_DIR}/scale@{i}.service"))
        .collect();
    let mut argv = vec!["/opt/bin/shoal", "start", "--no-block"];
    argv.extend(paths.iter().map(String::as_str));
    let out_path = std::env::temp_dir().join(format!("shoal-scale-{}.out", std::process::id()));
    let out = fs::File::create(&out_path).map_err(|e| format!("{}: {e}", out_path.display()))?;
    let err = out.try_clone().map_err(|e| format!("{e}"))?;
    let mut c: Command = s.cluster.command(1, &[], &argv)?;
    c.stdin(Stdio::null()).stdout(out).stderr(err);
    let child = c.spawn().map_err(|e| format!("nsenter: {e}"))?;
    Ok((child, out_path))
}

/// Waits up to `limit` for `child` to end, looking every 10 ms (so the
/// client's run time is known to 10 ms, not to one sample).
fn wait_child(child: &mut Child, limit: Duration) -> Result<Option<std::process::ExitStatus>> {
    let t = Instant::now();
    loop {
        if let Some(status) = child.try_wait().map_err(|e| format!("client: {e}"))? {
            return Ok(Some(status));
        }
        if t.elapsed() >= limit {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `list-units` in host 1: how many `scale@` rows are active.
fn count_active(s: &Shoal) -> Result<usize> {
    let rows = s.list_units(1)?;
    Ok(rows
        .iter()
        .filter(|r| r.unit.starts_with("scale@") && r.active == "active")
        .count())
}

/// Reads every host's stamp files into `r.starts`.
/// Also compares each host's stamps with what systemd has active there:
/// `systemd_active_names` must have been filled first.
fn collect_stamps(view: &[Host], r: &mut ScaleRun) {
    let mut files = Vec::new();
    for (k, h) in view.iter().enumerate() {
        let active = r.systemd_active_names.get(k).cloned().unwrap_or_default();
        let mut stamped = std::collections::BTreeSet::new();
        for (name, text) in probe::read_files(&watch::stamp_dir(h)) {
            stamped.insert(format!("scale@{name}.service"));
            files.push((h.i, name, stats::stamp_lines(&text)));
        }
        r.active_unstamped += active.difference(&stamped).count();
    }
    r.starts = stats::starts(&files, r.t0_ns);
}

/// After the run: idle CPU over `window` s, memory, snapshot size, then
/// what the hosts themselves say ([`ask_hosts`]).
fn after(s: &Shoal, r: &mut ScaleRun, window: u64, clk: f64) -> Result<()> {
    let mut view = hosts(s)?;
    for h in &mut view {
        h.refind_agent();
    }
    let before: Vec<Option<u64>> = view.iter().map(Host::agent_ticks).collect();
    let side: Vec<(Option<u64>, Option<u64>)> = view.iter().map(side_ticks).collect();
    std::thread::sleep(Duration::from_secs(window));
    for (h, (k, p)) in view.iter().zip(side) {
        // What the agent's polling costs outside it: its `systemctl` children
        // (counted once waited for) and the host's systemd.
        let (k2, p2) = side_ticks(h);
        let d = |x: Option<u64>, y: Option<u64>| x.zip(y).map(|(x, y)| x.saturating_sub(y));
        let pct = |t: Option<u64>| t.map_or(f64::NAN, |t| watch::pct(t, window as f64, clk));
        println!(
            "  h{} idle: systemctl children {:.2} %, PID 1 {:.2} % of one core",
            h.i,
            pct(d(k2, k)),
            pct(d(p2, p))
        );
    }
    for (h, b) in view.iter().zip(before) {
        let d = h.agent_ticks().zip(b).map(|(a, b)| a.saturating_sub(b));
        r.idle_cpu_pct
            .push(d.map_or(f64::NAN, |d| watch::pct(d, window as f64, clk)));
        r.rss_kib
            .push(h.agent_rss_kib().map_or(f64::NAN, |k| k as f64));
        r.snapshot_bytes
            .push(h.snapshot_id().map_or(f64::NAN, |(_, _, len)| len as f64));
    }
    ask_hosts(s, r)?;
    collect_stamps(&view, r);
    Ok(())
}

/// The CPU ticks of the agent's waited-for children (cutime + cstime) and of
/// the host's PID 1.
fn side_ticks(h: &Host) -> (Option<u64>, Option<u64>) {
    let children = h.agent.and_then(|pid| {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let (_, rest) = stat.rsplit_once(')')?;
        let mut f = rest.split_whitespace().skip(13);
        let cutime: u64 = f.next()?.parse().ok()?;
        let cstime: u64 = f.next()?.parse().ok()?;
        Some(cutime + cstime)
    });
    (children, h.pid1_ticks())
}

/// `list-units` time, and per host: `member down` lines since the run
/// began, agent restarts, and the `scale@` units systemd has active.
fn ask_hosts(s: &Shoal, r: &mut ScaleRun) -> Result<()> {
    let mut list = Vec::new();
    for _ in 0..LIST_TIMINGS {
        let t = Instant::now();
        s.client_ok(1, &["list-units", "--no-legend"])?;
        list.push(t.elapsed().as_secs_f64() * 1e3);
    }
    r.list_ms = super::median(&list);
    let since_s = r.t0_ns / 1_000_000_000;
    let mut active: std::collections::BTreeMap<String, usize> = Default::default();
    for i in 1..=s.n {
        let down = member_down(s, i, since_s);
        r.member_down.push(down.as_ref().map(|v| v.len() as u64));
        let t0 = r.t0_ns as f64 / 1e9;
        r.member_down_s
            .extend(down.unwrap_or_default().iter().map(|t| t - t0));
        let restarts = s
            .cluster
            .exec(
                i,
                &["systemctl", "show", "-p", "NRestarts", "--value", "shoal"],
            )
            .ok()
            .and_then(|t| stats::count(&t))
            .unwrap_or(0);
        r.restarts.push(restarts);
        let units = s.cluster.exec(
            i,
            &[
                "systemctl",
                "list-units",
                "scale@*",
                "--state=active",
                "--no-legend",
                "--plain",
            ],
        )?;
        let names: Vec<&str> = units
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        r.systemd_active.push(names.len());
        for n in &names {
            *active.entry(n.to_string()).or_default() += 1;
        }
        r.systemd_active_names
            .push(names.iter().map(|n| n.to_string()).collect());
    }
    r.active_twice = active.values().filter(|&&c| c > 1).count();
    r.member_down_s.sort_by(f64::total_cmp);
    Ok(())
}

/// The times (epoch s) of the `member down` lines the agent in host `i`
/// logged since `since_s` (epoch s); `None` when the journal cannot be read.
pub fn member_down(s: &Shoal, i: u32, since_s: u128) -> Option<Vec<f64>> {
    let script = "journalctl -u shoal.service --since \"@$1\" --no-pager -o short-unix \
                  | grep 'member down' || true";
    s.cluster
        .exec(i, &["sh", "-c", script, "sh", &since_s.to_string()])
        .ok()
        .map(|t| stats::journal_times(&t))
}
