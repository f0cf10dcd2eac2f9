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
    fn start_all(&mut self, units: &[&str]) -> Vec<SystemdError> {
        self.with(|sd| sd.start_all(units))
    }
    fn stop_all(&mut self, units: &[&str]) -> Vec<SystemdError> {
        self.with(|sd| sd.stop_all(units))
    }
    fn loaded(&mut self) -> Option<Result<BTreeMap<String, Observed>, SystemdError>> {
        self.with(|sd| sd.loaded())
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
    let ex = Executor::new(Box::new(shared.clone()));
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
    // One `systemctl start` for the four, after the one reload.
    assert_eq!(
        log,
        [
            "daemon-reload",
            "start a.service b.service c.service d.service"
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

/// `n` units `u0.service`...: installed, started in one batch, running.
fn running(n: usize) -> (Executor, Shared, Vec<String>) {
    let (mut ex, sd) = executor();
    let units: Vec<String> = (0..n).map(|i| format!("u{i}.service")).collect();
    ex.apply(units.iter().flat_map(|u| [install(u), start(u)]).collect());
    sd.with(|sd| sd.finish_all());
    ex.observe(&BTreeSet::new(), false);
    (ex, sd, units)
}

#[test]
fn a_batch_of_starts_is_one_systemctl_call_per_chunk_of_units() {
    let (_ex, sd, units) = running(UNITS_PER_CALL * 2 + 100);
    let starts: Vec<usize> = sd.with(|sd| {
        sd.log
            .iter()
            .filter(|l| l.starts_with("start "))
            .map(|l| l.split(' ').count() - 1)
            .collect()
    });
    assert_eq!(starts, [UNITS_PER_CALL, UNITS_PER_CALL, 100]);
    // And the stops of all of them: one call per chunk again.
    let (mut ex, sd, _) = running(7);
    ex.apply(units[..7].iter().map(|u| stop(u)).collect());
    let log = sd.with(|sd| sd.log.clone());
    assert_eq!(
        log.last().map(String::as_str),
        Some("stop u0.service u1.service u2.service u3.service u4.service u5.service u6.service"),
        "{log:?}"
    );
}

#[test]
fn a_unit_failing_in_a_batch_leaves_the_others_reported_right() {
    let (mut ex, sd) = executor();
    let units = ["a.service", "b.service", "c.service", "d.service"];
    sd.with(|sd| sd.break_file("b.service"));
    let forced = ex.apply(units.iter().flat_map(|u| [install(u), start(u)]).collect());
    assert_eq!(
        sd.with(|sd| sd.log.clone()),
        [
            "daemon-reload",
            "start a.service b.service c.service d.service"
        ]
    );
    // c starts and then crashes; a and d come up.
    sd.with(|sd| {
        sd.finish_all();
        sd.fail("c.service");
    });
    let reports: BTreeMap<String, Option<Status>> =
        ex.observe(&forced, false).into_iter().collect();
    let active = |u: &str| reports[u].as_ref().map(|s| s.active.as_str().to_string());
    assert_eq!(reports.len(), 4, "{reports:?}");
    assert_eq!(active("a.service").as_deref(), Some("active"));
    assert_eq!(active("b.service").as_deref(), Some("inactive"));
    assert_eq!(active("c.service").as_deref(), Some("failed"));
    assert_eq!(active("d.service").as_deref(), Some("active"));
}

#[test]
fn an_idle_look_at_many_units_is_one_cheap_call_and_shows_nothing() {
    let (mut ex, sd, units) = running(400);
    // Half of them stopped: systemd unloads them, so list-units leaves them out.
    ex.apply(units[..200].iter().map(|u| stop(u)).collect());
    sd.with(|sd| sd.finish_all());
    let changes = ex.observe(&BTreeSet::new(), false);
    assert_eq!(changes.len(), 200, "the stops are seen");
    let (lists, shows) = sd.with(|sd| (sd.lists, sd.shows));
    for _ in 0..10 {
        assert!(ex.observe(&BTreeSet::new(), false).is_empty());
    }
    assert_eq!(sd.with(|sd| (sd.lists, sd.shows)), (lists + 10, shows));
    // A crash is seen by the next look.
    sd.with(|sd| sd.fail("u300.service"));
    let changes = ex.observe(&BTreeSet::new(), false);
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].0, "u300.service");
    // A refresh resends every state without asking systemd anything more.
    assert_eq!(ex.observe(&BTreeSet::new(), true).len(), 400);
    assert_eq!(sd.with(|sd| sd.shows), shows);
}

#[test]
fn an_idle_executor_reads_states_about_once_a_second() {
    let (ex, sd, units) = running(400);
    drop(ex);
    let (tx, rx) = mpsc::channel();
    tx.send(Order::Watch(units)).expect("send");
    let before = sd.with(|sd| (sd.lists, sd.shows));
    let reports = Arc::new(Mutex::new(0usize));
    let counted = reports.clone();
    let boxed: Box<dyn Systemd + Send> = Box::new(sd.clone());
    let thread = std::thread::spawn(move || {
        run(boxed, rx, |batch| {
            *counted.lock().expect("count") += batch.len();
            true
        })
    });
    std::thread::sleep(Duration::from_millis(2500));
    drop(tx);
    thread.join().expect("executor thread");
    let (lists, shows) = sd.with(|sd| (sd.lists - before.0, sd.shows - before.1));
    // One look at once (the adopted units), then one a second: 3 in 2.5 s.
    assert!((2..=4).contains(&lists), "{lists} list-units in 2.5 s");
    assert_eq!(shows, 0, "no show for units list-units answers for");
    assert_eq!(*reports.lock().expect("count"), 400, "each unit once");
}

#[test]
fn a_batch_of_removals_stops_all_in_one_call_then_reloads_once() {
    let (mut ex, sd, units) = running(5);
    ex.apply(units.iter().map(|u| remove(u)).collect());
    let log = sd.with(|sd| sd.log.clone());
    assert_eq!(
        log[log.len() - 2..],
        [
            "stop u0.service u1.service u2.service u3.service u4.service",
            "daemon-reload"
        ]
    );
    assert!(sd.with(|sd| sd.list_owned()).expect("owned").is_empty());
}
