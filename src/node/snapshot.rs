//! What a member keeps across restarts: a versioned postcard snapshot, and the
//! deltas (what changed since the last one was taken) that bring it up to date.
//!
//! A delta holds the current value of every record, tombstone lifetime, text and
//! installed unit that changed since the previous delta, plus the member's counters:
//! applied in order to the snapshot they follow ([`SnapshotModel`]), they give the
//! snapshot the member would have written at the last delta's time. Taking one costs
//! O(changes): the catalog and this module mark keys where they are changed.

mod model;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Node, NodeConfig};
use crate::catalog::{self, Catalog, CatalogDelta, CatalogSnapshot, Digest};
use crate::time::Millis;

pub use model::SnapshotModel;

/// The snapshot format, first byte of every snapshot.
pub const SNAPSHOT_FORMAT: u8 = 1;
/// The delta format, first byte of every delta.
pub const DELTA_FORMAT: u8 = 1;

/// The largest snapshot the catalog's limits allow, in bytes (postcard: a string
/// is its bytes plus a varint length of at most 5 bytes, a u64 at most 10).
/// A delta is never larger than a snapshot plus the keys it says are gone.
pub const SNAPSHOT_MAX_BYTES: usize = {
    use catalog::{MAX_MACHINE_BYTES, MAX_NAME_BYTES, MAX_STATUS_BYTES};
    // name, version (counter, machine), state (tag, target, seq, digest, len);
    // its tombstone lifetime (name, ms); its installed digest (name, digest).
    let unit = (MAX_NAME_BYTES + 5) * 3 + 10 + (MAX_MACHINE_BYTES + 5) + 2 + 10 + 16 + 5 + 10 + 16;
    // (member, unit), version (boot, counter), status (tag, active, sub).
    let report = MAX_MACHINE_BYTES + MAX_NAME_BYTES + 10 + 20 + 1 + (MAX_STATUS_BYTES + 5) * 2;
    // Every text is at least one byte but for one empty text, so its length
    // prefix at most doubles it.
    let texts = 2 * catalog::MAX_TEXT_TOTAL_BYTES + 1;
    let header = 1 + MAX_MACHINE_BYTES + 5 + 4 * 10 + 4 * 5;
    header + catalog::MAX_UNITS * unit + catalog::MAX_REPORTS * report + texts
};

// Sanity of the arithmetic: the texts alone, and all report keys alone, fit.
const _: () = assert!(SNAPSHOT_MAX_BYTES > 2 * catalog::MAX_TEXT_TOTAL_BYTES);
const _: () = assert!(SNAPSHOT_MAX_BYTES > catalog::MAX_REPORTS * catalog::MAX_NAME_BYTES);

#[derive(Serialize, Deserialize)]
struct SnapshotV1 {
    machine: String,
    boot: u64,
    report_counter: u64,
    installed: Vec<(String, Digest)>,
    catalog: CatalogSnapshot,
}

/// Why a snapshot was not taken back. Nothing was started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotError {
    UnknownFormat(u8),
    Corrupt(String),
    /// The snapshot belongs to another machine id (copied disk?).
    OtherMachine(String),
}

impl std::fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnapshotError::UnknownFormat(v) => write!(f, "unknown snapshot format {v}"),
            SnapshotError::Corrupt(e) => write!(f, "corrupt snapshot: {e}"),
            SnapshotError::OtherMachine(m) => write!(f, "the snapshot belongs to machine {m}"),
        }
    }
}

impl std::error::Error for SnapshotError {}

/// What changed outside the catalog since the last delta: installed units, and the
/// counters last written. Off until persistence turns it on.
#[derive(Default)]
pub(super) struct Tracker {
    on: bool,
    installed: BTreeSet<String>,
    boot: u64,
    report_counter: u64,
}

impl Tracker {
    /// Marks unit `name`'s installed digest (or its absence) as changed.
    pub(super) fn installed(&mut self, name: &str) {
        if self.on {
            self.installed.insert(name.to_string());
        }
    }
}

/// The change record: see the module comment.
#[derive(Serialize, Deserialize)]
struct DeltaV1 {
    /// The member's time when the delta was taken: tombstone lifetimes are as of it.
    at: u64,
    boot: u64,
    report_counter: u64,
    installed: Vec<(String, Option<Digest>)>,
    catalog: CatalogDelta,
}

impl Node {
    /// The state to keep across restarts (desired units, tombstones, texts, reports,
    /// counters), as of the last input's time.
    pub fn snapshot(&self) -> Vec<u8> {
        let s = SnapshotV1 {
            machine: self.cfg.machine_id.clone(),
            boot: self.persisted_boot(),
            report_counter: self.report_counter,
            installed: self
                .installed
                .iter()
                .map(|(n, d)| (n.clone(), *d))
                .collect(),
            catalog: self.catalog.snapshot(self.now),
        };
        let mut out = vec![SNAPSHOT_FORMAT];
        // Encoding our own plain types into a Vec cannot fail.
        out.extend(postcard::to_allocvec(&s).unwrap_or_default());
        out
    }

    /// The time [`Node::snapshot`]'s tombstone lifetimes are measured from (the last
    /// input's), to pair a snapshot with the deltas that follow it.
    pub fn snapshot_time(&self) -> Millis {
        self.now
    }

    fn persisted_boot(&self) -> u64 {
        self.boot.max(self.membership.identity().boot)
    }

    /// Starts tracking changes for [`Node::take_delta`]; call right after taking a
    /// full [`Node::snapshot`], which the deltas then follow.
    pub fn track_changes(&mut self) {
        self.catalog.track_changes();
        self.changes = Tracker {
            on: true,
            installed: BTreeSet::new(),
            boot: self.persisted_boot(),
            report_counter: self.report_counter,
        };
    }

    /// Whether anything worth keeping changed since the last delta.
    pub fn has_changes(&self) -> bool {
        let t = &self.changes;
        t.on && (self.catalog.has_changes()
            || !t.installed.is_empty()
            || t.boot != self.persisted_boot()
            || t.report_counter != self.report_counter)
    }

    /// Everything that changed since the last call (or [`Node::track_changes`]),
    /// encoded; `None` when nothing did. Costs O(changes), whatever the catalog's size.
    pub fn take_delta(&mut self) -> Option<Vec<u8>> {
        if !self.has_changes() {
            return None;
        }
        let installed = std::mem::take(&mut self.changes.installed)
            .into_iter()
            .map(|n| {
                let d = self.installed.get(&n).copied();
                (n, d)
            })
            .collect();
        let d = DeltaV1 {
            at: self.now.0,
            boot: self.persisted_boot(),
            report_counter: self.report_counter,
            installed,
            catalog: self.catalog.take_changes(self.now),
        };
        self.changes.boot = d.boot;
        self.changes.report_counter = d.report_counter;
        let mut out = vec![DELTA_FORMAT];
        // Encoding our own plain types into a Vec cannot fail.
        out.extend(postcard::to_allocvec(&d).unwrap_or_default());
        Some(out)
    }

    /// A member starting again from its snapshot, with the next boot number.
    pub fn restore(cfg: NodeConfig, now: Millis, bytes: &[u8]) -> Result<Node, SnapshotError> {
        Node::restore_with(cfg, now, bytes, |_| true)
    }

    /// [`Node::restore`], keeping as installed only the units for which `still_installed`
    /// holds: unit files live on tmpfs, so after a reboot systemd has none of them and
    /// they must be installed again before they can start.
    pub fn restore_with(
        cfg: NodeConfig,
        now: Millis,
        bytes: &[u8],
        still_installed: impl Fn(&str) -> bool,
    ) -> Result<Node, SnapshotError> {
        let (&format, body) = bytes
            .split_first()
            .ok_or(SnapshotError::Corrupt("empty".into()))?;
        if format != SNAPSHOT_FORMAT {
            return Err(SnapshotError::UnknownFormat(format));
        }
        let s: SnapshotV1 =
            postcard::from_bytes(body).map_err(|e| SnapshotError::Corrupt(e.to_string()))?;
        if s.machine != cfg.machine_id {
            return Err(SnapshotError::OtherMachine(s.machine));
        }
        let catalog = Catalog::restore(now, cfg.tombstone_ttl_ms, s.catalog);
        let installed: BTreeMap<String, Digest> = crate::btree::map(
            s.installed
                .into_iter()
                .filter(|(name, _)| still_installed(name)),
        );
        Ok(Node::start(
            cfg,
            now,
            s.boot.saturating_add(1),
            s.report_counter,
            catalog,
            installed,
        ))
    }
}

#[cfg(test)]
mod tests;
