//! Applies the node's actions to systemd on a thread of its own and polls unit states.
//!
//! `systemctl` blocks (a child process per call), so it never runs on the event loop:
//! one thread owns the [`Systemd`] and takes actions in order from a channel. It
//! polls the states of the units it acts on quickly (every [`FAST_POLL`]) while one
//! is in transition or an action is recent, and every [`SLOW_POLL`] otherwise, and
//! sends every change back for `Node::handle_systemd_report`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::catalog::Status;
use crate::node::Action;
use crate::states::LoadState;
use crate::systemd::{Observed, Systemd};

/// Poll period while something is starting or stopping: start-to-active shows quickly.
pub const FAST_POLL: Duration = Duration::from_millis(50);
/// Poll period when all is quiet: notices crashes within a second, costs one
/// `systemctl show` a second.
pub const SLOW_POLL: Duration = Duration::from_secs(1);
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
    match sd.states(&names) {
        Ok(states) => names
            .iter()
            .map(|n| (n.to_string(), states.get(*n).and_then(status_of)))
            .collect(),
        Err(e) => {
            log::error!("reading the states of shoal's units: {e}");
            Vec::new()
        }
    }
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
    let mut ex = Executor {
        sd,
        last: BTreeMap::new(),
        watched: BTreeSet::new(),
        fast_until: Instant::now(),
        next_refresh: Instant::now() + REFRESH,
    };
    loop {
        let mut batch = Vec::new();
        match orders.recv_timeout(ex.poll_wait()) {
            Ok(o) => batch.push(o),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        while let Ok(o) = orders.try_recv() {
            batch.push(o);
        }
        let mut forced = ex.apply(batch);
        if Instant::now() >= ex.next_refresh {
            ex.next_refresh = Instant::now() + REFRESH;
            forced.extend(ex.watched.iter().cloned());
        }
        let changes = ex.observe(&forced);
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
}

impl Executor {
    /// How long to wait for orders before looking at systemd again: briefly while
    /// something transitions or an action was just taken, otherwise at leisure.
    fn poll_wait(&self) -> Duration {
        let transitioning = self
            .last
            .values()
            .any(|s| s.as_ref().is_some_and(|s| s.active.is_transitioning()));
        if transitioning || Instant::now() < self.fast_until {
            FAST_POLL
        } else {
            SLOW_POLL
        }
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
        let mut deferred: Vec<Action> = Vec::new();
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
            match action {
                Action::Start { .. } | Action::Stop { .. } => deferred.push(action),
                Action::Install { .. } | Action::Remove { .. } => {
                    if deferred.iter().any(|a| action_unit(a) == unit) {
                        self.run_all(std::mem::take(&mut deferred));
                    }
                    removed |= matches!(action, Action::Remove { .. });
                    self.run(&action);
                }
            }
        }
        self.run_all(deferred);
        if removed {
            if let Err(e) = self.sd.daemon_reload() {
                log::warn!("{e}");
            }
        }
        forced
    }

    fn run_all(&mut self, actions: Vec<Action>) {
        for action in &actions {
            self.run(action);
        }
    }

    /// Removes `unit`'s file, stopping it first. The node removes only a unit it
    /// believes stopped, but under load systemd may still hold a queued start job
    /// for it (the unit shows `inactive` until the job runs): removing the file
    /// would not cancel that job, and the unit would then run with no file, shown
    /// as `not-found`, which no member counts or stops. A stop replaces the queued
    /// job and costs nothing when nothing is queued.
    fn stop_then_remove(&mut self, unit: &str) -> Result<(), crate::systemd::SystemdError> {
        if let Err(e) = self.sd.stop(unit) {
            log::debug!("{e} (before removing it)");
        }
        self.sd.remove(unit)
    }

    /// One action against systemd; a failure is logged, and the state polls that
    /// follow tell the node what systemd made of it.
    fn run(&mut self, action: &Action) {
        let result = match action {
            Action::Install { unit, text } => self.sd.install(unit, text),
            Action::Remove { unit } => self.stop_then_remove(unit),
            Action::Start { unit } => self.sd.start(unit),
            Action::Stop { unit } => self.sd.stop(unit),
        };
        match result {
            Ok(()) => log::debug!("{action:?}: done"),
            Err(e) => log::warn!("{e}"),
        }
    }

    /// Reads the watched units' states in one call; returns those that changed since
    /// the last look, and those in `forced`.
    fn observe(&mut self, forced: &BTreeSet<String>) -> Vec<(String, Option<Status>)> {
        if self.watched.is_empty() {
            return Vec::new();
        }
        let names: Vec<&str> = self.watched.iter().map(String::as_str).collect();
        let states = match self.sd.states(&names) {
            Ok(s) => s,
            Err(e) => {
                log::warn!("{e}");
                return Vec::new();
            }
        };
        let mut changes = Vec::new();
        for name in &names {
            let status = states.get(*name).and_then(status_of);
            let changed = self.last.get(*name) != Some(&status);
            if changed || forced.contains(*name) {
                changes.push((name.to_string(), status.clone()));
            }
            self.last.insert(name.to_string(), status);
        }
        // A unit that is gone from systemd and no longer ours needs no more polling.
        let owned = self.sd.list_owned().unwrap_or_default();
        let last = &self.last;
        self.watched
            .retain(|u| owned.contains(u) || last.get(u).is_some_and(Option::is_some));
        let watched = &self.watched;
        self.last.retain(|u, _| watched.contains(u));
        changes
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
