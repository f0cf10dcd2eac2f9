//! The node's answers to questions about its own decisions: the placement view it
//! placed with (for `why` and `plan`), and which member answers `status`/`journal`.
//!
//! Architecture invariant: these read the node's state and decide nothing new; a
//! driver asks here instead of rebuilding the node's view from what it shows.

use super::Node;
use crate::catalog::Desired;
use crate::schedule::{Decision, Member, Running};
use crate::states::ActiveState;

/// What this member places with: the same members and running map as `reconcile`
/// (reports of each member's current boot only), and the units it places.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacementView {
    pub members: Vec<Member>,
    pub running: Running,
    /// The units to place (desired state loaded or launched), by name.
    pub units: Vec<ViewUnit>,
}

/// One unit to place, with the text its options come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewUnit {
    pub name: String,
    /// Start order.
    pub seq: u64,
    /// `None` while the unit's file has not reached this member.
    pub text: Option<String>,
}

impl Node {
    /// The inputs of this member's placement, as `reconcile` reads them.
    pub fn placement_view(&self) -> PlacementView {
        let (members, running, _claimed) = self.view();
        let units = super::inputs::placeable(&self.catalog)
            .map(|(name, seq, digest)| ViewUnit {
                name: name.to_string(),
                seq,
                text: self.catalog.text(digest).map(str::to_string),
            })
            .collect();
        PlacementView {
            members,
            running,
            units,
        }
    }

    /// The member that answers `status` and `journal` for `unit`: a live member whose
    /// systemd has it running (or failed: its status says why), else the first one
    /// placement gives it, else any live member that reported it.
    pub fn answerer(&self, unit: &str) -> Option<String> {
        let Some(Desired::Live { .. }) = self.catalog.unit(unit).map(|e| &e.state) else {
            return None;
        };
        let live: std::collections::BTreeSet<String> = crate::btree::set(
            std::iter::once(self.identity().machine.clone())
                .chain(self.live_members().into_iter().map(|i| i.machine)),
        );
        let runs: Vec<(&String, &ActiveState)> = self
            .catalog
            .replica()
            .reports
            .iter()
            .filter(|((m, u), _)| u == unit && live.contains(m))
            .filter_map(|((m, _), r)| r.status.as_ref().map(|s| (m, &s.active)))
            .collect();
        let placed = match self.placement.units.get(unit) {
            Some(Decision::Placed(ms)) => ms.first().map(|m| m.0.clone()),
            _ => None,
        };
        runs.iter()
            // A failed unit's journal says why it failed: ask its member.
            .find(|(_, active)| active.is_running() || **active == ActiveState::Failed)
            .map(|(m, _)| m.to_string())
            .or(placed)
            .or_else(|| runs.first().map(|(m, _)| m.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::node::{Command, NodeConfig};
    use crate::schedule::MachineId;
    use crate::time::Millis;
    use crate::wire::{Key, KeyRing};

    const TEXT: &str = "[Service]\nExecStart=/bin/true\n";

    fn alone() -> Node {
        let keys = KeyRing::new(Key::from_bytes([1; 32]), vec![]).expect("ring");
        let addr = SocketAddr::from(([10, 0, 0, 1], 4700));
        let mut cfg = NodeConfig::new("aaaaaaaaaaaaaaaa", addr, keys, [7; 32]);
        cfg.metadata = "disk=ssd".into();
        Node::new(cfg, Millis(0))
    }

    fn submit(n: &mut Node, name: &str, start: bool) {
        let name = name.to_string();
        n.handle_command(
            Millis(1),
            Command::Submit {
                name: name.clone(),
                text: TEXT.into(),
            },
        )
        .expect("submit");
        if start {
            n.handle_command(Millis(2), Command::Start { name })
                .expect("start");
        }
    }

    #[test]
    fn the_placement_view_holds_the_members_and_the_units_to_place_with_their_texts() {
        let mut n = alone();
        submit(&mut n, "a.service", true);
        submit(&mut n, "idle.service", false);
        let view = n.placement_view();
        assert_eq!(view.members.len(), 1);
        assert_eq!(view.members[0].id, MachineId("aaaaaaaaaaaaaaaa".into()));
        assert_eq!(view.members[0].metadata.to_string(), "disk=ssd");
        // Nothing reported yet: nothing runs. The inactive unit is not placed.
        assert!(view.running.is_empty());
        assert_eq!(view.units.len(), 1);
        assert_eq!(view.units[0].name, "a.service");
        assert_eq!(view.units[0].text.as_deref(), Some(TEXT));
    }

    #[test]
    fn status_is_answered_by_the_member_placement_gives_a_unit_before_it_runs() {
        let mut n = alone();
        submit(&mut n, "a.service", true);
        submit(&mut n, "idle.service", false);
        // Placement follows on a tick.
        n.handle_timeout(Millis(100));
        assert_eq!(n.answerer("a.service").as_deref(), Some("aaaaaaaaaaaaaaaa"));
        // Known but placed nowhere and reported nowhere; unknown.
        assert_eq!(n.answerer("idle.service"), None);
        assert_eq!(n.answerer("nope.service"), None);
    }
}
