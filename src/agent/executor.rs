//! Applies the node's actions to systemd on a thread of its own and watches unit states.
//!
//! `systemctl` blocks (a child process per call), so it never runs on the event loop:
//! one thread owns the [`Systemd`] and takes actions in order from a channel. A batch
//! of actions costs one `daemon-reload` and one `systemctl start` (and `stop`) for all
//! its units. States are read with one cheap `systemctl list-units --all` for every
//! unit ([`Systemd::loaded`]), and a `systemctl show` only for the few units it does
//! not list and whose state may have changed ([`read_states`]): `show` asks systemd
//! for every property of each unit (0.5-1.3 ms of PID 1 per unit, measured). The executor looks
//! quickly (every [`FAST_POLL`]) while a unit is in transition or an action is
//! recent, every [`SLOW_POLL`] otherwise, never more often than its own cost
//! allows ([`POLL_COST_FACTOR`]), and sends every change back for
//! `Node::handle_systemd_report`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::catalog::Status;
use crate::node::Action;
use crate::states::LoadState;
use crate::systemd::{Observed, Systemd, UNITS_PER_CALL};

/// Poll period while something is starting or stopping: start-to-active shows quickly.
pub const FAST_POLL: Duration = Duration::from_millis(50);
/// Poll period when all is quiet: notices a crash within a second (the failover
/// a user waits for), at one `systemctl list-units` a second (measured in a
/// host with 536 units: 4.5 ms of PID 1 and 10 ms of systemctl).
pub const SLOW_POLL: Duration = Duration::from_secs(1);
/// A poll waits at least this many times as long as the last one took, so that
/// reading states takes at most a tenth of the time on a slow or busy host.
pub const POLL_COST_FACTOR: u32 = 9;
/// How long after an action polling stays fast (a start job may queue a while).
const FAST_AFTER_ACTION: Duration = Duration::from_secs(3);
/// Every unit's state is sent again this often even when unchanged, so a report the
/// node dropped (e.g. while it was busy) is repaired.
const REFRESH: Duration = Duration::from_secs(30);

/// systemd's answer in the node's terms: `None` when systemd doesn't have the unit.
pub fn status_of(s: &Observed) -> Option<Status> {
    if s.load_state == LoadState::NotFound {
        return None;
    }
    Some(Status {
        active: s.active_state.clone(),
        sub: s.sub_state.clone(),
    })
}

/// The units shoal owns now (their files are still in systemd's runtime directory).
pub fn owned(sd: &dyn Systemd) -> BTreeSet<String> {
    sd.list_owned().unwrap_or_else(|e| {
        log::error!("listing the units shoal owns: {e}");
        BTreeSet::new()
    })
}

/// The states of the units shoal owns now, read once at start-up so that a restarted
/// agent adopts what already runs instead of starting it again.
pub fn initial_reports(
    sd: &mut dyn Systemd,
    owned: &BTreeSet<String>,
) -> Vec<(String, Option<Status>)> {
    let names: Vec<&str> = owned.iter().map(String::as_str).collect();
    if names.is_empty() {
        return Vec::new();
    }
    match read_states(sd, &names, |_| false) {
        Ok(states) => names
            .iter()
            .filter_map(|n| Some((n.to_string(), status_of(states.get(*n)?))))
            .collect(),
        Err(e) => {
            log::error!("reading the states of shoal's units: {e}");
            Vec::new()
        }
    }
}

/// The states of `names`: one `list-units` for all, then one `show` for those it
/// does not list, except the ones `unchanged_if_unlisted` vouches for (a unit
/// systemd does not hold in memory is inactive: one last seen inactive or
/// not-found has not moved). Those are left out of the answer; so is any unit when
/// systemd could not be asked (the error, when nothing could be read).
pub fn read_states(
    sd: &mut dyn Systemd,
    names: &[&str],
    unchanged_if_unlisted: impl Fn(&str) -> bool,
) -> Result<BTreeMap<String, Observed>, crate::systemd::SystemdError> {
    let listed = match sd.loaded() {
        Some(Ok(listed)) => Some(listed),
        Some(Err(e)) => {
            log::warn!("{e}; asking each unit instead");
            None
        }
        None => None,
    };
    let ask: Vec<&str> = match &listed {
        Some(l) => names
            .iter()
            .copied()
            .filter(|u| !l.contains_key(*u) && !unchanged_if_unlisted(u))
            .collect(),
        None => names.to_vec(),
    };
    let mut states = BTreeMap::new();
    if let Some(mut l) = listed {
        for u in names {
            if let Some(o) = l.remove(*u) {
                states.insert(u.to_string(), o);
            }
        }
    }
    if !ask.is_empty() {
        match sd.states(&ask) {
            Ok(shown) => states.extend(shown),
            Err(e) if states.is_empty() => return Err(e),
            Err(e) => log::warn!("{e}"),
        }
    }
    Ok(states)
}

/// A message to the executor thread.
pub enum Order {
    Act(Action),
    /// Watch these units too (adopted at start-up).
    Watch(Vec<String>),
}

/// Runs the executor until `orders` closes. `report` gets batches of (unit, status).
pub fn run(
    sd: Box<dyn Systemd + Send>,
    orders: mpsc::Receiver<Order>,
    report: impl Fn(Vec<(String, Option<Status>)>) -> bool,
) {
    let mut ex = Executor::new(sd);
    let mut forced = BTreeSet::new();
    loop {
        let mut batch = Vec::new();
        let wait = ex.next_poll.saturating_duration_since(Instant::now());
        match orders.recv_timeout(wait) {
            Ok(o) => batch.push(o),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        while let Ok(o) = orders.try_recv() {
            batch.push(o);
        }
        forced.extend(ex.apply(batch));
        if Instant::now() < ex.next_poll {
            continue;
        }
        let resend = Instant::now() >= ex.next_refresh;
        if resend {
            ex.next_refresh = Instant::now() + REFRESH;
        }
        let changes = ex.poll(&std::mem::take(&mut forced), resend);
        if !changes.is_empty() && !report(changes) {
            return;
        }
    }
}

/// The executor thread's state: what systemd said last, and which units it watches.
struct Executor {
    sd: Box<dyn Systemd + Send>,
    last: BTreeMap<String, Option<Status>>,
    watched: BTreeSet<String>,
    /// Poll fast until then: an action was just taken.
    fast_until: Instant,
    /// Every watched unit is reported again at this time, changed or not.
    next_refresh: Instant,
    /// When the states are read next.
    next_poll: Instant,
    /// When the last read began, and how long it took.
    last_poll: Instant,
    poll_cost: Duration,
}

impl Executor {
    fn new(sd: Box<dyn Systemd + Send>) -> Executor {
        let now = Instant::now();
        Executor {
            sd,
            last: BTreeMap::new(),
            watched: BTreeSet::new(),
            fast_until: now,
            next_refresh: now + REFRESH,
            next_poll: now,
            last_poll: now,
            poll_cost: Duration::ZERO,
        }
    }

    /// How long after the last read the next one is due: soon while something
    /// transitions or an action was just taken, otherwise at leisure, and never
    /// sooner than [`POLL_COST_FACTOR`] times the last read's cost.
    fn poll_period(&self) -> Duration {
        let transitioning = self
            .last
            .values()
            .any(|s| s.as_ref().is_some_and(|s| s.active.is_transitioning()));
        let base = if transitioning || Instant::now() < self.fast_until {
            FAST_POLL
        } else {
            SLOW_POLL
        };
        base.max(self.poll_cost * POLL_COST_FACTOR)
    }

    /// Reads the states (see [`Executor::observe`]) and schedules the next read.
    fn poll(&mut self, forced: &BTreeSet<String>, resend: bool) -> Vec<(String, Option<Status>)> {
        self.last_poll = Instant::now();
        let changes = self.observe(forced, resend);
        self.poll_cost = self.last_poll.elapsed();
        self.next_poll = self.last_poll + self.poll_period();
        changes
    }
    /// Carries out a batch of orders; returns the units acted on, whose state is
    /// reported next whether it changed or not.
    ///
    /// Unit files are written before the batch's starts and stops run, so that a
    /// batch of N new units costs one `daemon-reload`, not N (systemd reloads
    /// before a start when a file changed, and a reload's cost grows with the
    /// units it knows). Each unit's own actions keep their order: a start or stop
    /// waits only behind files of other units, and runs before a later install
    /// or remove of its own unit.
    fn apply(&mut self, batch: Vec<Order>) -> BTreeSet<String> {
        let mut forced = BTreeSet::new();
        let mut pending = Pending::default();
        let mut removed = false;
        for order in batch {
            let action = match order {
                Order::Watch(units) => {
                    self.watched.extend(units);
                    continue;
                }
                Order::Act(action) => action,
            };
            self.fast_until = Instant::now() + FAST_AFTER_ACTION;
            let unit = action_unit(&action).to_string();
            self.watched.insert(unit.clone());
            forced.insert(unit.clone());
            // A unit's earlier actions that still wait go first.
            let behind = match &action {
                Action::Start { .. } | Action::Stop { .. } => pending.removed.contains(&unit),
                Action::Remove { .. } => pending.starts_or_stops(&unit),
                Action::Install { .. } => {
                    pending.removed.contains(&unit) || pending.starts_or_stops(&unit)
                }
            };
            if behind {
                self.flush(&mut pending);
            }
            match action {
                Action::Start { .. } | Action::Stop { .. } => pending.push(action),
                Action::Remove { .. } => {
                    removed = true;
                    pending.push_remove(unit);
                }
                Action::Install { .. } => self.run(&action),
            }
        }
        self.flush(&mut pending);
        if removed {
            if let Err(e) = self.sd.daemon_reload() {
                log::warn!("{e}");
            }
        }
        if !forced.is_empty() {
            // Look soon at what was just done.
            self.next_poll = self.next_poll.min(self.last_poll + self.poll_period());
        }
        forced
    }

    /// Runs starts and stops (and, should one come, any other action in order)
    /// as few `systemctl` calls as their order allows: one `stop` and one `start`
    /// for all units (per [`UNITS_PER_CALL`]), stops first, until a unit comes
    /// round again, whose second action then waits for the first call.
    fn run_all(&mut self, actions: Vec<Action>) {
        let mut starts: Vec<String> = Vec::new();
        let mut stops: Vec<String> = Vec::new();
        let mut pending = BTreeSet::new();
        for action in actions {
            let unit = action_unit(&action).to_string();
            if !pending.insert(unit.clone()) {
                self.call_batch(&mut stops, &mut starts);
                pending = BTreeSet::from([unit.clone()]);
            }
            match action {
                Action::Start { .. } => starts.push(unit),
                Action::Stop { .. } => stops.push(unit),
                other => {
                    self.call_batch(&mut stops, &mut starts);
                    self.run(&other);
                }
            }
        }
        self.call_batch(&mut stops, &mut starts);
    }

    /// One `systemctl stop` then one `systemctl start` per [`UNITS_PER_CALL`]
    /// units. A failure is logged; the state reads that follow tell the node what
    /// systemd made of each unit (a call's exit code says one failed, not which).
    fn call_batch(&mut self, stops: &mut Vec<String>, starts: &mut Vec<String>) {
        for (verb, units) in [("stop", stops), ("start", starts)] {
            for chunk in units.chunks(UNITS_PER_CALL) {
                let names: Vec<&str> = chunk.iter().map(String::as_str).collect();
                let errors = if verb == "stop" {
                    self.sd.stop_all(&names)
                } else {
                    self.sd.start_all(&names)
                };
                match errors.len() {
                    0 => log::debug!("{verb} {}: done", names.join(" ")),
                    _ => errors.iter().for_each(|e| log::warn!("{e}")),
                }
            }
            units.clear();
        }
    }

    /// Runs what waits: starts and stops ([`Executor::run_all`]), then removals.
    ///
    /// A unit's file is removed after a stop (one call for all): the node removes
    /// only a unit it believes stopped, but under load systemd may still hold a
    /// queued start job for it (the unit shows `inactive` until the job runs):
    /// removing the file would not cancel that job, and the unit would then run
    /// with no file, shown as `not-found`, which no member counts or stops. A stop
    /// replaces the queued job and costs nothing when nothing is queued.
    fn flush(&mut self, pending: &mut Pending) {
        let Pending {
            actions, removes, ..
        } = std::mem::take(pending);
        self.run_all(actions);
        for chunk in removes.chunks(UNITS_PER_CALL) {
            let names: Vec<&str> = chunk.iter().map(String::as_str).collect();
            for e in self.sd.stop_all(&names) {
                log::debug!("{e} (before removing it)");
            }
            for unit in names {
                match self.sd.remove(unit) {
                    Ok(()) => log::debug!("remove {unit}: done"),
                    Err(e) => log::warn!("{e}"),
                }
            }
        }
    }

    /// One action against systemd; a failure is logged, and the state polls that
    /// follow tell the node what systemd made of it.
    fn run(&mut self, action: &Action) {
        let result = match action {
            Action::Install { unit, text } => self.sd.install(unit, text),
            Action::Remove { unit } => {
                let errors = self.sd.stop_all(&[unit.as_str()]);
                errors
                    .iter()
                    .for_each(|e| log::debug!("{e} (before removing it)"));
                self.sd.remove(unit)
            }
            Action::Start { unit } => self.sd.start(unit),
            Action::Stop { unit } => self.sd.stop(unit),
        };
        match result {
            Ok(()) => log::debug!("{action:?}: done"),
            Err(e) => log::warn!("{e}"),
        }
    }

    /// Reads the watched units' states ([`read_states`]); returns those that
    /// changed since the last look, those in `forced`, and with `resend` all.
    fn observe(
        &mut self,
        forced: &BTreeSet<String>,
        resend: bool,
    ) -> Vec<(String, Option<Status>)> {
        if self.watched.is_empty() {
            return Vec::new();
        }
        let names: Vec<&str> = self.watched.iter().map(String::as_str).collect();
        let last = &self.last;
        let quiet = |u: &str| {
            !forced.contains(u)
                && last.get(u).is_some_and(|s| {
                    s.as_ref()
                        .is_none_or(|s| s.active == crate::states::ActiveState::Inactive)
                })
        };
        let states = match read_states(self.sd.as_mut(), &names, quiet) {
            Ok(s) => s,
            Err(e) => {
                log::warn!("{e}");
                return Vec::new();
            }
        };
        let mut changes = Vec::new();
        for name in &names {
            // Not read (not listed, and quiet or unreadable): as last seen.
            let Some(status) = states
                .get(*name)
                .map(status_of)
                .or_else(|| self.last.get(*name).cloned())
            else {
                continue;
            };
            let changed = self.last.get(*name) != Some(&status);
            if changed || resend || forced.contains(*name) {
                changes.push((name.to_string(), status.clone()));
            }
            self.last.insert(name.to_string(), status);
        }
        self.forget_gone();
        changes
    }

    /// A unit that is gone from systemd and no longer ours needs no more polling.
    fn forget_gone(&mut self) {
        let last = &self.last;
        let known = |u: &String| last.get(u).is_some_and(Option::is_some);
        // Listing the owned units is a directory read: only when one may be gone.
        if self.watched.iter().all(known) {
            return;
        }
        let owned = self.sd.list_owned().unwrap_or_default();
        self.watched.retain(|u| owned.contains(u) || known(u));
        let watched = &self.watched;
        self.last.retain(|u, _| watched.contains(u));
    }
}

/// Actions of a batch that wait to be run together.
#[derive(Default)]
struct Pending {
    /// Starts and stops, in order, and the units they are for.
    actions: Vec<Action>,
    acted: BTreeSet<String>,
    /// Units whose files go (each stopped first).
    removes: Vec<String>,
    removed: BTreeSet<String>,
}

impl Pending {
    fn push(&mut self, action: Action) {
        self.acted.insert(action_unit(&action).to_string());
        self.actions.push(action);
    }

    fn push_remove(&mut self, unit: String) {
        self.removed.insert(unit.clone());
        self.removes.push(unit);
    }

    fn starts_or_stops(&self, unit: &str) -> bool {
        self.acted.contains(unit)
    }
}

fn action_unit(action: &Action) -> &str {
    match action {
        Action::Install { unit, .. }
        | Action::Remove { unit }
        | Action::Start { unit }
        | Action::Stop { unit } => unit,
    }
}

#[cfg(test)]
mod tests;
