//! The placement hash: a fixed, versioned function for rendezvous tie-breaks.
//!
//! Architecture invariant: the output for given bytes never changes. Changing it
//! reshuffles every cluster on upgrade, so any change must bump [`HASH_VERSION`]
//! and the golden vectors below. Never `DefaultHasher` or `#[derive(Hash)]`.

use siphasher::sip::SipHasher13;
use std::hash::Hasher;

/// Version of the placement hash; members gossip it so mixed versions are detected.
pub const HASH_VERSION: u8 = 1;

/// Fixed SipHash keys ("shoal-placement" in ASCII, zero padded, as two LE u64s).
const KEY0: u64 = u64::from_le_bytes(*b"shoal-pl");
const KEY1: u64 = u64::from_le_bytes(*b"acement\0");

/// Domain-separated SipHash-1-3 of `bytes` with the fixed keys.
fn sip(domain: u8, bytes: &[u8]) -> u64 {
    let mut hasher = SipHasher13::new_with_keys(KEY0, KEY1);
    // Explicit bytes only: a domain tag, a little-endian length, the bytes.
    hasher.write(&[domain]);
    hasher.write(&(bytes.len() as u64).to_le_bytes());
    hasher.write(bytes);
    hasher.finish()
}

/// The per-unit half of the rendezvous score.
pub fn unit_key(unit: &str) -> u64 {
    sip(b'u', unit.as_bytes())
}

/// The per-member half of the rendezvous score.
pub fn member_key(machine: &str) -> u64 {
    sip(b'm', machine.as_bytes())
}

/// Rendezvous score of a (unit, member) pair: highest wins a tie on load.
/// Combining two cached SipHashes with a strong 64-bit finaliser keeps the
/// per-pair cost to a few instructions, which matters at 10,000 x 1,000.
pub fn score(unit_key: u64, member_key: u64) -> u64 {
    // splitmix64's finaliser: a bijection with full avalanche.
    let mut z = unit_key ^ member_key.rotate_left(29);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Convenience: the score of a unit on a member by name.
pub fn score_of(unit: &str, machine: &str) -> u64 {
    score(unit_key(unit), member_key(machine))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Golden vectors: if this test fails, placement changed for every cluster.
    #[test]
    fn golden_vectors_of_hash_version_1() {
        assert_eq!(HASH_VERSION, 1);
        let cases: [(&str, &str, u64); 4] = [
            (
                "example_01.service",
                "41b7574b33b0462c8e311ded39302a19",
                GOLDEN[0],
            ),
            (
                "common@1.service",
                "f70fc5f45cdc49f99fc47757f6fe5ae6",
                GOLDEN[1],
            ),
            ("", "", GOLDEN[2]),
            ("a.service", "h1", GOLDEN[3]),
        ];
        for (unit, machine, expected) in cases {
            assert_eq!(score_of(unit, machine), expected, "{unit} on {machine}");
        }
    }

    const GOLDEN: [u64; 4] = [
        0x668c_ca45_e13a_366a,
        0x5801_8177_87bc_cc3c,
        0xf897_6ac7_de30_86ff,
        0xafe0_f0d3_3389_1e56,
    ];

    #[test]
    fn unit_and_member_keys_are_domain_separated() {
        assert_ne!(unit_key("x"), member_key("x"));
    }
}
