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

pub use check::{PeerState, Violation};
pub use explain::{explain, Explanation, Verdict};
pub use member::{MachineId, Member, Metadata};
pub use place::{place, Decision, Job, Placement, Running};
