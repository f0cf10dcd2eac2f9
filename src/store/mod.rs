//! State on disk: whole snapshots written atomically, read back with their damage named.
//!
//! A write goes to a temporary file in the same directory, is fsynced,
//! renamed over the snapshot, and the directory is fsynced: after a power
//! cut the file holds either the old snapshot or the new one, never a mix.
//! A failed write (a full disk included) removes its temporary file and
//! leaves the old snapshot untouched. Each file carries a header (magic,
//! version, length, CRC-32, see [`format`]), so a damaged file is an error
//! that says what is wrong, never a half-read state.
//!
//! Architecture invariant: this module knows bytes, not what they mean;
//! the caller serializes its state.

mod crc32;
pub mod format;
pub mod log;

pub use crc32::crc32;
pub use format::{decode, encode, Corruption};
pub use log::{read_log, truncate_log, LogBase, LogDamage, LogRead, LogWriter};

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The largest payload (snapshot, or log record) written or read: the agent
/// asserts at compile time that the largest snapshot the catalog's limits allow
/// fits (`agent::persist`); a bigger file is a bug or not ours.
pub const PAYLOAD_MAX: usize = 256 << 20;

// A log record's length field is a u32.
const _: () = assert!(PAYLOAD_MAX <= u32::MAX as usize);

/// ENOSPC and EDQUOT: what a full disk or an exhausted quota look like.
const DISK_FULL_ERRNOS: [i32; 2] = [28, 122];

/// A failed store operation, with the snapshot (or directory) it concerns.
#[derive(Debug)]
pub struct StoreError {
    pub path: PathBuf,
    pub kind: StoreErrorKind,
}

#[derive(Debug)]
pub enum StoreErrorKind {
    /// No space left (or quota exhausted) while writing; the old snapshot
    /// is untouched.
    DiskFull(io::Error),
    /// Another I/O failure during `step` (`create temp file`, `write temp
    /// file`, `fsync temp file`, `rename`, `fsync dir`, `read`).
    Io {
        step: &'static str,
        error: io::Error,
    },
    /// The file is there but is not a whole, valid snapshot.
    Corrupt(Corruption),
    /// The file is there but does not start with a valid log header.
    BadLog(String),
    /// The payload exceeds [`PAYLOAD_MAX`].
    TooLarge { len: u64 },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.path.display();
        match &self.kind {
            StoreErrorKind::DiskFull(e) => {
                write!(f, "{p}: disk full ({e}); the previous snapshot is kept")
            }
            StoreErrorKind::Io { step, error } => write!(f, "{p}: {step}: {error}"),
            StoreErrorKind::Corrupt(c) => write!(f, "{p}: corrupt snapshot: {c}"),
            StoreErrorKind::BadLog(why) => write!(f, "{p}: not a valid log: {why}"),
            StoreErrorKind::TooLarge { len } => {
                write!(
                    f,
                    "{p}: {len} bytes is more than the {PAYLOAD_MAX}-byte limit"
                )
            }
        }
    }
}

impl std::error::Error for StoreError {}

fn err(path: &Path, step: &'static str, error: io::Error) -> StoreError {
    let full = error
        .raw_os_error()
        .is_some_and(|n| DISK_FULL_ERRNOS.contains(&n));
    let kind = if full {
        StoreErrorKind::DiskFull(error)
    } else {
        StoreErrorKind::Io { step, error }
    };
    StoreError {
        path: path.to_path_buf(),
        kind,
    }
}

/// Where a write of `path` stages its bytes: a hidden name in the same
/// directory (a rename is only atomic within one file system). The name is
/// fixed, so a temp file left by a crash is simply overwritten next time.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// Replaces the snapshot at `path` with `payload`, atomically and durably.
pub fn write_snapshot(path: &Path, payload: &[u8]) -> Result<(), StoreError> {
    write_with(path, payload, |file, bytes| file.write_all(bytes))
}

/// [`write_snapshot`] with the data write as a parameter, so tests can
/// make it fail like a full disk does.
fn write_with(
    path: &Path,
    payload: &[u8],
    write: impl FnOnce(&mut File, &[u8]) -> io::Result<()>,
) -> Result<(), StoreError> {
    if payload.len() > PAYLOAD_MAX {
        let kind = StoreErrorKind::TooLarge {
            len: payload.len() as u64,
        };
        return Err(StoreError {
            path: path.to_path_buf(),
            kind,
        });
    }
    write_file(path, &encode(payload), write)
}

/// Replaces the file at `path` with `bytes`, atomically and durably (the steps of
/// [`write_snapshot`], with no header added).
fn write_file(
    path: &Path,
    bytes: &[u8],
    write: impl FnOnce(&mut File, &[u8]) -> io::Result<()>,
) -> Result<(), StoreError> {
    let tmp = temp_path(path);
    let staged = (|| {
        let mut file = File::create(&tmp).map_err(|e| err(path, "create temp file", e))?;
        write(&mut file, bytes).map_err(|e| err(path, "write temp file", e))?;
        // Data on disk before the rename makes it visible: otherwise a power
        // cut can leave the new name pointing at an empty file.
        file.sync_all().map_err(|e| err(path, "fsync temp file", e))
    })();
    if let Err(e) = staged {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(err(path, "rename", e));
    }
    // The rename itself is only durable once the directory is synced.
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| err(dir, "fsync dir", e))
}

/// Reads the snapshot at `path`: `Ok(None)` if there is none yet, an error
/// naming the damage if the file is not a whole valid snapshot. A leftover
/// temporary file is ignored.
pub fn read_snapshot(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(path, "read", e)),
    };
    if bytes.len() > PAYLOAD_MAX + format::HEADER_LEN {
        let kind = StoreErrorKind::TooLarge {
            len: bytes.len() as u64,
        };
        return Err(StoreError {
            path: path.to_path_buf(),
            kind,
        });
    }
    match decode(&bytes) {
        Ok(payload) => Ok(Some(payload.to_vec())),
        Err(c) => Err(StoreError {
            path: path.to_path_buf(),
            kind: StoreErrorKind::Corrupt(c),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("shoal-store-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_written_snapshot_reads_back_and_a_missing_one_is_none() {
        let d = dir("roundtrip");
        let p = d.join("state");
        assert!(read_snapshot(&p).unwrap().is_none());
        write_snapshot(&p, b"one").unwrap();
        write_snapshot(&p, b"two").unwrap();
        assert_eq!(read_snapshot(&p).unwrap().unwrap(), b"two");
        assert!(!temp_path(&p).exists());
        let _ = fs::remove_dir_all(d);
    }

    #[test]
    fn a_truncated_or_damaged_file_is_an_error_that_says_so() {
        let d = dir("corrupt");
        let p = d.join("state");
        write_snapshot(&p, b"desired units").unwrap();
        let good = fs::read(&p).unwrap();
        fs::write(&p, &good[..good.len() - 4]).unwrap();
        let e = read_snapshot(&p).unwrap_err();
        assert!(matches!(
            e.kind,
            StoreErrorKind::Corrupt(Corruption::Length { .. })
        ));
        assert!(e.to_string().contains("truncated"), "{e}");
        let mut flipped = good;
        let last = flipped.len() - 1;
        flipped[last] ^= 0x80;
        fs::write(&p, &flipped).unwrap();
        let e = read_snapshot(&p).unwrap_err();
        assert!(matches!(
            e.kind,
            StoreErrorKind::Corrupt(Corruption::Checksum { .. })
        ));
        fs::write(&p, b"").unwrap();
        assert!(read_snapshot(&p).is_err());
        let _ = fs::remove_dir_all(d);
    }

    #[test]
    fn a_leftover_temp_file_is_ignored_by_reads_and_replaced_by_writes() {
        let d = dir("leftover");
        let p = d.join("state");
        write_snapshot(&p, b"old").unwrap();
        fs::write(temp_path(&p), b"half a snapshot from a crash").unwrap();
        assert_eq!(read_snapshot(&p).unwrap().unwrap(), b"old");
        write_snapshot(&p, b"new").unwrap();
        assert_eq!(read_snapshot(&p).unwrap().unwrap(), b"new");
        assert!(!temp_path(&p).exists());
        let _ = fs::remove_dir_all(d);
    }

    #[test]
    fn a_full_disk_is_reported_and_the_old_snapshot_is_untouched() {
        let d = dir("full");
        let p = d.join("state");
        write_snapshot(&p, b"old").unwrap();
        let e = write_with(&p, b"new and bigger", |f, bytes| {
            f.write_all(&bytes[..5])?;
            Err(io::Error::from_raw_os_error(28))
        })
        .unwrap_err();
        assert!(matches!(e.kind, StoreErrorKind::DiskFull(_)), "{e:?}");
        assert!(e.to_string().contains("disk full"), "{e}");
        assert_eq!(read_snapshot(&p).unwrap().unwrap(), b"old");
        assert!(!temp_path(&p).exists());
        let _ = fs::remove_dir_all(d);
    }

    #[test]
    fn a_missing_directory_is_an_io_error_naming_the_step() {
        let p = std::env::temp_dir().join("shoal-store-no-such-dir/x/state");
        let e = write_snapshot(&p, b"x").unwrap_err();
        assert!(
            matches!(
                e.kind,
                StoreErrorKind::Io {
                    step: "create temp file",
                    ..
                }
            ),
            "{e:?}"
        );
    }
}
