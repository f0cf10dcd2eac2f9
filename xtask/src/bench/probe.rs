//! Looking at a test host from outside, without running anything in it: its agent's CPU and memory, the agent's `systemctl` children, its network counters, its snapshot file.
//!
//! The hosts share this machine's kernel, so `/proc/PID` of a process in a
//! host is readable here. Every figure is a file read: sampling every
//! 500 ms costs microseconds, where an `nsenter` per sample would itself
//! load the two shared cores and slow the agents measured.

use super::stats::{self, NetCounters};
use crate::agents::Shoal;
use crate::hosts::children;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// Where the agent keeps its snapshot inside a host (`data_dir=` of the
/// harness's settings, and `persist::SNAPSHOT_FILE`).
pub const SNAPSHOT: &str = "var/lib/shoal/state.snapshot";

/// One host as seen from this machine.
#[derive(Clone, Debug)]
pub struct Host {
    pub i: u32,
    /// The host's PID 1 (systemd) in this machine's pid namespace.
    pub leader: u32,
    /// The agent (`/opt/bin/shoal agent`, a child of PID 1), if it runs.
    pub agent: Option<u32>,
    /// The host's root directory on this machine.
    pub root: PathBuf,
}

impl Host {
    /// Host `i` of `s`, its agent looked up now.
    pub fn find(s: &Shoal, i: u32) -> Option<Host> {
        let m = s.cluster.machine(i);
        let leader = m.leader_pid()?;
        let mut h = Host {
            i,
            leader,
            agent: None,
            root: m.root(),
        };
        h.refind_agent();
        Some(h)
    }

    /// Looks the agent up again (it is restarted by systemd if it dies).
    pub fn refind_agent(&mut self) {
        self.agent = children(self.leader)
            .into_iter()
            .find(|&p| cmdline(p) == ["/opt/bin/shoal", "agent"]);
    }

    /// The agent's CPU time so far, in clock ticks.
    pub fn agent_ticks(&self) -> Option<u64> {
        ticks(self.agent?)
    }

    /// PID 1's CPU time so far (daemon-reloads and unit starts), in ticks.
    pub fn pid1_ticks(&self) -> Option<u64> {
        ticks(self.leader)
    }

    pub fn agent_rss_kib(&self) -> Option<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.agent?)).ok()?;
        stats::status_rss_kib(&status)
    }

    /// What the agent's `systemctl` children are doing right now: one
    /// [`stats::systemctl_verb`] per process.
    pub fn systemctl_children(&self) -> Vec<String> {
        let Some(agent) = self.agent else {
            return Vec::new();
        };
        children(agent)
            .into_iter()
            .filter_map(|p| {
                let argv = cmdline(p);
                let prog = argv.first()?;
                (prog == "systemctl" || prog.ends_with("/systemctl"))
                    .then(|| stats::systemctl_verb(&argv))
            })
            .collect()
    }

    /// `eth0`'s counters in the host's network namespace.
    pub fn eth0(&self) -> Option<NetCounters> {
        let text = fs::read_to_string(format!("/proc/{}/net/dev", self.leader)).ok()?;
        stats::net_dev(&text, "eth0")
    }

    /// UDP datagrams sent in the host's network namespace so far.
    pub fn udp_out(&self) -> Option<u64> {
        let text = fs::read_to_string(format!("/proc/{}/net/snmp", self.leader)).ok()?;
        stats::snmp_udp_out(&text)
    }

    /// (inode, mtime in ns, size) of the snapshot: the agent writes it to a
    /// temporary file and renames it, so each rewrite changes the inode.
    pub fn snapshot_id(&self) -> Option<(u64, i64, u64)> {
        let m = fs::metadata(self.root.join(SNAPSHOT)).ok()?;
        Some((m.ino(), m.mtime() * 1_000_000_000 + m.mtime_nsec(), m.len()))
    }
}

/// utime + stime of `pid`, in clock ticks.
pub fn ticks(pid: u32) -> Option<u64> {
    stats::stat_ticks(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Clock ticks per second (`getconf CLK_TCK`; std has no `sysconf`).
pub fn clk_tck() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| stats::count(&String::from_utf8_lossy(&o.stdout)))
        .filter(|&t| t > 0)
        .unwrap_or(100) as f64
}

/// The arguments of `pid`.
fn cmdline(pid: u32) -> Vec<String> {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The names of the files in `dir`.
pub fn file_names(dir: &std::path::Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// (name, text) of each file in `dir`.
pub fn read_files(dir: &std::path::Path) -> Vec<(String, String)> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| {
            let text = fs::read_to_string(e.path()).ok()?;
            Some((e.file_name().to_string_lossy().into_owned(), text))
        })
        .collect()
}

/// `/proc/loadavg`'s first three figures, for the report's context.
pub fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}
