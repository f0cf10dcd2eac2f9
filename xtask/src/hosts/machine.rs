//! One host: its overlay root, its own cgroup, and the `systemd-nspawn`
//! process that boots real systemd in it.
//!
//! Every pid the harness signals was recorded when it started the process,
//! and is checked against `/proc` first (command line or parent), so a
//! recycled pid is never hit.

use super::run::{alive, cmd, cmdline, parent_pid, run, signal, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// PATH inside a host; `/opt/bin` holds shoal.
pub const HOST_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/opt/bin";

/// Cgroup hierarchies that nspawn uses on this hybrid-cgroup machine. Each
/// host gets its own directory in both: without it every container would
/// share nspawn's `--keep-unit` cgroup and trip over the others' `/payload`.
const CGROUP_ROOTS: [&str; 2] = ["/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified"];

/// Host number `i` of a cluster, and where its state lives on this machine.
#[derive(Clone, Debug)]
pub struct Machine {
    pub i: u32,
    /// Machine, namespace and cgroup name, e.g. `shoal-h1`.
    pub name: String,
    /// `<cluster dir>/h<i>`: upper/work of the overlay, the mounted root,
    /// the console log and the recorded pids.
    pub dir: PathBuf,
    /// Distinguishes clusters in the machine UUIDs (0 for the default one).
    pub cluster_tag: u16,
}

impl Machine {
    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    fn pid_file(&self, what: &str) -> PathBuf {
        self.dir.join(format!("{what}.pid"))
    }

    fn read_pid(&self, what: &str) -> Option<u32> {
        fs::read_to_string(self.pid_file(what))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// The running nspawn process we started for this host, if any.
    pub fn nspawn_pid(&self) -> Option<u32> {
        let pid = self.read_pid("nspawn")?;
        let ours = alive(pid)
            && cmdline(pid).contains("systemd-nspawn")
            && cmdline(pid).contains(&format!("--machine={}", self.name));
        ours.then_some(pid)
    }

    /// The host's PID 1 (systemd), as seen from this machine.
    pub fn leader_pid(&self) -> Option<u32> {
        let np = self.nspawn_pid()?;
        if let Some(lp) = self.read_pid("leader") {
            if alive(lp) && parent_pid(lp) == Some(np) {
                return Some(lp);
            }
        }
        children(np).into_iter().next()
    }

    /// The container's machine-id (32 hex), derived from the cluster and host
    /// number so it is stable across boots and readable in logs. The host
    /// number is in the first 8 characters, the short id that `list-units`
    /// and `list-machines` show (`00010002...` style, tag then host), so
    /// members are told apart there too.
    pub fn uuid(&self) -> String {
        format!(
            "{:04x}{:04x}-5ea1-4000-8000-{:012x}",
            self.cluster_tag, self.i, self.i
        )
    }

    pub fn machine_id(&self) -> String {
        self.uuid().replace('-', "")
    }

    /// Mounts the overlay: the shared read-only root below, this host's
    /// private upper directory above (kept across stop/start, like a disk).
    pub fn mount_root(&self, rootfs: &Path) -> Result<()> {
        let io = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
        for d in ["upper", "work", "root"] {
            let p = self.dir.join(d);
            fs::create_dir_all(&p).map_err(|e| io(&p, e))?;
        }
        let root = self.root();
        if !is_mountpoint(&root) {
            let opts = format!(
                "lowerdir={},upperdir={},workdir={}",
                rootfs.display(),
                self.dir.join("upper").display(),
                self.dir.join("work").display()
            );
            run(&mut cmd(
                "mount",
                &[
                    "-t",
                    "overlay",
                    &self.name,
                    "-o",
                    &opts,
                    &root.to_string_lossy(),
                ],
            ))?;
        }
        let hostname = root.join("etc/hostname");
        if !hostname.exists() {
            fs::write(&hostname, format!("h{}\n", self.i)).map_err(|e| io(&hostname, e))?;
        }
        Ok(())
    }

    pub fn unmount_root(&self) -> Result<()> {
        let root = self.root();
        if is_mountpoint(&root) {
            run(&mut cmd("umount", &[&root.to_string_lossy()]))
                .or_else(|_| run(&mut cmd("umount", &["-l", &root.to_string_lossy()])))?;
        }
        Ok(())
    }

    /// Starts `systemd-nspawn --boot` in the background, in the host's own
    /// cgroup and network namespace, with `bin` read-only at `/opt/bin`.
    pub fn boot(&self, netns: &str, bin: &Path) -> Result<()> {
        if self.nspawn_pid().is_some() {
            return Ok(());
        }
        for c in CGROUP_ROOTS {
            let p = Path::new(c).join(&self.name);
            if Path::new(c).is_dir() {
                fs::create_dir_all(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            }
        }
        let log = self.dir.join("console.log");
        let out = fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        // A shell moves itself into the cgroup and then execs nspawn, so the
        // recorded pid is nspawn's and no unsafe pre_exec hook is needed.
        let script = r#"cg=$1; shift
for c in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified; do
  [ -d "$c/$cg" ] && echo $$ > "$c/$cg/cgroup.procs"
done
exec systemd-nspawn "$@""#;
        let mut c = Command::new("sh");
        c.args(["-c", script, "sh", &self.name])
            .arg("--boot")
            .arg("--register=no")
            .arg("--keep-unit")
            .arg("--console=passive")
            .arg(format!("--machine={}", self.name))
            .arg(format!("--hostname=h{}", self.i))
            .arg(format!("--uuid={}", self.uuid()))
            .arg(format!("--directory={}", self.root().display()))
            .arg(format!("--network-namespace-path=/run/netns/{netns}"))
            .arg(format!("--bind-ro={}:/opt/bin", bin.display()))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        // Its own process group: a Ctrl-C of the xtask must not take hosts down.
        std::os::unix::process::CommandExt::process_group(&mut c, 0);
        let child = c
            .spawn()
            .map_err(|e| format!("starting systemd-nspawn: {e}"))?;
        let _ = fs::remove_file(self.pid_file("leader"));
        fs::write(self.pid_file("nspawn"), child.id().to_string())
            .map_err(|e| format!("recording nspawn pid: {e}"))?;
        Ok(())
    }

    /// Waits until systemd in the host says `running` or `degraded`.
    pub fn wait_booted(&self, timeout: Duration) -> Result<String> {
        let t0 = Instant::now();
        let mut last = String::from("?");
        while t0.elapsed() < timeout {
            // Just the pid we recorded: while the shell execs nspawn, its
            // /proc cmdline can read empty, so nspawn_pid() may blink.
            let Some(np) = self.read_pid("nspawn").filter(|&p| alive(p)) else {
                return Err(format!(
                    "nspawn for h{} is gone; end of {}:\n{}",
                    self.i,
                    self.dir.join("console.log").display(),
                    self.console_tail()
                ));
            };
            if let Some(lp) = children(np).into_iter().next() {
                if let Ok(out) = nsenter(lp, &[], &["systemctl", "is-system-running"]).output() {
                    last = String::from_utf8_lossy(&out.stdout).trim().to_string();
                    if last == "running" || last == "degraded" {
                        fs::write(self.pid_file("leader"), lp.to_string())
                            .map_err(|e| format!("recording leader pid: {e}"))?;
                        return Ok(last);
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "h{} did not boot in {timeout:?} (state '{last}'); end of {}:\n{}",
            self.i,
            self.dir.join("console.log").display(),
            self.console_tail()
        ))
    }

    /// The last lines of the host's console, for error messages (the file
    /// itself is gone once `down` has cleaned up).
    fn console_tail(&self) -> String {
        let text = fs::read_to_string(self.dir.join("console.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// Clean shutdown: nspawn turns SIGTERM into a halt of the host; after
    /// `grace` its PID 1 and then nspawn are killed.
    pub fn stop(&self, grace: Duration) -> Result<()> {
        if let Some(np) = self.nspawn_pid() {
            let lp = self.leader_pid();
            signal(np, "TERM")?;
            if !wait_gone(np, grace) {
                if let Some(lp) = lp.filter(|&lp| parent_pid(lp) == Some(np)) {
                    let _ = signal(lp, "KILL");
                }
                if !wait_gone(np, Duration::from_secs(2)) && self.nspawn_pid().is_some() {
                    signal(np, "KILL")?;
                    wait_gone(np, Duration::from_secs(2));
                }
            }
        }
        self.forget()
    }

    /// Power loss: SIGKILL to the host's PID 1; nspawn then exits by itself.
    pub fn kill(&self) -> Result<()> {
        let np = self
            .nspawn_pid()
            .ok_or_else(|| format!("host {} is not running", self.i))?;
        if let Some(lp) = self.leader_pid() {
            signal(lp, "KILL")?;
        }
        if !wait_gone(np, Duration::from_secs(5)) && self.nspawn_pid().is_some() {
            signal(np, "KILL")?;
            wait_gone(np, Duration::from_secs(2));
        }
        self.forget()
    }

    /// Drops the pid records and the (now empty) cgroups.
    fn forget(&self) -> Result<()> {
        let _ = fs::remove_file(self.pid_file("nspawn"));
        let _ = fs::remove_file(self.pid_file("leader"));
        for c in CGROUP_ROOTS {
            remove_cgroup(&Path::new(c).join(&self.name));
        }
        Ok(())
    }
}

/// A command that runs `argv` inside the host whose PID 1 is `leader`, in
/// all its namespaces, with a clean environment plus `env`.
pub fn nsenter(leader: u32, env: &[(&str, &str)], argv: &[&str]) -> Command {
    let mut c = Command::new("nsenter");
    c.args([
        "-t",
        &leader.to_string(),
        "-m",
        "-u",
        "-i",
        "-n",
        "-p",
        "-C",
        "--",
    ])
    .args(["env", "-i"])
    .arg(format!("PATH={HOST_PATH}"))
    .args(["TERM=dumb", "HOME=/root"]);
    for (k, v) in env {
        c.arg(format!("{k}={v}"));
    }
    c.args(argv);
    c
}

/// Child pids of `pid` (all its threads), from `/proc/PID/task/*/children`.
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let t0 = Instant::now();
    while alive(pid) {
        if t0.elapsed() >= timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Removes a cgroup directory tree bottom-up (only empty cgroups can go;
/// a busy one is left and reported by `status`).
fn remove_cgroup(p: &Path) {
    if let Ok(rd) = fs::read_dir(p) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup(&e.path());
            }
        }
        let _ = fs::remove_dir(p);
    }
}

/// Mount points now, from `/proc/self/mountinfo` (field 5).
pub fn mount_points() -> Vec<PathBuf> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .collect()
}

pub fn is_mountpoint(p: &Path) -> bool {
    mount_points().iter().any(|m| m == p)
}
