//! Nonces for sealing: a ChaCha20 keystream from a seed the caller supplies.
//!
//! Architecture invariant: the seed is the only source of randomness. The agent seeds
//! it from the operating system at every start (a repeated seed under the same key
//! repeats nonces, which breaks confidentiality); the simulation seeds it from the run's seed.

use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20::ChaCha20;

use super::NONCE_BYTES;

/// An endless source of 24-byte nonces (and other random bytes) from a 32-byte seed.
pub struct NonceSource {
    stream: ChaCha20,
}

impl NonceSource {
    pub fn from_seed(seed: [u8; 32]) -> NonceSource {
        NonceSource {
            stream: ChaCha20::new(&seed.into(), &[0u8; 12].into()),
        }
    }

    pub fn fill(&mut self, out: &mut [u8]) {
        out.fill(0);
        // 2^32 blocks of 64 bytes (256 GiB) per seed; a member restarts long before that.
        self.stream.apply_keystream(out);
    }

    pub fn next_nonce(&mut self) -> [u8; NONCE_BYTES] {
        let mut nonce = [0u8; NONCE_BYTES];
        self.fill(&mut nonce);
        nonce
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill(&mut b);
        u64::from_le_bytes(b)
    }
}
