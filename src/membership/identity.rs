//! Who a member is: machine id, address, boot number and the metadata it advertises.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// Most bytes of advertised metadata (`key=value,...`): identities ride in every SWIM message.
pub const MAX_METADATA_BYTES: usize = 256;

/// A member as SWIM knows it. Two identities with one address are one member at two
/// boots: the higher boot wins. The machine id is what placement sees.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
