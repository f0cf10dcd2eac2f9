//! Reconcile benchmark: one member of five re-runs placement over 10,000 unchanged
//! units (a systemd report makes it reconcile), and how many unit texts it parses.
//!
//! Run: `cargo bench --bench reconcile` (`-- --quick` for fewer runs). Prints the
//! median CPU time of the thread per reconcile and the parses per reconcile.
//!
//! Measured on a shared 2-core machine, median of 21 runs: before the parse cache
//! 190.85 ms CPU and 10,000 texts parsed per reconcile; with it 202.96 ms and none
//! (within this machine's noise). Parsing these short texts was never the cost:
//! a profile of the measured part shows allocation and string comparisons in
//! building placement's inputs and the start/stop decision (malloc/free/memcmp
//! about two thirds, `Solver::solve` under 2%).
//!
//! With the inputs kept between reconciles (`src/node/inputs.rs`) and the start/stop
//! decision walking its maps side by side, median of 5 runs on the same loaded
//! machine (load average above 20): 10.74 ms CPU, from 200.16 ms measured just before
//! the change the same day. `SHOAL_BENCH_RUNS=N` sets the number of runs (a profiler
//! wants many after the 20 s setup).

mod common;
use common::thread_cpu_time;

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use shoal::node::testing::running;
use shoal::node::{Action, Command, Node, NodeConfig};
use shoal::time::Millis;
use shoal::wire::{Key, KeyRing};

const MEMBERS: usize = 5;
const UNITS: usize = 10_000;

static PARSES: AtomicUsize = AtomicUsize::new(0);

/// The production parser, counted.
fn counting_parse(name: &str, text: &str) -> Result<shoal::unit::FleetOptions, String> {
    PARSES.fetch_add(1, Ordering::Relaxed);
    shoal::node::parse_fleet_options(name, text)
}

fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, i as u8 + 1], 4700))
}

fn member(i: usize) -> Node {
    let keys = KeyRing::new(Key::from_bytes([1; 32]), vec![]).expect("ring");
    let mut cfg = NodeConfig::new(&format!("{:016x}", i + 1), addr(i), keys, [i as u8; 32]);
    cfg.peers = (0..MEMBERS).map(addr).collect();
    cfg.metadata = if i.is_multiple_of(2) {
        "disk=ssd"
    } else {
        "disk=hdd"
    }
    .into();
    cfg.cluster_size = MEMBERS as u32;
    cfg.parse = counting_parse;
    Node::new(cfg, Millis(0))
}

/// Delivers every datagram (lossless, instant) and answers starts with "running"
/// until the cluster is quiet.
fn exchange(nodes: &mut [Node], now: Millis) {
    loop {
        let mut moved = false;
        for i in 0..nodes.len() {
            while let Some((to, bytes)) = nodes[i].poll_transmit() {
                moved = true;
                let from = addr(i);
                if let Some(j) = (0..nodes.len()).find(|j| addr(*j) == to) {
                    nodes[j].handle_datagram(now, from, &bytes);
                }
            }
            while let Some(a) = nodes[i].poll_action() {
                if let Action::Start { unit } = a {
                    moved = true;
                    nodes[i].handle_systemd_report(now, &unit, Some(running()));
                }
            }
            while nodes[i].poll_event().is_some() {}
        }
        if !moved {
            return;
        }
    }
}

fn step(nodes: &mut [Node], now: Millis) {
    for n in nodes.iter_mut() {
        n.handle_timeout(now);
    }
    exchange(nodes, now);
}

fn text_of(u: usize) -> String {
    let fleet = match u % 10 {
        0 => "[X-Fleet]\nMachineMetadata=disk=ssd\n",
        1 => "[X-Fleet]\nConflicts=other-%i.service\n",
        _ => "",
    };
    format!("[Unit]\nDescription=unit %n\n\n[Service]\nExecStart=/bin/sleep infinity\n\n{fleet}")
}

/// Five joined members running 10,000 units between them; the time reached.
fn cluster() -> (Vec<Node>, Millis) {
    let mut nodes: Vec<Node> = (0..MEMBERS).map(member).collect();
    let mut now = Millis(0);
    while nodes.iter().any(|n| n.live_members().len() < MEMBERS - 1) {
        now = now.plus(10);
        step(&mut nodes, now);
        assert!(now.0 < 60_000, "the members did not meet");
    }
    for u in 0..UNITS {
        let name = format!("u{u}@{}.service", u % 100);
        let (text, target) = (text_of(u), nodes.len());
        let n = &mut nodes[u % target];
        n.handle_command(
            now,
            Command::Submit {
                name: name.clone(),
                text,
            },
        )
        .expect("submit");
        n.handle_command(now, Command::Start { name })
            .expect("start");
        if u % 500 == 499 {
            now = now.plus(10);
            step(&mut nodes, now);
        }
    }
    // Until every unit runs somewhere and every member holds every report.
    let settled = |nodes: &[Node]| {
        nodes.iter().all(|n| {
            n.catalog().replica().units.len() == UNITS
                && n.catalog().missing_texts().is_empty()
                && n.catalog().replica().reports.len() >= UNITS
        })
    };
    while !settled(&nodes) {
        now = now.plus(10);
        step(&mut nodes, now);
        assert!(now.0 < 600_000, "the cluster did not settle");
    }
    for _ in 0..300 {
        now = now.plus(10);
        step(&mut nodes, now);
    }
    (nodes, now)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    // SHOAL_BENCH_RUNS overrides the count (a profiler wants many runs after the setup).
    let runs = std::env::var("SHOAL_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(if quick { 5 } else { 21 });
    let t0 = Instant::now();
    let (mut nodes, mut now) = cluster();
    let setup = t0.elapsed();
    let placed = nodes[0].placement().units.len();
    let mut cpu = Vec::with_capacity(runs);
    let mut wall = Vec::with_capacity(runs);
    let mut parses = Vec::with_capacity(runs);
    for _ in 0..runs {
        // Past the reconcile rate limit, with everything delivered (not measured).
        now = now.plus(100);
        step(&mut nodes, now);
        // Past the last reconcile by more than the rate limit, so this one runs now.
        now = now.plus(shoal::node::RECONCILE_MIN_MS + 10);
        let p0 = PARSES.load(Ordering::Relaxed);
        let (c0, w0) = (thread_cpu_time(), Instant::now());
        // A report of a unit this member does not manage: nothing changes, but the
        // member reconciles everything.
        black_box(&mut nodes[0]).handle_systemd_report(now, "unrelated.service", None);
        cpu.push(thread_cpu_time() - c0);
        wall.push(w0.elapsed());
        parses.push(PARSES.load(Ordering::Relaxed) - p0);
        exchange(&mut nodes, now);
    }
    cpu.sort();
    wall.sort();
    parses.sort();
    println!(
        "reconcile benchmark: {UNITS} unchanged units ({placed} placed) on {MEMBERS} members, median of {runs} runs (setup {:.1} s)",
        setup.as_secs_f64()
    );
    println!(
        "  one reconcile: {:>8.2} ms CPU  [{:>7.2} ms wall]  {} unit texts parsed",
        ms(cpu[runs / 2]),
        ms(wall[runs / 2]),
        parses[runs / 2]
    );
}
