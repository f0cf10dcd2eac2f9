//! Catalog sync: rumours of new records, push-pull anti-entropy, and fetching texts.
//!
//! A record this member writes or learns is pushed once to [`RUMOUR_FANOUT`] random
//! live members (about 2% miss it); one anti-entropy round a second sends a digest of
//! the catalog on a probe to the member probed; where it differs, the two compare
//! bucket summaries and send the records of differing buckets both ways. A unit's text travels by digest, in chunks, asked for again after
//! [`TEXT_RETRY_MS`].

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::outbox::Outbox;
use super::{random_live, RUMOUR_FANOUT};
use crate::catalog::{self, Catalog, Digest, Msg, WireEntry};
use crate::membership::rng::SplitMix;
use crate::membership::Membership;
use crate::time::Millis;

/// A missing text is asked for again after this long.
pub const TEXT_RETRY_MS: u64 = 1_000;
/// Most missing texts asked for per tick.
const TEXTS_PER_TICK: usize = 2;

/// The whole catalog in one number: the fold of its bucket summary. An anti-entropy
/// round sends this (8 bytes, riding on a probe) instead of the 64 buckets (about 100
/// bytes in a datagram of its own); the buckets follow only when it differs.
pub(super) fn digest(catalog: &Catalog) -> u64 {
    fold(&catalog.summary())
}

/// Summaries into one number, from explicit little-endian bytes (the same everywhere).
pub(super) fn fold(buckets: &[u64]) -> u64 {
    use std::hash::Hasher;
    let mut h = siphasher::sip::SipHasher13::new_with_keys(0x666f_6c64, 0x6275_636b);
    for b in buckets {
        h.write(&b.to_le_bytes());
    }
    h.finish()
}

#[derive(Default)]
pub(super) struct CatalogSync {
    /// Records to push to a few members once the current input is handled.
    rumours: Vec<WireEntry>,
    /// Texts asked for, and when.
    asked: BTreeMap<Digest, Millis>,
}

impl CatalogSync {
    /// Merges one record from `from`; whether it changed our catalog (then it is also
    /// passed on as a rumour). A text we lack is asked of `from`.
    pub(super) fn apply(
        &mut self,
        now: Millis,
        from: SocketAddr,
        e: &WireEntry,
        catalog: &mut Catalog,
        out: &mut Outbox,
    ) -> bool {
        match catalog.apply(now, e.clone()) {
            Ok(applied) => {
                if applied.changed {
                    self.rumours.push(e.clone());
                }
                if let Some(d) = applied.missing_text {
                    self.ask_text(now, d, from, out);
                }
                applied.changed
            }
            Err(_) => {
                out.stats.records_refused += 1;
                false
            }
        }
    }

    /// Writes one record of ours; it goes out as a rumour.
    pub(super) fn write(
        &mut self,
        now: Millis,
        w: WireEntry,
        catalog: &mut Catalog,
        out: &mut Outbox,
    ) {
        match catalog.apply(now, w.clone()) {
            Ok(_) => self.rumours.push(w),
            Err(_) => out.stats.records_refused += 1,
        }
    }

    /// A record the catalog already took (a command's write): pass it on.
    pub(super) fn rumour(&mut self, w: WireEntry) {
        self.rumours.push(w);
    }

    /// Handles a message from `from`; whether the catalog changed. (The node merges
    /// `Entries` itself, one by one with [`CatalogSync::apply`], to overrule reports
    /// from an earlier life of this member between them.)
    pub(super) fn handle(
        &mut self,
        now: Millis,
        from: SocketAddr,
        msg: Msg,
        catalog: &mut Catalog,
        out: &mut Outbox,
    ) -> bool {
        match msg {
            Msg::Entries(entries) => {
                let mut changed = false;
                for e in entries {
                    changed |= self.apply(now, from, &e, catalog, out);
                }
                changed
            }
            Msg::Summary { buckets, reply } => {
                let mine = catalog.summary();
                if buckets == mine {
                    return false;
                }
                for m in catalog::pack(catalog.differing(now, &buckets)) {
                    out.send_msg(from, m);
                }
                if reply {
                    let summary = Msg::Summary {
                        buckets: mine,
                        reply: false,
                    };
                    out.send_msg(from, summary);
                }
                false
            }
            Msg::WantText(d) => {
                for c in catalog.chunks_of(&d) {
                    out.send_msg(from, Msg::Chunk(c));
                }
                false
            }
            Msg::Chunk(c) => catalog.accept_chunk(now, c),
        }
    }

    /// A peer's catalog digest (see [`digest`]) came with a probe: where it differs
    /// from ours, start a push-pull round with our summary, asking for theirs.
    pub(super) fn on_digest(
        &self,
        from: SocketAddr,
        theirs: u64,
        catalog: &Catalog,
        out: &mut Outbox,
    ) {
        let buckets = catalog.summary();
        if fold(&buckets) == theirs {
            return;
        }
        out.send_msg(
            from,
            Msg::Summary {
                buckets,
                reply: true,
            },
        );
    }

    /// Each tick: ask random live members for a few missing texts; forget old asks.
    pub(super) fn tick(
        &mut self,
        now: Millis,
        catalog: &Catalog,
        membership: &Membership,
        rng: &mut SplitMix,
        out: &mut Outbox,
    ) {
        let missing = catalog.missing_texts();
        for d in missing.into_iter().take(TEXTS_PER_TICK) {
            if let Some(peer) = random_live(membership, rng, 1).pop() {
                self.ask_text(now, d, peer, out);
            }
        }
        self.asked.retain(|_, t| now.since(*t) < 10 * TEXT_RETRY_MS);
    }

    fn ask_text(&mut self, now: Millis, d: Digest, to: SocketAddr, out: &mut Outbox) {
        if self
            .asked
            .get(&d)
            .is_some_and(|t| now.since(*t) < TEXT_RETRY_MS)
        {
            return;
        }
        self.asked.insert(d, now);
        out.send_msg(to, Msg::WantText(d));
    }

    /// Pushes the records written or learnt since the last flush to a few live members.
    pub(super) fn flush_rumours(
        &mut self,
        membership: &Membership,
        rng: &mut SplitMix,
        out: &mut Outbox,
    ) {
        if self.rumours.is_empty() {
            return;
        }
        let rumours = std::mem::take(&mut self.rumours);
        let targets = random_live(membership, rng, RUMOUR_FANOUT);
        for m in catalog::pack(rumours) {
            for t in &targets {
                out.send_msg(*t, m.clone());
            }
        }
    }
}
