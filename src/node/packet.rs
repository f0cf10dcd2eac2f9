//! The envelope inside every datagram body, and its routing to the sub-protocols.
//!
//! Architecture invariant: the wire format. Variants keep their order and payloads
//! (postcard numbers variants by position); a new kind goes last, and older members
//! drop it as undecodable. Each sub-protocol has its own message type; the flat
//! envelope stays as it was, so these convert to and from it.

use serde::{Deserialize, Serialize};

use super::hold::HoldMsg;
use super::remote::RemoteMsg;
use super::repair::RepairMsg;
use crate::catalog::Msg;
use crate::membership::Identity;

#[derive(Debug, Serialize, Deserialize)]
pub(super) enum Packet {
    Swim(Vec<u8>),
    Catalog(Msg),
    /// Members the sender holds as down (membership anti-entropy).
    Down(Vec<foca::Member<Identity>>),
    /// Status/journal queries (added last: older members drop it as undecodable).
    Remote(RemoteMsg),
    /// A member holding its starts after start-up sends its catalog summary: answered
    /// like a `Summary` that asks for a reply, and with `Settled` when equal.
    Joining(Vec<u64>),
    /// "I am settled (past my own start hold) and this is my summary": the holder
    /// releases its starts when the summary equals its own.
    Settled(Vec<u64>),
    /// Membership anti-entropy: the sender's member fingerprints
    /// ([`crate::membership::Membership::member_buckets`]); `reply` asks for ours back.
    MemberSummary {
        buckets: Vec<u64>,
        reply: bool,
    },
    /// Live members of the buckets that differed (at most [`super::MAX_MEMBERS_LISTED`]).
    Alive(Vec<foca::Member<Identity>>),
}

/// A decoded packet, by the sub-protocol that handles it.
pub(super) enum Routed {
    Swim(Vec<u8>),
    Catalog(Msg),
    Repair(RepairMsg),
    Hold(HoldMsg),
    Remote(RemoteMsg),
}

impl Packet {
    pub(super) fn route(self) -> Routed {
        match self {
            Packet::Swim(d) => Routed::Swim(d),
            Packet::Catalog(m) => Routed::Catalog(m),
            Packet::Down(m) => Routed::Repair(RepairMsg::Down(m)),
            Packet::Remote(m) => Routed::Remote(m),
            Packet::Joining(b) => Routed::Hold(HoldMsg::Joining(b)),
            Packet::Settled(b) => Routed::Hold(HoldMsg::Settled(b)),
            Packet::MemberSummary { buckets, reply } => {
                Routed::Repair(RepairMsg::Summary { buckets, reply })
            }
            Packet::Alive(m) => Routed::Repair(RepairMsg::Alive(m)),
        }
    }
}

impl From<Msg> for Packet {
    fn from(m: Msg) -> Packet {
        Packet::Catalog(m)
    }
}

impl From<RemoteMsg> for Packet {
    fn from(m: RemoteMsg) -> Packet {
        Packet::Remote(m)
    }
}

impl From<HoldMsg> for Packet {
    fn from(m: HoldMsg) -> Packet {
        match m {
            HoldMsg::Joining(b) => Packet::Joining(b),
            HoldMsg::Settled(b) => Packet::Settled(b),
        }
    }
}

impl From<RepairMsg> for Packet {
    fn from(m: RepairMsg) -> Packet {
        match m {
            RepairMsg::Down(m) => Packet::Down(m),
            RepairMsg::Summary { buckets, reply } => Packet::MemberSummary { buckets, reply },
            RepairMsg::Alive(m) => Packet::Alive(m),
        }
    }
}
