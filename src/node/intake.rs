//! Datagrams in: opened in arrival order, membership's first, then the rest.
//!
//! Architecture invariant: a batch of datagrams is one input. SWIM messages are
//! handled (and their acks queued) before any catalog, repair, hold or remote
//! message of the same batch, and the placement the batch makes due is left to the
//! reconcile timer, so the driver sends the acks before a reconcile can run.

use std::net::SocketAddr;

use super::hold::HoldOutcome;
use super::packet::{Packet, Routed};
use super::Node;
use crate::time::Millis;
use crate::wire;

impl Node {
    /// A datagram arrived from `from`.
    pub fn handle_datagram(&mut self, now: Millis, from: SocketAddr, bytes: &[u8]) {
        self.handle_datagrams(now, [(from, bytes)]);
    }

    /// Datagrams that arrived together (the driver takes all that wait in its inbox):
    /// opened in arrival order, membership's handled first, then the rest, then one
    /// reconcile and one rumour flush for all of them. A busy member so answers probes
    /// before it merges a burst of catalog records, and a burst costs one placement.
    pub fn handle_datagrams<'a>(
        &mut self,
        now: Millis,
        datagrams: impl IntoIterator<Item = (SocketAddr, &'a [u8])>,
    ) {
        self.now = now.max(self.now);
        if self.is_out() {
            self.update_timers();
            return;
        }
        let mut later = Vec::new();
        let mut digests = Vec::new();
        for (from, bytes) in datagrams {
            self.out.stats.datagrams_received += 1;
            let packet = wire::decode_fresh::<Packet>(
                self.out.keys(),
                bytes,
                &mut self.drops,
                &mut self.replays,
            );
            match packet.map(Packet::route) {
                Some(Routed::Swim(data, digest)) if self.handle_swim(&data) => {
                    digests.extend(digest.map(|d| (from, d)));
                }
                Some(Routed::Swim(..)) => {}
                Some(other) => later.push((from, other)),
                None => {}
            }
        }
        // Acks and membership news go out ahead of whatever the rest causes.
        self.drain_membership();
        for (from, (catalog, members)) in digests {
            let (m, out) = (&self.membership, &mut self.out);
            self.sync.on_digest(from, catalog, &self.catalog, out);
            self.repair.on_digest(from, members, m, out);
        }
        for (from, routed) in later {
            self.route(from, routed);
        }
        // Placement waits for the timer (due at once when it may run): the driver
        // sends the acks queued above before it calls `handle_timeout`, so a probe
        // is never answered only after a reconcile.
        self.after_input_deferring_placement(true);
    }

    /// Whether membership took the SWIM message (its digests are then worth a look).
    fn handle_swim(&mut self, data: &[u8]) -> bool {
        let taken = self.membership.handle_data(self.now, data).is_ok();
        if !taken {
            self.out.stats.swim_refused += 1;
        }
        taken
    }

    /// Hands an opened datagram that is not membership's to its sub-protocol.
    fn route(&mut self, from: SocketAddr, routed: Routed) {
        match routed {
            Routed::Swim(data, _) => {
                self.handle_swim(&data);
            }
            Routed::Catalog(msg) => self.handle_catalog(from, msg),
            Routed::Repair(msg) => {
                let (m, out) = (&mut self.membership, &mut self.out);
                self.repair.handle(self.now, from, msg, m, out);
            }
            Routed::Remote(msg) => self.remote.handle(self.now, from, msg, &mut self.out),
            Routed::Hold(msg) => {
                let from_live = self.membership.live_addrs().contains(&from);
                match self
                    .hold
                    .handle(from, from_live, msg, &self.catalog, &mut self.out)
                {
                    HoldOutcome::Nothing => {}
                    HoldOutcome::Repair(summary) => self.handle_catalog(from, summary),
                    HoldOutcome::Released => self.dirty = true,
                }
            }
        }
    }
}
