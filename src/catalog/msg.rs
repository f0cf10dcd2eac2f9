//! Catalog messages and their packing into datagram-sized bodies.

use serde::{Deserialize, Serialize};

use super::chunk::Chunk;
use super::entry::{Digest, ReportEntry, UnitEntry};
use crate::wire::{body_len, MAX_BODY_BYTES};

/// One replicated record as it travels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireEntry {
    Unit {
        name: String,
        entry: UnitEntry,
        /// For a tombstone: how long it has left to live, so it expires everywhere at about
        /// the same time instead of being revived by members that still hold it.
        ttl_left_ms: u64,
        /// The text itself when small (saves a round trip); otherwise fetched by digest.
        text: Option<String>,
    },
    Report {
        member: String,
        unit: String,
        entry: ReportEntry,
    },
}

/// What catalogs say to each other.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Msg {
    /// Records to merge: fresh updates (rumours) or anti-entropy repairs.
    Entries(Vec<WireEntry>),
    /// One fingerprint per bucket. The receiver sends its records of buckets that differ,
    /// and, when `reply`, its own summary so the sender can do the same (push-pull).
    Summary {
        buckets: Vec<u64>,
        reply: bool,
    },
    /// Please send the chunks of this text.
    WantText(Digest),
    Chunk(Chunk),
}

/// Room kept in a body for the envelopes around a catalog message.
const ENVELOPE_BYTES: usize = 16;

/// Packs entries into as few `Msg::Entries` bodies as fit one datagram each, in order.
pub fn pack(entries: Vec<WireEntry>) -> Vec<Msg> {
    let budget = MAX_BODY_BYTES - ENVELOPE_BYTES;
    let mut out = Vec::new();
    let mut batch: Vec<WireEntry> = Vec::new();
    let mut used = 0usize;
    for e in entries {
        let len = body_len(&e);
        if len > budget {
            // Cannot happen with validated entries (names and texts inlined are bounded).
            continue;
        }
        if used + len > budget && !batch.is_empty() {
            out.push(Msg::Entries(std::mem::take(&mut batch)));
            used = 0;
        }
        used += len;
        batch.push(e);
    }
    if !batch.is_empty() {
        out.push(Msg::Entries(batch));
    }
    out
}
