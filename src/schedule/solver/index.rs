//! The solver's indexes: interned `Conflicts`/`Replaces` patterns, which names they
//! match, and each job's static member set (`MachineID`, `MachineMetadata`).

use std::collections::{BTreeMap, BTreeSet};

use super::Solver;
use crate::schedule::levels::MemberSet;
use crate::schedule::place::Job;
use crate::unit::FleetOptions;

/// Small per-member multiset of pattern ids: (pattern id, count), sorted by id.
#[derive(Clone, Debug, Default)]
pub(super) struct PatternCounts(Vec<(u32, u32)>);

impl PatternCounts {
    /// Counts one more of `pid`; true if it is the first.
    pub(super) fn add(&mut self, pid: u32) -> bool {
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
    pub(super) fn has(&self, pid: u32) -> bool {
        self.0.binary_search_by_key(&pid, |&(p, _)| p).is_ok()
    }
    pub(super) fn has_any(&self, pids: &[u32]) -> bool {
        pids.iter().any(|&p| self.has(p))
    }
}

/// Whether each member (by index) passes one `MachineMetadata` line: a key with any
/// of the wanted values.
type MetadataPasses<'k> = BTreeMap<(&'k str, &'k BTreeSet<String>), Vec<bool>>;

/// How many recently interned patterns `build_index` checks before its tree.
const RECENT: usize = 4;

/// What decides a job's static member set: its `MachineID` and `MachineMetadata`.
type StaticKey<'k> = (Option<&'k str>, &'k BTreeMap<String, BTreeSet<String>>);

/// Per-job facts computed once: pattern ids it owns and pattern ids matching its name.
#[derive(Clone, Debug, Default)]
pub(super) struct JobIndex {
    pub(super) conflict_pids: Vec<u32>,
    pub(super) replace_pids: Vec<u32>,
    pub(super) matched_by_conflicts: Vec<u32>,
    pub(super) matched_by_replaces: Vec<u32>,
    /// Slot in `Solver::static_sets`: members passing MachineID and MachineMetadata.
    pub(super) static_slot: usize,
    /// `MachineOf` targets and replacers: placed before this job.
    pub(super) deps: Vec<usize>,
    /// Whether other units can rule a member out (MachineOf, Conflicts or Replaces in
    /// either direction). Without, any member of the static set fits.
    pub(super) dynamic: bool,
}

impl<'a> Solver<'a> {
    /// Interns every glob, finds which patterns match which names, caches static member sets.
    /// (Over 70 lines on purpose: its steps share the interned pattern table and run
    /// once per placement; apart they would pass half the solver around.)
    pub(super) fn build_index(&mut self) {
        let mut pattern_ids: BTreeMap<&str, u32> = BTreeMap::new();
        // (pattern id, glob, literal prefix before the first wildcard)
        let mut patterns: Vec<(&crate::unit::Glob, String)> = Vec::new();
        // The last few patterns interned: instances of one template come one after the
        // other with the same globs, so most lookups end here without a tree search.
        let mut recent: [(&str, u32); RECENT] = [("", u32::MAX); RECENT];
        let mut next_recent = 0;
        let mut intern =
            |glob: &'a crate::unit::Glob, patterns: &mut Vec<(&'a crate::unit::Glob, String)>| {
                let text = glob.as_str();
                if let Some(&(_, pid)) = recent
                    .iter()
                    .find(|&&(r, pid)| pid != u32::MAX && r == text)
                {
                    return pid;
                }
                let pid = *pattern_ids.entry(text).or_insert_with(|| {
                    patterns.push((glob, literal_prefix(text)));
                    (patterns.len() - 1) as u32
                });
                recent[next_recent] = (text, pid);
                next_recent = (next_recent + 1) % RECENT;
                pid
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
        // Keyed by (fingerprint, key): most compares are on the number, and a full compare
        // of two metadata maps happens only when their fingerprints are equal.
        let mut slots: BTreeMap<(u64, StaticKey<'_>), usize> = BTreeMap::new();
        self.static_sets.push(MemberSet::new(
            (0..self.members.len()).collect(),
            &self.member_keys,
        ));
        let mut passes = MetadataPasses::new();
        for (j, entry) in index.iter_mut().enumerate() {
            let job: &'a Job = self.jobs[j];
            if job.options.machine_id.is_none() && job.options.machine_metadata.is_empty() {
                // Slot 0: every member; most units have no static constraint.
                continue;
            }
            let key = (
                job.options.machine_id.as_deref(),
                &job.options.machine_metadata,
            );
            let key = (fingerprint(&key), key);
            let slot = match slots.get(&key) {
                Some(&slot) => slot,
                None => {
                    let set = self.static_members(&job.options, &mut passes);
                    self.static_sets
                        .push(MemberSet::new(set, &self.member_keys));
                    slots.insert(key, self.static_sets.len() - 1);
                    self.static_sets.len() - 1
                }
            };
            entry.static_slot = slot;
        }
        self.index = index;
        self.conflict_owned_on = vec![Vec::new(); patterns.len()];
        self.conflict_matched_on = vec![Vec::new(); patterns.len()];
        self.replace_owned_on = vec![Vec::new(); patterns.len()];
        self.replace_matched_on = vec![Vec::new(); patterns.len()];
    }

    /// Members passing `MachineID` and `MachineMetadata`, in member order. Each
    /// metadata line (a key and its wanted values) is checked against every member once
    /// per run and kept in `passes`: static sets share lines (`zone=z1` with or without
    /// `disk=ssd`), so member maps are not searched again for each set.
    fn static_members(
        &self,
        options: &'a FleetOptions,
        passes: &mut MetadataPasses<'a>,
    ) -> Vec<usize> {
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
        for (key, wanted) in &options.machine_metadata {
            passes.entry((key.as_str(), wanted)).or_insert_with(|| {
                self.members
                    .iter()
                    .map(|member| {
                        member
                            .metadata
                            .values(key)
                            .is_some_and(|has| has.intersection(wanted).next().is_some())
                    })
                    .collect()
            });
        }
        let lines: Vec<&Vec<bool>> = options
            .machine_metadata
            .iter()
            .filter_map(|(key, wanted)| passes.get(&(key.as_str(), wanted)))
            .collect();
        by_id
            .into_iter()
            .filter(|&m| lines.iter().all(|pass| pass[m]))
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
}

/// A 64-bit FNV-1a digest of a static key, each string closed by a byte no string
/// holds in that place. Only speeds up the lookup of equal keys; slots are still
/// numbered in job order, so a collision costs a compare, never a different result.
fn fingerprint(key: &StaticKey<'_>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8], end: u8| {
        for &b in bytes.iter().chain([end].iter()) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(key.0.unwrap_or("").as_bytes(), u8::from(key.0.is_some()));
    for (k, values) in key.1 {
        eat(k.as_bytes(), 2);
        for v in values {
            eat(v.as_bytes(), 3);
        }
    }
    h
}

/// The part of a glob before its first wildcard or escape: every match starts with it.
fn literal_prefix(pattern: &str) -> String {
    pattern
        .chars()
        .take_while(|c| !matches!(c, '*' | '?' | '[' | '\\'))
        .collect()
}
