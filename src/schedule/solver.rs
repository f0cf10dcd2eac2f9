//! The working state of one placement run: constraints filter, fewest units first,
//! rendezvous breaks ties. Shared by `place` and `explain`.
//!
//! Architecture invariant: knows nothing of how a waiting unit is explained; the
//! caller passes `check::waiting_reason` in, so `check` (which reads the solver's
//! state) and the solver do not import each other.

mod index;

use std::collections::BTreeMap;

use super::hash;
use super::levels::{Levels, MemberSet};
use super::member::Member;
use super::names::NameIndex;
use super::place::{Decision, Job, Placement, Running};
use index::{JobIndex, PatternCounts};

/// Words for why job `j` waits, computed from the solver's final state.
pub(crate) type WaitingReason = fn(&Solver<'_>, usize) -> String;

/// The working state of one placement run (shared with `explain`).
pub(crate) struct Solver<'a> {
    pub(crate) members: Vec<&'a Member>,
    member_keys: Vec<u64>,
    member_index: BTreeMap<&'a str, usize>,
    pub(crate) jobs: Vec<&'a Job>,
    pub(crate) job_index: NameIndex<'a>,
    unit_keys: Vec<u64>,
    index: Vec<JobIndex>,
    /// Members passing each distinct `MachineID`/`MachineMetadata`, in member order;
    /// slot 0 is every member.
    static_sets: Vec<MemberSet>,
    /// Members where each job runs now (from `running`), as member indices.
    running_on: Vec<Vec<usize>>,

    pub(crate) occupants: Vec<Vec<usize>>,
    load: Vec<u32>,
    /// Members by load: lets a unit that may run anywhere look only at the
    /// least-loaded members instead of all of them.
    levels: Levels,
    conflict_owned: Vec<PatternCounts>,
    conflict_matched: Vec<PatternCounts>,
    replace_owned: Vec<PatternCounts>,
    replace_matched: Vec<PatternCounts>,
    /// The same four facts the other way round, by pattern id: the members where it
    /// is owned (or matched), each once. A job's blocked members come from these in
    /// one pass (see `blocked`) instead of from a `fits` per member tried.
    conflict_owned_on: Vec<Vec<usize>>,
    conflict_matched_on: Vec<Vec<usize>>,
    replace_owned_on: Vec<Vec<usize>>,
    replace_matched_on: Vec<Vec<usize>>,
    pub(crate) placed: Vec<Vec<usize>>,
    pub(crate) waiting: Vec<Option<String>>,
    /// For jobs on a dependency cycle: the cycle, as `a -> b -> a`.
    pub(crate) cycle: Vec<Option<String>>,
}

impl<'a> Solver<'a> {
    /// (Over 70 lines on purpose: it names every field of the solver once.)
    pub(crate) fn new(
        members: &'a [Member],
        mut jobs: Vec<&'a Job>,
        running: &Running,
    ) -> Solver<'a> {
        // Canonical orders: members by id, jobs by (seq, name); duplicates keep the first.
        let mut members: Vec<&Member> = members.iter().collect();
        crate::sort::sort(&mut members);
        members.dedup_by(|a, b| a.id == b.id);
        crate::sort::sort_by(&mut jobs, |a, b| (a.seq, &a.name).cmp(&(b.seq, &b.name)));
        let (mut job_index, duplicates) = NameIndex::build(jobs.iter().map(|j| j.name.as_str()));
        if !duplicates.is_empty() {
            // A name given twice: the first in placement order counts.
            let mut keep = vec![true; jobs.len()];
            for d in duplicates {
                keep[d] = false;
            }
            let mut at = 0;
            jobs.retain(|_| {
                at += 1;
                keep[at - 1]
            });
            job_index = NameIndex::build(jobs.iter().map(|j| j.name.as_str())).0;
        }

        let member_keys = members
            .iter()
            .map(|m| hash::member_key(m.id.as_str()))
            .collect();
        let member_index =
            crate::btree::map(members.iter().enumerate().map(|(i, m)| (m.id.as_str(), i)));
        let unit_keys = jobs.iter().map(|j| hash::unit_key(&j.name)).collect();

        let mut solver = Solver {
            members,
            member_keys,
            member_index,
            unit_keys,
            index: Vec::new(),
            static_sets: Vec::new(),
            running_on: Vec::new(),
            occupants: Vec::new(),
            load: Vec::new(),
            levels: Levels::default(),
            conflict_owned: Vec::new(),
            conflict_matched: Vec::new(),
            replace_owned: Vec::new(),
            replace_matched: Vec::new(),
            conflict_owned_on: Vec::new(),
            conflict_matched_on: Vec::new(),
            replace_owned_on: Vec::new(),
            replace_matched_on: Vec::new(),
            placed: vec![Vec::new(); jobs.len()],
            waiting: vec![None; jobs.len()],
            cycle: vec![None; jobs.len()],
            jobs,
            job_index,
        };
        let n_members = solver.members.len();
        solver.occupants = vec![Vec::new(); n_members];
        solver.load = vec![0; n_members];
        solver.levels = Levels::new(&solver.member_keys);
        solver.conflict_owned = vec![PatternCounts::default(); n_members];
        solver.conflict_matched = vec![PatternCounts::default(); n_members];
        solver.replace_owned = vec![PatternCounts::default(); n_members];
        solver.replace_matched = vec![PatternCounts::default(); n_members];
        // Both sorted by name: one merge walk instead of a lookup per job.
        solver.running_on = vec![Vec::new(); solver.jobs.len()];
        let mut reports = running.iter().peekable();
        for (name, j) in solver.job_index.iter() {
            while reports.next_if(|(r, _)| r.as_str() < name).is_some() {}
            if let Some((_, on)) = reports.next_if(|(r, _)| r.as_str() == name) {
                let mut on: Vec<usize> = on
                    .iter()
                    .filter_map(|id| solver.member_index.get(id.as_str()).copied())
                    .collect();
                on.sort_unstable();
                solver.running_on[j] = on;
            }
        }
        solver.build_index();
        solver
    }
    /// Jobs in placement order: by (seq, name), each after its `MachineOf` targets and
    /// replacers. Jobs on a dependency cycle are marked waiting.
    fn order(&mut self) -> Vec<usize> {
        const WHITE: u8 = 0;
        const GREY: u8 = 1;
        const BLACK: u8 = 2;
        let n = self.jobs.len();
        let mut colour = vec![WHITE; n];
        let mut order = Vec::with_capacity(n);
        // Iterative depth-first search: MachineOf chains can be thousands long.
        let mut stack: Vec<(usize, usize)> = Vec::new();
        for root in 0..n {
            if colour[root] != WHITE {
                continue;
            }
            colour[root] = GREY;
            stack.push((root, 0));
            while let Some(&mut (j, ref mut next)) = stack.last_mut() {
                if let Some(&dep) = self.index[j].deps.get(*next) {
                    *next += 1;
                    match colour[dep] {
                        WHITE => {
                            colour[dep] = GREY;
                            stack.push((dep, 0));
                        }
                        GREY => {
                            // A cycle: the stack from `dep` up to `j` is on it.
                            let from = stack.iter().position(|&(s, _)| s == dep).unwrap_or(0);
                            let cycle: Vec<usize> = stack[from..].iter().map(|&(s, _)| s).collect();
                            let mut names: Vec<&str> =
                                cycle.iter().map(|&c| self.jobs[c].name.as_str()).collect();
                            names.push(self.jobs[dep].name.as_str());
                            let path = names.join(" -> ");
                            let reason =
                                format!("MachineOf/Replaces cycle: {path}; break it by editing one of these units");
                            for c in cycle {
                                self.waiting[c].get_or_insert_with(|| reason.clone());
                                self.cycle[c].get_or_insert_with(|| path.clone());
                            }
                        }
                        _ => {}
                    }
                } else {
                    colour[j] = BLACK;
                    order.push(j);
                    stack.pop();
                }
            }
        }
        order
    }

    /// Whether member `m` can run job `j` now: the indexed twin of `first_violation`.
    fn fits(&self, j: usize, m: usize) -> bool {
        let entry = &self.index[j];
        // Slot 0 is every member.
        if entry.static_slot != 0
            && self.static_sets[entry.static_slot]
                .members
                .binary_search(&m)
                .is_err()
        {
            return false;
        }
        for peer in &self.jobs[j].options.machine_of {
            match self.job_index.get(peer.as_str()) {
                Some(p) if self.placed[p].binary_search(&m).is_ok() => {}
                _ => return false,
            }
        }
        !(self.conflict_matched[m].has_any(&entry.conflict_pids)
            || self.conflict_owned[m].has_any(&entry.matched_by_conflicts)
            || self.replace_owned[m].has_any(&entry.matched_by_replaces)
            || self.replace_matched[m].has_any(&entry.replace_pids))
    }

    fn assign(&mut self, j: usize, m: usize) {
        let entry = &self.index[j];
        self.occupants[m].push(j);
        self.levels.raise(m, self.load[m] as usize);
        self.load[m] += 1;
        for &pid in &entry.conflict_pids {
            if self.conflict_owned[m].add(pid) {
                self.conflict_owned_on[pid as usize].push(m);
            }
        }
        for &pid in &entry.matched_by_conflicts {
            if self.conflict_matched[m].add(pid) {
                self.conflict_matched_on[pid as usize].push(m);
            }
        }
        for &pid in &entry.replace_pids {
            if self.replace_owned[m].add(pid) {
                self.replace_owned_on[pid as usize].push(m);
            }
        }
        for &pid in &entry.matched_by_replaces {
            if self.replace_matched[m].add(pid) {
                self.replace_matched_on[pid as usize].push(m);
            }
        }
        if let Err(at) = self.placed[j].binary_search(&m) {
            self.placed[j].insert(at, m);
        }
    }

    fn score(&self, j: usize, m: usize) -> u64 {
        hash::score(self.unit_keys[j], self.member_keys[m])
    }

    pub(crate) fn solve(&mut self, waiting_reason: WaitingReason) {
        let order = self.order();
        // Phase 1: sticky. Keep every unit where it runs, if that member still satisfies
        // it. A new unit with `Replaces=` takes its place here too, at the member of a unit
        // it replaces, so that the replaced unit (later in the order) is the one that moves.
        for &j in &order {
            if self.waiting[j].is_some() {
                continue;
            }
            if self.running_on[j].is_empty() {
                if !self.index[j].replace_pids.is_empty() && !self.jobs[j].options.global {
                    if let Some(m) = self.best_of(j, &self.replaced_members(j)) {
                        self.assign(j, m);
                    }
                }
                continue;
            }
            let fitting: Vec<usize> = self.running_on[j]
                .iter()
                .copied()
                .filter(|&m| self.fits(j, m))
                .collect();
            if self.jobs[j].options.global {
                for m in fitting {
                    self.assign(j, m);
                }
            } else if let Some(&best) = fitting.iter().max_by_key(|&&m| self.score(j, m)) {
                // Two members run it (a healed partition): the higher rendezvous rank keeps it.
                self.assign(j, best);
            }
        }
        // Phase 2: everything not kept, in order.
        for &j in &order {
            if self.waiting[j].is_some() {
                continue;
            }
            if self.jobs[j].options.global {
                let candidates = self.static_sets[self.index[j].static_slot].members.clone();
                for m in candidates {
                    if self.placed[j].binary_search(&m).is_err() && self.fits(j, m) {
                        self.assign(j, m);
                    }
                }
            } else if self.placed[j].is_empty() {
                if let Some(m) = self.choose(j) {
                    self.assign(j, m);
                }
            }
        }
        // Reasons come from the final state, so a re-run on the output gives the same words.
        for j in order {
            if self.placed[j].is_empty() && self.waiting[j].is_none() {
                self.waiting[j] = Some(waiting_reason(self, j));
            }
        }
    }

    /// The member for a new non-global job: a member of a unit it replaces if one fits,
    /// else the fitting member with the fewest units, ties to the highest rendezvous score.
    fn choose(&self, j: usize) -> Option<usize> {
        let entry = &self.index[j];
        if !entry.replace_pids.is_empty() {
            if let Some(m) = self.best_of(j, &self.replaced_members(j)) {
                return Some(m);
            }
        }
        let first_peer = self.jobs[j]
            .options
            .machine_of
            .first()
            .and_then(|p| self.job_index.get(p.as_str()));
        match first_peer {
            // MachineOf: only the members of the first target can qualify.
            Some(p) => self.best_of(j, &self.placed[p]),
            // Slot 0 is every member: walk the load levels from the least loaded up.
            None if entry.static_slot == 0 => self.best_in_levels(j),
            None => self.best_of_static_set(j),
        }
    }

    /// Members where a unit that `j` replaces runs now or is placed, sorted.
    fn replaced_members(&self, j: usize) -> Vec<usize> {
        let own = &self.index[j].replace_pids;
        let mut members: Vec<usize> = Vec::new();
        for (other, entry) in self.index.iter().enumerate() {
            if other != j && entry.matched_by_replaces.iter().any(|p| own.contains(p)) {
                members.extend(self.running_on[other].iter().copied());
                members.extend(self.placed[other].iter().copied());
            }
        }
        members.sort_unstable();
        members.dedup();
        members
    }

    /// The fitting member of `candidates` with the fewest units, ties to the highest
    /// rendezvous score (then the lower member index, should two scores collide).
    /// For the few members of a `MachineOf` target or of replaced units.
    fn best_of(&self, j: usize, candidates: &[usize]) -> Option<usize> {
        MemberSet::new(candidates.to_vec(), &self.member_keys).least_loaded_best(
            self.unit_keys[j],
            &self.load,
            |m| self.fits(j, m),
        )
    }

    /// [`Self::best_of`] over `j`'s own static set (its `MachineID`/`MachineMetadata`).
    fn best_of_static_set(&self, j: usize) -> Option<usize> {
        let set = &self.static_sets[self.index[j].static_slot];
        let unit_key = self.unit_keys[j];
        if !self.index[j].dynamic {
            // Only the static set can rule a member out, and every candidate is in it.
            return set.least_loaded_best(unit_key, &self.load, |_| true);
        }
        match self.blocked(j) {
            Some(blocked) => set.least_loaded_best(unit_key, &self.load, |m| {
                debug_assert_eq!(!blocked[m], self.fits(j, m));
                !blocked[m]
            }),
            None => set.least_loaded_best(unit_key, &self.load, |m| self.fits(j, m)),
        }
    }

    /// The best member for `j` in the load levels, from the least loaded up; `j`'s
    /// static set is every member.
    fn best_in_levels(&self, j: usize) -> Option<usize> {
        let unit_key = self.unit_keys[j];
        if !self.index[j].dynamic {
            // Nothing can rule a member out: a plain arg-max, with no checks in the loop.
            return self.levels.iter().find_map(|l| l.best(unit_key, |_| true));
        }
        match self.blocked(j) {
            Some(blocked) => self.levels.iter().find_map(|l| {
                l.best(unit_key, |m| {
                    debug_assert_eq!(!blocked[m], self.fits(j, m));
                    !blocked[m]
                })
            }),
            None => self
                .levels
                .iter()
                .find_map(|l| l.best(unit_key, |m| self.fits(j, m))),
        }
    }

    /// For a job without `MachineOf`, placed among members of its static set: the
    /// members it may not join, by member index (`fits` is then `!blocked[m]`). Found
    /// once per job from the members of each of its patterns, so a scan where most
    /// members are ruled out (say, `Conflicts=db-*.service` where web units run
    /// everywhere) costs a lookup per member tried rather than a `fits`. None with
    /// `MachineOf`, which `fits` checks.
    fn blocked(&self, j: usize) -> Option<Vec<bool>> {
        if !self.jobs[j].options.machine_of.is_empty() {
            return None;
        }
        let entry = &self.index[j];
        let mut blocked = vec![false; self.members.len()];
        // The four conditions of `fits`, in its order.
        for (pids, on) in [
            (&entry.conflict_pids, &self.conflict_matched_on),
            (&entry.matched_by_conflicts, &self.conflict_owned_on),
            (&entry.matched_by_replaces, &self.replace_owned_on),
            (&entry.replace_pids, &self.replace_matched_on),
        ] {
            for &pid in pids {
                for &m in &on[pid as usize] {
                    blocked[m] = true;
                }
            }
        }
        Some(blocked)
    }

    pub(crate) fn into_placement(self) -> Placement {
        // The name index is sorted and free of duplicates, so `collect` finds one sorted
        // run and bulk-builds the tree: no search per name (10,000 string compares times
        // the tree's depth), nodes filled in a row. Worth its few KiB of code here.
        let sorted: Vec<(String, Decision)> = self
            .job_index
            .iter()
            .map(|(name, j)| (name.to_owned(), self.decision(j)))
            .collect();
        Placement {
            units: sorted.into_iter().collect(),
        }
    }

    pub(crate) fn decision(&self, j: usize) -> Decision {
        match &self.waiting[j] {
            Some(reason) => Decision::Waiting(reason.clone()),
            None => Decision::Placed(
                self.placed[j]
                    .iter()
                    .map(|&m| self.members[m].id.clone())
                    .collect(),
            ),
        }
    }

    pub(crate) fn load_of(&self, m: usize) -> u32 {
        self.load[m]
    }
}
