//! The host tools the harness needs, and the shared read-only Debian root file system.

use super::run::{cmd, have, run, Result};
use std::fs;
use std::path::{Path, PathBuf};

/// (program, Debian package) pairs the harness calls.
const TOOLS: [(&str, &str); 5] = [
    ("systemd-nspawn", "systemd-container"),
    ("debootstrap", "debootstrap"),
    ("nft", "nftables"),
    ("ip", "iproute2"),
    ("nsenter", "util-linux"),
];

/// The Debian release of the hosts. Bookworm matches this machine, so test
/// binaries built here (glibc) also run inside a host.
const SUITE: &str = "bookworm";

/// What a host needs beyond minbase: systemd as PID 1, its D-Bus, and tools
/// that tests use to look at the network and processes.
const INCLUDE: &str = "systemd,systemd-sysv,dbus,iproute2,iputils-ping,procps,python3-minimal";

/// Units that only make noise or slow boots in a throwaway host.
const MASKED: [&str; 8] = [
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "dpkg-db-backup.timer",
    "e2scrub_all.timer",
    "fstrim.timer",
    "e2scrub_reap.service",
    "systemd-pstore.service",
    "console-getty.service",
];

/// Installs the missing tools with apt (once; a no-op when all are present).
pub fn ensure_tools() -> Result<()> {
    let missing: Vec<&str> = TOOLS
        .iter()
        .filter(|(prog, _)| !have(prog))
        .map(|(_, pkg)| *pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !have("apt-get") {
        return Err(format!(
            "missing {missing:?} and no apt-get to install them"
        ));
    }
    eprintln!("installing {} ...", missing.join(" "));
    run(&mut cmd("apt-get", &["update", "-q"]))?;
    let mut install = cmd("apt-get", &["install", "-y", "-q"]);
    install
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive");
    run(&mut install)?;
    Ok(())
}

/// The mirror apt on this machine already uses (deb822 `URIs:` or a
/// `deb` line), so debootstrap goes where the network allows; env
/// `SHOAL_HOSTS_MIRROR` overrides it.
fn mirror() -> String {
    if let Ok(m) = std::env::var("SHOAL_HOSTS_MIRROR") {
        return m;
    }
    let mut files: Vec<PathBuf> = fs::read_dir("/etc/apt/sources.list.d")
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    files.push(PathBuf::from("/etc/apt/sources.list"));
    for f in files {
        let Ok(text) = fs::read_to_string(&f) else {
            continue;
        };
        for line in text.lines() {
            let mut words = line.split_whitespace();
            let found = match words.next() {
                Some("URIs:") => words.next(),
                Some("deb") => words.find(|w| !w.starts_with('[')),
                _ => None,
            };
            if let Some(url) = found.filter(|u| u.contains("debian") && !u.contains("security")) {
                return url.to_string();
            }
        }
    }
    "http://deb.debian.org/debian".to_string()
}

/// Returns the shared root file system under `dir`, debootstrapping it first
/// if needed (~40 s once). It is built in a temporary directory and renamed
/// into place, so a half-built root is never used and two concurrent callers
/// cannot both half-build one.
pub fn ensure_rootfs(dir: &Path) -> Result<PathBuf> {
    let root = dir.join("rootfs");
    if root.join("lib/systemd/systemd").exists() {
        return Ok(root);
    }
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let tmp = dir.join(format!("rootfs.tmp.{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    let log = dir.join("debootstrap.log");
    let mirror = mirror();
    eprintln!(
        "debootstrapping {SUITE} from {mirror} into {} (~40 s) ...",
        root.display()
    );
    let tmp_s = tmp.to_string_lossy().into_owned();
    let include = format!("--include={INCLUDE}");
    let out = run(&mut cmd(
        "debootstrap",
        &["--variant=minbase", &include, SUITE, &tmp_s, &mirror],
    ));
    if let Err(e) = out {
        let _ = fs::write(&log, &e);
        let _ = fs::remove_dir_all(&tmp);
        return Err(format!("debootstrap failed (see {}): {e}", log.display()));
    }
    customize(&tmp)?;
    if let Err(e) = fs::rename(&tmp, &root) {
        let _ = fs::remove_dir_all(&tmp);
        if !root.join("lib/systemd/systemd").exists() {
            return Err(format!("renaming {} into place: {e}", tmp.display()));
        }
    }
    Ok(root)
}

/// Makes the root fit for many hosts at once.
fn customize(root: &Path) -> Result<()> {
    let io = |what: &Path, e: std::io::Error| format!("{}: {e}", what.display());
    // Empty machine-id: each boot takes the container UUID we pass, so every
    // host gets its own stable id from one shared lower layer.
    let mid = root.join("etc/machine-id");
    fs::write(&mid, "").map_err(|e| io(&mid, e))?;
    // Otherwise systemd copies dbus's old id back into /etc/machine-id.
    let dbus = root.join("var/lib/dbus");
    fs::create_dir_all(&dbus).map_err(|e| io(&dbus, e))?;
    let dbus_id = dbus.join("machine-id");
    let _ = fs::remove_file(&dbus_id);
    std::os::unix::fs::symlink("/etc/machine-id", &dbus_id).map_err(|e| io(&dbus_id, e))?;
    // The hostname then comes from nspawn --hostname.
    let _ = fs::remove_file(root.join("etc/hostname"));
    for unit in MASKED {
        let link = root.join("etc/systemd/system").join(unit);
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink("/dev/null", &link).map_err(|e| io(&link, e))?;
    }
    if let Ok(rd) = fs::read_dir(root.join("var/cache/apt/archives")) {
        for e in rd.flatten() {
            if e.path().extension().is_some_and(|x| x == "deb") {
                let _ = fs::remove_file(e.path());
            }
        }
    }
    Ok(())
}
