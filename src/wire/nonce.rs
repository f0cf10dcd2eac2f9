//! Nonces for sealing: a random 8-byte prefix per start and a 4-byte counter.
//!
//! Random bytes come from a ChaCha20 keystream of a seed the caller supplies. Two
//! members share a nonce only if their prefixes are equal (2^-64 per pair of starts)
//! and their counters meet: far safer than 12 random bytes per datagram, whose
//! collisions grow with the square of all datagrams ever sent under the key.
//!
//! Architecture invariant: the seed is the only source of randomness. The agent seeds
//! it from the operating system at every start (a repeated seed under the same key
//! repeats nonces, which breaks confidentiality); the simulation seeds it from the run's seed.

use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20::ChaCha20;

use super::NONCE_BYTES;

/// An endless source of 12-byte nonces (and other random bytes) from a 32-byte seed.
pub struct NonceSource {
    stream: ChaCha20,
    /// The random half of the nonces, drawn at the first nonce and again when the
    /// counter wraps.
    prefix: Option<[u8; 8]>,
    counter: u32,
}

impl NonceSource {
    pub fn from_seed(seed: [u8; 32]) -> NonceSource {
        NonceSource {
            stream: ChaCha20::new(&seed.into(), &[0u8; 12].into()),
            prefix: None,
            counter: 0,
        }
    }

    pub fn fill(&mut self, out: &mut [u8]) {
        out.fill(0);
        // 2^32 blocks of 64 bytes (256 GiB) per seed; a member restarts long before that.
        self.stream.apply_keystream(out);
    }

    pub fn next_nonce(&mut self) -> [u8; NONCE_BYTES] {
        let prefix = match self.prefix {
            Some(p) if self.counter != u32::MAX => p,
            _ => {
                let mut p = [0u8; 8];
                self.fill(&mut p);
                self.prefix = Some(p);
                self.counter = 0;
                p
            }
        };
        let mut nonce = [0u8; NONCE_BYTES];
        nonce[..8].copy_from_slice(&prefix);
        nonce[8..].copy_from_slice(&self.counter.to_le_bytes());
        self.counter += 1;
        nonce
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill(&mut b);
        u64::from_le_bytes(b)
    }
}
