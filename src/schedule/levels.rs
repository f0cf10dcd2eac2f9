//! Member sets laid out for the placement scan, and the scan itself.
//!
//! Placement gives a new unit to the least-loaded fitting member, ties to the highest
//! `hash::score(unit, member)`. No score can be skipped (the hash has no order to
//! exploit), so with 10,000 units on 1,000 members the run is dominated by millions of
//! scores. Two layouts keep that cheap:
//! - [`MemberSet`]: member indices with their rendezvous keys in a parallel array, so
//!   the scan reads keys in a row instead of one indirect load per member;
//! - [`Levels`]: every member grouped by load, so a unit that may run anywhere looks
//!   only at the least-loaded group instead of at all members.
//!
//! Ties between equal scores (a 64-bit collision) go to the lower member index in
//! every scan here, so the order of members inside a set never shows in a decision.

use super::hash;

/// Member indices and their rendezvous keys, side by side (`keys[i]` is the key of
/// `members[i]`). The order is whatever the owner needs; the scans do not depend on it.
#[derive(Clone, Debug, Default)]
pub(crate) struct MemberSet {
    pub(crate) members: Vec<usize>,
    pub(crate) keys: Vec<u64>,
}

impl MemberSet {
    /// The set of `members` (in that order), keys looked up in `member_keys`.
    pub(crate) fn new(members: Vec<usize>, member_keys: &[u64]) -> MemberSet {
        let keys = members.iter().map(|&m| member_keys[m]).collect();
        MemberSet { members, keys }
    }

    fn push(&mut self, m: usize, key: u64) {
        self.members.push(m);
        self.keys.push(key);
    }

    /// Removes the entry at `slot`, moving the last one into it; returns the member
    /// now at `slot`, if any, so the caller can update its position.
    fn swap_remove(&mut self, slot: usize) -> Option<usize> {
        self.members.swap_remove(slot);
        self.keys.swap_remove(slot);
        self.members.get(slot).copied()
    }

    /// The member with the highest score for `unit_key` among those `fits` accepts.
    /// `fits` is asked only about a member that would beat the best so far, which on
    /// random scores is about ln(len) members: checks cost more than scores.
    pub(crate) fn best(&self, unit_key: u64, mut fits: impl FnMut(usize) -> bool) -> Option<usize> {
        let mut best = Best::NONE;
        let mut consider = |best: &mut Best, i: usize, score: u64| {
            if best.beaten_by(&self.members, i, score) && fits(self.members[i]) {
                *best = Best { score, i };
            }
        };
        // Four scores, then one branch on their maximum: a score beats the best so far
        // only about ln(len) times, so the branch is almost never taken, and the loop
        // carries one conditional jump per four members instead of two per member
        // (which also keeps its speed from depending much on where the jumps land).
        const LANES: usize = 4;
        let mut chunks = self.keys.chunks_exact(LANES);
        for (c, chunk) in (&mut chunks).enumerate() {
            let scores: [u64; LANES] = std::array::from_fn(|k| hash::score(unit_key, chunk[k]));
            let top = scores[0].max(scores[1]).max(scores[2].max(scores[3]));
            if top >= best.score {
                for (k, &score) in scores.iter().enumerate() {
                    consider(&mut best, c * LANES + k, score);
                }
            }
        }
        let tail = self.keys.len() - chunks.remainder().len();
        for (i, &key) in chunks.remainder().iter().enumerate() {
            consider(&mut best, tail + i, hash::score(unit_key, key));
        }
        self.members.get(best.i).copied()
    }

    /// The member with the fewest units (`load[m]`), ties to the highest score for
    /// `unit_key`, among those `fits` accepts; `fits` is asked only about a member
    /// that would beat the best so far.
    pub(crate) fn least_loaded_best(
        &self,
        unit_key: u64,
        load: &[u32],
        mut fits: impl FnMut(usize) -> bool,
    ) -> Option<usize> {
        // As in `best`, (u32::MAX, 0, usize::MAX) is "none yet"; no load reaches u32::MAX
        // (that would be as many units on one member).
        let (mut best_load, mut best_score, mut best_m) = (u32::MAX, 0u64, usize::MAX);
        for (&m, &key) in self.members.iter().zip(&self.keys) {
            let load = load[m];
            if load > best_load {
                // Cannot win: no need to score it.
                continue;
            }
            let score = hash::score(unit_key, key);
            let beats =
                load < best_load || score > best_score || (score == best_score && m < best_m);
            if beats && fits(m) {
                (best_load, best_score, best_m) = (load, score, m);
            }
        }
        (best_m != usize::MAX).then_some(best_m)
    }
}

/// The best entry of a [`MemberSet`] so far in [`MemberSet::best`]: a position, not a
/// member, so the scan reads `members` only when a score reaches the best.
struct Best {
    score: u64,
    i: usize,
}

impl Best {
    /// No best yet: beaten by any score (all are >= 0).
    const NONE: Best = Best {
        score: 0,
        i: usize::MAX,
    };

    /// Whether entry `i` with `score` would beat this: a higher score, or the same
    /// score (a 64-bit collision) on a lower member index.
    fn beaten_by(&self, members: &[usize], i: usize, score: u64) -> bool {
        score > self.score
            || (score == self.score && (self.i == usize::MAX || members[i] < members[self.i]))
    }
}

/// Every member, grouped by load: `level(l)` holds the members with `l` units, in no
/// particular order. Kept up to date one unit at a time by [`Levels::raise`].
#[derive(Clone, Debug, Default)]
pub(crate) struct Levels {
    levels: Vec<MemberSet>,
    /// `slot[m]`: where member `m` sits in its level's arrays.
    slot: Vec<usize>,
}

impl Levels {
    /// All members at load 0.
    pub(crate) fn new(member_keys: &[u64]) -> Levels {
        let all = MemberSet::new((0..member_keys.len()).collect(), member_keys);
        Levels {
            levels: vec![all],
            slot: (0..member_keys.len()).collect(),
        }
    }

    /// The levels from the least loaded (load 0) up; some may be empty.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &MemberSet> {
        self.levels.iter()
    }

    /// Member `m`, now at load `from`, takes one more unit.
    pub(crate) fn raise(&mut self, m: usize, from: usize) {
        let slot = self.slot[m];
        let key = self.levels[from].keys[slot];
        if let Some(moved) = self.levels[from].swap_remove(slot) {
            self.slot[moved] = slot;
        }
        if self.levels.len() == from + 1 {
            self.levels.push(MemberSet::default());
        }
        self.slot[m] = self.levels[from + 1].members.len();
        self.levels[from + 1].push(m, key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scans agree with a plain max/min over (load, score, index), with sets of
    /// every length around the four-wide chunks of `best`.
    #[test]
    fn scans_match_a_plain_arg_max() {
        let keys: Vec<u64> = (0..43u64)
            .map(|i| hash::member_key(&format!("m{i}")))
            .collect();
        let load: Vec<u32> = (0..43u32).map(|i| i % 3).collect();
        for n in [0, 1, 3, 4, 5, 8, 43] {
            let set = MemberSet::new((0..n).rev().collect(), &keys);
            for u in 0..50 {
                let unit_key = hash::unit_key(&format!("u{u}"));
                let fits = |m: usize| m % 7 != u % 7;
                let by_score = (0..n)
                    .filter(|&m| fits(m))
                    .max_by_key(|&m| (hash::score(unit_key, keys[m]), std::cmp::Reverse(m)));
                assert_eq!(set.best(unit_key, fits), by_score);
                let by_load = (0..n).filter(|&m| fits(m)).min_by_key(|&m| {
                    (
                        load[m],
                        std::cmp::Reverse(hash::score(unit_key, keys[m])),
                        m,
                    )
                });
                assert_eq!(set.least_loaded_best(unit_key, &load, fits), by_load);
            }
            assert_eq!(set.best(0, |_| false), None);
        }
    }

    /// Equal scores (a 64-bit collision, here from equal keys) go to the lower index.
    #[test]
    fn equal_scores_go_to_the_lower_member() {
        let keys = [7u64; 9];
        for order in [vec![4, 2, 8, 6, 3], vec![8, 7, 6, 5, 4, 3, 2, 1, 0]] {
            let set = MemberSet::new(order.clone(), &keys);
            let lowest = order.iter().min().copied();
            assert_eq!(set.best(1, |_| true), lowest);
            assert_eq!(set.least_loaded_best(1, &[0; 9], |_| true), lowest);
            assert_eq!(
                set.best(1, |m| m != 2),
                order.iter().filter(|&&m| m != 2).min().copied()
            );
        }
    }

    #[test]
    fn raise_keeps_levels_and_keys_together() {
        let keys: Vec<u64> = (0..5u64).map(|i| i * 10).collect();
        let mut levels = Levels::new(&keys);
        levels.raise(1, 0);
        levels.raise(3, 0);
        levels.raise(1, 1);
        let sets: Vec<&MemberSet> = levels.iter().collect();
        let mut l0 = sets[0].members.clone();
        l0.sort_unstable();
        assert_eq!(l0, [0, 2, 4]);
        assert_eq!(sets[1].members, [3]);
        assert_eq!(sets[2].members, [1]);
        for set in sets {
            for (&m, &key) in set.members.iter().zip(&set.keys) {
                assert_eq!(key, keys[m]);
            }
        }
    }
}
