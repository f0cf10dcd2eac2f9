//! What changed in a catalog since it was last asked, so persistence costs O(change).
//!
//! The catalog marks the key of every record, tombstone deadline and text it inserts,
//! replaces or drops, at the place it does so; [`super::Catalog::take_changes`] then
//! reads the current value of each marked key (or its absence) and clears the marks.
//! Marking is off until someone asks for it (the agent's persistence does; a
//! simulated member keeps no second copy of its keys).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::entry::{Digest, ReportEntry, UnitEntry};

/// One changed thing, by key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKey {
    Unit(String),
    Report(String, String),
    Text(Digest),
}

/// The marks, and whether marking is on.
#[derive(Default)]
pub struct Changes {
    on: bool,
    keys: BTreeSet<ChangeKey>,
}

impl Changes {
    /// Turns marking on, forgetting earlier marks: the caller holds a full copy now.
    pub fn start(&mut self) {
        self.on = true;
        self.keys.clear();
    }

    /// Marks a key (built only when marking is on).
    pub fn mark(&mut self, key: impl FnOnce() -> ChangeKey) {
        if self.on {
            self.keys.insert(key());
        }
    }

    pub fn take(&mut self) -> BTreeSet<ChangeKey> {
        std::mem::take(&mut self.keys)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// A unit's persisted value: its record and, for a tombstone with a deadline, the
/// lifetime it has left (ms) when the change was taken.
pub type UnitValue = (UnitEntry, Option<u64>);

/// The current value of every key changed since the last take; `None`: gone.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogDelta {
    pub units: Vec<(String, Option<UnitValue>)>,
    pub reports: Vec<((String, String), Option<ReportEntry>)>,
    pub texts: Vec<(Digest, Option<String>)>,
    pub lamport: u64,
}

impl CatalogDelta {
    /// Whether no record changed (the Lamport counter alone is not worth a write).
    pub fn is_empty(&self) -> bool {
        self.units.is_empty() && self.reports.is_empty() && self.texts.is_empty()
    }
}
