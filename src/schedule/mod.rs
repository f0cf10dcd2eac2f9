//! Placement: which members run which units, as a pure deterministic function.
//!
//! Architecture invariant: knows nothing of sockets, clocks or files; the same
//! inputs in any order give the same [`Placement`] on every machine.

pub mod check;
pub mod explain;
pub mod hash;
mod levels;
pub mod member;
mod names;
pub mod place;
mod solver;

pub use check::{PeerState, Violation};
pub use explain::{explain, Explanation, Verdict};
pub use member::{MachineId, Member, Metadata};
pub use place::{Decision, Job, Placement, Running};

/// Places `jobs` on `members` (the live ones), keeping units where `running` says they run
/// when that member still satisfies them.
pub fn place(members: &[Member], jobs: &[Job], running: &Running) -> Placement {
    place_refs(members, jobs.iter().collect(), running)
}

/// [`place`] over jobs held elsewhere (the node keeps them between reconciles): the
/// same function, without copying the jobs into one slice first.
pub fn place_refs(members: &[Member], jobs: Vec<&Job>, running: &Running) -> Placement {
    let mut solver = solver::Solver::new(members, jobs, running);
    solver.solve(check::waiting_reason);
    solver.into_placement()
}
