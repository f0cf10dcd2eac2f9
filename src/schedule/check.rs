//! The constraints of one unit on one member, spelled out: the slow, explaining path.
//!
//! Architecture invariant: [`first_violation`] decides exactly what the indexed
//! fast path in `place.rs` decides (a property test holds them together); it is
//! used for explanations and waiting reasons only, never in the hot loop.

use std::collections::BTreeSet;
use std::fmt;

use super::member::MachineId;
use super::solver::Solver;

/// Why one member cannot run one unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// The unit is on a `MachineOf`/`Replaces` cycle, so it is never placed.
    Cycle { path: String },
    /// `MachineID=` names another member.
    MachineIdMismatch { wanted: String },
    /// `MachineID=` is a prefix that several members share, so it matches none.
    MachineIdAmbiguous {
        wanted: String,
        matches: Vec<MachineId>,
    },
    /// A `MachineMetadata=` key this member lacks or has other values for.
    Metadata {
        key: String,
        wanted: BTreeSet<String>,
        has: BTreeSet<String>,
    },
    /// A `MachineOf=` unit that is not placed on this member.
    PeerNotHere { peer: String, peer_state: PeerState },
    /// This unit's `Conflicts=` glob matches a unit placed here.
    Conflicts { pattern: String, other: String },
    /// A unit placed here has a `Conflicts=` glob matching this unit.
    ConflictedBy { pattern: String, other: String },
    /// A unit placed here replaces this one (`Replaces=` on the other unit).
    ReplacedBy { pattern: String, other: String },
    /// This unit replaces a unit that stays here.
    Replaces { pattern: String, other: String },
}

/// Where a `MachineOf=` target stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerState {
    /// Not among the units to place (never started, or inactive).
    NotStarted,
    /// Known, but waiting itself.
    NotPlaced,
    /// Placed on other members.
    Elsewhere(Vec<MachineId>),
}

impl fmt::Display for Violation {
    /// The per-member sentence `why` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Cycle { path } => write!(f, "on a MachineOf/Replaces cycle: {path}"),
            Violation::MachineIdMismatch { wanted } => {
                write!(f, "MachineID={wanted} names another member")
            }
            Violation::MachineIdAmbiguous { wanted, matches } => {
                let ids: Vec<&str> = matches.iter().map(MachineId::as_str).collect();
                write!(
                    f,
                    "MachineID={wanted} is a prefix of {} members ({}), so it matches none; give more characters",
                    matches.len(),
                    ids.join(", ")
                )
            }
            Violation::Metadata { key, wanted, has } => {
                let wanted: Vec<String> = wanted.iter().map(|v| format!("{key}={v}")).collect();
                if has.is_empty() {
                    write!(
                        f,
                        "MachineMetadata {} not met: member has no {key}",
                        wanted.join(" or ")
                    )
                } else {
                    let has: Vec<String> = has.iter().map(|v| format!("{key}={v}")).collect();
                    write!(
                        f,
                        "MachineMetadata {} not met: member has {}",
                        wanted.join(" or "),
                        has.join(",")
                    )
                }
            }
            Violation::PeerNotHere { peer, peer_state } => match peer_state {
                PeerState::NotStarted => {
                    write!(f, "MachineOf={peer}, which is not loaded or started")
                }
                PeerState::NotPlaced => write!(f, "MachineOf={peer}, which is not placed anywhere"),
                PeerState::Elsewhere(on) => {
                    let ids: Vec<String> = on.iter().map(MachineId::short).collect();
                    write!(f, "MachineOf={peer}, which runs on {}", ids.join(", "))
                }
            },
            Violation::Conflicts { pattern, other } => {
                write!(f, "Conflicts={pattern} matches {other}, which runs here")
            }
            Violation::ConflictedBy { pattern, other } => {
                write!(
                    f,
                    "{other} runs here and its Conflicts={pattern} matches this unit"
                )
            }
            Violation::ReplacedBy { pattern, other } => {
                write!(
                    f,
                    "{other} runs here and replaces this unit (Replaces={pattern})"
                )
            }
            Violation::Replaces { pattern, other } => {
                write!(f, "Replaces={pattern} matches {other}, which stays here")
            }
        }
    }
}

impl Violation {
    /// A member-independent phrase, so that waiting reasons can group members, and
    /// the unit it names, if any (listed once per group: "conflicts with a, b").
    pub fn summary(&self) -> (String, Option<String>) {
        let phrase = match self {
            Violation::Cycle { path } => format!("on a cycle {path}"),
            Violation::MachineIdMismatch { wanted } => format!("not MachineID={wanted}"),
            Violation::MachineIdAmbiguous { wanted, .. } => {
                format!("MachineID={wanted} is a prefix shared by several members")
            }
            Violation::Metadata { key, wanted, .. } => {
                let wanted: Vec<String> = wanted.iter().map(|v| format!("{key}={v}")).collect();
                format!("MachineMetadata {} not met", wanted.join(" or "))
            }
            Violation::PeerNotHere { peer, peer_state } => match peer_state {
                PeerState::NotStarted => format!("MachineOf={peer} is not loaded or started"),
                PeerState::NotPlaced => format!("MachineOf={peer} is not placed"),
                PeerState::Elsewhere(_) => format!("MachineOf={peer} runs elsewhere"),
            },
            Violation::Conflicts { other, .. } | Violation::ConflictedBy { other, .. } => {
                return ("conflicts with".into(), Some(other.clone()))
            }
            Violation::ReplacedBy { other, .. } => {
                return ("replaced by".into(), Some(other.clone()))
            }
            Violation::Replaces { other, .. } => {
                return ("still runs replaced unit".into(), Some(other.clone()))
            }
        };
        (phrase, None)
    }
}

/// The first constraint of job `j` that member `m` fails, given what the solver
/// has placed so far (ignoring `j`'s own placements). `None`: `m` can run `j`.
/// (Over 70 lines on purpose: one block per fleet constraint, in the order `why`
/// reports them, so the order can be read top to bottom.)
pub(crate) fn first_violation(solver: &Solver<'_>, j: usize, m: usize) -> Option<Violation> {
    let job = solver.jobs[j];
    let member = solver.members[m];
    let options = &job.options;

    if let Some(path) = &solver.cycle[j] {
        return Some(Violation::Cycle { path: path.clone() });
    }
    if let Some(wanted) = &options.machine_id {
        let matches = solver.machine_id_matches(wanted);
        if matches.len() > 1 {
            return Some(Violation::MachineIdAmbiguous {
                wanted: wanted.clone(),
                matches: matches
                    .iter()
                    .map(|&i| solver.members[i].id.clone())
                    .collect(),
            });
        }
        if matches != [m] {
            return Some(Violation::MachineIdMismatch {
                wanted: wanted.clone(),
            });
        }
    }

    for (key, wanted) in &options.machine_metadata {
        let has = member.metadata.values(key).cloned().unwrap_or_default();
        if has.intersection(wanted).next().is_none() {
            return Some(Violation::Metadata {
                key: key.clone(),
                wanted: wanted.clone(),
                has,
            });
        }
    }

    for peer in &options.machine_of {
        let peer_state = match solver.job_index.get(peer.as_str()) {
            None => PeerState::NotStarted,
            Some(p) => match &solver.placed[p] {
                placed if placed.is_empty() => PeerState::NotPlaced,
                placed if placed.contains(&m) => continue,
                placed => PeerState::Elsewhere(
                    placed
                        .iter()
                        .map(|&i| solver.members[i].id.clone())
                        .collect(),
                ),
            },
        };
        return Some(Violation::PeerNotHere {
            peer: peer.clone(),
            peer_state,
        });
    }

    // In job order, not arrival order, so the reason named is the same on every run.
    let mut occupants: Vec<usize> = solver.occupants[m]
        .iter()
        .copied()
        .filter(|&o| o != j)
        .collect();
    occupants.sort_unstable();
    for &other in &occupants {
        let other_job = solver.jobs[other];
        if let Some(glob) = options
            .conflicts
            .iter()
            .find(|g| g.matches(&other_job.name))
        {
            return Some(Violation::Conflicts {
                pattern: glob.to_string(),
                other: other_job.name.clone(),
            });
        }
        if let Some(glob) = other_job
            .options
            .conflicts
            .iter()
            .find(|g| g.matches(&job.name))
        {
            return Some(Violation::ConflictedBy {
                pattern: glob.to_string(),
                other: other_job.name.clone(),
            });
        }
    }
    for &other in &occupants {
        let other_job = solver.jobs[other];
        if let Some(glob) = other_job
            .options
            .replaces
            .iter()
            .find(|g| g.matches(&job.name))
        {
            return Some(Violation::ReplacedBy {
                pattern: glob.to_string(),
                other: other_job.name.clone(),
            });
        }
        if let Some(glob) = options.replaces.iter().find(|g| g.matches(&other_job.name)) {
            return Some(Violation::Replaces {
                pattern: glob.to_string(),
                other: other_job.name.clone(),
            });
        }
    }
    None
}

/// "no member can run it: MachineMetadata disk=ssd not met (2 members); ..."
pub(crate) fn waiting_reason(solver: &Solver<'_>, j: usize) -> String {
    if solver.members.is_empty() {
        return "no live members".to_string();
    }
    // (phrase, members, units named), in order of first appearance.
    let mut groups: Vec<(String, usize, Vec<String>)> = Vec::new();
    let mut fits = 0usize;
    for m in 0..solver.members.len() {
        match first_violation(solver, j, m) {
            Some(v) => {
                let (phrase, unit) = v.summary();
                let at = match groups.iter().position(|g| g.0 == phrase) {
                    Some(at) => at,
                    None => {
                        groups.push((phrase, 0, Vec::new()));
                        groups.len() - 1
                    }
                };
                groups[at].1 += 1;
                if let Some(unit) = unit {
                    if !groups[at].2.contains(&unit) {
                        groups[at].2.push(unit);
                    }
                }
            }
            None => fits += 1,
        }
    }
    if fits > 0 {
        // Only reachable for a unit held back by ordering (a cycle), which sets its own reason.
        return "held back".to_string();
    }
    // Most common first; the stable sort keeps first-appearance order among equals.
    crate::sort::sort_by(&mut groups, |a, b| b.1.cmp(&a.1));
    const SHOWN_MAX: usize = 3;
    const UNITS_SHOWN_MAX: usize = 4;
    let mut parts: Vec<String> = groups
        .iter()
        .take(SHOWN_MAX)
        .map(|(phrase, n, units)| {
            let members = format!("{n} member{}", if *n == 1 { "" } else { "s" });
            if units.is_empty() {
                return format!("{phrase} ({members})");
            }
            let mut named = units
                .iter()
                .take(UNITS_SHOWN_MAX)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            if units.len() > UNITS_SHOWN_MAX {
                named.push_str(&format!(" and {} more", units.len() - UNITS_SHOWN_MAX));
            }
            format!("{phrase} {named} ({members})")
        })
        .collect();
    if groups.len() > SHOWN_MAX {
        parts.push(format!("{} more reasons", groups.len() - SHOWN_MAX));
    }
    format!("no member can run it: {}", parts.join("; "))
}
