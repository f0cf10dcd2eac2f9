//! Local health (Lifeguard's idea): a member that sees itself run late gives suspects longer.
//!
//! A member whose own timers run late (its loop was busy, or the machine starved it)
//! may be the reason a peer's ack came "too late"; and when every member is loaded,
//! a suspect needs longer to hear its suspicion and refute it. So each timer turn
//! that runs [`LATE_MS`] or more after its deadline raises a score (up to
//! [`MAX_SCORE`]); each [`CALM_MS`] on time lowers it by one; and the time a suspect
//! has before it is declared down is multiplied by `1 + score`. A member on time
//! keeps score 0: failure detection in a healthy cluster is unchanged.
//!
//! Architecture invariant: pure; lateness is measured from the times passed in (a
//! deadline the node asked for against the `now` it was woken with).

use crate::time::Millis;

/// A timer that runs this much after its deadline counts as late.
pub const LATE_MS: u64 = 100;
/// The most the score rises: suspects get at most `1 + MAX_SCORE` times the usual time.
pub const MAX_SCORE: u32 = 8;
/// On time for this long forgives one point.
pub const CALM_MS: u64 = 2_000;

#[derive(Clone, Debug, Default)]
pub(super) struct LocalHealth {
    score: u32,
    /// Since when the score has not changed while on time.
    calm_since: Option<Millis>,
}

impl LocalHealth {
    /// A timer due at `due` ran at `now`: the new multiplier when it changed.
    pub(super) fn observe(&mut self, due: Millis, now: Millis) -> Option<u32> {
        let before = self.score;
        if now.since(due) >= LATE_MS {
            self.score = (self.score + 1).min(MAX_SCORE);
            self.calm_since = Some(now);
        } else {
            let since = *self.calm_since.get_or_insert(now);
            if self.score > 0 && now.since(since) >= CALM_MS {
                self.score -= 1;
                self.calm_since = Some(now);
            }
        }
        (self.score != before).then_some(self.multiplier())
    }

    pub(super) fn multiplier(&self) -> u32 {
        1 + self.score
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_turns_raise_the_multiplier_and_calm_ones_bring_it_back() {
        let mut h = LocalHealth::default();
        assert_eq!(h.observe(Millis(100), Millis(110)), None, "on time");
        assert_eq!(h.multiplier(), 1);
        assert_eq!(h.observe(Millis(200), Millis(450)), Some(2), "250 ms late");
        assert_eq!(h.observe(Millis(500), Millis(900)), Some(3));
        for k in 0..20u64 {
            h.observe(Millis(1_000 + 300 * k), Millis(1_000 + 300 * k + 500));
        }
        assert_eq!(h.multiplier(), 1 + MAX_SCORE, "capped");
        // On time from just after the last late turn (7.2 s): a point back per CALM_MS.
        let start = 7_250;
        let mut t = start;
        while h.multiplier() > 1 {
            h.observe(Millis(t), Millis(t));
            t += 250;
            assert!(
                t < start + (MAX_SCORE as u64 + 1) * CALM_MS,
                "forgiven in time"
            );
        }
        assert!(
            t > start + MAX_SCORE as u64 * CALM_MS - 250,
            "not faster than CALM_MS a point"
        );
    }
}
