//! The cluster key ring: one key to seal with, a few more accepted, so keys rotate without downtime.
//!
//! Rotation: add the new key as accepted everywhere, then make it the sending key
//! everywhere, then drop the old one.

use std::fmt;

/// At most this many keys are accepted at once (each costs one trial decryption per datagram).
pub const MAX_KEYS: usize = 4;

/// A 256-bit cluster key. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Key([u8; 32]);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    pub fn from_bytes(bytes: [u8; 32]) -> Key {
        Key(bytes)
    }

    /// Parses 64 hexadecimal digits.
    pub fn from_hex(text: &str) -> Result<Key, String> {
        let text = text.trim();
        if text.len() != 64 || !text.is_ascii() {
            return Err("a cluster key is 64 hexadecimal digits".into());
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)
                .map_err(|_| "a cluster key is 64 hexadecimal digits".to_string())?;
        }
        Ok(Key(out))
    }

    pub(super) fn as_aead_key(&self) -> &chacha20poly1305::Key {
        chacha20poly1305::Key::from_slice(&self.0)
    }
}

/// The sending key plus the other accepted keys (the sending key is always accepted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRing {
    keys: Vec<Key>,
}

impl KeyRing {
    /// A ring that seals with `sending` and also opens with `also_accepted`.
    pub fn new(sending: Key, also_accepted: Vec<Key>) -> Result<KeyRing, String> {
        let mut keys = vec![sending];
        for key in also_accepted {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        if keys.len() > MAX_KEYS {
            return Err(format!(
                "at most {MAX_KEYS} cluster keys may be accepted at once"
            ));
        }
        Ok(KeyRing { keys })
    }

    pub fn sending(&self) -> &Key {
        &self.keys[0]
    }

    /// The sending key first, then the others.
    pub fn accepted(&self) -> impl Iterator<Item = &Key> {
        self.keys.iter()
    }
}
