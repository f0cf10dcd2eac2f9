//! The placement function: constraints filter, fewest units first, rendezvous breaks ties.
//!
//! Architecture invariants:
//! - Pure and deterministic: inputs are sorted (members by id, jobs by start
//!   sequence then name) before anything is decided, so input order never leaks.
//! - Sticky: a unit stays on a member that runs it and still satisfies it
//!   (phase 1, before any new placement), so joins and restarts move nothing.
//! - Bounded: every loop runs over the inputs once per job; a `MachineOf` or
//!   `Replaces` cycle is reported as waiting, never followed.

use std::collections::{BTreeMap, BTreeSet};

use super::check::waiting_reason;
use super::hash;
use super::levels::{Levels, MemberSet};
use super::member::{MachineId, Member};
use super::names::NameIndex;
use crate::unit::FleetOptions;

/// A unit to place: one whose target state is `loaded` or `launched`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub name: String,
    /// Start order: units are placed in the order they were started.
    pub seq: u64,
    pub options: FleetOptions,
}

/// Where units run now: unit name -> members running it.
pub type Running = BTreeMap<String, BTreeSet<MachineId>>;

/// The outcome for one unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Members that run it, sorted by id (one, except for `Global=true` units).
    Placed(Vec<MachineId>),
    /// No member may run it now; the reason is meant for people.
    Waiting(String),
}

/// Every job's decision, by unit name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    pub units: BTreeMap<String, Decision>,
}

impl Placement {
    /// Members the unit is placed on (empty when waiting or unknown).
    pub fn machines_of(&self, unit: &str) -> &[MachineId] {
        match self.units.get(unit) {
            Some(Decision::Placed(machines)) => machines,
            _ => &[],
        }
    }

    /// Units placed on `machine`, by name.
    pub fn units_on<'a>(&'a self, machine: &'a MachineId) -> impl Iterator<Item = &'a str> + 'a {
        self.units
            .iter()
            .filter_map(move |(name, decision)| match decision {
                Decision::Placed(machines) if machines.contains(machine) => Some(name.as_str()),
                _ => None,
            })
    }

    /// The placement as `Running`, as it would be reported once carried out.
    pub fn as_running(&self) -> Running {
        crate::btree::map(
            self.units
                .iter()
                .filter_map(|(name, decision)| match decision {
                    Decision::Placed(machines) => {
                        Some((name.clone(), crate::btree::set(machines.iter().cloned())))
                    }
                    Decision::Waiting(_) => None,
                }),
        )
    }
}

/// Places `jobs` on `members` (the live ones), keeping units where `running` says they run
/// when that member still satisfies them.
pub fn place(members: &[Member], jobs: &[Job], running: &Running) -> Placement {
    let mut solver = Solver::new(members, jobs, running);
    solver.solve();
    solver.into_placement()
}

/// Small per-member multiset of pattern ids: (pattern id, count), sorted by id.
#[derive(Clone, Debug, Default)]
struct PatternCounts(Vec<(u32, u32)>);

impl PatternCounts {
    /// Counts one more of `pid`; true if it is the first.
    fn add(&mut self, pid: u32) -> bool {
        match self.0.binary_search_by_key(&pid, |&(p, _)| p) {
            Ok(i) => {
                self.0[i].1 += 1;
                false
            }
            Err(i) => {
                self.0.insert(i, (pid, 1));
                true
            }
        }
    }
    fn has(&self, pid: u32) -> bool {
        self.0.binary_search_by_key(&pid, |&(p, _)| p).is_ok()
    }
    fn has_any(&self, pids: &[u32]) -> bool {
        pids.iter().any(|&p| self.has(p))
    }
}

/// What decides a job's static member set: its `MachineID` and `MachineMetadata`.
type StaticKey<'k> = (Option<&'k str>, &'k BTreeMap<String, BTreeSet<String>>);

/// Per-job facts computed once: pattern ids it owns and pattern ids matching its name.
#[derive(Clone, Debug, Default)]
struct JobIndex {
    conflict_pids: Vec<u32>,
    replace_pids: Vec<u32>,
    matched_by_conflicts: Vec<u32>,
    matched_by_replaces: Vec<u32>,
    /// Slot in `Solver::static_sets`: members passing MachineID and MachineMetadata.
    static_slot: usize,
    /// `MachineOf` targets and replacers: placed before this job.
    deps: Vec<usize>,
    /// Whether other units can rule a member out (MachineOf, Conflicts or Replaces in
    /// either direction). Without, any member of the static set fits.
    dynamic: bool,
}

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
    pub(crate) fn new(members: &'a [Member], jobs: &'a [Job], running: &Running) -> Solver<'a> {
        // Canonical orders: members by id, jobs by (seq, name); duplicates keep the first.
        let mut members: Vec<&Member> = members.iter().collect();
        crate::sort::sort(&mut members);
        members.dedup_by(|a, b| a.id == b.id);
        let mut jobs: Vec<&Job> = jobs.iter().collect();
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

    /// Interns every glob, finds which patterns match which names, caches static member sets.
    fn build_index(&mut self) {
        let mut pattern_ids: BTreeMap<&str, u32> = BTreeMap::new();
        // (pattern id, glob, literal prefix before the first wildcard)
        let mut patterns: Vec<(&crate::unit::Glob, String)> = Vec::new();
        let mut intern =
            |glob: &'a crate::unit::Glob, patterns: &mut Vec<(&'a crate::unit::Glob, String)>| {
                *pattern_ids.entry(glob.as_str()).or_insert_with(|| {
                    patterns.push((glob, literal_prefix(glob.as_str())));
                    (patterns.len() - 1) as u32
                })
            };
        let mut index: Vec<JobIndex> = Vec::with_capacity(self.jobs.len());
        let mut conflict_pid_set = BTreeSet::new();
        let mut replace_pid_set = BTreeSet::new();
        for job in &self.jobs {
            let mut entry = JobIndex::default();
            for glob in &job.options.conflicts {
                let pid = intern(glob, &mut patterns);
                entry.conflict_pids.push(pid);
                conflict_pid_set.insert(pid);
            }
            for glob in &job.options.replaces {
                let pid = intern(glob, &mut patterns);
                entry.replace_pids.push(pid);
                replace_pid_set.insert(pid);
            }
            index.push(entry);
        }
        // Which names each pattern matches: every match starts with the pattern's literal
        // prefix, so only the range of sorted names with that prefix is tried.
        let conflict_pids: Vec<u32> = conflict_pid_set.into_iter().collect();
        let replace_pids: Vec<u32> = replace_pid_set.into_iter().collect();
        for (pids, is_conflict) in [(&conflict_pids, true), (&replace_pids, false)] {
            for &pid in pids {
                let (glob, prefix) = &patterns[pid as usize];
                for (name, j) in self.job_index.with_prefix(prefix.as_str()) {
                    if glob.matches(name) {
                        if is_conflict {
                            index[j].matched_by_conflicts.push(pid);
                        } else {
                            index[j].matched_by_replaces.push(pid);
                        }
                    }
                }
            }
        }
        // Replacers of each job: jobs owning a replace pattern that matches it.
        let mut owners_of_replace: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for (j, entry) in index.iter().enumerate() {
            for &pid in &entry.replace_pids {
                owners_of_replace.entry(pid).or_default().push(j);
            }
        }
        for (j, (job, entry)) in self.jobs.iter().zip(index.iter_mut()).enumerate() {
            let mut deps: Vec<usize> = job
                .options
                .machine_of
                .iter()
                .filter_map(|peer| self.job_index.get(peer.as_str()))
                .filter(|&p| p != j)
                .collect();
            for pid in &entry.matched_by_replaces {
                deps.extend(owners_of_replace[pid].iter().copied().filter(|&r| r != j));
            }
            deps.sort_unstable();
            deps.dedup();
            entry.deps = deps;
            entry.dynamic = !job.options.machine_of.is_empty()
                || !entry.conflict_pids.is_empty()
                || !entry.replace_pids.is_empty()
                || !entry.matched_by_conflicts.is_empty()
                || !entry.matched_by_replaces.is_empty();
        }
        // Static member sets, shared by jobs with the same MachineID and MachineMetadata.
        let mut slots: BTreeMap<StaticKey<'_>, usize> = BTreeMap::new();
        self.static_sets.push(MemberSet::new(
            (0..self.members.len()).collect(),
            &self.member_keys,
        ));
        for (j, job) in self.jobs.iter().enumerate() {
            if job.options.machine_id.is_none() && job.options.machine_metadata.is_empty() {
                // Slot 0: every member; most units have no static constraint.
                continue;
            }
            let key = (
                job.options.machine_id.as_deref(),
                &job.options.machine_metadata,
            );
            let slot = match slots.get(&key) {
                Some(&slot) => slot,
                None => {
                    let set = self.static_members(&job.options);
                    self.static_sets
                        .push(MemberSet::new(set, &self.member_keys));
                    slots.insert(key, self.static_sets.len() - 1);
                    self.static_sets.len() - 1
                }
            };
            index[j].static_slot = slot;
        }
        self.index = index;
        self.conflict_owned_on = vec![Vec::new(); patterns.len()];
        self.conflict_matched_on = vec![Vec::new(); patterns.len()];
        self.replace_owned_on = vec![Vec::new(); patterns.len()];
        self.replace_matched_on = vec![Vec::new(); patterns.len()];
    }

    /// Members passing `MachineID` and `MachineMetadata`, in member order.
    fn static_members(&self, options: &FleetOptions) -> Vec<usize> {
        let by_id: Vec<usize> = match &options.machine_id {
            Some(wanted) => {
                let matches = self.machine_id_matches(wanted);
                if matches.len() == 1 {
                    matches
                } else {
                    Vec::new()
                }
            }
            None => (0..self.members.len()).collect(),
        };
        by_id
            .into_iter()
            .filter(|&m| {
                options.machine_metadata.iter().all(|(key, wanted)| {
                    self.members[m]
                        .metadata
                        .values(key)
                        .is_some_and(|has| has.intersection(wanted).next().is_some())
                })
            })
            .collect()
    }

    /// Members whose id equals `wanted`, or else starts with it when `wanted` has 8 or
    /// more characters (fleet's short form). Case-insensitive: ids are hex, written either way.
    pub(crate) fn machine_id_matches(&self, wanted: &str) -> Vec<usize> {
        const PREFIX_LEN_MIN: usize = 8;
        let exact: Vec<usize> = (0..self.members.len())
            .filter(|&m| self.members[m].id.as_str().eq_ignore_ascii_case(wanted))
            .collect();
        if !exact.is_empty() || wanted.len() < PREFIX_LEN_MIN {
            return exact;
        }
        let wanted = wanted.to_ascii_lowercase();
        (0..self.members.len())
            .filter(|&m| {
                self.members[m]
                    .id
                    .as_str()
                    .to_ascii_lowercase()
                    .starts_with(&wanted)
            })
            .collect()
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

    pub(crate) fn solve(&mut self) {
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
        let units = crate::btree::map(
            (0..self.jobs.len()).map(|j| (self.jobs[j].name.clone(), self.decision(j))),
        );
        Placement { units }
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

/// The part of a glob before its first wildcard or escape: every match starts with it.
fn literal_prefix(pattern: &str) -> String {
    pattern
        .chars()
        .take_while(|c| !matches!(c, '*' | '?' | '[' | '\\'))
        .collect()
}
