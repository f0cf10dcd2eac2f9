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
    /// A SWIM datagram with the sender's anti-entropy digests (little-endian u64s, fixed
    /// width): of its catalog summary and of its member fingerprints. The receiver
    /// starts a full round for whichever differs from its own.
    SwimDigests {
        swim: Vec<u8>,
        catalog: [u8; 8],
        members: [u8; 8],
    },
}

/// A decoded packet, by the sub-protocol that handles it.
pub(super) enum Routed {
    /// SWIM data, with the sender's (catalog, member) digests when they came along.
    Swim(Vec<u8>, Option<(u64, u64)>),
    Catalog(Msg),
    Repair(RepairMsg),
    Hold(HoldMsg),
    Remote(RemoteMsg),
}

impl Packet {
    pub(super) fn route(self) -> Routed {
        match self {
            Packet::Swim(d) => Routed::Swim(d, None),
            Packet::SwimDigests {
                swim,
                catalog,
                members,
            } => Routed::Swim(
                swim,
                Some((u64::from_le_bytes(catalog), u64::from_le_bytes(members))),
            ),
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

/// What kind of datagram body `body` is (`swim/ping`, `catalog/summary`, ...), for
/// traffic breakdowns; `?` when it does not decode.
pub fn describe(body: &[u8]) -> String {
    let Ok(p) = postcard::from_bytes::<Packet>(body) else {
        return "?".into();
    };
    let kind = match &p {
        Packet::Swim(d) => return format!("swim/{}", crate::membership::describe(d)),
        Packet::SwimDigests { swim, .. } => {
            return format!("swim/{}+digests", crate::membership::describe(swim))
        }
        Packet::Catalog(Msg::Entries(_)) => "catalog/entries",
        Packet::Catalog(Msg::Summary { .. }) => "catalog/summary",
        Packet::Catalog(Msg::WantText(_)) => "catalog/want-text",
        Packet::Catalog(Msg::Chunk(_)) => "catalog/chunk",
        Packet::Down(_) => "repair/down",
        Packet::Remote(_) => "remote",
        Packet::Joining(_) => "hold/joining",
        Packet::Settled(_) => "hold/settled",
        Packet::MemberSummary { .. } => "repair/member-summary",
        Packet::Alive(_) => "repair/alive",
    };
    kind.into()
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

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::catalog::{ReportEntry, ReportVersion, WireEntry};
    use crate::node::testing::running;
    use crate::node::Query;

    /// One datagram body of every kind, as postcard bytes: the wire format. Splitting the
    /// node into sub-protocols must not change a byte of these; a deliberate change
    /// bumps `wire::VERSION`.
    fn every_packet() -> Vec<Packet> {
        let id = Identity {
            machine: "m1".into(),
            addr: SocketAddr::from(([10, 0, 0, 1], 4700)),
            boot: 3,
            metadata: "disk=ssd".into(),
        };
        let report = WireEntry::Report {
            member: "m1".into(),
            unit: "a.service".into(),
            entry: ReportEntry {
                version: ReportVersion {
                    boot: 3,
                    counter: 7,
                },
                status: Some(running()),
            },
        };
        vec![
            Packet::Swim(vec![1, 2, 3]),
            Packet::Catalog(Msg::Entries(vec![report])),
            Packet::Catalog(Msg::Summary {
                buckets: vec![1, 300],
                reply: true,
            }),
            Packet::Catalog(Msg::WantText([7; 16])),
            Packet::Down(vec![foca::Member::down(id.clone())]),
            Packet::Remote(RemoteMsg::Ask {
                id: 9,
                query: Query::Status {
                    unit: "a.service".into(),
                },
            }),
            Packet::Remote(RemoteMsg::Part {
                id: 9,
                index: 0,
                count: 1,
                code: -1,
                data: "x".into(),
            }),
            Packet::Remote(RemoteMsg::Working { id: 9 }),
            Packet::Joining(vec![5]),
            Packet::Settled(vec![6]),
            Packet::MemberSummary {
                buckets: vec![2],
                reply: false,
            },
            Packet::Alive(vec![foca::Member::alive(id.clone())]),
            Packet::SwimDigests {
                swim: vec![4, 5],
                catalog: 7u64.to_le_bytes(),
                members: 9u64.to_le_bytes(),
            },
            Packet::Alive(vec![foca::Member::alive(Identity {
                machine: "0123456789abcdef0123456789abcdef".into(),
                ..id
            })]),
        ]
    }

    #[test]
    fn every_packet_kind_keeps_its_wire_bytes() {
        let got: Vec<String> = every_packet()
            .iter()
            .map(|p| {
                let bytes = postcard::to_allocvec(p).expect("encodes");
                bytes.iter().map(|b| format!("{b:02x}")).collect()
            })
            .collect();
        let want = [
            "0003010203",
            "01000101026d3109612e73657276696365030701066163746976650772756e6e696e67",
            "01010201ac0201",
            "010207070707070707070707070707070707",
            // Wire version 2: an identity's machine id is `Text` (tag 01) or `Hex`
            // (tag 00, 16 bytes; the last line).
            "020101026d31000a000001dc2403086469736b3d7373640002",
            "0300090009612e73657276696365",
            "0301090001010178",
            "030209",
            "040105",
            "050106",
            "06010200",
            "070101026d31000a000001dc2403086469736b3d7373640000",
            "0802040507000000000000000900000000000000",
            "0701000123456789abcdef0123456789abcdef000a000001dc2403086469736b3d7373640000",
        ];
        assert_eq!(got, want);
    }
}
