//! One table of the node's deadlines, keyed by what they are for (quinn-proto's `TimerTable`).
//!
//! The next wake-up is one line over the table. Two timers are looked at only when a
//! tick runs and never wake the node themselves: announcing and anti-entropy ride
//! on the tick (as they always have), so waking for them between ticks would move
//! that work and change a seeded run.

use crate::time::Millis;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Timer {
    /// Periodic work (see `TICK_MS`).
    Tick,
    /// The next announce to the static peers (checked on ticks).
    Announce,
    /// The next anti-entropy round (checked on ticks).
    AntiEntropy,
    /// The start hold ends (see `JOIN_GRACE_MS`).
    HoldEnd,
    /// Placement may run again (set only while something changed).
    Reconcile,
    /// A remote question is due for a resend or a give-up.
    Remote,
    /// foca's next timer.
    Membership,
}

impl Timer {
    const ALL: [Timer; 7] = [
        Timer::Tick,
        Timer::Announce,
        Timer::AntiEntropy,
        Timer::HoldEnd,
        Timer::Reconcile,
        Timer::Remote,
        Timer::Membership,
    ];

    /// Whether the node asks to be woken for it (see the module doc).
    fn wakes(self) -> bool {
        !matches!(self, Timer::Announce | Timer::AntiEntropy)
    }
}

#[derive(Clone, Debug, Default)]
pub(super) struct TimerTable {
    at: [Option<Millis>; Timer::ALL.len()],
}

impl TimerTable {
    pub(super) fn set(&mut self, timer: Timer, at: Option<Millis>) {
        self.at[timer as usize] = at;
    }

    pub(super) fn get(&self, timer: Timer) -> Option<Millis> {
        self.at[timer as usize]
    }

    /// Whether `timer` is set and due at `now`.
    pub(super) fn is_due(&self, timer: Timer, now: Millis) -> bool {
        self.get(timer).is_some_and(|t| now >= t)
    }

    /// The earliest deadline the node must be woken for.
    pub(super) fn next(&self) -> Option<Millis> {
        Timer::ALL
            .iter()
            .filter(|t| t.wakes())
            .filter_map(|t| self.get(*t))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_wake_up_is_the_earliest_timer_that_wakes() {
        let mut t = TimerTable::default();
        assert_eq!(t.next(), None);
        t.set(Timer::Tick, Some(Millis(250)));
        t.set(Timer::Announce, Some(Millis(10)));
        t.set(Timer::Remote, Some(Millis(400)));
        assert_eq!(t.next(), Some(Millis(250)), "announcing waits for a tick");
        t.set(Timer::Reconcile, Some(Millis(50)));
        assert_eq!(t.next(), Some(Millis(50)));
        assert!(t.is_due(Timer::Announce, Millis(10)) && !t.is_due(Timer::HoldEnd, Millis(10)));
        t.set(Timer::Reconcile, None);
        assert_eq!(t.next(), Some(Millis(250)));
    }
}
