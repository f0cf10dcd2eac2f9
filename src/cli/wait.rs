//! Waiting for `start`, `load` and `stop` to get there: poll the agent until every unit
//! is launched or installed, placement says it cannot be placed, or the bound passes.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use super::command::WaitOpts;
use super::exit::{EXIT_OK, EXIT_UNMET};
use super::output::machine_label;
use super::session::{Fail, Session};
use crate::control::{MachineInfo, UnitInfo};
use crate::states::ActiveState;

/// A unit placement keeps waiting this long is reported as unplaceable (placement
/// may lag a moment behind a join or a text still on its way).
const UNPLACED_GRACE: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(100);

/// Waits until every unit is launched (`start`), installed (`load`/`stop`), or placement
/// says it cannot be placed, within the wait bound.
pub fn wait(
    s: &mut Session,
    names: &[String],
    launched: bool,
    o: &WaitOpts,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32, Fail> {
    let began = Instant::now();
    let mut w = Waiter {
        launched,
        full: o.full,
        deadline: began + o.block.unwrap_or(super::command::DEFAULT_WAIT),
        unplaced_since: BTreeMap::new(),
        code: EXIT_OK,
    };
    let mut pending: Vec<String> = names.to_vec();
    loop {
        let units = s.units()?;
        let machines = s.machines()?;
        pending.retain(|n| w.still_pending(n, &units, &machines, out, err));
        if pending.is_empty() {
            return Ok(w.code);
        }
        if Instant::now() >= w.deadline {
            for n in &pending {
                let what = if launched { "active" } else { "loaded" };
                let _ = writeln!(
                    err,
                    "Unit {n} is not {what} after {:.0?}; see `shoal list-units` and `shoal status {n}`",
                    began.elapsed()
                );
            }
            return Ok(EXIT_UNMET);
        }
        std::thread::sleep(POLL);
    }
}

/// One `wait`'s bookkeeping.
struct Waiter {
    launched: bool,
    full: bool,
    deadline: Instant,
    /// Since when each unit has been reported unplaced.
    unplaced_since: BTreeMap<String, Instant>,
    code: i32,
}

impl Waiter {
    /// Whether unit `n` is still on its way; otherwise says what became of it.
    fn still_pending(
        &mut self,
        n: &str,
        units: &[UnitInfo],
        machines: &[MachineInfo],
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> bool {
        let launched = self.launched;
        let Some(u) = units.iter().find(|u| u.name == n) else {
            let _ = writeln!(err, "Unit {n} is not known");
            self.code = EXIT_UNMET;
            return false;
        };
        if let Some(reason) = &u.reason {
            let since = *self
                .unplaced_since
                .entry(n.to_string())
                .or_insert_with(Instant::now);
            if since.elapsed() >= UNPLACED_GRACE || Instant::now() >= self.deadline {
                let _ = writeln!(err, "Unit {n} cannot be placed: {reason}");
                self.code = EXIT_UNMET;
                return false;
            }
            return true;
        }
        self.unplaced_since.remove(n);
        let here: Vec<&crate::control::UnitRun> = u
            .runs
            .iter()
            .filter(|r| u.machines.contains(&r.machine))
            .collect();
        if let Some(f) = here.iter().find(|r| r.active == ActiveState::Failed) {
            if launched {
                let _ = writeln!(
                    err,
                    "Unit {n} failed on {} (see `shoal status {n}`)",
                    machine_label(&f.machine, machines, self.full)
                );
                self.code = EXIT_UNMET;
                return false;
            }
        }
        let done = !u.machines.is_empty()
            && u.machines.iter().all(|m| {
                here.iter().any(|r| {
                    &r.machine == m
                        && if launched {
                            r.active == ActiveState::Active
                        } else {
                            !r.active.is_running()
                        }
                })
            });
        if !done {
            return true;
        }
        let on: Vec<String> = u
            .machines
            .iter()
            .map(|m| machine_label(m, machines, self.full))
            .collect();
        let word = if launched { "launched" } else { "loaded" };
        let _ = writeln!(out, "Unit {n} {word} on {}", on.join(", "));
        false
    }
}
