//! A bounded memory of recent nonces, so an authentic datagram replayed soon after is dropped.
//!
//! Older replays fall outside the window and are accepted; they are harmless because every
//! merge is idempotent and versions only grow (a replay cannot roll anything back).

use std::collections::{BTreeSet, VecDeque};

use super::NONCE_BYTES;

/// Nonces remembered (per member): minutes of traffic at idle, seconds under churn.
pub const REPLAY_WINDOW: usize = 8192;

#[derive(Default)]
pub struct ReplayGuard {
    seen: BTreeSet<[u8; NONCE_BYTES]>,
    order: VecDeque<[u8; NONCE_BYTES]>,
}

impl ReplayGuard {
    /// True the first time a nonce is seen within the window.
    pub fn fresh(&mut self, nonce: [u8; NONCE_BYTES]) -> bool {
        if !self.seen.insert(nonce) {
            return false;
        }
        self.order.push_back(nonce);
        if self.order.len() > REPLAY_WINDOW {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }
}
