//! `cargo xtask hosts`: N real hosts on this machine, each booting real
//! systemd in `systemd-nspawn` on its own network namespace.
//!
//! Layout: namespaces `<name>-sw` (the switch: a bridge plus nftables fault
//! rules) and `<name>-h<i>` (host i, 10.77.0.i/24); a shared Debian root
//! debootstrapped once into `$SHOAL_HOSTS_DIR/rootfs` (default
//! `/var/tmp/shoal-hosts`), an overlay per host under
//! `$SHOAL_HOSTS_DIR/<name>/h<i>`, and `$SHOAL_HOSTS_DIR/<name>/bin`
//! bind-mounted read-only at `/opt/bin` in every host (`cargo xtask dist`
//! copies shoal there). The default cluster is named `shoal`; tests use
//! their own name so they never disturb a cluster a developer is using.
//! Needs root.

mod machine;
mod net;
mod rootfs;
mod run;

pub use machine::{children, Machine, HOST_PATH};
pub use run::run as run_cmd;
pub use run::Result;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The largest cluster: host numbers are the last byte of 10.77.0.0/24.
pub const HOSTS_MAX: u32 = 250;
/// How long a host may take to boot before `up`/`start` give up.
const BOOT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a clean shutdown may take before PID 1 is killed.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// A set of test hosts, named by a short prefix.
#[derive(Clone, Debug)]
pub struct Cluster {
    name: String,
    base: PathBuf,
}

impl Cluster {
    /// The cluster `name` (`[a-z0-9]`, up to 12 characters, so that
    /// `<name>-h250` stays short as a machine, namespace and cgroup name)
    /// under `base`.
    pub fn new(base: &Path, name: &str) -> Result<Cluster> {
        let ok = !name.is_empty()
            && name.len() <= 12
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !ok {
            return Err(format!("cluster name {name:?}: use 1-12 of [a-z0-9]"));
        }
        Ok(Cluster {
            name: name.to_string(),
            base: base.to_path_buf(),
        })
    }

    /// The cluster `$SHOAL_HOSTS_CLUSTER` (default `shoal`) under
    /// `$SHOAL_HOSTS_DIR`: another name lets a demo or benchmark run
    /// beside a developer's cluster and still be driven by `hosts exec`.
    pub fn from_env() -> Result<Cluster> {
        let name = std::env::var("SHOAL_HOSTS_CLUSTER").unwrap_or_else(|_| "shoal".into());
        Cluster::new(&base_dir(), &name)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn dir(&self) -> PathBuf {
        self.base.join(&self.name)
    }

    /// Mounted read-only at `/opt/bin` in every host.
    pub fn bin_dir(&self) -> PathBuf {
        self.dir().join("bin")
    }

    fn switch(&self) -> String {
        format!("{}-sw", self.name)
    }

    fn tag(&self) -> u16 {
        if self.name == "shoal" {
            return 0;
        }
        // FNV-1a folded to 16 bits: a stable, distinct UUID part per cluster.
        let h = self.name.bytes().fold(0x811c_9dc5u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        (h ^ (h >> 16)) as u16
    }

    pub fn machine(&self, i: u32) -> Machine {
        Machine {
            i,
            name: format!("{}-h{i}", self.name),
            dir: self.dir().join(format!("h{i}")),
            cluster_tag: self.tag(),
        }
    }

    /// The address of host `i`.
    pub fn addr(&self, i: u32) -> String {
        net::addr(i)
    }

    /// Host numbers that have state on disk, in order.
    pub fn hosts(&self) -> Vec<u32> {
        let mut v: Vec<u32> = fs::read_dir(self.dir())
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.file_name().to_str()?.strip_prefix('h')?.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        v.sort_unstable();
        v
    }

    fn existing(&self, i: u32) -> Result<Machine> {
        if !(1..=HOSTS_MAX).contains(&i) || !self.machine(i).dir.is_dir() {
            return Err(format!("no host {i} in cluster {} (use up)", self.name));
        }
        Ok(self.machine(i))
    }

    /// Tools, root file system and directories: everything before a boot.
    pub fn prepare(&self) -> Result<PathBuf> {
        if !run::is_root() {
            return Err("test hosts need root (namespaces, mounts, cgroups)".into());
        }
        rootfs::ensure_tools()?;
        let root = rootfs::ensure_rootfs(&self.base)?;
        fs::create_dir_all(self.bin_dir())
            .map_err(|e| format!("{}: {e}", self.bin_dir().display()))?;
        Ok(root)
    }

    /// Boots hosts 1..=n (those already running are left alone) and waits
    /// until systemd runs in each. Returns the wall time of the boot.
    pub fn up(&self, n: u32) -> Result<Duration> {
        if !(1..=HOSTS_MAX).contains(&n) {
            return Err(format!("N must be 1..={HOSTS_MAX}"));
        }
        let rootfs = self.prepare()?;
        let t0 = Instant::now();
        net::ensure_switch(&self.switch())?;
        for i in 1..=n {
            self.start_host(i, &rootfs)?;
        }
        for i in 1..=n {
            self.wait(i)?;
        }
        Ok(t0.elapsed())
    }

    fn start_host(&self, i: u32, rootfs: &Path) -> Result<()> {
        let m = self.machine(i);
        net::ensure_host(&self.switch(), &m.name, i)?;
        m.mount_root(rootfs)?;
        m.boot(&m.name, &self.bin_dir())
    }

    fn wait(&self, i: u32) -> Result<()> {
        let m = self.machine(i);
        let state = m.wait_booted(BOOT_TIMEOUT)?;
        let pid = m.leader_pid().unwrap_or(0);
        eprintln!("h{i} {} up (pid1={pid}, {state})", self.addr(i));
        Ok(())
    }

    /// Boots host `i` again after `stop`/`kill` (its disk, the overlay's
    /// upper directory, is kept).
    pub fn start(&self, i: u32) -> Result<Duration> {
        let m = self.existing(i)?;
        let rootfs = self.prepare()?;
        let t0 = Instant::now();
        net::ensure_switch(&self.switch())?;
        self.start_host(m.i, &rootfs)?;
        self.wait(m.i)?;
        Ok(t0.elapsed())
    }

    /// Clean shutdown of host `i`.
    pub fn stop(&self, i: u32) -> Result<()> {
        self.existing(i)?.stop(STOP_GRACE)
    }

    /// Power loss of host `i` (SIGKILL to its PID 1).
    pub fn kill(&self, i: u32) -> Result<()> {
        self.existing(i)?.kill()
    }

    pub fn cut(&self, i: u32) -> Result<()> {
        net::cut(&self.switch(), self.existing(i)?.i)
    }

    pub fn heal(&self, i: u32) -> Result<()> {
        net::heal(&self.switch(), self.existing(i)?.i)
    }

    pub fn block(&self, i: u32, j: u32) -> Result<()> {
        net::block(&self.switch(), self.existing(i)?.i, self.existing(j)?.i)
    }

    pub fn loss(&self, i: u32, pct: u32) -> Result<()> {
        net::loss(&self.switch(), self.existing(i)?.i, pct)
    }

    /// A command that runs `argv` in host `i` (all its namespaces, clean
    /// environment plus `env`).
    pub fn command(&self, i: u32, env: &[(&str, &str)], argv: &[&str]) -> Result<Command> {
        let m = self.existing(i)?;
        let lp = m
            .leader_pid()
            .ok_or_else(|| format!("host {i} is not running"))?;
        Ok(machine::nsenter(lp, env, argv))
    }

    /// Runs `argv` in host `i` and returns its stdout (an error on failure).
    pub fn exec(&self, i: u32, argv: &[&str]) -> Result<String> {
        run::run(&mut self.command(i, &[], argv)?)
    }

    /// One line per host, then the fault rules at the switch.
    pub fn status(&self) -> Result<String> {
        let mut s = String::new();
        for i in self.hosts() {
            let m = self.machine(i);
            let line = match m.leader_pid() {
                Some(lp) => {
                    let out = machine::nsenter(lp, &[], &["systemctl", "is-system-running"])
                        .output()
                        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                        .unwrap_or_else(|e| e.to_string());
                    format!(
                        "h{i} {} pid1={lp} id={} {out}\n",
                        self.addr(i),
                        m.machine_id()
                    )
                }
                None => format!("h{i} {} down\n", self.addr(i)),
            };
            s.push_str(&line);
        }
        if net::namespaces()?.contains(&self.switch()) {
            for r in net::rules(&self.switch())? {
                s.push_str(&format!("rule: {r}\n"));
            }
        }
        Ok(s)
    }

    /// Stops every host and removes all the cluster made: mounts, host
    /// directories, namespaces, cgroups, nspawn's propagation directories.
    /// Keeps the shared root and the bin directory. Idempotent: it also
    /// sweeps leftovers of a run that died half-way.
    pub fn down(&self) -> Result<()> {
        let hosts = self.hosts();
        let errors: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = hosts
                .iter()
                .map(|&i| s.spawn(move || self.machine(i).stop(STOP_GRACE)))
                .collect();
            handles
                .into_iter()
                .filter_map(|h| h.join().unwrap_or_else(|_| Err("panic".into())).err())
                .collect()
        });
        if !errors.is_empty() {
            return Err(errors.join("; "));
        }
        for i in &hosts {
            let m = self.machine(*i);
            if m.nspawn_pid().is_some() {
                return Err(format!("h{i} still running; not removing its files"));
            }
            m.unmount_root()?;
        }
        // Any mount left under the cluster directory (deepest first).
        let dir = self.dir();
        let mut stale: Vec<PathBuf> = machine::mount_points()
            .into_iter()
            .filter(|p| p.starts_with(&dir))
            .collect();
        stale.sort();
        for p in stale.iter().rev() {
            run::run(&mut run::cmd("umount", &["-l", &p.to_string_lossy()]))?;
        }
        for i in &hosts {
            let d = self.machine(*i).dir;
            fs::remove_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        let prefix = format!("{}-", self.name);
        for ns in net::namespaces()? {
            let Some(rest) = ns.strip_prefix(&prefix) else {
                continue;
            };
            let ours = rest == "sw"
                || rest
                    .strip_prefix('h')
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if ours {
                net::delete(&ns)?;
            }
        }
        if let Ok(rd) = fs::read_dir("/run/systemd/nspawn/propagate") {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    let _ = fs::remove_dir_all(e.path());
                }
            }
        }
        Ok(())
    }
}

/// Takes the test cluster `name` down and, once nothing is mounted, removes its
/// files (the copied binary included); errors are printed, not returned (the
/// real-host tests call it from drops and from their Ctrl-C watchdog).
pub fn teardown(name: &str) {
    let Ok(c) = Cluster::new(&base_dir(), name) else {
        return;
    };
    match c.down() {
        Ok(()) => {
            let _ = fs::remove_dir_all(c.dir());
        }
        Err(e) => eprintln!("cleaning up the test hosts: {e}"),
    }
}

/// `$SHOAL_HOSTS_DIR`, default `/var/tmp/shoal-hosts` (disk, not tmpfs:
/// the root file system is kept between runs).
pub fn base_dir() -> PathBuf {
    std::env::var_os("SHOAL_HOSTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/shoal-hosts"))
}

pub const USAGE: &str = "usage: cargo xtask hosts COMMAND
  up N            boot hosts 1..N (10.77.0.I), debootstrapping the root once
  down            stop all hosts and remove everything made for them
  status          each host's state, then the fault rules
  exec I CMD...   run CMD in host I (all its namespaces)
  cut I | heal I  drop all of host I's traffic at the switch / remove its rules
  block I J       drop traffic between hosts I and J only (heal I undoes)
  loss I PCT      drop PCT% of host I's packets each way
  kill I          power loss: SIGKILL host I's PID 1
  stop I | start I  clean shutdown / boot again (the disk is kept)
env: SHOAL_HOSTS_DIR (default /var/tmp/shoal-hosts), SHOAL_HOSTS_MIRROR,
     SHOAL_HOSTS_CLUSTER (default shoal)";

fn num(arg: Option<&String>, what: &str) -> Result<u32> {
    arg.ok_or_else(|| format!("missing {what}\n{USAGE}"))?
        .parse()
        .map_err(|_| format!("{what} must be a number"))
}

/// The `cargo xtask hosts ...` command line.
pub fn main(args: &[String]) -> Result<()> {
    let c = Cluster::from_env()?;
    let cmd = args.first().map(String::as_str).unwrap_or("");
    let t0 = Instant::now();
    match cmd {
        "up" => {
            let n = num(args.get(1), "N")?;
            let took = c.up(n)?;
            eprintln!("{n} hosts up in {:.2} s", took.as_secs_f64());
        }
        "down" => {
            c.down()?;
            eprintln!("down in {:.2} s", t0.elapsed().as_secs_f64());
        }
        "status" => print!("{}", c.status()?),
        "exec" => {
            let i = num(args.get(1), "I")?;
            let argv: Vec<&str> = args[2..].iter().map(String::as_str).collect();
            if argv.is_empty() {
                return Err(format!("exec needs a command\n{USAGE}"));
            }
            let status = c
                .command(i, &[], &argv)?
                .status()
                .map_err(|e| format!("nsenter: {e}"))?;
            std::process::exit(status.code().unwrap_or(1));
        }
        "cut" => c.cut(num(args.get(1), "I")?)?,
        "heal" => c.heal(num(args.get(1), "I")?)?,
        "block" => c.block(num(args.get(1), "I")?, num(args.get(2), "J")?)?,
        "loss" => c.loss(num(args.get(1), "I")?, num(args.get(2), "PCT")?)?,
        "kill" => {
            c.kill(num(args.get(1), "I")?)?;
            eprintln!("killed in {:.2} s", t0.elapsed().as_secs_f64());
        }
        "stop" => {
            c.stop(num(args.get(1), "I")?)?;
            eprintln!("stopped in {:.2} s", t0.elapsed().as_secs_f64());
        }
        "start" => {
            let took = c.start(num(args.get(1), "I")?)?;
            eprintln!("booted in {:.2} s", took.as_secs_f64());
        }
        _ => return Err(USAGE.to_string()),
    }
    Ok(())
}
