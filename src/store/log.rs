//! The change log next to a snapshot: append-only records, each framed and checksummed.
//!
//! ```text
//! header (36 bytes, written once, atomically, like a snapshot)
//!      0     8  magic  "SHOALLOG"
//!      8     4  format version, little-endian (1)
//!     12     4  CRC-32 of the snapshot payload this log follows
//!     16     8  that payload's length
//!     24     8  the caller's time the snapshot was taken at (opaque here)
//!     32     4  CRC-32 of bytes 0..32
//! then records, each:
//!      0     4  payload length n, little-endian
//!      4     n  payload
//!    4+n     4  CRC-32 of bytes 0..4+n (the length and the payload)
//! ```
//! The header names the snapshot it follows: a log left over from before a
//! compaction (the new snapshot was renamed in, the crash came before the new log
//! was) names the old snapshot and is recognised as stale. Appends are written in
//! one `write` and then `fdatasync`ed; a crash mid-append leaves a short or
//! mismatching last record, the torn tail, which [`read_log`] reports and
//! [`truncate_log`] cuts off. See [`LogDamage`] for damage before the end.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::{err, StoreError, StoreErrorKind, PAYLOAD_MAX};
use crate::store::crc32::crc32;

pub const LOG_MAGIC: [u8; 8] = *b"SHOALLOG";
pub const LOG_VERSION: u32 = 1;
pub const LOG_HEADER_LEN: usize = 36;
/// Bytes a record adds to its payload: length and CRC.
pub const RECORD_OVERHEAD: usize = 8;

/// The snapshot a log follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogBase {
    pub snapshot_crc: u32,
    pub snapshot_len: u64,
    /// Opaque to the store: the caller's clock reading for the snapshot.
    pub at: u64,
}

impl LogBase {
    /// The base naming snapshot payload `payload`.
    pub fn of(payload: &[u8], at: u64) -> LogBase {
        LogBase {
            snapshot_crc: crc32(payload),
            snapshot_len: payload.len() as u64,
            at,
        }
    }

    fn encode(&self) -> [u8; LOG_HEADER_LEN] {
        let mut h = [0u8; LOG_HEADER_LEN];
        h[0..8].copy_from_slice(&LOG_MAGIC);
        h[8..12].copy_from_slice(&LOG_VERSION.to_le_bytes());
        h[12..16].copy_from_slice(&self.snapshot_crc.to_le_bytes());
        h[16..24].copy_from_slice(&self.snapshot_len.to_le_bytes());
        h[24..32].copy_from_slice(&self.at.to_le_bytes());
        let crc = crc32(&h[0..32]);
        h[32..36].copy_from_slice(&crc.to_le_bytes());
        h
    }

    fn decode(h: &[u8]) -> Result<LogBase, String> {
        if h.len() < LOG_HEADER_LEN {
            return Err(format!("{} bytes, shorter than the header", h.len()));
        }
        let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&h[i..i + 8]);
            u64::from_le_bytes(b)
        };
        if h[0..8] != LOG_MAGIC {
            return Err("not a shoal log (bad magic)".into());
        }
        if u32_at(32) != crc32(&h[0..32]) {
            return Err("header checksum mismatch".into());
        }
        if u32_at(8) != LOG_VERSION {
            return Err(format!("format version {}", u32_at(8)));
        }
        Ok(LogBase {
            snapshot_crc: u32_at(12),
            snapshot_len: u64_at(16),
            at: u64_at(24),
        })
    }
}

/// The frame of one record.
pub fn frame(payload: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// Damage found while reading a log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogDamage {
    /// The last record is cut short or fails its CRC and nothing follows it: an
    /// append a crash interrupted. The records before it are whole.
    TornTail { offset: u64, bytes: u64 },
    /// A record fails its check and more bytes follow: not a crash mid-append
    /// (appends only ever add at the end, and each is synced before the next), so
    /// the disk damaged written data. `later` holds the intact records found after
    /// it while the frames still lined up.
    Corrupt { offset: u64, later: Vec<Vec<u8>> },
}

/// A log read back: its base, the intact records up to any damage, and the damage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRead {
    pub base: LogBase,
    pub records: Vec<Vec<u8>>,
    /// Where the intact records end.
    pub end: u64,
    pub damage: Option<LogDamage>,
}

/// What one frame at `at` is.
enum Frame {
    Whole(Vec<u8>, usize),
    /// Cut short by the end of the file.
    Short,
    /// Its length is impossible or its CRC fails; `Some(next)` when the length was
    /// plausible and the next frame would start at `next`.
    Bad(Option<usize>),
}

fn frame_at(bytes: &[u8], at: usize) -> Frame {
    let rest = &bytes[at..];
    if rest.len() < 4 {
        return Frame::Short;
    }
    let n = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    if n > PAYLOAD_MAX {
        return Frame::Bad(None);
    }
    if rest.len() < 4 + n + 4 {
        return Frame::Short;
    }
    let body = &rest[..4 + n];
    let c = &rest[4 + n..8 + n];
    if crc32(body) != u32::from_le_bytes([c[0], c[1], c[2], c[3]]) {
        return Frame::Bad(Some(at + 8 + n));
    }
    Frame::Whole(body[4..].to_vec(), at + 8 + n)
}

/// Reads the log at `path`: `Ok(None)` if there is none. A header that is not a
/// log header is a [`StoreErrorKind::Corrupt`]-like error naming it.
pub fn read_log(path: &Path) -> Result<Option<LogRead>, StoreError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(path, "read", e)),
    };
    let base = LogBase::decode(&bytes).map_err(|why| StoreError {
        path: path.to_path_buf(),
        kind: StoreErrorKind::BadLog(why),
    })?;
    let mut records = Vec::new();
    let mut at = LOG_HEADER_LEN;
    let damage = loop {
        if at == bytes.len() {
            break None;
        }
        match frame_at(&bytes, at) {
            Frame::Whole(p, next) => {
                records.push(p);
                at = next;
            }
            Frame::Bad(Some(next)) if next == bytes.len() => break Some(torn(at, &bytes)),
            Frame::Short => break Some(torn(at, &bytes)),
            Frame::Bad(next) => {
                let later = next.map(|n| intact_after(&bytes, n)).unwrap_or_default();
                let offset = at as u64;
                break Some(LogDamage::Corrupt { offset, later });
            }
        }
    };
    Ok(Some(LogRead {
        base,
        records,
        end: at as u64,
        damage,
    }))
}

fn torn(at: usize, bytes: &[u8]) -> LogDamage {
    LogDamage::TornTail {
        offset: at as u64,
        bytes: (bytes.len() - at) as u64,
    }
}

/// The intact records from `at` on, while the frames line up.
fn intact_after(bytes: &[u8], mut at: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while at < bytes.len() {
        match frame_at(bytes, at) {
            Frame::Whole(p, next) => {
                out.push(p);
                at = next;
            }
            Frame::Bad(Some(next)) => at = next,
            Frame::Bad(None) | Frame::Short => break,
        }
    }
    out
}

/// Cuts the log at `path` back to `end` bytes (dropping a torn tail), durably.
pub fn truncate_log(path: &Path, end: u64) -> Result<(), StoreError> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| err(path, "open log", e))?;
    file.set_len(end)
        .map_err(|e| err(path, "truncate log", e))?;
    file.sync_all().map_err(|e| err(path, "fsync log", e))
}

/// An open log that records are appended to.
pub struct LogWriter {
    path: PathBuf,
    file: File,
    len: u64,
}

impl LogWriter {
    /// Replaces the log at `path` by an empty one following `base`, atomically
    /// (temporary file, fsync, rename, directory fsync), and opens it.
    pub fn create(path: &Path, base: LogBase) -> Result<LogWriter, StoreError> {
        super::write_file(path, &base.encode(), |f, b| f.write_all(b))?;
        LogWriter::open(path, LOG_HEADER_LEN as u64)
    }

    /// Opens the log at `path` to append after its first `end` bytes.
    pub fn open(path: &Path, end: u64) -> Result<LogWriter, StoreError> {
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| err(path, "open log", e))?;
        Ok(LogWriter {
            path: path.to_path_buf(),
            file,
            len: end,
        })
    }

    /// The log's length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the log has no records.
    pub fn is_empty(&self) -> bool {
        self.len <= LOG_HEADER_LEN as u64
    }

    /// Appends `records` in one write and syncs them; the bytes written. On an
    /// error (a full disk included) the log is cut back to where it was, so a later
    /// append never follows half a record; if even that fails, the error says so
    /// and the caller must not append again (it writes a new snapshot and log).
    pub fn append(&mut self, records: &[Vec<u8>]) -> Result<u64, StoreError> {
        self.append_with(records, |f, b| f.write_all(b))
    }

    fn append_with(
        &mut self,
        records: &[Vec<u8>],
        write: impl FnOnce(&mut File, &[u8]) -> io::Result<()>,
    ) -> Result<u64, StoreError> {
        let mut buf = Vec::with_capacity(records.iter().map(|r| r.len() + 8).sum());
        for r in records {
            if r.len() > PAYLOAD_MAX {
                let kind = StoreErrorKind::TooLarge {
                    len: r.len() as u64,
                };
                let path = self.path.clone();
                return Err(StoreError { path, kind });
            }
            frame(r, &mut buf);
        }
        let written = write(&mut self.file, &buf)
            .map_err(|e| err(&self.path, "append to log", e))
            .and_then(|()| {
                self.file
                    .sync_data()
                    .map_err(|e| err(&self.path, "fsync log", e))
            });
        if let Err(e) = written {
            // Best effort: the caller writes a new snapshot and log after any failed
            // append, so a log this could not cut back is replaced anyway.
            let _ = self.file.set_len(self.len);
            return Err(e);
        }
        self.len += buf.len() as u64;
        Ok(buf.len() as u64)
    }
}

#[cfg(test)]
mod tests;
