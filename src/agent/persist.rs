//! The desired state on disk: restore at boot, save after commands and when it changed.
//!
//! A snapshot that cannot be read back (damaged, another format, another machine's)
//! is reported loudly with its file name, renamed aside to `<name>.corrupt` for a
//! human to inspect, and the agent starts empty: the other members still hold the
//! desired state and gossip it back, which beats a crash loop.

use std::path::{Path, PathBuf};

use crate::node::{Node, NodeConfig};
use crate::store::{self, StoreErrorKind};
use crate::time::Millis;

/// The snapshot's file name in the data directory.
pub const SNAPSHOT_FILE: &str = "state.snapshot";

pub fn snapshot_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SNAPSHOT_FILE)
}

/// A member from its snapshot, or a new one when there is none (or it was unusable).
/// `owned`: the units whose files systemd still has (none after a reboot).
pub fn restore(
    cfg: NodeConfig,
    now: Millis,
    data_dir: &Path,
    owned: &std::collections::BTreeSet<String>,
) -> Node {
    let path = snapshot_path(data_dir);
    let bytes = match store::read_snapshot(&path) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            log::info!("no snapshot at {}: starting empty", path.display());
            return Node::new(cfg, now);
        }
        Err(e) => {
            let damaged = matches!(
                e.kind,
                StoreErrorKind::Corrupt(_) | StoreErrorKind::TooLarge { .. }
            );
            if damaged {
                set_aside(&path, &e.to_string());
            } else {
                log::error!("{e}; starting empty (the cluster gossips the desired state back)");
            }
            return Node::new(cfg, now);
        }
    };
    match Node::restore_with(cfg.clone(), now, &bytes, |u| owned.contains(u)) {
        Ok(node) => {
            log::info!("restored the desired state from {}", path.display());
            node
        }
        Err(e) => {
            set_aside(&path, &format!("{}: {e}", path.display()));
            Node::new(cfg, now)
        }
    }
}

fn set_aside(path: &Path, why: &str) {
    let aside = path.with_file_name(format!("{SNAPSHOT_FILE}.corrupt"));
    match std::fs::rename(path, &aside) {
        Ok(()) => log::error!(
            "{why}; kept as {} for inspection; starting empty (the cluster gossips the desired state back)",
            aside.display()
        ),
        Err(e) => log::error!(
            "{why}; could not move it to {}: {e}; starting empty",
            aside.display()
        ),
    }
}

/// Writes `node`'s snapshot; failures are logged (the old snapshot stays).
pub fn save(node: &Node, data_dir: &Path) -> bool {
    let path = snapshot_path(data_dir);
    match store::write_snapshot(&path, &node.snapshot()) {
        Ok(()) => true,
        Err(e) => {
            log::error!("saving the desired state: {e}");
            false
        }
    }
}

/// A cheap fingerprint of what the snapshot must keep: the boot number, the desired
/// units and this member's own reports. Periodic saves happen only when it changes (tombstone ages
/// change every instant and are not worth a disk write on their own).
pub fn fingerprint(node: &Node) -> u64 {
    use std::hash::Hasher;
    let mut h = siphasher::sip::SipHasher13::new_with_keys(0, 0);
    h.write_u64(node.identity().boot);
    let replica = node.catalog().replica();
    h.write(&postcard::to_allocvec(&replica.units).unwrap_or_default());
    for ((member, unit), r) in &replica.reports {
        if member == node.machine_id() {
            h.write(unit.as_bytes());
            h.write_u64(r.version.counter);
        }
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Key, KeyRing};

    fn cfg() -> NodeConfig {
        let keys = KeyRing::new(Key::from_bytes([1; 32]), vec![]).unwrap();
        NodeConfig::new("m1", "127.0.0.1:1".parse().unwrap(), keys, [2; 32])
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("shoal-persist-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_saved_desired_state_comes_back() {
        let d = dir("roundtrip");
        let mut node = Node::new(cfg(), Millis(0));
        node.handle_command(
            Millis(1),
            crate::node::Command::Submit {
                name: "a.service".into(),
                text: "[Service]\nExecStart=/bin/true\n".into(),
            },
        )
        .unwrap();
        assert!(save(&node, &d));
        let back = restore(cfg(), Millis(0), &d, &Default::default());
        assert!(back.catalog().unit("a.service").is_some());
        assert_eq!(
            back.catalog().replica().units,
            node.catalog().replica().units
        );
        // A restored member runs under the next boot number: that alone is worth a save.
        assert_eq!(back.identity().boot, node.identity().boot + 1);
        assert_ne!(fingerprint(&back), fingerprint(&node));
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn a_corrupt_snapshot_is_set_aside_and_the_agent_starts_empty() {
        let d = dir("corrupt");
        std::fs::write(snapshot_path(&d), b"garbage, not a snapshot").unwrap();
        let node = restore(cfg(), Millis(0), &d, &Default::default());
        assert!(node.catalog().replica().units.is_empty());
        assert!(!snapshot_path(&d).exists());
        assert!(d.join("state.snapshot.corrupt").exists());
        // A valid file whose payload is not a Node snapshot is set aside too.
        store::write_snapshot(&snapshot_path(&d), &[9, 9, 9]).unwrap();
        let _ = restore(cfg(), Millis(0), &d, &Default::default());
        assert!(!snapshot_path(&d).exists());
        let _ = std::fs::remove_dir_all(d);
    }
}
