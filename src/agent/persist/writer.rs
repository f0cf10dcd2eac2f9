//! The persistence writer: a thread that appends deltas to the log, fsyncs, and compacts.
//!
//! The event loop sends it jobs (a delta and/or a callback) and never waits. The
//! thread takes every job queued, applies their deltas to its [`SnapshotModel`],
//! appends them in one write and one fsync (group commit), then runs the
//! callbacks in order: a command's reply leaves only once its change is on disk.
//! When the log grows past [`COMPACT_FACTOR`] times the snapshot (and at least
//! [`COMPACT_MIN_BYTES`]), it writes a new snapshot from the model and a new empty
//! log. After a failed append or snapshot (a full disk, say) it logs the error,
//! leaves the files as they were, and tries a whole new snapshot again every
//! [`RETRY`]; the model holds every change meanwhile.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{write_base, Node, SnapshotModel};
use crate::store::LogWriter;

/// The log is compacted into a new snapshot when it is this many times larger.
pub const COMPACT_FACTOR: u64 = 2;
/// ... and at least this large (small catalogs need not compact on every command).
pub const COMPACT_MIN_BYTES: u64 = 1 << 20;
/// How soon a failed write is tried again.
pub const RETRY: Duration = Duration::from_secs(5);
/// How long leaving waits for the last save.
const FLUSH_WAIT: Duration = Duration::from_secs(10);

/// Runs once the jobs before it and its own delta are on disk; `true` when they
/// are, `false` when writing failed (logged; the old files stay).
pub type Done = Box<dyn FnOnce(bool) + Send>;

struct Job {
    delta: Option<Vec<u8>>,
    done: Option<Done>,
}

/// What the writer did so far (for tests, benches and the debug log).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PersistStats {
    /// Log bytes appended (frames included) and appends (fsyncs) made.
    pub appended_bytes: u64,
    pub appends: u64,
    /// Snapshots written by compaction, and the size of the last one.
    pub compactions: u64,
    pub snapshot_bytes: u64,
    /// Failed appends or snapshots.
    pub failures: u64,
}

/// The event loop's handle on the writer thread.
pub struct Persister {
    tx: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    stats: Arc<Mutex<PersistStats>>,
}

impl Persister {
    /// Writes `node`'s whole snapshot and an empty log now (before the event loop
    /// runs: the restored boot number is then used up), starts tracking its
    /// changes, and starts the writer thread.
    pub fn start(node: &mut Node, data_dir: &Path) -> Persister {
        let bytes = node.snapshot();
        let at = node.snapshot_time();
        node.track_changes();
        let log = write_base(&bytes, at, data_dir);
        let stats = Arc::new(Mutex::new(PersistStats {
            snapshot_bytes: bytes.len() as u64,
            ..PersistStats::default()
        }));
        let model = match SnapshotModel::decode(&bytes, at) {
            Ok(m) => m,
            Err(e) => {
                // Our own bytes always decode; if not, saving whole snapshots
                // is impossible too, so say so once and keep none.
                log::error!("cannot model the snapshot ({e}); changes are not saved");
                return Persister {
                    tx: None,
                    thread: None,
                    stats,
                };
            }
        };
        let (tx, rx) = mpsc::channel();
        let w = Writer {
            dir: data_dir.to_path_buf(),
            model,
            log,
            snapshot_len: bytes.len() as u64,
            retry_at: Instant::now(),
            stats: stats.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("persist".into())
            .spawn(move || w.run(rx));
        match thread {
            Ok(t) => Persister {
                tx: Some(tx),
                thread: Some(t),
                stats,
            },
            Err(e) => {
                log::error!("cannot start the persistence thread: {e}; changes are not saved");
                Persister {
                    tx: None,
                    thread: None,
                    stats,
                }
            }
        }
    }

    /// Hands what changed in `node` since the last save (if anything) to the
    /// writer; `done` runs once that and everything before it is on disk. Costs
    /// O(changes) on the caller's thread and never waits for the disk.
    pub fn save(&self, node: &mut Node, done: Option<Done>) {
        let delta = node.take_delta();
        if delta.is_none() && done.is_none() {
            return;
        }
        let job = Job { delta, done };
        let Some(tx) = &self.tx else {
            if let Some(d) = job.done {
                d(false);
            }
            return;
        };
        if let Err(mpsc::SendError(job)) = tx.send(job) {
            log::error!("the persistence thread is gone; a change is not saved");
            if let Some(d) = job.done {
                d(false);
            }
        }
    }

    /// [`Persister::save`] and wait until it is on disk (leaving, tests); whether it is.
    pub fn flush(&self, node: &mut Node) -> bool {
        let (tx, rx) = mpsc::channel();
        self.save(
            node,
            Some(Box::new(move |ok| {
                let _ = tx.send(ok);
            })),
        );
        rx.recv_timeout(FLUSH_WAIT).unwrap_or(false)
    }

    pub fn stats(&self) -> PersistStats {
        self.stats.lock().map(|s| *s).unwrap_or_default()
    }
}

impl Drop for Persister {
    /// Lets the writer finish what it was given, then joins it.
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Writer {
    dir: PathBuf,
    model: SnapshotModel,
    /// `None` after a failure: the next write is a whole snapshot.
    log: Option<LogWriter>,
    snapshot_len: u64,
    retry_at: Instant,
    stats: Arc<Mutex<PersistStats>>,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Job>) {
        loop {
            let first = if self.log.is_some() {
                match rx.recv() {
                    Ok(j) => j,
                    Err(_) => return,
                }
            } else {
                match rx.recv_timeout(RETRY) {
                    Ok(j) => j,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        self.compact_if_due();
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        // Last chance to save what only the model holds.
                        self.retry_at = Instant::now();
                        self.compact_if_due();
                        return;
                    }
                }
            };
            let mut jobs = vec![first];
            jobs.extend(rx.try_iter());
            self.batch(jobs);
        }
    }

    /// One group commit: apply, append, fsync, then the callbacks.
    fn batch(&mut self, jobs: Vec<Job>) {
        let mut records = Vec::new();
        let mut dones = Vec::new();
        for j in jobs {
            if let Some(d) = j.delta {
                match self.model.apply(&d) {
                    Ok(()) => records.push(d),
                    Err(e) => log::error!("a delta does not decode ({e}); dropped"),
                }
            }
            dones.extend(j.done);
        }
        let mut ok = true;
        if let Some(log) = &mut self.log {
            if !records.is_empty() {
                match log.append(&records) {
                    Ok(n) => self.note(|s| {
                        s.appended_bytes += n;
                        s.appends += 1;
                    }),
                    Err(e) => {
                        log::error!("{e}; the log is kept as it was, a new snapshot follows");
                        self.note(|s| s.failures += 1);
                        self.log = None;
                        self.retry_at = Instant::now();
                    }
                }
            }
        }
        if self.log.is_none() {
            ok = self.compact_if_due();
        }
        for d in dones {
            d(ok);
        }
        let due = self.log.as_ref().is_some_and(|l| {
            l.len() > COMPACT_MIN_BYTES && l.len() > COMPACT_FACTOR * self.snapshot_len
        });
        if due {
            self.retry_at = Instant::now();
            self.compact_if_due();
        }
    }

    /// Writes the model as a new snapshot and an empty log, unless a failure was
    /// too recent; whether the files now hold every change.
    fn compact_if_due(&mut self) -> bool {
        if Instant::now() < self.retry_at {
            return false;
        }
        let bytes = self.model.encode();
        self.log = write_base(&bytes, self.model.at(), &self.dir);
        if self.log.is_none() {
            self.retry_at = Instant::now() + RETRY;
            self.note(|s| s.failures += 1);
            return false;
        }
        self.snapshot_len = bytes.len() as u64;
        log::debug!(
            "compacted: a new snapshot of {} bytes ({} units)",
            bytes.len(),
            self.model.units()
        );
        self.note(|s| {
            s.compactions += 1;
            s.snapshot_bytes = bytes.len() as u64;
        });
        true
    }

    fn note(&self, f: impl FnOnce(&mut PersistStats)) {
        if let Ok(mut s) = self.stats.lock() {
            f(&mut s);
        }
    }
}
