//! The snapshot file format: a 24-byte header, then the payload (pure).
//!
//! ```text
//! offset  size  field
//!      0     8  magic  "SHOALSNP"
//!      8     4  format version, little-endian (1)
//!     12     4  CRC-32 of the payload, little-endian
//!     16     8  payload length in bytes, little-endian
//!     24     n  payload
//! ```
//! The length catches a truncated or extended file, the CRC a damaged one,
//! the magic a file that is not a snapshot at all.

use super::crc32::crc32;
use std::fmt;

pub const MAGIC: [u8; 8] = *b"SHOALSNP";
pub const VERSION: u32 = 1;
pub const HEADER_LEN: usize = 24;

/// Why stored bytes are not a valid snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Corruption {
    /// Shorter than the header.
    TooShort { len: usize },
    /// Does not start with [`MAGIC`].
    BadMagic,
    /// Written by a newer (or unknown) format version.
    Version { found: u32 },
    /// The header's length disagrees with the file: cut short or extended.
    Length { header: u64, found: u64 },
    /// The payload's CRC-32 disagrees with the header.
    Checksum { header: u32, computed: u32 },
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Corruption::TooShort { len } => {
                write!(f, "{len} bytes, shorter than the {HEADER_LEN}-byte header")
            }
            Corruption::BadMagic => write!(f, "not a shoal snapshot (bad magic)"),
            Corruption::Version { found } => {
                write!(f, "format version {found}, this shoal reads {VERSION}")
            }
            Corruption::Length { header, found } => write!(
                f,
                "truncated or extended: header says {header} payload bytes, file has {found}"
            ),
            Corruption::Checksum { header, computed } => write!(
                f,
                "checksum mismatch: header {header:08x}, payload {computed:08x}"
            ),
        }
    }
}

/// Header plus payload, ready to write.
pub fn encode(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&crc32(payload).to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// The payload of a whole snapshot file, once every check passes.
pub fn decode(bytes: &[u8]) -> Result<&[u8], Corruption> {
    let (header, payload) = match bytes.split_at_checked(HEADER_LEN) {
        Some(parts) => parts,
        None => return Err(Corruption::TooShort { len: bytes.len() }),
    };
    let field = |at: usize, n: usize| &header[at..at + n];
    if field(0, 8) != MAGIC {
        return Err(Corruption::BadMagic);
    }
    let version = u32::from_le_bytes(le4(field(8, 4)));
    if version != VERSION {
        return Err(Corruption::Version { found: version });
    }
    let crc = u32::from_le_bytes(le4(field(12, 4)));
    let mut len = [0u8; 8];
    len.copy_from_slice(field(16, 8));
    let len = u64::from_le_bytes(len);
    if len != payload.len() as u64 {
        return Err(Corruption::Length {
            header: len,
            found: payload.len() as u64,
        });
    }
    let computed = crc32(payload);
    if computed != crc {
        return Err(Corruption::Checksum {
            header: crc,
            computed,
        });
    }
    Ok(payload)
}

fn le4(b: &[u8]) -> [u8; 4] {
    let mut a = [0u8; 4];
    a.copy_from_slice(b);
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_round_trips() {
        for p in [&b""[..], b"x", &[0u8; 1000]] {
            assert_eq!(decode(&encode(p)).unwrap(), p);
        }
    }

    #[test]
    fn every_kind_of_damage_is_named() {
        let good = encode(b"desired state");
        assert_eq!(decode(&good[..10]), Err(Corruption::TooShort { len: 10 }));
        let cut = &good[..good.len() - 3];
        assert_eq!(
            decode(cut),
            Err(Corruption::Length {
                header: 13,
                found: 10
            })
        );
        let mut longer = good.clone();
        longer.push(0);
        assert!(matches!(decode(&longer), Err(Corruption::Length { .. })));
        let mut flipped = good.clone();
        flipped[HEADER_LEN + 2] ^= 0x01;
        assert!(matches!(decode(&flipped), Err(Corruption::Checksum { .. })));
        let mut magic = good.clone();
        magic[0] = b'X';
        assert_eq!(decode(&magic), Err(Corruption::BadMagic));
        let mut newer = good;
        newer[8] = 2;
        assert_eq!(decode(&newer), Err(Corruption::Version { found: 2 }));
    }

    #[test]
    fn the_header_layout_is_fixed() {
        let b = encode(b"123456789");
        assert_eq!(&b[..8], b"SHOALSNP");
        assert_eq!(&b[8..12], &[1, 0, 0, 0]);
        assert_eq!(&b[12..16], &0xCBF4_3926u32.to_le_bytes());
        assert_eq!(&b[16..24], &[9, 0, 0, 0, 0, 0, 0, 0]);
    }
}
