//! What a member is started with, and the unit-file parser it uses.

use std::net::SocketAddr;

use super::JOIN_GRACE_MS;
use crate::catalog;
use crate::membership::Timing;
use crate::wire::KeyRing;

/// Parses a unit's `[X-Fleet]` options from its name and text.
pub type ParseFn = fn(&str, &str) -> Result<crate::unit::FleetOptions, String>;

/// The production parser: shoal's unit-file parser.
pub fn parse_fleet_options(name: &str, text: &str) -> Result<crate::unit::FleetOptions, String> {
    crate::unit::parse_unit(name, name, text)
        .map(|u| u.options)
        .map_err(|e| e.to_string())
}

/// Everything a member is started with.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub machine_id: String,
    pub addr: SocketAddr,
    /// fleet's metadata string, `key=value,...` (at most 256 bytes).
    pub metadata: String,
    /// Static peer addresses to join through (may include our own).
    pub peers: Vec<SocketAddr>,
    pub keys: KeyRing,
    /// Fresh random bytes at every start (from the OS in the agent, from the run's seed
    /// in the simulation): drives nonces and every random choice.
    pub seed: [u8; 32],
    /// The expected number of members (tunes dissemination and suspicion).
    pub cluster_size: u32,
    pub timing: Timing,
    pub tombstone_ttl_ms: u64,
    /// See [`JOIN_GRACE_MS`]; it applies only when `peers` names another member.
    pub join_grace_ms: u64,
    pub parse: ParseFn,
}

impl NodeConfig {
    pub fn new(machine_id: &str, addr: SocketAddr, keys: KeyRing, seed: [u8; 32]) -> NodeConfig {
        NodeConfig {
            machine_id: machine_id.to_string(),
            addr,
            metadata: String::new(),
            peers: Vec::new(),
            keys,
            seed,
            cluster_size: 3,
            timing: Timing::default(),
            tombstone_ttl_ms: catalog::TOMBSTONE_TTL_MS,
            join_grace_ms: JOIN_GRACE_MS,
            parse: parse_fleet_options,
        }
    }
}
