//! shoal agents on test hosts: settings, `shoal.service`, client commands, and systemd's own view.
//!
//! Shared by the end-to-end test (`tests/hosts_e2e.rs`), `cargo xtask bench`
//! and `cargo xtask demo`, so all three set a member up the way a user
//! would: the static binary at `/opt/bin/shoal`, `/etc/shoal/shoal.conf`
//! plus a key file, `deploy/shoal.service` enabled in systemd, and the
//! fleetctl-like client run inside a host. Everything here shells out; the
//! xtask never links the `shoal` crate.

use crate::hosts::{Cluster, Result};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The UDP port every member gossips on.
pub const PORT: u16 = 4774;
/// Where the example unit files are put in every host (the chapter used
/// `/home/core`; a test host only has root).
pub const UNIT_DIR: &str = "/root/units";
/// How often the polling loops look again: often enough not to slow the
/// test down, rarely enough not to load two shared cores.
const POLL: Duration = Duration::from_millis(100);

/// The workspace root (the xtask lives one level below it).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// One row of `shoal list-units --no-legend`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitRow {
    pub unit: String,
    /// The host number, from the address after the `/` in MACHINE; `None`
    /// when the unit is not placed (`-`).
    pub host: Option<u32>,
    pub active: String,
    pub sub: String,
    /// Whatever follows the four columns (a reason, when there is one).
    pub rest: String,
}

/// One row of `shoal list-machines --no-legend [-l]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineRow {
    pub machine: String,
    pub ip: String,
    pub metadata: String,
}

/// The host number of an address on the test network (10.77.0.I).
pub fn host_of_ip(ip: &str) -> Option<u32> {
    ip.strip_prefix("10.77.0.")?.parse().ok()
}

/// Parses `list-units --no-legend`: UNIT MACHINE ACTIVE SUB [REASON...].
pub fn parse_units(text: &str) -> Vec<UnitRow> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let unit = f.next()?.to_string();
            let machine = f.next().unwrap_or("-");
            let host = machine.rsplit_once('/').and_then(|(_, ip)| host_of_ip(ip));
            Some(UnitRow {
                unit,
                host,
                active: f.next().unwrap_or("").to_string(),
                sub: f.next().unwrap_or("").to_string(),
                rest: f.collect::<Vec<_>>().join(" "),
            })
        })
        .collect()
}

/// Parses `list-machines --no-legend`: MACHINE IP METADATA (metadata may be `-`).
pub fn parse_machines(text: &str) -> Vec<MachineRow> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some(MachineRow {
                machine: f.next()?.to_string(),
                ip: f.next().unwrap_or("").to_string(),
                metadata: f.next().unwrap_or("").to_string(),
            })
        })
        .collect()
}

/// A metadata string in a canonical order, so `disk=ssd,host=a` and
/// `host=a,disk=ssd` compare equal.
pub fn canonical_metadata(m: &str) -> String {
    let mut v: Vec<&str> = m
        .split(',')
        .filter(|p| !p.is_empty() && *p != "-")
        .collect();
    v.sort_unstable();
    v.join(",")
}

/// A copy of a chapter unit that runs on a bare test host: the same
/// `[X-Fleet]` section, verbatim, and `/bin/sleep infinity` instead of
/// docker (the hosts have no docker and no registry to pull from).
pub fn sleep_copy(original: &str) -> String {
    let mut fleet = String::new();
    let mut description = String::from("Example");
    let mut section = "";
    for line in original.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            section = if t == "[X-Fleet]" { "fleet" } else { "" };
            continue;
        }
        if section == "fleet" && !t.is_empty() {
            fleet.push_str(line);
            fleet.push('\n');
        }
        if let Some(d) = t.strip_prefix("Description=") {
            description = d.to_string();
        }
    }
    format!(
        "[Unit]\nDescription={description} (sleep stand-in for the chapter's docker unit)\n\n\
         [X-Fleet]\n{fleet}\n[Service]\nExecStart=/bin/sleep infinity\n"
    )
}

/// The chapter's units as sleep copies, by path relative to [`UNIT_DIR`]
/// (`common@.service`, `anti-affinity/common@.service`, ...). `MachineID=`
/// in `example_test.service` is rewritten to `machine_id`, the member the
/// chapter's user picked from `list-machines -l` (the test hosts' ids are
/// not the chapter's).
pub fn chapter_units(machine_id: &str) -> Result<Vec<(String, String)>> {
    let dir = workspace_root().join("deploy/examples");
    let names = [
        "example_01.service",
        "example_02.service",
        "example_03.service",
        "example_test.service",
        "common@.service",
        "anti-affinity/common@.service",
        "machineof/common@.service",
    ];
    let mut out = Vec::new();
    for n in names {
        let p = dir.join(n);
        let text = fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        let mut copy = sleep_copy(&text);
        if n == "example_test.service" {
            copy = copy
                .lines()
                .map(|l| {
                    if l.starts_with("MachineID=") {
                        format!("MachineID={machine_id}")
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
                + "\n";
        }
        out.push((n.to_string(), copy));
    }
    Ok(out)
}

/// shoal on hosts 1..=n of a cluster.
#[derive(Clone, Debug)]
pub struct Shoal {
    pub cluster: Cluster,
    pub n: u32,
}

impl Shoal {
    pub fn new(cluster: Cluster, n: u32) -> Shoal {
        Shoal { cluster, n }
    }

    /// Builds the static binary and puts it in the hosts' `/opt/bin`, or
    /// uses `$SHOAL_BIN` when set (a static binary built elsewhere, e.g.
    /// once per CI run). Returns the path of the copy on this machine.
    pub fn install_binary(&self) -> Result<PathBuf> {
        let bin = match std::env::var_os("SHOAL_BIN") {
            Some(p) => {
                let p = PathBuf::from(p);
                crate::dist::check_static(&p)?;
                p
            }
            None => crate::dist::build()?,
        };
        crate::dist::install(&bin, &self.cluster.bin_dir())
    }

    /// The copy of the binary on this machine (static, so it runs here too).
    pub fn local_binary(&self) -> PathBuf {
        self.cluster.bin_dir().join("shoal")
    }

    /// A new cluster key from `shoal keygen`.
    pub fn keygen(&self) -> Result<String> {
        let bin = self.local_binary();
        let key = crate::hosts::run_cmd(Command::new(&bin).arg("keygen"))?;
        let key = key.trim().to_string();
        if key.is_empty() || key.lines().count() != 1 {
            return Err(format!("`{} keygen` printed {key:?}", bin.display()));
        }
        Ok(key)
    }

    /// The settings of member `i`: every member in `peers` (itself too).
    pub fn config(&self, i: u32, metadata: &str) -> String {
        let peers: Vec<String> = (1..=self.n)
            .map(|j| format!("{}:{PORT}", self.cluster.addr(j)))
            .collect();
        let ip = self.cluster.addr(i);
        format!(
            "# written by the shoal test harness\n\
             bind={ip}:{PORT}\npeers={}\nmetadata={metadata}\n\
             key_file=/etc/shoal/cluster.key\ndata_dir=/var/lib/shoal\npublic_ip={ip}\n",
            peers.join(",")
        )
    }

    /// Writes a file into host `i` through its root directory on this
    /// machine (the overlay that host runs on), creating parent directories.
    pub fn put(&self, i: u32, path: &str, text: &str, mode: u32) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let p = self
            .cluster
            .machine(i)
            .root()
            .join(path.trim_start_matches('/'));
        let io = |e: std::io::Error| format!("{}: {e}", p.display());
        if let Some(d) = p.parent() {
            fs::create_dir_all(d).map_err(io)?;
        }
        fs::write(&p, text).map_err(io)?;
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).map_err(io)
    }

    /// Writes member `i`'s settings, key file and `shoal.service` (the
    /// agent is not started: see [`Shoal::start_agent`]).
    pub fn configure(&self, i: u32, metadata: &str, key: &str) -> Result<()> {
        let unit = workspace_root().join("deploy/shoal.service");
        let unit = fs::read_to_string(&unit).map_err(|e| format!("{}: {e}", unit.display()))?;
        self.put(i, "/etc/shoal/shoal.conf", &self.config(i, metadata), 0o644)?;
        self.put(i, "/etc/shoal/cluster.key", &format!("{key}\n"), 0o600)?;
        self.put(i, "/etc/systemd/system/shoal.service", &unit, 0o644)
    }

    /// Puts the chapter's units (sleep copies) under [`UNIT_DIR`] in host `i`.
    pub fn put_units(&self, i: u32, units: &[(String, String)]) -> Result<()> {
        for (name, text) in units {
            self.put(i, &format!("{UNIT_DIR}/{name}"), text, 0o644)?;
        }
        Ok(())
    }

    /// `systemctl enable --now shoal` in host `i`, as a user would.
    pub fn start_agent(&self, i: u32) -> Result<()> {
        self.cluster.exec(i, &["systemctl", "daemon-reload"])?;
        self.cluster
            .exec(i, &["systemctl", "enable", "--now", "shoal.service"])
            .map(drop)
    }

    /// `systemctl restart shoal` in host `i` (after new settings).
    pub fn restart_agent(&self, i: u32) -> Result<()> {
        self.cluster
            .exec(i, &["systemctl", "restart", "shoal.service"])
            .map(drop)
    }

    /// Runs `shoal ARGS...` in host `i`; the caller judges the exit code.
    pub fn client(&self, i: u32, args: &[&str]) -> Result<Output> {
        let mut argv = vec!["/opt/bin/shoal"];
        argv.extend_from_slice(args);
        let mut c = self.cluster.command(i, &[], &argv)?;
        c.stdin(Stdio::null());
        c.output().map_err(|e| format!("nsenter: {e}"))
    }

    /// Runs `shoal ARGS...` in host `i` and returns stdout; a non-zero exit is an error.
    pub fn client_ok(&self, i: u32, args: &[&str]) -> Result<String> {
        let out = self.client(i, args)?;
        if !out.status.success() {
            return Err(format!(
                "`shoal {}` in h{i} failed ({}): {}{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub fn list_units(&self, i: u32) -> Result<Vec<UnitRow>> {
        Ok(parse_units(
            &self.client_ok(i, &["list-units", "--no-legend"])?,
        ))
    }

    pub fn list_machines(&self, i: u32) -> Result<Vec<MachineRow>> {
        Ok(parse_machines(
            &self.client_ok(i, &["list-machines", "--no-legend", "-l"])?,
        ))
    }

    /// Whether host `i` runs (its PID 1 is up).
    pub fn is_up(&self, i: u32) -> bool {
        self.cluster.machine(i).leader_pid().is_some()
    }

    /// `systemctl is-active` of each unit in host `i` (`down` for all when
    /// the host is not running).
    pub fn is_active(&self, i: u32, units: &[&str]) -> Result<Vec<String>> {
        if !self.is_up(i) {
            return Ok(units.iter().map(|_| "down".to_string()).collect());
        }
        let mut argv = vec!["systemctl", "is-active"];
        argv.extend_from_slice(units);
        // Exit status is non-zero when any unit is not active: not an error.
        let out = self
            .cluster
            .command(i, &[], &argv)?
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("nsenter: {e}"))?;
        let states: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        if states.len() != units.len() {
            return Err(format!(
                "systemctl is-active in h{i}: {} lines for {} units: {}",
                states.len(),
                units.len(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(states)
    }

    /// For each unit, the hosts whose systemd says it is `active`.
    pub fn active_hosts(&self, units: &[&str]) -> Result<BTreeMap<String, Vec<u32>>> {
        let mut m: BTreeMap<String, Vec<u32>> =
            units.iter().map(|u| (u.to_string(), Vec::new())).collect();
        for i in 1..=self.n {
            for (u, s) in units.iter().zip(self.is_active(i, units)?) {
                if s == "active" {
                    m.entry(u.to_string()).or_default().push(i);
                }
            }
        }
        Ok(m)
    }

    /// A picture of the cluster for failure messages: `list-units` from the
    /// first host that answers, then each host's `systemctl is-active`.
    pub fn snapshot(&self, units: &[&str]) -> String {
        let mut s = String::new();
        let via = (1..=self.n).find(|&i| self.is_up(i));
        match via.map(|i| (i, self.client(i, &["list-units"]))) {
            Some((i, Ok(out))) => s.push_str(&format!(
                "shoal list-units (h{i}, exit {}):\n{}{}",
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )),
            Some((i, Err(e))) => s.push_str(&format!("shoal list-units (h{i}): {e}\n")),
            None => s.push_str("no host is up\n"),
        }
        for i in 1..=self.n {
            let states = match self.is_active(i, units) {
                Ok(v) => units
                    .iter()
                    .zip(v)
                    .map(|(u, st)| format!("{u}={st}"))
                    .collect::<Vec<_>>()
                    .join(" "),
                Err(e) => e,
            };
            let agent = if self.is_up(i) {
                self.is_active(i, &["shoal.service"])
                    .map(|v| v.join(""))
                    .unwrap_or_else(|e| e)
            } else {
                "down".into()
            };
            s.push_str(&format!("h{i} (shoal.service {agent}): {states}\n"));
        }
        // The agents' own words, for whoever debugs the failure.
        for i in (1..=self.n).filter(|&i| self.is_up(i)) {
            s.push_str(&format!(
                "--- h{i} journal of shoal.service:\n{}",
                self.agent_journal(i, 12)
            ));
        }
        s
    }

    /// The last lines of the agent's journal in host `i`, for failure messages.
    pub fn agent_journal(&self, i: u32, lines: u32) -> String {
        let n = lines.to_string();
        self.cluster
            .exec(
                i,
                &["journalctl", "-u", "shoal.service", "--no-pager", "-n", &n],
            )
            .unwrap_or_else(|e| e)
    }

    /// Waits until every host in `hosts` lists exactly those members.
    pub fn wait_members(&self, hosts: &[u32], timeout: Duration) -> Result<Duration> {
        // Compared as sorted strings on both sides (10.77.0.10 sorts
        // before 10.77.0.2).
        let mut want: Vec<String> = hosts.iter().map(|&i| self.cluster.addr(i)).collect();
        want.sort();
        let mut last = String::new();
        wait(timeout, || {
            for &i in hosts {
                let mut ips: Vec<String> = match self.list_machines(i) {
                    Ok(rows) => rows.into_iter().map(|r| r.ip).collect(),
                    Err(e) => {
                        last = e;
                        return false;
                    }
                };
                ips.sort();
                if ips != want {
                    last = format!("h{i} lists {ips:?}, want {want:?}");
                    return false;
                }
            }
            true
        })
        .map_err(|t| {
            let journals: String = hosts
                .iter()
                .map(|&i| format!("--- h{i} journal:\n{}", self.agent_journal(i, 15)))
                .collect();
            format!("members did not see each other in {t:?}: {last}\n{journals}")
        })
    }
}

/// Calls `done` every [`POLL`] until it says true; the time it took, or
/// the timeout as the error.
pub fn wait(
    timeout: Duration,
    mut done: impl FnMut() -> bool,
) -> std::result::Result<Duration, Duration> {
    let t0 = Instant::now();
    loop {
        if done() {
            return Ok(t0.elapsed());
        }
        if t0.elapsed() >= timeout {
            return Err(timeout);
        }
        std::thread::sleep(POLL);
    }
}

/// A separate process that takes the cluster down when `owner` (this
/// process) ends without saying otherwise, Ctrl-C included: std cannot
/// catch SIGINT, but a pipe whose only writer dies reads end-of-file.
/// The watcher runs in its own process group, so Ctrl-C does not reach it.
pub struct Watchdog {
    stdin: Option<std::process::ChildStdin>,
    child: std::process::Child,
}

impl Watchdog {
    /// Arms a watcher that runs `teardown` (a program and its arguments,
    /// with `env`) unless [`Watchdog::disarm`] is called first.
    pub fn arm(teardown: &[&str], env: &[(&str, &str)]) -> Result<Watchdog> {
        let mut c = Command::new("sh");
        c.args([
            "-c",
            r#"read -r word; [ "$word" = keep ] && exit 0; echo "tearing the test hosts down ..." >&2; exec "$@""#,
            "sh",
        ])
        .args(teardown)
        .envs(env.iter().copied())
        .stdin(Stdio::piped());
        std::os::unix::process::CommandExt::process_group(&mut c, 0);
        let mut child = c.spawn().map_err(|e| format!("watchdog: {e}"))?;
        Ok(Watchdog {
            stdin: child.stdin.take(),
            child,
        })
    }

    /// The owner cleans up (or keeps the cluster) itself: the watcher exits.
    pub fn disarm(mut self) {
        use std::io::Write;
        if let Some(mut s) = self.stdin.take() {
            let _ = s.write_all(b"keep\n");
        }
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_units_rows_give_the_host_from_the_address() {
        let rows = parse_units(
            "example_01.service  41b7574b.../10.77.0.1  active  running\n\
             common@3.service    -                      inactive dead  no member can run it\n",
        );
        assert_eq!(rows[0].host, Some(1));
        assert_eq!(
            (rows[0].active.as_str(), rows[0].sub.as_str()),
            ("active", "running")
        );
        assert_eq!(rows[1].host, None);
        assert_eq!(rows[1].rest, "no member can run it");
    }

    #[test]
    fn metadata_compares_in_any_order() {
        assert_eq!(
            canonical_metadata("host=service_01,disk=ssd"),
            canonical_metadata("disk=ssd,host=service_01")
        );
        assert_eq!(canonical_metadata("-"), "");
    }

    #[test]
    fn a_sleep_copy_keeps_the_fleet_section_and_drops_docker() {
        let copy = sleep_copy(
            "[Unit]\nDescription=Example\nRequires=docker.service\n\n[X-Fleet]\n\
             MachineMetadata=disk=ssd\nConflicts=common@*.service\n\n\
             [Service]\nExecStart=/usr/bin/docker run busybox\n",
        );
        assert!(copy.contains("[X-Fleet]\nMachineMetadata=disk=ssd\nConflicts=common@*.service\n"));
        assert!(copy.contains("ExecStart=/bin/sleep infinity"));
        assert!(!copy.contains("/usr/bin/docker") && !copy.contains("Requires="));
    }

    #[test]
    fn the_chapter_units_name_the_given_machine() {
        let units = chapter_units("0123456789abcdef0123456789abcdef").unwrap();
        let test = &units
            .iter()
            .find(|u| u.0 == "example_test.service")
            .unwrap()
            .1;
        assert!(test.contains("MachineID=0123456789abcdef0123456789abcdef\n"));
        assert_eq!(units.len(), 7);
    }
}
