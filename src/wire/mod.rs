//! The datagram format: version byte, nonce, ChaCha20-Poly1305 sealed postcard body.
//!
//! A datagram is `[VERSION][nonce: 12 bytes][ciphertext || tag: 16 bytes]`, with the
//! version byte as associated data. The body is a postcard value chosen by the caller.
//! The nonce is a random per-start prefix and a counter (see [`NonceSource`]), so the
//! 12-byte nonce of IETF ChaCha20-Poly1305 is safe without XChaCha's 24 random bytes;
//! at 4 idle datagrams a second, the 12 bytes saved are a tenth of a probe.
//!
//! Architecture invariant: sans-IO and total. Any byte string given to [`open`] or
//! [`decode`] either yields a value or is dropped and counted in [`DropCounters`];
//! nothing here panics on input, and every size is bounded by [`MAX_DATAGRAM_BYTES`].
//! Nonces come from a [`NonceSource`] the caller seeds; nothing here reads randomness.

mod counters;
mod keyring;
mod nonce;
mod replay;

pub use counters::{DropCounters, DropReason};
pub use keyring::{Key, KeyRing, MAX_KEYS};
pub use nonce::NonceSource;
pub use replay::{ReplayGuard, REPLAY_WINDOW};

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The format version carried in the first byte of every datagram. Members of another
/// version drop our datagrams as `unknown_version` (counted), never misparse them.
/// 2: 12-byte nonces, compact SWIM identities and destinations, digests on probes.
pub const VERSION: u8 = 2;
/// Largest datagram sent or accepted: fits a 1,500-byte Ethernet MTU under IPv6 + UDP headers.
pub const MAX_DATAGRAM_BYTES: usize = 1400;
pub const NONCE_BYTES: usize = 12;
pub const TAG_BYTES: usize = 16;
/// Bytes every datagram spends on framing and authentication.
pub const OVERHEAD_BYTES: usize = 1 + NONCE_BYTES + TAG_BYTES;
/// Largest plaintext body that fits one datagram.
pub const MAX_BODY_BYTES: usize = MAX_DATAGRAM_BYTES - OVERHEAD_BYTES;

/// Why a body could not be sent. Doesn't affect any state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SealError {
    /// The body is larger than [`MAX_BODY_BYTES`].
    TooBig(usize),
    /// The value could not be encoded (a programmer error upstream).
    Encode,
}

/// Encrypts and authenticates `body` with the ring's sending key under `nonce`.
pub fn seal(ring: &KeyRing, nonce: [u8; NONCE_BYTES], body: &[u8]) -> Result<Vec<u8>, SealError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(SealError::TooBig(body.len()));
    }
    let cipher = ChaCha20Poly1305::new(ring.sending().as_aead_key());
    let sealed = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: body,
                aad: &[VERSION],
            },
        )
        .map_err(|_| SealError::Encode)?;
    let mut out = Vec::with_capacity(1 + NONCE_BYTES + sealed.len());
    out.push(VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Checks and decrypts a datagram with any accepted key; drops (and counts) anything else.
pub fn open(ring: &KeyRing, datagram: &[u8], drops: &mut DropCounters) -> Option<Vec<u8>> {
    let reason = if datagram.len() > MAX_DATAGRAM_BYTES {
        DropReason::TooLong
    } else if datagram.len() < OVERHEAD_BYTES {
        DropReason::TooShort
    } else if datagram[0] != VERSION {
        DropReason::UnknownVersion
    } else {
        let nonce = Nonce::from_slice(&datagram[1..1 + NONCE_BYTES]);
        let (aad, msg) = (&datagram[..1], &datagram[1 + NONCE_BYTES..]);
        for key in ring.accepted() {
            let cipher = ChaCha20Poly1305::new(key.as_aead_key());
            if let Ok(body) = cipher.decrypt(nonce, Payload { msg, aad }) {
                return Some(body);
            }
        }
        DropReason::Unauthenticated
    };
    drops.count(reason);
    None
}

/// Encodes `value` with postcard and seals it into one datagram.
pub fn encode<T: Serialize>(
    ring: &KeyRing,
    nonces: &mut NonceSource,
    value: &T,
) -> Result<Vec<u8>, SealError> {
    let body = postcard::to_allocvec(value).map_err(|_| SealError::Encode)?;
    seal(ring, nonces.next_nonce(), &body)
}

/// Encoded size of `value` as a body, to pack datagrams without sealing them.
pub fn body_len<T: Serialize>(value: &T) -> usize {
    postcard::experimental::serialized_size(value).unwrap_or(usize::MAX)
}

/// Opens a datagram and decodes its postcard body; drops (and counts) anything else.
/// A body with trailing bytes is refused: one datagram carries exactly one value.
pub fn decode<T: DeserializeOwned>(
    ring: &KeyRing,
    datagram: &[u8],
    drops: &mut DropCounters,
) -> Option<T> {
    let body = open(ring, datagram, drops)?;
    match postcard::take_from_bytes::<T>(&body) {
        Ok((value, [])) => Some(value),
        _ => {
            drops.count(DropReason::Undecodable);
            None
        }
    }
}

/// Like [`decode`], and drops (counting it as replayed) an authentic datagram whose nonce
/// was seen recently. Only authentic datagrams reach the guard, so forgeries cannot flush it.
pub fn decode_fresh<T: DeserializeOwned>(
    ring: &KeyRing,
    datagram: &[u8],
    drops: &mut DropCounters,
    guard: &mut ReplayGuard,
) -> Option<T> {
    let body = open(ring, datagram, drops)?;
    let mut nonce = [0u8; NONCE_BYTES];
    nonce.copy_from_slice(&datagram[1..1 + NONCE_BYTES]);
    if !guard.fresh(nonce) {
        drops.count(DropReason::Replayed);
        return None;
    }
    match postcard::take_from_bytes::<T>(&body) {
        Ok((value, [])) => Some(value),
        _ => {
            drops.count(DropReason::Undecodable);
            None
        }
    }
}

#[cfg(test)]
mod tests;
