//! From the replicated state to this member's systemd: placement, then starts and stops.
//!
//! Architecture invariant: every member computes placement from the same inputs (live
//! members, desired units, reports of live members), so all agree once they share a view.
//! A non-global unit starts here only when no other live member reports it running;
//! after a partition heals, placement (sticky) keeps exactly one of the runners and the
//! others stop.

use std::collections::{BTreeMap, BTreeSet};

use super::{inputs, Action, Node, Pending};
use crate::catalog::{Desired, Digest, Status, Target};
use crate::schedule::{self, Decision, MachineId, Member, Metadata, Running};

/// Each live member's current boot, by machine id.
fn boots_of(
    by_machine: &BTreeMap<String, (std::net::SocketAddr, String, u64)>,
) -> BTreeMap<String, u64> {
    crate::btree::map(
        by_machine
            .iter()
            .map(|(m, (_, _, boot))| (m.clone(), *boot)),
    )
}

/// The members placement uses, by id; each distinct metadata string parsed once.
fn members_of(by_machine: &BTreeMap<String, (std::net::SocketAddr, String, u64)>) -> Vec<Member> {
    let mut parsed: BTreeMap<&str, Metadata> = BTreeMap::new();
    by_machine
        .iter()
        .map(|(m, (_, meta, _))| Member {
            id: MachineId(m.clone()),
            metadata: parsed
                .entry(meta.as_str())
                .or_insert_with(|| Metadata::parse(meta).unwrap_or_default())
                .clone(),
        })
        .collect()
}

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
        let by_machine = self.live_machines();
        let boots = boots_of(&by_machine);
        let mut current = Running::new();
        let mut claimed = Running::new();
        let reports = &self.catalog.replica().reports;
        inputs::for_running_reports(reports, &boots, |member, unit, is_current| {
            let id = MachineId(member.to_string());
            if is_current {
                current
                    .entry(unit.to_string())
                    .or_default()
                    .insert(id.clone());
            }
            claimed.entry(unit.to_string()).or_default().insert(id);
        });
        (members_of(&by_machine), current, claimed)
    }

    /// Live members (this one included) by machine id: (address, metadata, boot) of the
    /// identity that represents each (the lowest address wins a duplicate).
    fn live_machines(&self) -> BTreeMap<String, (std::net::SocketAddr, String, u64)> {
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
        by_machine
    }

    /// Places from the inputs kept since the last reconcile (see `inputs.rs`), brought
    /// up to date first; placement runs again only when one of them changed.
    pub(super) fn reconcile(&mut self) {
        let by_machine = self.live_machines();
        let mut inputs = std::mem::take(&mut self.inputs);
        inputs.set_members(members_of(&by_machine));
        inputs.update_reports(&self.catalog.replica().reports, &boots_of(&by_machine));
        inputs.update_jobs(&self.catalog, &mut self.parsed, self.cfg.parse);
        if let Some((members, jobs, running)) = inputs.take_changed() {
            let mut placement = schedule::place_refs(members, jobs, running);
            let waiting = inputs.waiting().iter();
            placement
                .units
                .extend(waiting.map(|(n, d)| (n.clone(), d.clone())));
            self.placement = placement;
        }
        self.decide(&inputs.claimed, &inputs.globals);
        #[cfg(test)]
        self.check_against_scratch(&inputs.claimed, &inputs.globals);
        self.inputs = inputs;
    }

    /// Test builds check every reconcile against the plain computation: the placement
    /// is the one from scratch, and a unit `names_to_act_on` left out needs nothing
    /// (an action always changes `pending` or `installed`, so deciding every unit again
    /// must leave both as they are).
    #[cfg(test)]
    fn check_against_scratch(&mut self, claimed: &Running, globals: &BTreeSet<String>) {
        assert_eq!(
            self.placement,
            inputs::from_scratch(self),
            "kept inputs differ"
        );
        let before = (self.pending.clone(), self.installed.clone());
        let mut names: BTreeSet<String> =
            crate::btree::set(self.catalog.replica().units.keys().cloned());
        names.extend(self.installed.keys().cloned());
        let local = self.local.iter().filter(|(_, s)| s.is_running());
        names.extend(local.map(|(n, _)| n.clone()));
        for name in names {
            self.decide_unit(&name, claimed, globals);
        }
        assert_eq!(
            (&self.pending, &self.installed),
            (&before.0, &before.1),
            "a unit left out of names_to_act_on needed an action"
        );
    }

    /// `claimed`: who may be running each unit (see [`Node::view`]); a non-global unit
    /// starts here only when no other live member may be running it.
    fn decide(&mut self, claimed: &Running, globals: &BTreeSet<String>) {
        for name in self.names_to_act_on() {
            self.decide_unit(&name, claimed, globals);
        }
    }

    /// The units `decide_unit` may act on, in name order: an over-estimate (the start
    /// guard and the hold are left to it), found in one ordered walk of the maps it
    /// reads, so the thousands of units that need nothing cost no lookup and no copy.
    /// Every unit `decide_unit` acts on is here: each test below is one of its
    /// conditions with some conjuncts left out.
    fn names_to_act_on(&self) -> Vec<String> {
        let me = self.cfg.machine_id.as_str();
        let leaving = self.leaving_since.is_some();
        let mut placement = Cursor::new(&self.placement.units);
        let mut pending = Cursor::new(&self.pending);
        let mut units = self.catalog.replica().units.iter().peekable();
        let mut installed = self.installed.iter().peekable();
        let mut local = self.local.iter().filter(|(_, s)| s.is_running()).peekable();
        let mut out = Vec::new();
        loop {
            // The next name of the three sources (as `decide` once merged them in a set).
            let heads = [
                units.peek().map(|&(n, _)| n.as_str()),
                installed.peek().map(|&(n, _)| n.as_str()),
                local.peek().map(|&(n, _)| n.as_str()),
            ];
            let Some(name) = heads.into_iter().flatten().min() else {
                break;
            };
            let entry = units.next_if(|&(n, _)| n == name).map(|(_, e)| e);
            let installed_now = installed.next_if(|&(n, _)| n == name).map(|(_, d)| d);
            let running_here = local.next_if(|&(n, _)| n == name).is_some();
            if entry.is_none() && installed_now.is_none() {
                continue; // Not ours: `decide_unit` leaves it alone.
            }
            let placed_here = !leaving
                && matches!(placement.seek(name), Some(Decision::Placed(on)) if on.iter().any(|m| m.as_str() == me));
            let (target, digest) = match entry.map(|e| &e.state) {
                Some(Desired::Live { target, digest, .. }) => (Some(*target), Some(digest)),
                _ => (None, None),
            };
            let want_installed =
                placed_here && matches!(target, Some(Target::Loaded | Target::Launched));
            let want_running = placed_here && target == Some(Target::Launched);
            let pending = pending.seek(name);
            let act = (want_installed && digest.is_some() && installed_now != digest)
                || (want_running && !running_here && !matches!(pending, Some(Pending::Start(_))))
                || (!want_running && running_here && !matches!(pending, Some(Pending::Stop(_))))
                || (!want_installed
                    && !running_here
                    && pending.is_none()
                    && installed_now.is_some());
            if act {
                out.push(name.to_string());
            }
        }
        out
    }

    /// Installs, starts, stops or removes unit `name` here, as placement and the
    /// reports say.
    fn decide_unit(&mut self, name: &str, claimed: &Running, globals: &BTreeSet<String>) {
        let me = MachineId(self.cfg.machine_id.clone());
        let leaving = self.leaving_since.is_some();
        let entry = self.catalog.unit(name).map(|e| e.state.clone());
        let managed = entry.is_some() || self.installed.contains_key(name);
        if !managed {
            // Not ours: something else on this host runs a unit of that name.
            return;
        }
        let placed_here = !leaving && self.placement.machines_of(name).contains(&me);
        let (target, digest) = match entry {
            Some(Desired::Live { target, digest, .. }) => (Some(target), Some(digest)),
            _ => (None, None),
        };
        let want_installed =
            placed_here && matches!(target, Some(Target::Loaded | Target::Launched));
        let want_running = placed_here && target == Some(Target::Launched);
        let running_here = self.local.get(name).is_some_and(Status::is_running);
        let pending = self.pending.get(name).copied();

        if let Some(d) = digest.filter(|_| want_installed) {
            self.install(name, d);
        }
        let installed = digest.is_some_and(|d| self.installed.get(name) == Some(&d));
        if want_running
            && installed
            && !self.hold.holding()
            && !running_here
            && !matches!(pending, Some(Pending::Start(_)))
        {
            let others_run = claimed
                .get(name)
                .is_some_and(|on| on.iter().any(|m| *m != me));
            if globals.contains(name) || !others_run {
                self.out.act(Action::Start {
                    unit: name.to_string(),
                });
                self.pending
                    .insert(name.to_string(), Pending::Start(self.now));
            }
        }
        if !want_running && running_here && !matches!(pending, Some(Pending::Stop(_))) {
            self.out.act(Action::Stop {
                unit: name.to_string(),
            });
            self.pending
                .insert(name.to_string(), Pending::Stop(self.now));
        }
        if !want_installed
            && !running_here
            && pending.is_none()
            && self.installed.remove(name).is_some()
        {
            self.changes.installed(name);
            self.out.act(Action::Remove {
                unit: name.to_string(),
            });
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

/// A walk through a map by key, for keys asked in increasing order: each entry is
/// passed once in all, instead of a search from the root per key.
struct Cursor<'a, V> {
    entries: std::iter::Peekable<std::collections::btree_map::Iter<'a, String, V>>,
}

impl<'a, V> Cursor<'a, V> {
    fn new(map: &'a BTreeMap<String, V>) -> Self {
        Cursor {
            entries: map.iter().peekable(),
        }
    }

    /// The value at `key`; keys must be asked in increasing order.
    fn seek(&mut self, key: &str) -> Option<&'a V> {
        while self.entries.next_if(|(k, _)| k.as_str() < key).is_some() {}
        self.entries
            .next_if(|(k, _)| k.as_str() == key)
            .map(|(_, v)| v)
    }
}
