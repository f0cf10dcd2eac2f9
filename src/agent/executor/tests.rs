//! The executor against the in-memory systemd: what a batch of actions costs and
//! in which order each unit's actions reach systemd.

use std::sync::{Arc, Mutex};

use super::*;
use crate::systemd::{FakeSystemd, SystemdError};

const TEXT: &str = "[Service]\nExecStart=/bin/sleep 1000\n";

/// A `FakeSystemd` the test can still look at after handing it to the executor.
#[derive(Clone)]
struct Shared(Arc<Mutex<FakeSystemd>>);

impl Shared {
    fn with<T>(&self, f: impl FnOnce(&mut FakeSystemd) -> T) -> T {
        f(&mut self.0.lock().expect("fake systemd lock"))
    }
}

impl Systemd for Shared {
    fn install(&mut self, unit: &str, text: &str) -> Result<(), SystemdError> {
        self.with(|sd| sd.install(unit, text))
    }
    fn remove(&mut self, unit: &str) -> Result<(), SystemdError> {
        self.with(|sd| sd.remove(unit))
    }
    fn daemon_reload(&mut self) -> Result<(), SystemdError> {
        self.with(|sd| sd.daemon_reload())
    }
    fn start(&mut self, unit: &str) -> Result<(), SystemdError> {
        self.with(|sd| sd.start(unit))
    }
    fn stop(&mut self, unit: &str) -> Result<(), SystemdError> {
        self.with(|sd| sd.stop(unit))
    }
    fn states(&mut self, units: &[&str]) -> Result<BTreeMap<String, Observed>, SystemdError> {
        self.with(|sd| sd.states(units))
    }
    fn list_owned(&self) -> Result<BTreeSet<String>, SystemdError> {
        self.0.lock().expect("fake systemd lock").list_owned()
    }
}

fn executor() -> (Executor, Shared) {
    let shared = Shared(Arc::new(Mutex::new(FakeSystemd::new())));
    let ex = Executor {
        sd: Box::new(shared.clone()),
        last: BTreeMap::new(),
        watched: BTreeSet::new(),
        fast_until: Instant::now(),
        next_refresh: Instant::now() + REFRESH,
    };
    (ex, shared)
}

fn install(unit: &str) -> Order {
    Order::Act(Action::Install {
        unit: unit.into(),
        text: TEXT.into(),
    })
}

fn start(unit: &str) -> Order {
    Order::Act(Action::Start { unit: unit.into() })
}

fn stop(unit: &str) -> Order {
    Order::Act(Action::Stop { unit: unit.into() })
}

fn remove(unit: &str) -> Order {
    Order::Act(Action::Remove { unit: unit.into() })
}

#[test]
fn a_batch_of_new_units_costs_one_daemon_reload_not_one_per_unit() {
    let (mut ex, sd) = executor();
    let units = ["a.service", "b.service", "c.service", "d.service"];
    let batch = units.iter().flat_map(|u| [install(u), start(u)]).collect();
    let forced = ex.apply(batch);
    assert_eq!(
        sd.with(|sd| sd.reloads),
        1,
        "{:?}",
        sd.with(|sd| sd.log.clone())
    );
    let log = sd.with(|sd| sd.log.clone());
    assert_eq!(
        log,
        [
            "daemon-reload",
            "start a.service",
            "start b.service",
            "start c.service",
            "start d.service"
        ]
    );
    assert_eq!(forced, units.iter().map(|u| u.to_string()).collect());
}

#[test]
fn each_units_own_actions_keep_their_order_across_a_batch() {
    let (mut ex, sd) = executor();
    // Started, stopped and removed, then installed again (destroyed and submitted
    // anew): the file must be there at the end, and the stop must follow the start.
    let batch = vec![
        install("a.service"),
        start("a.service"),
        install("b.service"),
        stop("a.service"),
        remove("a.service"),
        start("b.service"),
        install("a.service"),
    ];
    ex.apply(batch);
    let log = sd.with(|sd| sd.log.clone());
    let at = |line: &str| log.iter().position(|l| l == line).expect(line);
    assert!(at("start a.service") < at("stop a.service"), "{log:?}");
    assert!(log.iter().any(|l| l == "start b.service"), "{log:?}");
    assert_eq!(
        sd.with(|sd| sd.file("a.service").map(str::to_string)),
        Some(TEXT.to_string())
    );
}

#[test]
fn a_unit_removed_while_its_start_is_still_underway_is_stopped_not_orphaned() {
    let (mut ex, sd) = executor();
    ex.apply(vec![install("a.service"), start("a.service")]);
    // The node moved the unit away believing it never started (its start job was
    // still queued, the unit inactive), so it asks for the file's removal alone.
    ex.apply(vec![remove("a.service")]);
    sd.with(|sd| sd.finish_all());
    let states = sd.with(|sd| sd.states(&["a.service"])).expect("states");
    let a = &states["a.service"];
    assert!(
        !a.active_state.is_running(),
        "a.service runs with its file gone ({a:?}): no member would ever stop it"
    );
    assert_eq!(sd.with(|sd| sd.file("a.service").map(str::to_string)), None);
}
