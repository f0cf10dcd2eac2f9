//! `systemctl status` and `journalctl` for `shoal status`/`shoal journal` (and its `-f` pages), with a time limit.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::journal::{self, Made, Position, Run};
use crate::node::{Query, MAX_OUTPUT_BYTES};

/// A status or journal command that takes longer is killed.
const TOOL_TIMEOUT: Duration = Duration::from_secs(8);
/// Most bytes of a command's stdout (and of its stderr) kept; the rest is read and dropped.
const READ_BYTES: usize = 2 * MAX_OUTPUT_BYTES;
/// Bytes of the end of stdout kept past that bound (journalctl's cursor line).
const LAST_BYTES: usize = 2 * journal::MAX_CURSOR_BYTES;
/// Most journalctl runs for one follow page (each asks for fewer entries).
const MAX_FOLLOW_RUNS: usize = 5;

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

/// What a bounded read of a stream got.
#[derive(Default)]
struct Bounded {
    head: Vec<u8>,
    /// Whether `head` is all of it.
    complete: bool,
    /// The last bytes, when not complete.
    last: Vec<u8>,
}

/// Reads `r` to its end, keeping its first [`READ_BYTES`] and its last [`LAST_BYTES`]:
/// the command is never left blocked on a full pipe.
fn read_bounded(r: Option<Box<dyn Read + Send>>) -> Bounded {
    let mut got = Bounded {
        complete: true,
        ..Bounded::default()
    };
    let Some(mut r) = r else {
        return got;
    };
    let mut buf = [0u8; 8192];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let room = READ_BYTES.saturating_sub(got.head.len()).min(n);
        got.head.extend_from_slice(&buf[..room]);
        if room < n {
            got.complete = false;
            got.last.extend_from_slice(&buf[room..n]);
            if got.last.len() > 2 * LAST_BYTES {
                let drop = got.last.len() - LAST_BYTES;
                got.last.drain(..drop);
            }
        }
    }
    got
}

impl Tools {
    /// Runs the query's command(s): (exit code, output), bounded in time and size. A
    /// follow page's output is a page of [`crate::journal`] (exit code 0; journalctl's
    /// failures are inside).
    pub fn run(&self, q: &Query) -> (i32, String) {
        if !crate::systemd::is_unit_name(q.unit()) {
            return (2, "not a unit name\n".into());
        }
        let args: Vec<String> = match q {
            Query::Status { unit } => ["status", "--no-pager", "--full", "--", unit]
                .map(String::from)
                .to_vec(),
            Query::Journal { unit, lines } => {
                ["--no-pager", "--lines", &lines.to_string(), "--unit", unit]
                    .map(String::from)
                    .to_vec()
            }
            Query::Follow { unit, from } => return (0, self.follow_page(unit, from)),
        };
        let program = match q {
            Query::Status { .. } => &self.systemctl,
            _ => &self.journalctl,
        };
        let run = exec(program, &args);
        let mut text = run.stdout;
        text.push_str(&run.stderr);
        (run.code, text)
    }

    /// One page of `journal -f`: journalctl from `from`, with fewer entries while the
    /// page would not fit.
    fn follow_page(&self, unit: &str, from: &Position) -> String {
        let mut entries = journal::first_entries(from);
        let mut last = None;
        for _ in 0..MAX_FOLLOW_RUNS {
            let run = exec(
                &self.journalctl,
                &journal::journalctl_args(unit, from, entries),
            );
            match journal::make_page(from, entries, &run) {
                Made::Page(p) => return p,
                Made::Fewer(n) => entries = n,
            }
            last = Some(run);
        }
        // Only reached with entries that never fit: say so, keep the position.
        let run = Run {
            code: 1,
            complete: true,
            stderr: format!(
                "journalctl printed more than {} bytes for {entries} entries",
                last.map_or(0, |r| r.stdout.len())
            ),
            ..Run::default()
        };
        match journal::make_page(from, 1, &run) {
            Made::Page(p) => p,
            Made::Fewer(_) => String::new(),
        }
    }
}

/// Runs `program args`: its exit code and output, bounded in time and size.
fn exec(program: &PathBuf, args: &[String]) -> Run {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("SYSTEMD_COLORS", "0");
    let mut child = match crate::systemd::spawn_unless_busy(&mut cmd) {
        Ok(c) => c,
        Err(e) => {
            return Run {
                code: 127,
                complete: true,
                stderr: format!("{cmd:?}: {e}\n"),
                ..Run::default()
            }
        }
    };
    // Read on threads so a chatty command cannot fill its pipe and stall.
    let reader = |r: Option<Box<dyn Read + Send>>| std::thread::spawn(move || read_bounded(r));
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
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break 124;
            }
        }
    };
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let last = text(&out.last);
    let last_line = last
        .trim_end_matches('\n')
        .rsplit('\n')
        .next()
        .unwrap_or("")
        .to_string();
    let mut stderr = text(&err.head);
    if code == 124 {
        stderr.push_str("\n[timed out]\n");
    }
    Run {
        code,
        stdout: text(&out.head),
        complete: out.complete,
        last_line,
        stderr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_output_is_read_to_its_end_keeping_its_start_and_last_line() {
        let text = format!("{}\n-- cursor: s=1;t=2\n", "x".repeat(3 * READ_BYTES));
        let got = read_bounded(Some(Box::new(std::io::Cursor::new(text.into_bytes()))));
        assert!(!got.complete);
        assert_eq!(got.head.len(), READ_BYTES);
        assert!(String::from_utf8_lossy(&got.last).ends_with("\n-- cursor: s=1;t=2\n"));
        let short = read_bounded(Some(Box::new(std::io::Cursor::new(b"ok\n".to_vec()))));
        assert!(short.complete && short.head == b"ok\n");
    }

    #[test]
    fn a_chatty_command_does_not_stall_until_the_time_limit() {
        let t = Instant::now();
        let run = exec(
            &PathBuf::from("sh"),
            &[
                "-c".into(),
                "head -c 1000000 /dev/zero; echo; echo end".into(),
            ],
        );
        assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
        assert_eq!((run.code, run.complete), (0, false));
        assert_eq!(run.last_line, "end");
    }
}
