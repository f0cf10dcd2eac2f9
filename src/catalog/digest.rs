//! Fingerprints: the content address of a text and the per-bucket summaries for anti-entropy.
//!
//! Architecture invariant: fixed functions (SipHash with fixed keys over postcard bytes,
//! little-endian), identical on every member, architecture and version of Rust.

use std::hash::Hasher;

use serde::Serialize;
use siphasher::sip::SipHasher13;
use siphasher::sip128::{Hasher128, SipHasher13 as SipHasher13x128};

use super::entry::Digest;

/// Number of anti-entropy buckets (a summary is one u64 per bucket).
pub const BUCKETS: usize = 64;

const TEXT_KEYS: (u64, u64) = (0x7368_6f61_6c2d_7478, 0x7478_7400_0000_0001);
const KEY_KEYS: (u64, u64) = (0x7368_6f61_6c2d_6b79, 0x6b79_0000_0000_0001);
const ENTRY_KEYS: (u64, u64) = (0x7368_6f61_6c2d_656e, 0x656e_0000_0000_0001);

/// The content address of a unit text.
pub fn text_digest(text: &str) -> Digest {
    let mut h = SipHasher13x128::new_with_keys(TEXT_KEYS.0, TEXT_KEYS.1);
    h.write(text.as_bytes());
    h.finish128().as_bytes()
}

/// postcard's bytes fed straight into a hasher: the same value as hashing the encoded
/// bytes, without allocating them (summaries hash every record, 10,000s a second).
struct HashFlavor(SipHasher13);

impl postcard::ser_flavors::Flavor for HashFlavor {
    type Output = u64;

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.write(&[data]);
        Ok(())
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.write(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<u64> {
        Ok(self.0.finish())
    }
}

fn hash_of<T: Serialize>(keys: (u64, u64), value: &T) -> u64 {
    let h = HashFlavor(SipHasher13::new_with_keys(keys.0, keys.1));
    // postcard of our own plain types cannot fail; a failure would only weaken the summary.
    postcard::serialize_with_flavor(value, h).unwrap_or_default()
}

/// The bucket a key falls in.
pub fn bucket_of<K: Serialize>(key: &K) -> usize {
    (hash_of(KEY_KEYS, key) % BUCKETS as u64) as usize
}

/// The fingerprint of one (key, entry); a bucket's summary is the XOR of its fingerprints.
pub fn fingerprint<K: Serialize, E: Serialize>(key: &K, entry: &E) -> u64 {
    hash_of(ENTRY_KEYS, &(key, entry))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_the_encoding_into_the_hasher_gives_the_same_fingerprint() {
        let key = (0u8, "a-rather-long-unit-name@1.service");
        let entry = (7u64, vec![1u8, 2, 3], "text".to_string());
        let bytes = postcard::to_allocvec(&(key, &entry)).expect("encodes");
        let mut h = SipHasher13::new_with_keys(ENTRY_KEYS.0, ENTRY_KEYS.1);
        h.write(&bytes);
        assert_eq!(fingerprint(&key, &entry), h.finish());
    }
}
