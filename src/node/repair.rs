//! Member repair: deaths and live members exchanged beside SWIM, which misses some.
//!
//! Two repairs ride on the node's anti-entropy round: the members we hold as down
//! (learnt within [`RECENT_DOWN_MS`]), and the fingerprints of the live member list.
//! The fingerprints go as one digest of 8 bytes, with the catalog's, on the next SWIM
//! datagram we send (a probe, mostly: no datagram of their own); where the digest
//! differs, the two exchange bucket fingerprints and send back the members of the
//! differing buckets (`Alive`). And a death we learn is
//! told at once to [`RUMOUR_FANOUT`] random live members, as everyone who learns it
//! does: the member that takes the units over learns it within a round trip, not
//! after rounds of piggybacked gossip.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::outbox::Outbox;
use super::packet::Packet;
use super::{random_live, RUMOUR_FANOUT};
use crate::catalog::Catalog;
use crate::membership::rng::SplitMix;
use crate::membership::{Identity, Membership};
use crate::time::Millis;

/// Most members listed in one `Down` (keeps it within one datagram).
pub const MAX_DOWN_LISTED: usize = 12;
/// Most members listed in one `Alive`, and most such packets per repair.
pub const MAX_MEMBERS_LISTED: usize = 12;
pub const MAX_ALIVE_PACKETS: usize = 4;
/// Deaths are shared in anti-entropy for this long after we learnt them: long enough for
/// every member to sync with a few peers.
pub const RECENT_DOWN_MS: u64 = 30_000;

/// Member repair's messages (`Packet::Down`, `MemberSummary` and `Alive` on the wire).
#[derive(Debug)]
pub(super) enum RepairMsg {
    /// Members the sender holds as down.
    Down(Vec<foca::Member<Identity>>),
    /// The sender's member fingerprints; `reply` asks for ours back.
    Summary { buckets: Vec<u64>, reply: bool },
    /// Live members of the buckets that differed.
    Alive(Vec<foca::Member<Identity>>),
}

#[derive(Default)]
pub(super) struct MemberRepair {
    /// Members we saw die recently, and when.
    recent_down: BTreeMap<Identity, Millis>,
    /// An anti-entropy round is due: our digests go on the next SWIM datagram.
    digests_due: bool,
}

/// The member list in one number (see [`Membership::member_buckets`]).
fn member_digest(membership: &Membership) -> u64 {
    super::sync::fold(&membership.member_buckets())
}

impl MemberRepair {
    pub(super) fn handle(
        &mut self,
        now: Millis,
        from: SocketAddr,
        msg: RepairMsg,
        membership: &mut Membership,
        out: &mut Outbox,
    ) {
        match msg {
            RepairMsg::Down(members) => {
                let members = members.into_iter().take(MAX_DOWN_LISTED).collect();
                membership.apply_down(now, members);
            }
            RepairMsg::Summary { buckets, reply } => {
                let mine = membership.member_buckets();
                if buckets == mine {
                    return;
                }
                let differing = membership
                    .members_in_other_buckets(&buckets, MAX_MEMBERS_LISTED * MAX_ALIVE_PACKETS);
                for chunk in differing.chunks(MAX_MEMBERS_LISTED) {
                    out.send_msg(from, RepairMsg::Alive(chunk.to_vec()));
                }
                if reply {
                    let buckets = mine;
                    out.send_msg(
                        from,
                        RepairMsg::Summary {
                            buckets,
                            reply: false,
                        },
                    );
                }
            }
            RepairMsg::Alive(members) => {
                let members = members.into_iter().take(MAX_MEMBERS_LISTED).collect();
                membership.apply_alive(now, members);
            }
        }
    }

    /// Our part of an anti-entropy round with `peer`: recent deaths now, and our
    /// digests on the next SWIM datagram (see [`MemberRepair::wrap_swim`]).
    pub(super) fn anti_entropy(
        &mut self,
        now: Millis,
        peer: SocketAddr,
        membership: &Membership,
        out: &mut Outbox,
    ) {
        self.recent_down
            .retain(|_, t| now.since(*t) < RECENT_DOWN_MS);
        let down = membership.down_members(&self.recent_down, MAX_DOWN_LISTED);
        if !down.is_empty() {
            out.send_msg(peer, RepairMsg::Down(down));
        }
        self.digests_due = true;
    }

    /// One SWIM datagram of ours as a packet: with our member and catalog digests when
    /// an anti-entropy round is due (the first datagram after it falls due, so the peer
    /// is the one foca probes or answers, in foca's shuffled order).
    pub(super) fn wrap_swim(
        &mut self,
        swim: Vec<u8>,
        membership: &Membership,
        catalog: &Catalog,
    ) -> Packet {
        if !std::mem::take(&mut self.digests_due) {
            return Packet::Swim(swim);
        }
        Packet::SwimDigests {
            swim,
            catalog: super::sync::digest(catalog).to_le_bytes(),
            members: member_digest(membership).to_le_bytes(),
        }
    }

    /// A peer's member digest came with a probe: where it differs from ours, start a
    /// repair round with our fingerprints, asking for theirs.
    pub(super) fn on_digest(
        &self,
        from: SocketAddr,
        theirs: u64,
        membership: &Membership,
        out: &mut Outbox,
    ) {
        let buckets = membership.member_buckets();
        if super::sync::fold(&buckets) == theirs {
            return;
        }
        out.send_msg(
            from,
            RepairMsg::Summary {
                buckets,
                reply: true,
            },
        );
    }

    /// Membership declared `id` down: remember it for anti-entropy and tell a few live
    /// members at once.
    pub(super) fn member_down(
        &mut self,
        now: Millis,
        id: &Identity,
        membership: &Membership,
        rng: &mut SplitMix,
        out: &mut Outbox,
    ) {
        if self.recent_down.len() < MAX_DOWN_LISTED * 8 {
            self.recent_down.insert(id.clone(), now);
        }
        let only = BTreeMap::from([(id.clone(), now)]);
        let down = membership.down_members(&only, 1);
        if down.is_empty() {
            return;
        }
        let packet = RepairMsg::Down(down).into();
        for peer in random_live(membership, rng, RUMOUR_FANOUT) {
            out.send(peer, &packet);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::node::testing::{member, Net};
    use crate::node::Node;

    #[test]
    fn a_death_reaches_every_member_at_once_not_after_rounds_of_gossip() {
        let hosts: Vec<u8> = (1..=8).collect();
        let mut net = Net::new(hosts.iter().map(|h| member(*h, *h, &hosts, 0)).collect());
        net.span(0, 5_000);
        assert!(
            net.nodes.iter().all(|n| n.live_members().len() == 7),
            "all met"
        );
        let dead = net.remove(7).identity().clone();
        let sees_dead = |n: &Node| n.live_members().contains(&dead);
        let mut first = None;
        for t in (5_010..15_000).step_by(10) {
            net.span(t, t);
            let knowing = net.nodes.iter().filter(|n| !sees_dead(n)).count();
            if knowing > 0 && first.is_none() {
                first = Some(t);
            }
            if knowing == net.nodes.len() {
                let first = first.unwrap_or(t);
                assert!(
                    t - first <= 10,
                    "the last member learnt it {} ms after the first",
                    t - first
                );
                return;
            }
        }
        panic!("the death never reached everyone");
    }
}
