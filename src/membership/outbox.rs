//! foca's runtime as an outbox: datagrams to send, timers as values with deadlines, events.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use foca::{Notification, Runtime, Timer};

use super::identity::Identity;
use super::Event;
use crate::time::Millis;

/// Most datagrams or events held between two drains; past it the oldest are dropped
/// (SWIM tolerates loss) so a slow driver cannot grow memory.
pub const MAX_QUEUED: usize = 4096;
/// Most pending timers (foca keeps a handful per suspect member).
pub const MAX_TIMERS: usize = 65_536;

#[derive(Default)]
pub struct Outbox {
    pub now: Millis,
    pub sends: VecDeque<(SocketAddr, Vec<u8>)>,
    pub events: VecDeque<Event>,
    /// (deadline, insertion number) -> timer.
    pub timers: BTreeMap<(Millis, u64), Timer<Identity>>,
    pub timer_seq: u64,
}

fn push_bounded<T>(q: &mut VecDeque<T>, item: T) {
    if q.len() >= MAX_QUEUED {
        q.pop_front();
    }
    q.push_back(item);
}

impl Runtime<Identity> for Outbox {
    fn notify(&mut self, n: Notification<'_, Identity>) {
        let e = match n {
            Notification::MemberUp(id) => Event::MemberUp(id.clone()),
            Notification::MemberDown(id) => Event::MemberDown(id.clone()),
            Notification::Rename(a, b) => Event::Renamed(a.clone(), b.clone()),
            Notification::Active => Event::Active,
            Notification::Idle => Event::Idle,
            Notification::Defunct => Event::Defunct,
            Notification::Rejoin(id) => Event::Rejoined(id.clone()),
        };
        push_bounded(&mut self.events, e);
    }

    fn send_to(&mut self, to: Identity, data: &[u8]) {
        push_bounded(&mut self.sends, (to.addr, data.to_vec()));
    }

    fn submit_after(&mut self, event: Timer<Identity>, after: Duration) {
        if self.timers.len() >= MAX_TIMERS {
            return;
        }
        let ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX).max(1);
        self.timer_seq += 1;
        self.timers
            .insert((self.now.plus(ms), self.timer_seq), event);
    }
}
