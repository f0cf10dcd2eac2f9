//! `systemctl status` and `journalctl` for `shoal status`/`shoal journal`, with a time limit.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::node::{Query, MAX_OUTPUT_BYTES};

/// A status or journal command that takes longer is killed.
const TOOL_TIMEOUT: Duration = Duration::from_secs(8);

#[derive(Clone, Debug)]
pub struct Tools {
    pub systemctl: PathBuf,
    pub journalctl: PathBuf,
}

impl Default for Tools {
    fn default() -> Tools {
        Tools {
            systemctl: "systemctl".into(),
            journalctl: "journalctl".into(),
        }
    }
}

impl Tools {
    /// Runs the query's command: (exit code, stdout and stderr), bounded in time and size.
    pub fn run(&self, q: &Query) -> (i32, String) {
        if !crate::systemd::is_unit_name(match q {
            Query::Status { unit } | Query::Journal { unit, .. } => unit,
        }) {
            return (2, "not a unit name\n".into());
        }
        let mut cmd = match q {
            Query::Status { unit } => {
                let mut c = Command::new(&self.systemctl);
                c.args(["status", "--no-pager", "--full", "--", unit]);
                c
            }
            Query::Journal { unit, lines } => {
                let mut c = Command::new(&self.journalctl);
                c.args(["--no-pager", "--lines", &lines.to_string(), "--unit", unit]);
                c
            }
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("SYSTEMD_COLORS", "0");
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => return (127, format!("{cmd:?}: {e}\n")),
        };
        // Read on threads so a chatty command cannot fill its pipe and stall.
        let reader = |r: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                if let Some(r) = r {
                    let _ = r.take(2 * MAX_OUTPUT_BYTES as u64).read_to_end(&mut buf);
                }
                buf
            })
        };
        let out = reader(
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        );
        let err = reader(
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        );
        let deadline = Instant::now() + TOOL_TIMEOUT;
        let code = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status.code().unwrap_or(1),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break 124;
                }
            }
        };
        let mut text = String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned();
        text.push_str(&String::from_utf8_lossy(&err.join().unwrap_or_default()));
        if code == 124 {
            text.push_str("\n[timed out]\n");
        }
        (code, text)
    }
}
