//! Traffic by kind: every datagram the simulated members send, opened and classified.
//!
//! Bytes are counted as Ethernet frames (the datagram plus 42 bytes of Ethernet, IPv4
//! and UDP headers), as `cargo xtask bench --idle` counts them on eth0.

use std::collections::BTreeMap;

use shoal::wire::DropCounters;

/// Ethernet (14) + IPv4 (20) + UDP (8) header bytes per datagram.
pub const FRAME_OVERHEAD_BYTES: u64 = 42;

/// Datagrams and frame bytes sent, by kind (`swim/ping`, `catalog/summary`, ...).
#[derive(Clone, Debug, Default)]
pub struct Traffic {
    pub by_kind: BTreeMap<String, (u64, u64)>,
}

impl Traffic {
    pub fn count(&mut self, datagram: &[u8]) {
        let mut drops = DropCounters::default();
        let kind = shoal::wire::open(&super::cluster_key(), datagram, &mut drops)
            .map_or_else(|| "?".to_string(), |b| shoal::node::describe_packet(&b));
        let slot = self.by_kind.entry(kind).or_default();
        slot.0 += 1;
        slot.1 += datagram.len() as u64 + FRAME_OVERHEAD_BYTES;
    }

    pub fn total_bytes(&self) -> u64 {
        self.by_kind.values().map(|(_, b)| b).sum()
    }

    /// One line per kind: datagrams/s, bytes/s and mean datagram size, per member.
    pub fn table(&self, members: u64, secs: u64) -> String {
        let per = (members * secs).max(1) as f64;
        let mut out = String::from(
            "kind                    | datagrams/member/s | frame B/member/s | B/datagram\n",
        );
        for (k, (n, b)) in &self.by_kind {
            out += &format!(
                "{k:<23} | {:>18.2} | {:>16.1} | {:>10.1}\n",
                *n as f64 / per,
                *b as f64 / per,
                *b as f64 / (*n).max(1) as f64
            );
        }
        out += &format!(
            "{:<23} | {:>18.2} | {:>16.1} |\n",
            "total",
            self.by_kind.values().map(|(n, _)| n).sum::<u64>() as f64 / per,
            self.total_bytes() as f64 / per
        );
        out
    }
}
