//! The desired state on disk: a snapshot plus a log of changes, restored at boot.
//!
//! At start the agent writes a whole snapshot and an empty log that names it. From
//! then on the event loop only takes the node's delta (what changed, O(change)) and
//! hands it to the [`writer`] thread, which appends it to the log, fsyncs, and only
//! then lets the command's reply go: a reply still means the change is on disk,
//! and the loop never waits for the disk. The writer keeps its own
//! [`SnapshotModel`] up to date with the deltas, so when the log outgrows the
//! snapshot it writes a new snapshot from the model (compaction) without the loop.
//!
//! Restoring reads the snapshot, replays the log's records onto it, and drops a
//! torn last record (a crash mid-append). A snapshot that cannot be read back
//! (damaged, another format, another machine's) is reported loudly with its file
//! name, renamed aside to `<name>.corrupt` for a human to inspect, and the agent
//! starts empty: the other members still hold the desired state and gossip it
//! back, which beats a crash loop. Damage in the middle of the log: see [`replay`].

use std::path::{Path, PathBuf};

use crate::node::{Node, NodeConfig, SnapshotModel, SNAPSHOT_MAX_BYTES};
use crate::store::{self, LogBase, LogDamage, LogWriter, StoreErrorKind};
use crate::time::Millis;

mod writer;

pub use writer::{Done, PersistStats, Persister};

// The largest snapshot the catalog's limits allow must be writable and readable.
const _: () = assert!(SNAPSHOT_MAX_BYTES <= store::PAYLOAD_MAX);

/// The snapshot's file name in the data directory.
pub const SNAPSHOT_FILE: &str = "state.snapshot";
/// The change log's file name in the data directory.
pub const LOG_FILE: &str = "state.log";

pub fn snapshot_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SNAPSHOT_FILE)
}

pub fn log_path(data_dir: &Path) -> PathBuf {
    data_dir.join(LOG_FILE)
}

/// A member from its snapshot and log, or a new one when there is none (or it was
/// unusable). `owned`: the units whose files systemd still has (none after a reboot).
pub fn restore(
    cfg: NodeConfig,
    now: Millis,
    data_dir: &Path,
    owned: &std::collections::BTreeSet<String>,
) -> Node {
    let started = std::time::Instant::now();
    let path = snapshot_path(data_dir);
    let snapshot = match store::read_snapshot(&path) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            log::info!("no snapshot at {}: starting empty", path.display());
            return Node::new(cfg, now);
        }
        Err(e) => {
            let damaged = matches!(
                e.kind,
                StoreErrorKind::Corrupt(_) | StoreErrorKind::TooLarge { .. }
            );
            if damaged {
                set_aside(&path, &e.to_string());
            } else {
                log::error!("{e}; starting empty (the cluster gossips the desired state back)");
            }
            return Node::new(cfg, now);
        }
    };
    let (bytes, records) = replay(snapshot, &log_path(data_dir));
    match Node::restore_with(cfg.clone(), now, &bytes, |u| owned.contains(u)) {
        Ok(node) => {
            log::info!(
                "restored the desired state from {} and {records} log records ({} bytes, {} units) in {} ms",
                path.display(),
                bytes.len(),
                node.catalog().replica().units.len(),
                started.elapsed().as_millis()
            );
            node
        }
        Err(e) => {
            set_aside(&path, &format!("{}: {e}", path.display()));
            Node::new(cfg, now)
        }
    }
}

/// The snapshot brought up to date with the log that follows it, and how many
/// records were replayed. Without a usable log it is the snapshot as read.
///
/// A torn last record (short, or failing its CRC with nothing after it) is what a
/// crash mid-append leaves: it is dropped and cut off with a warning, as its
/// command was never acknowledged. A record failing its check with more bytes after
/// it is damage to data that was synced: the state is taken up to the record before
/// it (a state this member really had, as after a power cut there), the log is
/// copied aside as `state.log.corrupt`, and of the intact records after it only the
/// boot number and counters are taken, so that none is used twice. Applying their
/// changes across the gap could build a state that never existed; what they held
/// comes back from the other members' gossip.
fn replay(snapshot: Vec<u8>, log: &Path) -> (Vec<u8>, usize) {
    let read = match store::read_log(log) {
        Ok(Some(read)) => read,
        Ok(None) => return (snapshot, 0),
        Err(e) => {
            set_log_aside(
                log,
                &format!("{e}; the changes after the snapshot are lost"),
            );
            return (snapshot, 0);
        }
    };
    let base = LogBase::of(&snapshot, read.base.at);
    if read.base != base {
        // The new snapshot was renamed in and the crash came before the new log:
        // the snapshot already holds everything this log does.
        log::info!("{}: follows an earlier snapshot; ignored", log.display());
        return (snapshot, 0);
    }
    if read.records.is_empty() && read.damage.is_none() {
        return (snapshot, 0);
    }
    let Ok(mut model) = SnapshotModel::decode(&snapshot, Millis(read.base.at)) else {
        // Node::restore_with names the damage and sets the snapshot aside.
        return (snapshot, 0);
    };
    let mut applied = 0;
    let mut later: &[Vec<u8>] = &[];
    for (i, r) in read.records.iter().enumerate() {
        if let Err(e) = model.apply(r) {
            set_log_aside(log, &format!("{}: record {i}: {e}", log.display()));
            later = &read.records[i + 1..];
            break;
        }
        applied += 1;
    }
    match &read.damage {
        None => {}
        Some(LogDamage::TornTail { offset, bytes }) => {
            log::warn!(
                "{}: dropping a torn last record ({bytes} bytes at offset {offset}): an append a crash interrupted",
                log.display()
            );
            if let Err(e) = store::truncate_log(log, read.end) {
                log::error!("{e}");
            }
        }
        Some(LogDamage::Corrupt {
            offset,
            later: after,
        }) => {
            set_log_aside(
                log,
                &format!(
                    "{}: damaged record at offset {offset} with {} intact after it; the state is taken up to it",
                    log.display(),
                    after.len()
                ),
            );
            later = after;
        }
    }
    for r in later {
        let _ = model.raise_counters(r);
    }
    (model.encode(), applied)
}

fn set_aside(path: &Path, why: &str) {
    let aside = path.with_file_name(format!("{SNAPSHOT_FILE}.corrupt"));
    match std::fs::rename(path, &aside) {
        Ok(()) => log::error!(
            "{why}; kept as {} for inspection; starting empty (the cluster gossips the desired state back)",
            aside.display()
        ),
        Err(e) => log::error!(
            "{why}; could not move it to {}: {e}; starting empty",
            aside.display()
        ),
    }
}

/// Copies a damaged log aside for a human (the start writes a new one over it).
fn set_log_aside(log: &Path, why: &str) {
    let aside = log.with_file_name(format!("{LOG_FILE}.corrupt"));
    match std::fs::copy(log, &aside) {
        Ok(_) => log::error!(
            "{why}; the log is kept as {} for inspection",
            aside.display()
        ),
        Err(e) => log::error!("{why}; could not copy it to {}: {e}", aside.display()),
    }
}

/// Writes `node`'s whole snapshot and an empty log after it, synchronously;
/// failures are logged (the old snapshot and log stay). The agent does this once
/// at start; afterwards [`Persister`] appends deltas off the event loop.
pub fn save(node: &Node, data_dir: &Path) -> bool {
    write_base(&node.snapshot(), node.snapshot_time(), data_dir).is_some()
}

/// Writes snapshot `bytes` (lifetimes measured at `at`) and a new empty log naming
/// it; the open log, or `None` after logging why not.
fn write_base(bytes: &[u8], at: Millis, data_dir: &Path) -> Option<LogWriter> {
    let written = store::write_snapshot(&snapshot_path(data_dir), bytes)
        .and_then(|()| LogWriter::create(&log_path(data_dir), LogBase::of(bytes, at.0)));
    match written {
        Ok(log) => Some(log),
        Err(e) => {
            log::error!("saving the desired state: {e}");
            None
        }
    }
}

/// A cheap fingerprint of what the snapshot must keep: the boot number, the desired
/// units and this member's own reports (tombstone ages change every instant and
/// are not worth a disk write on their own). The driver no longer needs it (the
/// node says what changed, `Node::has_changes`); it costs O(catalog), so keep it
/// off the event loop.
pub fn fingerprint(node: &Node) -> u64 {
    use std::hash::Hasher;
    let mut h = siphasher::sip::SipHasher13::new_with_keys(0, 0);
    h.write_u64(node.identity().boot);
    let replica = node.catalog().replica();
    h.write(&postcard::to_allocvec(&replica.units).unwrap_or_default());
    for ((member, unit), r) in &replica.reports {
        if member == node.machine_id() {
            h.write(unit.as_bytes());
            h.write_u64(r.version.counter);
        }
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Key, KeyRing};

    fn cfg() -> NodeConfig {
        let keys = KeyRing::new(Key::from_bytes([1; 32]), vec![]).unwrap();
        NodeConfig::new("m1", "127.0.0.1:1".parse().unwrap(), keys, [2; 32])
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("shoal-persist-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_saved_desired_state_comes_back() {
        let d = dir("roundtrip");
        let mut node = Node::new(cfg(), Millis(0));
        node.handle_command(
            Millis(1),
            crate::node::Command::Submit {
                name: "a.service".into(),
                text: "[Service]\nExecStart=/bin/true\n".into(),
            },
        )
        .unwrap();
        assert!(save(&node, &d));
        let back = restore(cfg(), Millis(0), &d, &Default::default());
        assert!(back.catalog().unit("a.service").is_some());
        assert_eq!(
            back.catalog().replica().units,
            node.catalog().replica().units
        );
        // A restored member runs under the next boot number: that alone is worth a save.
        assert_eq!(back.identity().boot, node.identity().boot + 1);
        assert_ne!(fingerprint(&back), fingerprint(&node));
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn a_corrupt_snapshot_is_set_aside_and_the_agent_starts_empty() {
        let d = dir("corrupt");
        std::fs::write(snapshot_path(&d), b"garbage, not a snapshot").unwrap();
        let node = restore(cfg(), Millis(0), &d, &Default::default());
        assert!(node.catalog().replica().units.is_empty());
        assert!(!snapshot_path(&d).exists());
        assert!(d.join("state.snapshot.corrupt").exists());
        // A valid file whose payload is not a Node snapshot is set aside too.
        store::write_snapshot(&snapshot_path(&d), &[9, 9, 9]).unwrap();
        let _ = restore(cfg(), Millis(0), &d, &Default::default());
        assert!(!snapshot_path(&d).exists());
        let _ = std::fs::remove_dir_all(d);
    }
}

#[cfg(test)]
mod log_tests;
