//! Placement's inputs kept between reconciles, built again only where the state changed.
//!
//! A reconcile of 10,000 unchanged units used to build every input again (names cloned
//! into maps, options cloned into jobs) and place from scratch: about 200 ms on the
//! event loop that also answers probes. Here each input is compared with the state it
//! was built from in one ordered walk (no lookups, no allocation) and built again only
//! when they differ; when no input differs, the last placement stands.
//!
//! Architecture invariant: invisible. Each check compares everything its input is a
//! function of (the live members, every report, every placeable unit's name, start
//! sequence and text digest), so a kept input always equals a freshly built one, and
//! placement, a pure function of its inputs, equals a placement from scratch. A text
//! found once stays (a live record's text is never dropped; its digest names its bytes),
//! so only a missing one is looked up again.

use std::collections::{BTreeMap, BTreeSet};

use super::parsed::ParseCache;
use super::ParseFn;
use crate::catalog::{Catalog, Desired, Digest, ReportEntry, Status, Target};
use crate::schedule::{Decision, Job, MachineId, Member, Running};

/// What one placeable unit's input was built from, and what it gave.
struct UnitInput {
    name: String,
    seq: u64,
    digest: Digest,
    /// Whether its text had arrived (one that had not is looked up again each time).
    has_text: bool,
    /// The job, or why the unit waits (its text has not arrived, or does not parse).
    outcome: Result<Job, String>,
}

/// One running report of a live member, as placement counts it.
#[derive(PartialEq, Eq)]
struct ReportInput {
    member: String,
    unit: String,
    /// From the member's current boot: counts for stickiness, not only for the start guard.
    current: bool,
}

/// Placement's inputs as of the last reconcile (see the module doc).
#[derive(Default)]
pub(super) struct Inputs {
    units: Vec<UnitInput>,
    waiting: BTreeMap<String, Decision>,
    pub(super) globals: BTreeSet<String>,
    members: Vec<Member>,
    reports: Vec<ReportInput>,
    running: Running,
    pub(super) claimed: Running,
    /// Whether the node's placement is the placement of these inputs.
    placed: bool,
}

/// The words for a unit whose text is still on its way.
const TEXT_MISSING: &str = "the unit file has not reached this member yet";

impl Inputs {
    /// Takes `members` (the live ones, by id); true when they differ from last time.
    pub(super) fn set_members(&mut self, members: Vec<Member>) -> bool {
        if members == self.members {
            return false;
        }
        self.members = members;
        self.placed = false;
        true
    }

    /// Brings the running views up to date with `reports`; `boots` gives each live
    /// member's current boot. True when they changed.
    pub(super) fn update_reports(
        &mut self,
        reports: &BTreeMap<(String, String), ReportEntry>,
        boots: &BTreeMap<String, u64>,
    ) -> bool {
        let mut same = 0;
        let mut count = 0;
        for_running_reports(reports, boots, |member, unit, current| {
            count += 1;
            if same + 1 == count {
                if let Some(r) = self.reports.get(same) {
                    if r.current == current && r.unit == unit && r.member == member {
                        same += 1;
                    }
                }
            }
        });
        if same == count && count == self.reports.len() {
            return false;
        }
        self.reports.clear();
        self.running.clear();
        self.claimed.clear();
        let (out, running, claimed) = (&mut self.reports, &mut self.running, &mut self.claimed);
        for_running_reports(reports, boots, |member, unit, current| {
            let id = MachineId(member.to_string());
            if current {
                running
                    .entry(unit.to_string())
                    .or_default()
                    .insert(id.clone());
            }
            claimed.entry(unit.to_string()).or_default().insert(id);
            out.push(ReportInput {
                member: member.to_string(),
                unit: unit.to_string(),
                current,
            });
        });
        self.placed = false;
        true
    }

    /// Brings the jobs up to date with the catalog's placeable units (desired state
    /// loaded or launched), parsing through `parsed`. True when they changed.
    pub(super) fn update_jobs(
        &mut self,
        catalog: &Catalog,
        parsed: &mut ParseCache,
        parse: ParseFn,
    ) -> bool {
        let mut kept = self.units.iter();
        let unchanged = placeable(catalog).all(|(name, seq, digest)| {
            kept.next().is_some_and(|u| {
                u.name == name
                    && u.seq == seq
                    && u.digest == *digest
                    && (u.has_text || catalog.text(digest).is_none())
            })
        }) && kept.next().is_none();
        if unchanged {
            return false;
        }
        self.rebuild_jobs(catalog, parsed, parse);
        self.placed = false;
        true
    }

    /// Every placeable unit's input again; a unit with the same name and text keeps its
    /// job (moved, not cloned), others are parsed through the parse cache.
    fn rebuild_jobs(&mut self, catalog: &Catalog, parsed: &mut ParseCache, parse: ParseFn) {
        let mut old = std::mem::take(&mut self.units).into_iter().peekable();
        let mut units = Vec::with_capacity(catalog.replica().units.len());
        for (name, seq, digest) in placeable(catalog) {
            while old.next_if(|u| u.name.as_str() < name).is_some() {}
            let reuse = old.next_if(|u| u.name == name && u.digest == *digest);
            let text = catalog.text(digest);
            let outcome = match text {
                None => Err(TEXT_MISSING.to_string()),
                Some(text) => {
                    // Asked even when reused: the parse cache keeps the units of the
                    // last reconcile that rebuilt jobs.
                    let fresh = parsed.get(parse, name, digest, text);
                    match reuse.map(|u| u.outcome) {
                        Some(Ok(mut job)) if fresh.is_ok() => {
                            job.seq = seq;
                            Ok(job)
                        }
                        _ => fresh.clone().map(|options| Job {
                            name: name.to_string(),
                            seq,
                            options,
                        }),
                    }
                }
            };
            units.push(UnitInput {
                name: name.to_string(),
                seq,
                digest: *digest,
                has_text: text.is_some(),
                outcome,
            });
        }
        parsed.finish();
        self.units = units;
        self.waiting.clear();
        self.globals.clear();
        for u in &self.units {
            match &u.outcome {
                Ok(job) if job.options.global => {
                    self.globals.insert(u.name.clone());
                }
                Ok(_) => {}
                Err(reason) => {
                    self.waiting
                        .insert(u.name.clone(), Decision::Waiting(reason.clone()));
                }
            }
        }
    }

    /// The members, jobs and running map to place with; `None` when the placement of
    /// the last call still holds (no input changed since).
    pub(super) fn take_changed(&mut self) -> Option<(&[Member], Vec<&Job>, &Running)> {
        if self.placed {
            return None;
        }
        self.placed = true;
        let jobs = self.units.iter().filter_map(|u| u.outcome.as_ref().ok());
        Some((&self.members, jobs.collect(), &self.running))
    }

    /// Units that wait before placement (text missing or not parsing), with the reason.
    pub(super) fn waiting(&self) -> &BTreeMap<String, Decision> {
        &self.waiting
    }
}

/// (name, start sequence, digest) of every unit placement takes, by name.
pub(super) fn placeable(catalog: &Catalog) -> impl Iterator<Item = (&str, u64, &Digest)> {
    catalog
        .replica()
        .units
        .iter()
        .filter_map(|(name, e)| match &e.state {
            Desired::Live {
                target,
                seq,
                digest,
                ..
            } if *target != Target::Inactive => Some((name.as_str(), *seq, digest)),
            _ => None,
        })
}

/// Calls `f(member, unit, current)` for each report of a live member saying the unit
/// runs, in report order; `current` when it comes from the member's current boot.
pub(super) fn for_running_reports(
    reports: &BTreeMap<(String, String), ReportEntry>,
    boots: &BTreeMap<String, u64>,
    mut f: impl FnMut(&str, &str, bool),
) {
    // Reports are sorted by member: look each member up once, not once per report.
    let mut last: Option<(&str, Option<u64>)> = None;
    for ((member, unit), r) in reports {
        let boot = match last {
            Some((m, boot)) if m == member => boot,
            _ => {
                let boot = boots.get(member).copied();
                last = Some((member, boot));
                boot
            }
        };
        let Some(boot) = boot else {
            continue;
        };
        if !r.status.as_ref().is_some_and(Status::is_running) {
            continue;
        }
        f(member, unit, r.version.boot >= boot);
    }
}

/// The placement of `node`'s state computed from nothing kept: every unit parsed, every
/// input built again (what `reconcile` did before `Inputs`).
#[cfg(test)]
pub(super) fn from_scratch(node: &super::Node) -> crate::schedule::Placement {
    let (members, running, _) = node.view();
    let mut jobs = Vec::new();
    let mut waiting = BTreeMap::new();
    for (name, seq, digest) in placeable(&node.catalog) {
        let outcome = match node.catalog.text(digest) {
            None => Err(TEXT_MISSING.to_string()),
            Some(text) => super::parse_fleet_options(name, text),
        };
        match outcome {
            Ok(options) => jobs.push(Job {
                name: name.to_string(),
                seq,
                options,
            }),
            Err(reason) => {
                waiting.insert(name.to_string(), Decision::Waiting(reason));
            }
        }
    }
    let mut placement = crate::schedule::place(&members, &jobs, &running);
    placement.units.extend(waiting);
    placement
}

#[cfg(test)]
mod tests {
    use crate::membership::rng::SplitMix;
    use crate::node::testing::{self, status, Net};
    use crate::node::{Command, Node};
    use crate::time::Millis;

    /// Unit texts with every kind of constraint, one that does not parse, and `%i`.
    const TEXTS: [&str; 6] = [
        "[Service]\nExecStart=/bin/true\n",
        "[X-Fleet]\nConflicts=u1*.service\n",
        "[X-Fleet]\nMachineOf=u0.service\n",
        "[X-Fleet]\nReplaces=u2.service\n",
        "[X-Fleet]\nGlobal=true\nMachineMetadata=disk=ssd\n",
        "[X-Fleet]\nNoSuchKey=1\n",
    ];

    /// One random change: a command, a systemd report, or a member crashing and coming
    /// back (a restart from its snapshot).
    fn change(net: &mut Net, rng: &mut SplitMix, down: &mut Vec<(u8, Vec<u8>)>) {
        let i = rng.below(net.nodes.len() as u64) as usize;
        let name = format!("u{}.service", rng.below(8));
        let now = net.now;
        let members = net.nodes.len();
        let node = &mut net.nodes[i];
        match rng.below(10) {
            0..=3 => {
                let text = TEXTS[rng.below(TEXTS.len() as u64) as usize].to_string();
                let _ = node.handle_command(
                    now,
                    Command::Submit {
                        name: name.clone(),
                        text,
                    },
                );
                let _ = node.handle_command(now, Command::Start { name });
            }
            4 => {
                let _ = node.handle_command(now, Command::Stop { name });
            }
            5 => {
                let _ = node.handle_command(now, Command::Unload { name });
            }
            6 => {
                let _ = node.handle_command(now, Command::Destroy { name });
            }
            7 | 8 => {
                let words = [
                    ("active", "running"),
                    ("failed", "failed"),
                    ("inactive", "dead"),
                ];
                let (active, sub) = words[rng.below(3) as usize];
                node.handle_systemd_report(now, &name, Some(status(active, sub)));
            }
            _ if down.is_empty() && members > 2 => {
                let addr = node.identity().addr;
                let host = (1..=4u8).find(|&h| testing::addr(h) == addr);
                let gone = net.remove(i);
                down.extend(host.map(|h| (h, gone.snapshot())));
            }
            _ => {
                if let Some((host, snap)) = down.pop() {
                    let back = Node::restore(member_config(host), now, &snap);
                    net.add(back.expect("a snapshot of this test's own member"));
                }
            }
        }
    }

    fn member_config(host: u8) -> crate::node::NodeConfig {
        let mut cfg = testing::config(&format!("{host:016x}"), host, &[1, 2, 3, 4], host);
        if host.is_multiple_of(2) {
            cfg.metadata = "disk=ssd".into();
        }
        cfg
    }

    /// Every reconcile in test builds compares the kept inputs with a placement from
    /// scratch (`check_against_scratch`); this drives random changes through four members
    /// so that those checks meet every kind of change, and compares once more at the end.
    #[test]
    fn kept_inputs_place_as_from_scratch_through_random_changes() {
        for seed in 0..12u64 {
            let nodes = (1..=4u8)
                .map(|h| Node::new(member_config(h), Millis(0)))
                .collect();
            let mut net = Net::new(nodes);
            net.join(10);
            let mut rng = SplitMix::new(seed);
            let mut down = Vec::new();
            for _ in 0..60 {
                for _ in 0..rng.below(4) + 1 {
                    change(&mut net, &mut rng, &mut down);
                }
                let t = net.now.plus(10 + rng.below(60));
                net.at(t);
            }
            // Quiet: the last changes reconciled everywhere.
            for _ in 0..20 {
                let t = net.now.plus(100);
                net.at(t);
            }
            for n in net.nodes.iter().filter(|n| !n.dirty) {
                assert_eq!(n.placement(), &super::from_scratch(n), "seed {seed}");
            }
        }
    }
}
