//! `cargo xtask bench --idle`: what members cost when nothing happens: UDP sent per member per second and agent CPU per 30 s, no units.
//!
//! Read from outside each host: `/proc/<PID 1>/net/dev` (eth0 of the host's
//! own network namespace: frames, so Ethernet, IP and UDP headers included)
//! and `/proc/<PID 1>/net/snmp` (`Udp: OutDatagrams`, to check that eth0
//! carried nothing but the agent's datagrams); the agent publishes no
//! counters of its own. The payload figure subtracts 42 header bytes per
//! datagram.

use super::probe::{self, Host};
use super::scale;
use super::stats::{self, NetCounters};
use crate::hosts::{Cluster, Result};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Time after the members see each other before measuring: the join's
/// own gossip settles.
const SETTLE: Duration = Duration::from_secs(10);

/// One member over one window.
#[derive(Clone, Debug)]
pub struct IdleMember {
    pub host: u32,
    pub secs: f64,
    pub eth0: NetCounters,
    pub udp_out: u64,
    pub cpu_s: f64,
    pub rss_kib: f64,
}

impl IdleMember {
    pub fn tx_bytes_per_s(&self) -> f64 {
        self.eth0.tx_bytes as f64 / self.secs
    }

    pub fn payload_per_s(&self) -> f64 {
        let headers = self.eth0.tx_packets * stats::FRAME_OVERHEAD_BYTES;
        self.eth0.tx_bytes.saturating_sub(headers) as f64 / self.secs
    }

    pub fn datagrams_per_s(&self) -> f64 {
        self.udp_out as f64 / self.secs
    }

    /// Agent CPU seconds per 30 s, the unit.
    pub fn cpu_s_per_30s(&self) -> f64 {
        self.cpu_s / self.secs * 30.0
    }
}

/// Everything `--idle` measured.
#[derive(Clone, Debug, Default)]
pub struct IdleFigures {
    pub hosts: u32,
    pub window_s: u64,
    /// One entry per run, each with every member.
    pub runs: Vec<Vec<IdleMember>>,
    pub member_down: Vec<Option<u64>>,
    pub load: String,
}

/// Boots `hosts` members with no units and measures `runs` windows of `window` s.
pub fn run(cluster: &Cluster, hosts: u32, runs: usize, window: u64) -> Result<IdleFigures> {
    println!(
        "\n== idle: {hosts} members, no units (load {})",
        probe::loadavg()
    );
    let s = scale::boot(cluster, hosts, |i| format!("host=h{i}"))?;
    std::thread::sleep(SETTLE);
    let since_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as u128;
    let clk = probe::clk_tck();
    let mut f = IdleFigures {
        hosts,
        window_s: window,
        load: probe::loadavg(),
        ..IdleFigures::default()
    };
    for r in 0..runs {
        let mut view = scale::hosts(&s)?;
        for h in &mut view {
            h.refind_agent();
        }
        let members = window_of(&view, window, clk)?;
        let tx: Vec<f64> = members.iter().map(IdleMember::tx_bytes_per_s).collect();
        let cpu: Vec<f64> = members.iter().map(IdleMember::cpu_s_per_30s).collect();
        println!(
            "  idle run {r}: eth0 sent per member {} B/s; agent CPU {} s per 30 s",
            stats::med_max(&tx, 0),
            stats::med_max(&cpu, 3)
        );
        f.runs.push(members);
    }
    f.member_down = (1..=hosts)
        .map(|i| scale::member_down(&s, i, since_s).map(|v| v.len() as u64))
        .collect();
    Ok(f)
}

/// Counters of every host before and after `window` s.
fn window_of(view: &[Host], window: u64, clk: f64) -> Result<Vec<IdleMember>> {
    let read = |h: &Host| (h.eth0(), h.udp_out(), h.agent_ticks());
    let before: Vec<_> = view.iter().map(read).collect();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(window));
    let secs = t0.elapsed().as_secs_f64();
    view.iter()
        .zip(before)
        .map(|(h, (e0, u0, c0))| {
            let (e1, u1, c1) = read(h);
            let missing = || format!("h{}: counters unreadable", h.i);
            let (e0, e1) = e0.zip(e1).ok_or_else(missing)?;
            let (c0, c1) = c0.zip(c1).ok_or_else(missing)?;
            Ok(IdleMember {
                host: h.i,
                secs,
                eth0: e1.since(&e0),
                udp_out: u1.zip(u0).map_or(0, |(b, a)| b.saturating_sub(a)),
                cpu_s: c1.saturating_sub(c0) as f64 / clk,
                rss_kib: h.agent_rss_kib().map_or(f64::NAN, |k| k as f64),
            })
        })
        .collect()
}
