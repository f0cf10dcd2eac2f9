//! Placement benchmark: 10,000 units with mixed constraints on 1,000 members, from
//! scratch and after one member is lost, against an unconstrained baseline.
//!
//! Run: `cargo xtask bench` (or `cargo bench --bench placement`). Prints medians of
//! repeated runs and ratios against the baseline measured in the same process.

mod common;
use common::thread_cpu_time;

use std::collections::BTreeSet;
use std::hint::black_box;
use std::time::{Duration, Instant};

use shoal::schedule::{place, Decision, Job, MachineId, Member, Metadata, Running};
use shoal::unit::{FleetOptions, Glob};

const MEMBERS: usize = 1_000;
const UNITS: usize = 10_000;

fn members() -> Vec<Member> {
    (0..MEMBERS)
        .map(|i| {
            let disk = if i % 3 == 0 { "hdd" } else { "ssd" };
            let metadata =
                Metadata::parse(&format!("zone=z{},disk={disk},rack=r{}", i % 10, i % 50))
                    .expect("valid");
            Member {
                id: MachineId(format!("{:032x}", (i as u128 + 1) * 0x9e37_79b9_7f4a_7c15)),
                metadata,
            }
        })
        .collect()
}

/// The mixed workload: plain units, metadata pins, template instances that conflict
/// with their siblings (globs), MachineOf chains of five, cross-name conflicts, globals.
fn mixed_jobs() -> Vec<Job> {
    let mut jobs: Vec<Job> = Vec::with_capacity(UNITS);
    fn push_to(jobs: &mut Vec<Job>, name: String, options: FleetOptions) {
        let seq = jobs.len() as u64;
        jobs.push(Job { name, seq, options });
    }
    macro_rules! push {
        ($name:expr, $options:expr) => {
            push_to(&mut jobs, $name, $options)
        };
    }
    let glob = |p: &str| Glob::new(p).expect("valid glob");
    // 10 global units (a log shipper per disk kind, a monitor per zone pair, ...).
    for g in 0..10 {
        let mut o = FleetOptions {
            global: true,
            ..FleetOptions::default()
        };
        if g % 2 == 0 {
            o.machine_metadata
                .insert("disk".into(), BTreeSet::from(["ssd".to_string()]));
        }
        push!(format!("global-{g}.service"), o);
    }
    // 100 templates x 20 instances, one instance per member (Conflicts=tmpl@*.service).
    for t in 0..100 {
        for i in 0..20 {
            let mut o = FleetOptions {
                conflicts: vec![glob(&format!("tmpl{t}@*.service"))],
                ..FleetOptions::default()
            };
            if t % 4 == 0 {
                o.machine_metadata
                    .insert("disk".into(), BTreeSet::from(["ssd".to_string()]));
            }
            push!(format!("tmpl{t}@{i}.service"), o);
        }
    }
    // 300 MachineOf chains of 5 (app -> sidecars).
    for c in 0..300 {
        push!(format!("chain{c}-0.service"), FleetOptions::default());
        for k in 1..5 {
            let o = FleetOptions {
                machine_of: vec![format!("chain{c}-{}.service", k - 1)],
                ..FleetOptions::default()
            };
            push!(format!("chain{c}-{k}.service"), o);
        }
    }
    // 2,000 metadata-pinned units (zone, or zone OR zone, and disk).
    for u in 0..2_000 {
        let mut o = FleetOptions::default();
        let zones: BTreeSet<String> = [format!("z{}", u % 10), format!("z{}", (u + 3) % 10)]
            .into_iter()
            .collect();
        o.machine_metadata.insert("zone".into(), zones);
        if u % 5 == 0 {
            o.machine_metadata
                .insert("disk".into(), BTreeSet::from(["hdd".to_string()]));
        }
        push!(format!("pinned{u}.service"), o);
    }
    // 1,000 units that conflict with a database family by glob.
    for u in 0..1_000 {
        let o = FleetOptions {
            conflicts: vec![
                glob("db-*.service"),
                glob(&format!("web{}?.service", u % 7)),
            ],
            ..FleetOptions::default()
        };
        push!(format!("web{}{}.service", u % 7, u), o);
    }
    for u in 0..500 {
        push!(format!("db-{u}.service"), FleetOptions::default());
    }
    // The rest: plain units.
    let mut u = 0;
    while jobs.len() < UNITS {
        push!(format!("plain{u}.service"), FleetOptions::default());
        u += 1;
    }
    jobs
}

fn plain_jobs() -> Vec<Job> {
    (0..UNITS)
        .map(|u| Job {
            name: format!("plain{u}.service"),
            seq: u as u64,
            options: FleetOptions::default(),
        })
        .collect()
}

/// Median of `runs` runs: (thread CPU time, wall time).
fn median_of(runs: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    let mut cpu = Vec::with_capacity(runs);
    let mut wall = Vec::with_capacity(runs);
    for _ in 0..runs {
        let (c0, w0) = (thread_cpu_time(), Instant::now());
        f();
        cpu.push(thread_cpu_time() - c0);
        wall.push(w0.elapsed());
    }
    cpu.sort();
    wall.sort();
    (cpu[runs / 2], wall[runs / 2])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    // `cargo bench` passes --bench; a quick mode for CI smoke runs.
    let quick = std::env::args().any(|a| a == "--quick");
    let runs = if quick { 3 } else { 21 };
    let members = members();
    let mixed = mixed_jobs();
    let plain = plain_jobs();

    let first = place(&members, &mixed, &Running::new());
    let waiting = first
        .units
        .values()
        .filter(|d| matches!(d, Decision::Waiting(_)))
        .count();
    let lost = members[MEMBERS / 2].id.clone();
    let survivors: Vec<Member> = members.iter().filter(|m| m.id != lost).cloned().collect();
    let mut running = first.as_running();
    let moved_before: usize = running.values().filter(|ms| ms.contains(&lost)).count();
    for machines in running.values_mut() {
        machines.remove(&lost);
    }
    let after = place(&survivors, &mixed, &running);
    let moved = first
        .units
        .iter()
        .filter(|(name, d)| {
            matches!(d, Decision::Placed(_)) && after.machines_of(name) != first.machines_of(name)
        })
        .count();

    let baseline = median_of(runs, || {
        black_box(place(
            black_box(&members),
            black_box(&plain),
            &Running::new(),
        ));
    });
    let scratch = median_of(runs, || {
        black_box(place(
            black_box(&members),
            black_box(&mixed),
            &Running::new(),
        ));
    });
    let failover = median_of(runs, || {
        black_box(place(
            black_box(&survivors),
            black_box(&mixed),
            black_box(&running),
        ));
    });

    println!("placement benchmark: {UNITS} units on {MEMBERS} members, one thread, median of {runs} runs");
    println!("  (CPU time of the thread; wall time in brackets; goal: full placement under 20 ms)");
    let line = |what: &str, (cpu, wall): (Duration, Duration), note: String| {
        println!(
            "  {what:<46} {:>8.2} ms  [{:>7.2} ms]  {note}",
            ms(cpu),
            ms(wall)
        );
    };
    line(
        "baseline (unconstrained units, from scratch):",
        baseline,
        "1.00x baseline".into(),
    );
    line(
        "mixed constraints, from scratch:",
        scratch,
        format!(
            "{:.2}x baseline; {waiting} units wait",
            ms(scratch.0) / ms(baseline.0)
        ),
    );
    line(
        "mixed constraints, one member lost:",
        failover,
        format!(
            "{:.2}x baseline; {moved_before} units were on it, {moved} placements changed",
            ms(failover.0) / ms(baseline.0)
        ),
    );
}
