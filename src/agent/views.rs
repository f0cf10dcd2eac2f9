//! What the control socket shows: the node's state as `list-units`/`list-machines` rows.

use crate::catalog::Desired;
use crate::control::{MachineInfo, UnitInfo, UnitRun};
use crate::node::Node;
use crate::schedule::Decision;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Live members, this one included, by machine id.
pub fn machines(node: &Node) -> Vec<MachineInfo> {
    let mut all: Vec<MachineInfo> = std::iter::once(node.identity().clone())
        .chain(node.live_members())
        .map(|i| MachineInfo {
            id: i.machine,
            ip: i.addr.ip().to_string(),
            metadata: i.metadata,
        })
        .collect();
    crate::sort::sort_by(&mut all, |a, b| a.id.cmp(&b.id).then(a.ip.cmp(&b.ip)));
    all.dedup_by(|a, b| a.id == b.id);
    all
}

/// Every desired unit, with placement and the states live members report.
pub fn units(node: &Node) -> Vec<UnitInfo> {
    let live: std::collections::BTreeSet<String> =
        crate::btree::set(machines(node).into_iter().map(|m| m.id));
    let replica = node.catalog().replica();
    // Each live member's reports by unit, in one pass (reports are keyed by member
    // first: looking them up per unit was units x reports, half a second at 2,000).
    let mut runs_of: std::collections::BTreeMap<&str, Vec<UnitRun>> = Default::default();
    for ((m, u), r) in &replica.reports {
        if let Some(s) = r.status.as_ref().filter(|_| live.contains(m)) {
            runs_of.entry(u.as_str()).or_default().push(UnitRun {
                machine: m.clone(),
                active: s.active.clone(),
                sub: s.sub.clone(),
            });
        }
    }
    let mut out = Vec::new();
    for (name, entry) in &replica.units {
        let Desired::Live {
            target,
            digest,
            seq,
            ..
        } = &entry.state
        else {
            continue;
        };
        let (machines, reason) = match node.placement().units.get(name) {
            Some(Decision::Placed(ms)) => (ms.iter().map(|m| m.0.clone()).collect(), None),
            Some(Decision::Waiting(why)) => (Vec::new(), Some(why.clone())),
            None => (Vec::new(), None),
        };
        let runs = runs_of.remove(name.as_str()).unwrap_or_default();
        out.push(UnitInfo {
            name: name.clone(),
            hash: hex(digest),
            // `.into()`: the word now, the typed target once `UnitInfo` carries it.
            dstate: *target,
            seq: *seq,
            machines,
            reason,
            runs,
        });
    }
    out
}
