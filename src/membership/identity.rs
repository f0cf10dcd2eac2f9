//! Who a member is: machine id, address, boot number and the metadata it advertises.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// Most bytes of advertised metadata (`key=value,...`): identities ride in every SWIM message.
pub const MAX_METADATA_BYTES: usize = 256;

/// A member as SWIM knows it. Two identities with one address are one member at two
/// boots: the higher boot wins. The machine id is what placement sees.
///
/// On the wire (see [`WireIdentity`]) a machine id of 32 lowercase hex digits, the
/// form of `/etc/machine-id`, travels as its 16 bytes: identities ride in every SWIM
/// message, two in each probe.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "WireIdentity", from = "WireIdentity")]
pub struct Identity {
    pub machine: String,
    pub addr: SocketAddr,
    /// Bumped at every start (kept in the snapshot) and when the cluster declared us down,
    /// so a restarted member rejoins at once instead of waiting for its old self to be forgotten.
    pub boot: u64,
    /// fleet's metadata string, `key=value,key2=value2`.
    pub metadata: String,
}

impl Identity {
    /// A stand-in for a static peer we know only by address (used to announce ourselves to it).
    pub fn placeholder(addr: SocketAddr) -> Identity {
        Identity {
            machine: String::new(),
            addr,
            boot: 0,
            metadata: String::new(),
        }
    }
}

impl foca::Identity for Identity {
    type Addr = SocketAddr;

    fn renew(&self) -> Option<Self> {
        Some(Identity {
            boot: self.boot.saturating_add(1),
            ..self.clone()
        })
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        // Deterministic on every member: later boot first, then the whole identity.
        (self.boot, self) > (adversary.boot, adversary)
    }
}

/// A machine id as it travels: binary when that gives the same text back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireMachine {
    /// 32 lowercase hex digits, as 16 bytes.
    Hex([u8; 16]),
    /// Anything else, as it is.
    Text(String),
}

impl WireMachine {
    pub fn of(machine: &str) -> WireMachine {
        let b = machine.as_bytes();
        let lower_hex = |c: &u8| c.is_ascii_digit() || (b'a'..=b'f').contains(c);
        if b.len() != 32 || !b.iter().all(lower_hex) {
            return WireMachine::Text(machine.to_string());
        }
        let nibble = |c: u8| {
            if c.is_ascii_digit() {
                c - b'0'
            } else {
                c - b'a' + 10
            }
        };
        let mut out = [0u8; 16];
        for (i, pair) in b.chunks(2).enumerate() {
            out[i] = nibble(pair[0]) << 4 | nibble(pair[1]);
        }
        WireMachine::Hex(out)
    }

    pub fn text(self) -> String {
        match self {
            WireMachine::Hex(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
            WireMachine::Text(t) => t,
        }
    }
}

/// [`Identity`]'s wire form (the field order is the wire format).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WireIdentity {
    machine: WireMachine,
    addr: SocketAddr,
    boot: u64,
    metadata: String,
}

impl From<Identity> for WireIdentity {
    fn from(id: Identity) -> WireIdentity {
        WireIdentity {
            machine: WireMachine::of(&id.machine),
            addr: id.addr,
            boot: id.boot,
            metadata: id.metadata,
        }
    }
}

impl From<WireIdentity> for Identity {
    fn from(w: WireIdentity) -> Identity {
        Identity {
            machine: w.machine.text(),
            addr: w.addr,
            boot: w.boot,
            metadata: w.metadata,
        }
    }
}
