//! What a member keeps across restarts: a versioned postcard snapshot.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Node, NodeConfig};
use crate::catalog::{Catalog, CatalogSnapshot, Digest};
use crate::time::Millis;

/// The snapshot format, first byte of every snapshot.
pub const SNAPSHOT_FORMAT: u8 = 1;

#[derive(Serialize, Deserialize)]
struct SnapshotV1 {
    machine: String,
    boot: u64,
    report_counter: u64,
    installed: Vec<(String, Digest)>,
    catalog: CatalogSnapshot,
}

/// Why a snapshot was not taken back. Nothing was started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotError {
    UnknownFormat(u8),
    Corrupt(String),
    /// The snapshot belongs to another machine id (copied disk?).
    OtherMachine(String),
}

impl std::fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnapshotError::UnknownFormat(v) => write!(f, "unknown snapshot format {v}"),
            SnapshotError::Corrupt(e) => write!(f, "corrupt snapshot: {e}"),
            SnapshotError::OtherMachine(m) => write!(f, "the snapshot belongs to machine {m}"),
        }
    }
}

impl std::error::Error for SnapshotError {}

impl Node {
    /// The state to keep across restarts (desired units, tombstones, texts, reports,
    /// counters), as of the last input's time.
    pub fn snapshot(&self) -> Vec<u8> {
        let s = SnapshotV1 {
            machine: self.cfg.machine_id.clone(),
            boot: self.boot.max(self.membership.identity().boot),
            report_counter: self.report_counter,
            installed: self
                .installed
                .iter()
                .map(|(n, d)| (n.clone(), *d))
                .collect(),
            catalog: self.catalog.snapshot(self.now),
        };
        let mut out = vec![SNAPSHOT_FORMAT];
        // Encoding our own plain types into a Vec cannot fail.
        out.extend(postcard::to_allocvec(&s).unwrap_or_default());
        out
    }

    /// A member starting again from its snapshot, with the next boot number.
    pub fn restore(cfg: NodeConfig, now: Millis, bytes: &[u8]) -> Result<Node, SnapshotError> {
        Node::restore_with(cfg, now, bytes, |_| true)
    }

    /// [`Node::restore`], keeping as installed only the units for which `still_installed`
    /// holds: unit files live on tmpfs, so after a reboot systemd has none of them and
    /// they must be installed again before they can start.
    pub fn restore_with(
        cfg: NodeConfig,
        now: Millis,
        bytes: &[u8],
        still_installed: impl Fn(&str) -> bool,
    ) -> Result<Node, SnapshotError> {
        let (&format, body) = bytes
            .split_first()
            .ok_or(SnapshotError::Corrupt("empty".into()))?;
        if format != SNAPSHOT_FORMAT {
            return Err(SnapshotError::UnknownFormat(format));
        }
        let s: SnapshotV1 =
            postcard::from_bytes(body).map_err(|e| SnapshotError::Corrupt(e.to_string()))?;
        if s.machine != cfg.machine_id {
            return Err(SnapshotError::OtherMachine(s.machine));
        }
        let catalog = Catalog::restore(now, cfg.tombstone_ttl_ms, s.catalog);
        let installed: BTreeMap<String, Digest> = crate::btree::map(
            s.installed
                .into_iter()
                .filter(|(name, _)| still_installed(name)),
        );
        Ok(Node::start(
            cfg,
            now,
            s.boot.saturating_add(1),
            s.report_counter,
            catalog,
            installed,
        ))
    }
}
