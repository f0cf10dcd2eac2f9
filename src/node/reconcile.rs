//! From the replicated state to this member's systemd: placement, then starts and stops.
//!
//! Architecture invariant: every member computes placement from the same inputs (live
//! members, desired units, reports of live members), so all agree once they share a view.
//! A non-global unit starts here only when no other live member reports it running;
//! after a partition heals, placement (sticky) keeps exactly one of the runners and the
//! others stop.

use std::collections::{BTreeMap, BTreeSet};

use super::{Action, Node, Pending};
use crate::catalog::{Desired, Digest, Status, Target};
use crate::schedule::{self, Decision, Job, MachineId, Member, Metadata, Running};

impl Node {
    /// Placement inputs as this member sees them: members (one per machine id: the lowest
    /// address wins a duplicate), and who runs what among them.
    ///
    /// Two views of who runs what. `current` counts a report only if it comes from the
    /// member's current boot: after a member restarts (or rejoins once declared down),
    /// what it said before is history, and letting placement's stickiness count it would
    /// let a returning member claim back units that moved away (after a reboot its
    /// systemd runs none of them). `claimed` also counts older reports: until a restarted
    /// member has said what it runs now, nobody else starts those units, since an agent
    /// that restarted (not its host) still runs them. A member re-stamps its reports when
    /// its boot changes, so the two views agree again within a round of gossip.
    pub(super) fn view(&self) -> (Vec<Member>, Running, Running) {
        // machine id -> (address, metadata, boot) of the identity that represents it.
        let mut by_machine: BTreeMap<String, (std::net::SocketAddr, String, u64)> = BTreeMap::new();
        let me = self.membership.identity().clone();
        for id in self
            .membership
            .live()
            .into_iter()
            .chain(std::iter::once(me))
        {
            let slot = by_machine.entry(id.machine.clone()).or_insert((
                id.addr,
                id.metadata.clone(),
                id.boot,
            ));
            if id.addr < slot.0 {
                *slot = (id.addr, id.metadata, id.boot);
            }
        }
        // Most members share a few metadata strings: parse each once.
        let mut parsed: BTreeMap<&str, Metadata> = BTreeMap::new();
        let members: Vec<Member> = by_machine
            .iter()
            .map(|(m, (_, meta, _))| Member {
                id: MachineId(m.clone()),
                metadata: parsed
                    .entry(meta.as_str())
                    .or_insert_with(|| Metadata::parse(meta).unwrap_or_default())
                    .clone(),
            })
            .collect();
        let mut current = Running::new();
        let mut claimed = Running::new();
        for ((member, unit), r) in &self.catalog.replica().reports {
            let Some(&(_, _, boot)) = by_machine.get(member) else {
                continue;
            };
            if !r.status.as_ref().is_some_and(Status::is_running) {
                continue;
            }
            let id = MachineId(member.clone());
            if r.version.boot >= boot {
                current.entry(unit.clone()).or_default().insert(id.clone());
            }
            claimed.entry(unit.clone()).or_default().insert(id);
        }
        (members, current, claimed)
    }

    pub(super) fn reconcile(&mut self) {
        let (members, running, claimed) = self.view();
        let mut jobs = Vec::new();
        let mut waiting = BTreeMap::new();
        let mut globals = BTreeSet::new();
        for (name, e) in &self.catalog.replica().units {
            let Desired::Live {
                target,
                seq,
                digest,
                ..
            } = &e.state
            else {
                continue;
            };
            if *target == Target::Inactive {
                continue;
            }
            let Some(text) = self.catalog.text(digest) else {
                waiting.insert(
                    name.clone(),
                    Decision::Waiting("the unit file has not reached this member yet".into()),
                );
                continue;
            };
            match self.parsed.get(self.cfg.parse, name, digest, text) {
                Ok(options) => {
                    if options.global {
                        globals.insert(name.clone());
                    }
                    jobs.push(Job {
                        name: name.clone(),
                        seq: *seq,
                        options: options.clone(),
                    });
                }
                Err(reason) => {
                    waiting.insert(name.clone(), Decision::Waiting(reason.clone()));
                }
            }
        }
        self.parsed.finish();
        let mut placement = schedule::place(&members, &jobs, &running);
        placement.units.extend(waiting);
        self.placement = placement;
        self.decide(&claimed, &globals);
    }

    /// `claimed`: who may be running each unit (see [`Node::view`]); a non-global unit
    /// starts here only when no other live member may be running it.
    fn decide(&mut self, claimed: &Running, globals: &BTreeSet<String>) {
        let me = MachineId(self.cfg.machine_id.clone());
        let leaving = self.leaving_since.is_some();
        let mut names: BTreeSet<String> =
            crate::btree::set(self.catalog.replica().units.keys().cloned());
        names.extend(self.installed.keys().cloned());
        names.extend(
            self.local
                .iter()
                .filter(|(_, s)| s.is_running())
                .map(|(n, _)| n.clone()),
        );
        for name in names {
            let entry = self.catalog.unit(&name).map(|e| e.state.clone());
            let managed = entry.is_some() || self.installed.contains_key(&name);
            if !managed {
                // Not ours: something else on this host runs a unit of that name.
                continue;
            }
            let placed_here = !leaving && self.placement.machines_of(&name).contains(&me);
            let (target, digest) = match entry {
                Some(Desired::Live { target, digest, .. }) => (Some(target), Some(digest)),
                _ => (None, None),
            };
            let want_installed =
                placed_here && matches!(target, Some(Target::Loaded | Target::Launched));
            let want_running = placed_here && target == Some(Target::Launched);
            let running_here = self.local.get(&name).is_some_and(Status::is_running);
            let pending = self.pending.get(&name).copied();

            if let Some(d) = digest.filter(|_| want_installed) {
                self.install(&name, d);
            }
            let installed = digest.is_some_and(|d| self.installed.get(&name) == Some(&d));
            if want_running
                && installed
                && !self.hold.holding()
                && !running_here
                && !matches!(pending, Some(Pending::Start(_)))
            {
                let others_run = claimed
                    .get(&name)
                    .is_some_and(|on| on.iter().any(|m| *m != me));
                if globals.contains(&name) || !others_run {
                    self.out.act(Action::Start { unit: name.clone() });
                    self.pending.insert(name.clone(), Pending::Start(self.now));
                }
            }
            if !want_running && running_here && !matches!(pending, Some(Pending::Stop(_))) {
                self.out.act(Action::Stop { unit: name.clone() });
                self.pending.insert(name.clone(), Pending::Stop(self.now));
            }
            if !want_installed
                && !running_here
                && pending.is_none()
                && self.installed.remove(&name).is_some()
            {
                self.changes.installed(&name);
                self.out.act(Action::Remove { unit: name.clone() });
            }
        }
    }

    /// Installs the unit file with text `digest` here, unless it is installed already
    /// or the text has not arrived yet (a later reconcile does it then).
    fn install(&mut self, name: &str, digest: Digest) {
        if self.installed.get(name) == Some(&digest) {
            return;
        }
        if let Some(text) = self.catalog.text(&digest) {
            self.out.act(Action::Install {
                unit: name.to_string(),
                text: text.to_string(),
            });
            self.installed.insert(name.to_string(), digest);
            self.changes.installed(name);
        }
    }
}
