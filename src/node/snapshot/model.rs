//! A snapshot that deltas update in place, so a new one is written off the event loop.
//!
//! The persistence writer keeps one: it applies each delta it appends to its log,
//! and at compaction encodes the model into the very bytes [`Node::snapshot`]
//! would have produced at the last delta's time (a test holds the two equal).
//! Restoring does the same with the deltas read back from the log.
//!
//! [`Node::snapshot`]: crate::node::Node::snapshot

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};

use super::{DeltaV1, SnapshotError, SnapshotV1, DELTA_FORMAT, SNAPSHOT_FORMAT};
use crate::catalog::{text_digest, Digest, Replica};
use crate::time::Millis;

/// The snapshot's content in maps, keyed like the catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotModel {
    machine: String,
    boot: u64,
    report_counter: u64,
    lamport: u64,
    installed: BTreeMap<String, Digest>,
    replica: Replica,
    texts: BTreeMap<Digest, String>,
    /// Tombstone name -> (lifetime left, the time it was measured at).
    tombs: BTreeMap<String, (u64, u64)>,
    /// The time of the last change applied: lifetimes are encoded as of it.
    at: u64,
}

fn delta_of(bytes: &[u8]) -> Result<DeltaV1, SnapshotError> {
    let (&format, body) = bytes
        .split_first()
        .ok_or(SnapshotError::Corrupt("empty delta".into()))?;
    if format != DELTA_FORMAT {
        return Err(SnapshotError::UnknownFormat(format));
    }
    postcard::from_bytes(body).map_err(|e| SnapshotError::Corrupt(e.to_string()))
}

impl SnapshotModel {
    /// The model of snapshot `bytes`, whose tombstone lifetimes were measured at `at`.
    pub fn decode(bytes: &[u8], at: Millis) -> Result<SnapshotModel, SnapshotError> {
        let (&format, body) = bytes
            .split_first()
            .ok_or(SnapshotError::Corrupt("empty".into()))?;
        if format != SNAPSHOT_FORMAT {
            return Err(SnapshotError::UnknownFormat(format));
        }
        let s: SnapshotV1 =
            postcard::from_bytes(body).map_err(|e| SnapshotError::Corrupt(e.to_string()))?;
        let c = s.catalog;
        Ok(SnapshotModel {
            machine: s.machine,
            boot: s.boot,
            report_counter: s.report_counter,
            lamport: c.lamport,
            installed: crate::btree::map(s.installed),
            replica: c.replica,
            texts: crate::btree::map(c.texts.into_iter().map(|t| (text_digest(&t), t))),
            tombs: crate::btree::map(
                c.tomb_left_ms
                    .into_iter()
                    .map(|(n, left)| (n, (left, at.0))),
            ),
            at: at.0,
        })
    }

    /// Applies one delta (from [`crate::node::Node::take_delta`]); a delta that does
    /// not decode changes nothing.
    pub fn apply(&mut self, delta: &[u8]) -> Result<(), SnapshotError> {
        let d = delta_of(delta)?;
        self.at = self.at.max(d.at);
        self.boot = d.boot;
        self.report_counter = d.report_counter;
        self.lamport = d.catalog.lamport;
        for (name, digest) in d.installed {
            match digest {
                Some(digest) => self.installed.insert(name, digest),
                None => self.installed.remove(&name),
            };
        }
        for (name, value) in d.catalog.units {
            match value {
                Some((entry, left)) => {
                    match left {
                        Some(left) => self.tombs.insert(name.clone(), (left, d.at)),
                        None => self.tombs.remove(&name),
                    };
                    self.replica.units.insert(name, entry);
                }
                None => {
                    self.tombs.remove(&name);
                    self.replica.units.remove(&name);
                }
            }
        }
        for (key, value) in d.catalog.reports {
            match value {
                Some(r) => self.replica.reports.insert(key, r),
                None => self.replica.reports.remove(&key),
            };
        }
        for (digest, text) in d.catalog.texts {
            match text {
                Some(t) => self.texts.insert(digest, t),
                None => self.texts.remove(&digest),
            };
        }
        Ok(())
    }

    /// Takes only the counters of a delta, never lowering them: for intact records
    /// found after a damaged one, whose other changes cannot be trusted without the
    /// record before them, but whose boot number must never be used again.
    pub fn raise_counters(&mut self, delta: &[u8]) -> Result<(), SnapshotError> {
        let d = delta_of(delta)?;
        self.boot = self.boot.max(d.boot);
        self.report_counter = self.report_counter.max(d.report_counter);
        self.lamport = self.lamport.max(d.catalog.lamport);
        Ok(())
    }

    /// The time the encoded tombstone lifetimes are measured at.
    pub fn at(&self) -> Millis {
        Millis(self.at)
    }

    /// Desired units (live and destroyed) in the model.
    pub fn units(&self) -> usize {
        self.replica.units.len()
    }

    /// The snapshot bytes, as [`crate::node::Node::snapshot`] writes them.
    pub fn encode(&self) -> Vec<u8> {
        let out = Out {
            machine: &self.machine,
            boot: self.boot,
            report_counter: self.report_counter,
            installed: &self.installed,
            catalog: CatalogOut {
                replica: &self.replica,
                texts: Values(&self.texts),
                tomb_left_ms: Tombs(&self.tombs, self.at),
                lamport: self.lamport,
            },
        };
        let mut bytes = vec![SNAPSHOT_FORMAT];
        // Encoding our own plain types into a Vec cannot fail.
        bytes.extend(postcard::to_allocvec(&out).unwrap_or_default());
        bytes
    }
}

/// [`SnapshotV1`] by reference, field for field (postcard writes a map and a
/// sequence of pairs alike), so encoding copies nothing.
#[derive(Serialize)]
struct Out<'a> {
    machine: &'a str,
    boot: u64,
    report_counter: u64,
    installed: &'a BTreeMap<String, Digest>,
    catalog: CatalogOut<'a>,
}

/// [`crate::catalog::CatalogSnapshot`] by reference.
#[derive(Serialize)]
struct CatalogOut<'a> {
    replica: &'a Replica,
    texts: Values<'a>,
    tomb_left_ms: Tombs<'a>,
    lamport: u64,
}

/// The texts in digest order, as the catalog lists them.
struct Values<'a>(&'a BTreeMap<Digest, String>);

impl Serialize for Values<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.values())
    }
}

/// Each tombstone's lifetime left as of the model's time.
struct Tombs<'a>(&'a BTreeMap<String, (u64, u64)>, u64);

impl Serialize for Tombs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let now = self.1;
        s.collect_seq(
            self.0
                .iter()
                .map(|(n, (left, at))| (n, left.saturating_sub(now.saturating_sub(*at)))),
        )
    }
}
