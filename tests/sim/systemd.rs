//! A fake systemd per member: install, start and stop take time and can fail.

use std::collections::BTreeMap;

use shoal::catalog::Status;
use shoal::node::Action;
use shoal::time::Millis;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Inactive,
    Activating(Millis),
    Active,
    Deactivating(Millis),
    Failed,
}

#[derive(Clone, Debug)]
pub struct Unit {
    pub installed: bool,
    pub state: State,
    /// The start in progress will fail.
    pub doomed: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Systemd {
    pub units: BTreeMap<String, Unit>,
}

pub fn status(state: State) -> Status {
    let (active, sub) = match state {
        State::Inactive => ("inactive", "dead"),
        State::Activating(_) => ("activating", "start"),
        State::Active => ("active", "running"),
        State::Deactivating(_) => ("deactivating", "stop-sigterm"),
        State::Failed => ("failed", "failed"),
    };
    shoal::node::testing::status(active, sub)
}

impl Systemd {
    /// Applies an action; returns reports (unit, status) to hand to the node now.
    pub fn apply(
        &mut self,
        now: Millis,
        action: Action,
        delay_ms: u64,
        fail: bool,
    ) -> Vec<(String, Option<Status>)> {
        match action {
            Action::Install { unit, .. } => {
                let u = self.units.entry(unit.clone()).or_insert(Unit {
                    installed: false,
                    state: State::Inactive,
                    doomed: false,
                });
                u.installed = true;
                vec![(unit.clone(), Some(status(u.state)))]
            }
            Action::Remove { unit } => match self.units.get(&unit) {
                Some(u) if matches!(u.state, State::Inactive | State::Failed) => {
                    self.units.remove(&unit);
                    vec![(unit, None)]
                }
                _ => vec![],
            },
            Action::Start { unit } => match self.units.get_mut(&unit) {
                Some(u) if u.installed && matches!(u.state, State::Inactive | State::Failed) => {
                    u.state = State::Activating(now.plus(delay_ms));
                    u.doomed = fail;
                    vec![(unit, Some(status(u.state)))]
                }
                Some(u) => vec![(unit, Some(status(u.state)))],
                None => vec![],
            },
            Action::Stop { unit } => match self.units.get_mut(&unit) {
                Some(u) if matches!(u.state, State::Active | State::Activating(_)) => {
                    u.state = State::Deactivating(now.plus(delay_ms));
                    vec![(unit, Some(status(u.state)))]
                }
                Some(u) => vec![(unit, Some(status(u.state)))],
                None => vec![],
            },
        }
    }

    pub fn next_deadline(&self) -> Option<Millis> {
        self.units
            .values()
            .filter_map(|u| match u.state {
                State::Activating(t) | State::Deactivating(t) => Some(t),
                _ => None,
            })
            .min()
    }

    /// Completes transitions due at `now`; returns the reports.
    pub fn advance(&mut self, now: Millis) -> Vec<(String, Option<Status>)> {
        let mut out = Vec::new();
        for (name, u) in &mut self.units {
            match u.state {
                State::Activating(t) if t <= now => {
                    u.state = if u.doomed {
                        State::Failed
                    } else {
                        State::Active
                    };
                    out.push((name.clone(), Some(status(u.state))));
                }
                State::Deactivating(t) if t <= now => {
                    u.state = State::Inactive;
                    out.push((name.clone(), Some(status(u.state))));
                }
                _ => {}
            }
        }
        out
    }

    /// The machine lost power: nothing runs any more (files stay).
    pub fn power_cut(&mut self) {
        for u in self.units.values_mut() {
            u.state = State::Inactive;
        }
    }

    pub fn all_reports(&self) -> Vec<(String, Option<Status>)> {
        self.units
            .iter()
            .map(|(n, u)| (n.clone(), Some(status(u.state))))
            .collect()
    }

    pub fn is_active(&self, unit: &str) -> bool {
        self.units.get(unit).is_some_and(|u| {
            matches!(
                u.state,
                State::Active | State::Activating(_) | State::Deactivating(_)
            )
        })
    }
}

impl Systemd {
    /// Started and running (not merely activating).
    pub fn is_running(&self, unit: &str) -> bool {
        self.units
            .get(unit)
            .is_some_and(|u| u.state == State::Active)
    }
}
