//! `why`: for one unit, each member's verdict and the first constraint that rules it out.
//!
//! Architecture invariant: explanations are computed from the same solver run as
//! the placement, so `why` never disagrees with `plan`.

use super::check::{first_violation, waiting_reason, Violation};
use super::member::MachineId;
use super::place::{Decision, Job, Running};
use super::solver::Solver;
use super::Member;

/// One member's verdict for one unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The unit is placed here.
    Chosen,
    /// The member satisfies every constraint but another was preferred.
    Eligible { units_here: u32 },
    /// The first constraint this member fails.
    RuledOut(Violation),
}

/// Why a unit is (or is not) where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    pub unit: String,
    pub decision: Decision,
    /// Every member, sorted by id.
    pub members: Vec<(MachineId, Verdict)>,
}

/// Explains the placement of `unit` among `jobs`; `None` if no job has that name.
pub fn explain(
    members: &[Member],
    jobs: &[Job],
    running: &Running,
    unit: &str,
) -> Option<Explanation> {
    let mut solver = Solver::new(members, jobs.iter().collect(), running);
    solver.solve(waiting_reason);
    let j = solver.job_index.get(unit)?;
    let verdicts = (0..solver.members.len())
        .map(|m| {
            let verdict = if solver.placed[j].contains(&m) {
                Verdict::Chosen
            } else {
                match first_violation(&solver, j, m) {
                    Some(violation) => Verdict::RuledOut(violation),
                    None => Verdict::Eligible {
                        units_here: solver.load_of(m),
                    },
                }
            };
            (solver.members[m].id.clone(), verdict)
        })
        .collect();
    Some(Explanation {
        unit: unit.to_string(),
        decision: solver.decision(j),
        members: verdicts,
    })
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Chosen => f.write_str("chosen"),
            Verdict::Eligible { units_here } => write!(
                f,
                "eligible, not chosen ({units_here} unit{} here; fewest units first, then rendezvous rank)",
                if *units_here == 1 { "" } else { "s" }
            ),
            Verdict::RuledOut(violation) => write!(f, "ruled out: {violation}"),
        }
    }
}
