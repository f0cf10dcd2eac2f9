//! Running host tools (ip, nft, nsenter, ...) with errors that name the command and its stderr.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// The harness reports errors as text: it is a developer tool, and every
/// error ends up printed for a human.
pub type Result<T> = std::result::Result<T, String>;

/// Builds a `Command` for `program args...`.
pub fn cmd(program: &str, args: &[&str]) -> Command {
    let mut c = Command::new(program);
    c.args(args);
    c
}

/// Runs `c` to completion and returns its stdout; a failure carries its stderr.
pub fn run(c: &mut Command) -> Result<String> {
    run_with_input(c, None)
}

/// Like [`run`], feeding `input` on stdin (for `nft -f -`).
pub fn run_with_input(c: &mut Command, input: Option<&str>) -> Result<String> {
    let shown = show(c);
    c.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = c.spawn().map_err(|e| format!("{shown}: {e}"))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| format!("{shown}: writing stdin: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{shown}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`{shown}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The command line of `c`, for messages.
pub fn show(c: &Command) -> String {
    let mut s = c.get_program().to_string_lossy().into_owned();
    for a in c.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Whether `program` is installed. The sbin directories are searched too
/// because `sudo` and some CI shells leave them out of PATH.
pub fn have(program: &str) -> bool {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .any(|d| !d.is_empty() && Path::new(d).join(program).is_file());
    found
}

/// Sends `signal` (e.g. "TERM", "KILL") to `pid` through the shell's `kill`
/// builtin: std has no kill(2) and the harness wants no libc dependency.
pub fn signal(pid: u32, signal: &str) -> Result<()> {
    run(&mut cmd(
        "sh",
        &[
            "-c",
            "kill -s \"$1\" \"$2\"",
            "sh",
            signal,
            &pid.to_string(),
        ],
    ))
    .map(drop)
}

/// Whether `pid` is a live process (a zombie counts as gone: our own test
/// process may hold an unreaped nspawn child).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// The parent pid of `pid`, from `/proc/PID/stat`.
pub fn parent_pid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The NUL-separated command line of `pid`, joined with spaces.
pub fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// Whether the calling process runs as root (from `/proc/self/status`).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}
