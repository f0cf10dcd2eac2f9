//! The scale and idle figures as markdown tables: medians over runs, each unit count against the first (100-unit) size of the same command.

use super::idle::{IdleFigures, IdleMember};
use super::median;
use super::scale::ScaleRun;
use super::stats::{med_max, median_some, quantile, ratio};

/// Goals from issue 8, printed beside the figures.
const GOAL_IDLE_TX_BPS: f64 = 600.0;
const GOAL_IDLE_CPU_PCT: f64 = 1.0;

/// Median over runs of one per-run figure.
fn over_runs(runs: &[&ScaleRun], f: impl Fn(&ScaleRun) -> Option<f64>) -> Option<f64> {
    median_some(&runs.iter().map(|r| f(r)).collect::<Vec<_>>())
}

/// A per-host figure: median over runs of each run's median across hosts,
/// and the largest single host seen in any run.
fn hosts_fig(runs: &[&ScaleRun], f: impl Fn(&ScaleRun) -> &Vec<f64>, digits: usize) -> String {
    let meds: Vec<f64> = runs.iter().map(|r| median(f(r))).collect();
    let max = runs
        .iter()
        .flat_map(|r| f(r).iter().copied())
        .fold(f64::NAN, f64::max);
    format!("{:.digits$} (max {max:.digits$})", median(&meds))
}

fn secs(x: Option<f64>) -> String {
    x.map_or("-".into(), |x| format!("{x:.1}"))
}

/// The "time to all active" cell: seconds, or how far the run got.
fn reached(runs: &[&ScaleRun], t: Option<f64>) -> String {
    match (t, runs.iter().find(|r| r.capped.is_some())) {
        (Some(t), None) => format!("{t:.1}"),
        (Some(t), Some(_)) => format!("{t:.1} (some runs capped)"),
        (None, Some(r)) => format!(
            "not reached in {} s, {} of {} active ({} started)",
            r.capped.unwrap_or(0),
            r.listed_active,
            r.units,
            r.started_at_end
        ),
        (None, None) => "-".into(),
    }
}

/// Prints the scale table, sizes in the order given, ratios against the first.
pub fn scale(all: &[ScaleRun], sizes: &[u32], hosts: u32, window_s: u64) {
    let by = |n: u32| all.iter().filter(|r| r.units == n).collect::<Vec<_>>();
    let base = by(sizes[0]);
    let base_listed = over_runs(&base, |r| r.listed_s);
    let base_submit = over_runs(&base, |r| Some(r.submit_s));
    println!(
        "\n== scale: one `shoal start --no-block` of N instances on {hosts} hosts \
         (medians over runs; ratios against N={})",
        sizes[0]
    );
    println!(
        "| N | runs | submit s | all started s (10/50/90 %) | list-units all active s | ratio | \
         member down (sum over hosts) | agent CPU % during run | idle CPU % ({window_s} s) | RSS KiB | \
         snapshot B | list-units ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for &n in sizes {
        let runs = by(n);
        if runs.is_empty() {
            continue;
        }
        let submit = over_runs(&runs, |r| Some(r.submit_s));
        let listed = over_runs(&runs, |r| r.listed_s);
        let q = |p: f64| over_runs(&runs, |r| quantile(&r.starts.first_s, p));
        let down: Vec<String> = runs.iter().map(|r| down_sum(&r.member_down)).collect();
        println!(
            "| {n} | {} | {} ({}) | {} ({}/{}/{}) | {} | {} | {} | {} | {} | {} | {} | {:.0} |",
            runs.len(),
            secs(submit),
            ratio(submit, base_submit),
            secs(over_runs(&runs, ScaleRun::stamped_all_s)),
            secs(q(0.1)),
            secs(q(0.5)),
            secs(q(0.9)),
            reached(&runs, listed),
            ratio(listed, base_listed),
            down.join(", "),
            hosts_fig(&runs, |r| &r.run_cpu_pct, 1),
            hosts_fig(&runs, |r| &r.idle_cpu_pct, 2) + capped_note(&runs),
            hosts_fig(&runs, |r| &r.rss_kib, 0),
            hosts_fig(&runs, |r| &r.snapshot_bytes, 0),
            over_runs(&runs, |r| Some(r.list_ms)).unwrap_or(f64::NAN),
        );
    }
    details(all);
}

/// After a capped run the cluster is still at work: its "idle" CPU is not idle.
fn capped_note(runs: &[&ScaleRun]) -> &'static str {
    if runs.iter().any(|r| r.capped.is_some()) {
        " (after the cap: still busy)"
    } else {
        ""
    }
}

fn down_sum(v: &[Option<u64>]) -> String {
    if v.iter().any(Option::is_none) {
        return "?".into();
    }
    let per: Vec<String> = v.iter().flatten().map(u64::to_string).collect();
    format!("{} ({})", v.iter().flatten().sum::<u64>(), per.join("/"))
}

/// Per run: what suggests where the time goes.
fn details(all: &[ScaleRun]) {
    println!("\nper run (lists are per host, h1 first; h1 runs the client):");
    let fmt = |v: &[f64], d: usize| {
        v.iter()
            .map(|x| format!("{x:.d$}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    for r in all {
        let st = &r.starts;
        let downs = &r.member_down_s;
        println!(
            "  N={}: client {:.2} s (spawning ~{:.0} ms of it); {} instances had started when the \
             watch ended; by the end of the idle window {} starts of {} instances, {} started on \
             several hosts, last start at {} s; then systemd had {:?} active ({} on two hosts \
             or more, {} without a stamp on that host); `member down` lines {} (first at {} s, \
             last at {} s)",
            r.units,
            r.submit_s,
            r.spawn_ms,
            r.started_at_end,
            st.total,
            st.first_s.len(),
            st.on_several_hosts,
            secs(st.last_s),
            r.systemd_active,
            r.active_twice,
            r.active_unstamped,
            downs.len(),
            secs(downs.first().copied()),
            secs(downs.last().copied()),
        );
        println!(
            "    agent CPU % during run {}; PID 1 CPU s during run {}; agent's systemctl \
             children max {:?} mean {}; snapshot rewrites seen (500 ms sampling, a lower \
             bound) {:?}; agent restarts {:?}",
            fmt(&r.run_cpu_pct, 0),
            fmt(&r.pid1_cpu_s, 1),
            r.seen.systemctl_max,
            fmt(&r.seen.systemctl_mean, 2),
            r.seen.snapshot_rewrites,
            r.restarts,
        );
        let mut verbs = r.seen.systemctl_verbs.clone();
        verbs.sort_by_key(|v| std::cmp::Reverse(v.1));
        let slots = (r.seen.samples * r.hosts_watched()).max(1) as f64;
        let shares: Vec<String> = verbs
            .iter()
            .map(|(v, c)| format!("{v} {:.0}%", *c as f64 / slots * 100.0))
            .collect();
        println!(
            "    agents' systemctl children by verb, share of {} samples × hosts: {}",
            r.seen.samples,
            shares.join(", ")
        );
    }
}

/// Prints the idle table: medians across members, then over runs. Longer
/// than most functions, but flat: one `println!` per row of the table.
pub fn idle(f: &IdleFigures) {
    let all: Vec<&IdleMember> = f.runs.iter().flatten().collect();
    let per_run = |g: fn(&IdleMember) -> f64| -> Vec<f64> {
        f.runs
            .iter()
            .map(|run| median(&run.iter().map(g).collect::<Vec<_>>()))
            .collect()
    };
    let tx = per_run(IdleMember::tx_bytes_per_s);
    let cpu = per_run(IdleMember::cpu_s_per_30s);
    let every = |g: fn(&IdleMember) -> f64| all.iter().map(|m| g(m)).collect::<Vec<_>>();
    println!(
        "\n== idle: {} members, no units, {} windows of {} s (load at start {})",
        f.hosts,
        f.runs.len(),
        f.window_s,
        f.load
    );
    println!("| measure | median over runs | all members, all runs: median (max) | goal |");
    println!("|---|---|---|---|");
    println!(
        "| eth0 sent per member, B/s (frames) | {:.0} | {} | ≤ {GOAL_IDLE_TX_BPS:.0} |",
        median(&tx),
        med_max(&every(IdleMember::tx_bytes_per_s), 0)
    );
    println!(
        "| UDP payload per member, B/s (frames − 42 B headers) | {:.0} | {} | |",
        median(&per_run(IdleMember::payload_per_s)),
        med_max(&every(IdleMember::payload_per_s), 0)
    );
    println!(
        "| UDP datagrams sent per member per s | {:.1} | {} | |",
        median(&per_run(IdleMember::datagrams_per_s)),
        med_max(&every(IdleMember::datagrams_per_s), 1)
    );
    println!(
        "| agent CPU s per 30 s | {:.3} | {} | ≤ Serf's 0.13 |",
        median(&cpu),
        med_max(&every(IdleMember::cpu_s_per_30s), 3)
    );
    println!(
        "| agent CPU % of one core | {:.2} | | ≤ {GOAL_IDLE_CPU_PCT} |",
        median(&cpu) / 30.0 * 100.0
    );
    println!(
        "| agent RSS KiB | {:.0} | {} | |",
        median(&every(|m| m.rss_kib)),
        med_max(&every(|m| m.rss_kib), 0)
    );
    println!(
        "| `member down` lines during the windows | {} | | 0 |",
        down_sum(&f.member_down)
    );
    let frames: u64 = all.iter().map(|m| m.eth0.tx_packets).sum();
    let udp: u64 = all.iter().map(|m| m.udp_out).sum();
    let note = if frames == udp {
        "equal: eth0 carried the agents' datagrams only".to_string()
    } else {
        format!(
            "{} apart: other traffic on eth0 or loopback UDP",
            frames.abs_diff(udp)
        )
    };
    println!("eth0 frames sent {frames}, UDP datagrams sent {udp} ({note})");
    for (r, run) in f.runs.iter().enumerate() {
        let per: Vec<String> = run
            .iter()
            .map(|m| {
                format!(
                    "h{} {:.0} B/s {:.3} s",
                    m.host,
                    m.tx_bytes_per_s(),
                    m.cpu_s_per_30s()
                )
            })
            .collect();
        println!("run {r}: {}", per.join(", "));
    }
}
