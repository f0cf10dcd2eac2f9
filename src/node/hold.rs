//! The start hold: after a start-up with peers configured, start nothing until we know
//! what the cluster runs (see [`super::JOIN_GRACE_MS`]).
//!
//! While holding, each tick sends our catalog summary (`Joining`) to one random live
//! member. A member that differs repairs us as it would any summary asking for a
//! reply; a settled member (past its own hold) that finds it equal answers `Settled`
//! with its summary, and when that equals ours we release: we know all it acts on.
//! Otherwise the hold ends when the grace runs out. In a whole-cluster cold start
//! nobody is settled, so all wait the full grace and place from the same view.

use std::net::SocketAddr;

use super::outbox::Outbox;
use super::{random_live, NodeEvent};
use crate::catalog::{Catalog, Msg};
use crate::membership::rng::SplitMix;
use crate::membership::Membership;
use crate::time::Millis;

/// The start hold's messages (`Packet::Joining` and `Packet::Settled` on the wire).
#[derive(Debug)]
pub(super) enum HoldMsg {
    /// "I hold my starts; this is my catalog summary."
    Joining(Vec<u64>),
    /// "I am settled and this is my summary."
    Settled(Vec<u64>),
}

/// What the node must do after a hold message.
pub(super) enum HoldOutcome {
    Nothing,
    /// Our catalogs differ: repair the asker as catalog sync answers such a summary.
    Repair(Msg),
    /// Starts are released: placement must run again.
    Released,
}

pub(super) struct StartHold {
    /// Starts are held until then; `None` once settled.
    until: Option<Millis>,
}

impl StartHold {
    /// A hold of `grace_ms` from `now` when other members are configured to join.
    pub(super) fn new(now: Millis, others: bool, grace_ms: u64) -> StartHold {
        StartHold {
            until: (others && grace_ms > 0).then(|| now.plus(grace_ms)),
        }
    }

    pub(super) fn holding(&self) -> bool {
        self.until.is_some()
    }

    /// When the hold runs out.
    pub(super) fn deadline(&self) -> Option<Millis> {
        self.until
    }

    pub(super) fn handle(
        &mut self,
        from: SocketAddr,
        from_live: bool,
        msg: HoldMsg,
        catalog: &Catalog,
        out: &mut Outbox,
    ) -> HoldOutcome {
        match msg {
            HoldMsg::Joining(buckets) => {
                let mine = catalog.summary();
                if buckets != mine {
                    // Repaired like any summary that asks for a reply; it asks again next tick.
                    return HoldOutcome::Repair(Msg::Summary {
                        buckets,
                        reply: true,
                    });
                }
                if self.until.is_none() {
                    out.send_msg(from, HoldMsg::Settled(mine));
                }
                HoldOutcome::Nothing
            }
            HoldMsg::Settled(buckets) => {
                if from_live && buckets == catalog.summary() && self.release(Some(from), out) {
                    return HoldOutcome::Released;
                }
                HoldOutcome::Nothing
            }
        }
    }

    /// Ends the hold if it is still on; whether it was.
    pub(super) fn release(&mut self, by: Option<SocketAddr>, out: &mut Outbox) -> bool {
        if self.until.take().is_some() {
            out.emit(NodeEvent::StartsReleased { by });
            return true;
        }
        false
    }

    /// Each tick while holding: our summary to one random live member.
    pub(super) fn tick(
        &self,
        membership: &Membership,
        rng: &mut SplitMix,
        catalog: &Catalog,
        out: &mut Outbox,
    ) {
        if !self.holding() {
            return;
        }
        if let Some(peer) = random_live(membership, rng, 1).pop() {
            out.send_msg(peer, HoldMsg::Joining(catalog.summary()));
        }
    }
}

#[cfg(test)]
mod tests;
