//! A tiny stderr logger: journald-friendly when stderr is not a terminal.
//!
//! Under journald (`JOURNAL_STREAM` set) or when stderr is a pipe, lines carry a
//! `<N>` syslog priority prefix (journald turns it into the entry's priority) and no
//! timestamp or colour, since the journal adds its own. On a terminal: `LEVEL message`.
//! The level comes from `SHOAL_LOG` (`error`, `warn`, `info`, `debug`, `trace`), default info.

use std::io::{IsTerminal, Write};

struct Logger {
    level: log::LevelFilter,
    priority_prefix: bool,
}

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= self.level
    }

    fn log(&self, r: &log::Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let line = if self.priority_prefix {
            let prio = match r.level() {
                log::Level::Error => 3,
                log::Level::Warn => 4,
                log::Level::Info => 6,
                log::Level::Debug | log::Level::Trace => 7,
            };
            format!("<{prio}>{}\n", r.args())
        } else {
            format!("{:<5} {}\n", r.level(), r.args())
        };
        // One write per line, so lines from threads don't interleave.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// Installs the logger once; later calls do nothing.
pub fn init() {
    let level = match std::env::var("SHOAL_LOG").as_deref() {
        Ok("error") => log::LevelFilter::Error,
        Ok("warn") => log::LevelFilter::Warn,
        Ok("debug") => log::LevelFilter::Debug,
        Ok("trace") => log::LevelFilter::Trace,
        _ => log::LevelFilter::Info,
    };
    let priority_prefix =
        std::env::var_os("JOURNAL_STREAM").is_some() || !std::io::stderr().is_terminal();
    let logger = Box::leak(Box::new(Logger {
        level,
        priority_prefix,
    }));
    if log::set_logger(logger).is_ok() {
        log::set_max_level(level);
    }
}
