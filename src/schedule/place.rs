//! Placement's inputs and outputs: jobs, who runs what, and each unit's decision.
//!
//! The function itself is `schedule::place`; it runs the solver (`solver.rs`),
//! whose invariants are:
//! - Pure and deterministic: inputs are sorted (members by id, jobs by start
//!   sequence then name) before anything is decided, so input order never leaks.
//! - Sticky: a unit stays on a member that runs it and still satisfies it
//!   (phase 1, before any new placement), so joins and restarts move nothing.
//! - Bounded: every loop runs over the inputs once per job; a `MachineOf` or
//!   `Replaces` cycle is reported as waiting, never followed.

use std::collections::{BTreeMap, BTreeSet};

use super::member::MachineId;
use crate::unit::FleetOptions;

/// A unit to place: one whose target state is `loaded` or `launched`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub name: String,
    /// Start order: units are placed in the order they were started.
    pub seq: u64,
    pub options: FleetOptions,
}

/// Where units run now: unit name -> members running it.
pub type Running = BTreeMap<String, BTreeSet<MachineId>>;

/// The outcome for one unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Members that run it, sorted by id (one, except for `Global=true` units).
    Placed(Vec<MachineId>),
    /// No member may run it now; the reason is meant for people.
    Waiting(String),
}

/// Every job's decision, by unit name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    pub units: BTreeMap<String, Decision>,
}

impl Placement {
    /// Members the unit is placed on (empty when waiting or unknown).
    pub fn machines_of(&self, unit: &str) -> &[MachineId] {
        match self.units.get(unit) {
            Some(Decision::Placed(machines)) => machines,
            _ => &[],
        }
    }

    /// Units placed on `machine`, by name.
    pub fn units_on<'a>(&'a self, machine: &'a MachineId) -> impl Iterator<Item = &'a str> + 'a {
        self.units
            .iter()
            .filter_map(move |(name, decision)| match decision {
                Decision::Placed(machines) if machines.contains(machine) => Some(name.as_str()),
                _ => None,
            })
    }

    /// The placement as `Running`, as it would be reported once carried out.
    pub fn as_running(&self) -> Running {
        crate::btree::map(
            self.units
                .iter()
                .filter_map(|(name, decision)| match decision {
                    Decision::Placed(machines) => {
                        Some((name.clone(), crate::btree::set(machines.iter().cloned())))
                    }
                    Decision::Waiting(_) => None,
                }),
        )
    }
}
