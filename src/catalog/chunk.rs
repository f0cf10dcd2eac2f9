//! Unit texts larger than a datagram: split into numbered chunks, reassembled with bounded memory.
//!
//! Architecture invariant: reassembly holds at most [`MAX_ASSEMBLIES`] texts of at most
//! [`super::MAX_TEXT_BYTES`] each, accepts only chunks of texts the caller asked for,
//! forgets partial texts after [`ASSEMBLY_TIMEOUT_MS`], and keeps a text only when its
//! digest matches.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::digest::text_digest;
use super::entry::Digest;
use super::MAX_TEXT_BYTES;
use crate::time::Millis;

/// Text bytes per chunk: leaves room in one datagram body for the framing around it.
pub const CHUNK_BYTES: usize = 1200;
/// Most chunks a text may have.
pub const MAX_CHUNKS: usize = MAX_TEXT_BYTES.div_ceil(CHUNK_BYTES);
/// Partial texts held at once; the oldest is dropped for a new one.
pub const MAX_ASSEMBLIES: usize = 8;
/// A partial text not completed within this time is dropped (it will be asked for again).
pub const ASSEMBLY_TIMEOUT_MS: u64 = 10_000;

/// One piece of a unit text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    pub digest: Digest,
    pub index: u16,
    pub total: u16,
    pub bytes: Vec<u8>,
}

/// Splits `text` into chunks (at least one, even for an empty text).
pub fn split(digest: Digest, text: &str) -> Vec<Chunk> {
    let bytes = text.as_bytes();
    let pieces: Vec<&[u8]> = if bytes.is_empty() {
        vec![&[][..]]
    } else {
        bytes.chunks(CHUNK_BYTES).collect()
    };
    let total = pieces.len() as u16;
    pieces
        .into_iter()
        .enumerate()
        .map(|(i, b)| Chunk {
            digest,
            index: i as u16,
            total,
            bytes: b.to_vec(),
        })
        .collect()
}

struct Partial {
    total: u16,
    parts: BTreeMap<u16, Vec<u8>>,
    started: Millis,
}

/// Texts being reassembled.
#[derive(Default)]
pub struct Assembly {
    partial: BTreeMap<Digest, Partial>,
}

impl Assembly {
    /// Takes a chunk of a text the caller wants; returns the text once complete and intact.
    pub fn accept(&mut self, now: Millis, chunk: Chunk) -> Option<String> {
        let total = chunk.total;
        if total == 0
            || usize::from(total) > MAX_CHUNKS
            || chunk.index >= total
            || chunk.bytes.len() > CHUNK_BYTES
        {
            return None;
        }
        self.expire(now);
        if !self.partial.contains_key(&chunk.digest) && self.partial.len() >= MAX_ASSEMBLIES {
            let oldest = self
                .partial
                .iter()
                .min_by_key(|(_, p)| p.started)
                .map(|(d, _)| *d);
            if let Some(d) = oldest {
                self.partial.remove(&d);
            }
        }
        let p = self.partial.entry(chunk.digest).or_insert_with(|| Partial {
            total,
            parts: BTreeMap::new(),
            started: now,
        });
        if p.total != total {
            return None;
        }
        p.parts.insert(chunk.index, chunk.bytes);
        if p.parts.len() < usize::from(total) {
            return None;
        }
        let p = self.partial.remove(&chunk.digest)?;
        let bytes: Vec<u8> = p.parts.into_values().flatten().collect();
        if bytes.len() > MAX_TEXT_BYTES {
            return None;
        }
        let text = String::from_utf8(bytes).ok()?;
        (text_digest(&text) == chunk.digest).then_some(text)
    }

    pub fn expire(&mut self, now: Millis) {
        self.partial
            .retain(|_, p| now.since(p.started) < ASSEMBLY_TIMEOUT_MS);
    }

    pub fn is_assembling(&self, digest: &Digest) -> bool {
        self.partial.contains_key(digest)
    }

    pub fn len(&self) -> usize {
        self.partial.len()
    }

    pub fn is_empty(&self) -> bool {
        self.partial.is_empty()
    }
}
