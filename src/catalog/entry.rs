//! The replicated records and their merge: per key, the greatest version wins.
//!
//! Architecture invariant: [`merge`] is a pure function that is commutative,
//! associative and idempotent (a join of a semilattice): every key keeps the maximum
//! of its entries under a total order that starts with the version. Nothing here
//! knows about time, the network or placement.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::states::ActiveState;

/// 128-bit content address of a unit text (SipHash-1-3, fixed keys). Senders are
/// authenticated by the cluster key, so collision resistance against outsiders is not needed.
pub type Digest = [u8; 16];

/// Orders concurrent edits of one unit totally: Lamport counter, then the writer's machine id.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Version {
    pub counter: u64,
    pub machine: String,
}

/// fleet's target states. Gossiped by variant (never reorder them); where a
/// target travels as its word instead (the control socket's `dstate`), use
/// [`crate::states::word`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Target {
    /// Known, not placed.
    Inactive,
    /// Placed, unit file installed.
    Loaded,
    /// Placed and started.
    Launched,
}

impl Target {
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Inactive => "inactive",
            Target::Loaded => "loaded",
            Target::Launched => "launched",
        }
    }

    /// The target named by fleet's word; `None` for any other word.
    pub fn parse(word: &str) -> Option<Target> {
        [Target::Inactive, Target::Loaded, Target::Launched]
            .into_iter()
            .find(|t| t.as_str() == word)
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Target {
    type Err = String;
    fn from_str(word: &str) -> Result<Target, String> {
        Target::parse(word).ok_or_else(|| format!("not a target state: {word:?}"))
    }
}

impl From<Target> for String {
    fn from(t: Target) -> String {
        t.as_str().to_string()
    }
}

/// What the cluster wants of one unit: its desired state (what systemd says of it
/// is [`crate::systemd::Observed`], and what a member reports is [`Status`]).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Desired {
    Live {
        target: Target,
        /// Start sequence: the Lamport counter of the command that last placed it.
        seq: u64,
        /// The unit text, by content address (texts travel separately, in chunks).
        digest: Digest,
        len: u32,
    },
    /// Destroyed; kept for a bounded time so the destruction wins over stale copies.
    Destroyed,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct UnitEntry {
    pub version: Version,
    pub state: Desired,
}

/// A member's report version: its boot number (kept across restarts), then a counter.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct ReportVersion {
    pub boot: u64,
    pub counter: u64,
}

/// What systemd on one member says of one unit.
///
/// Gossiped and persisted: `active` travels as systemd's word (see
/// [`ActiveState`]), so these bytes are those of the two strings this once was.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Status {
    /// systemd's ActiveState.
    pub active: ActiveState,
    /// systemd's SubState: `running`, `dead`, ... (shown, never judged).
    pub sub: String,
}

impl Status {
    /// Whether the unit may be running a process: [`ActiveState::is_running`], the
    /// one rule (the unit counts as running for the no-double-run rule until it is
    /// fully down).
    pub fn is_running(&self) -> bool {
        self.active.is_running()
    }
}

/// One member's report of one unit; `None` status: the member doesn't have the unit.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReportEntry {
    pub version: ReportVersion,
    pub status: Option<Status>,
}

/// The replicated state: desired units by name, reports by (member, unit).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replica {
    pub units: BTreeMap<String, UnitEntry>,
    pub reports: BTreeMap<(String, String), ReportEntry>,
}

/// Keeps the greater of two entries for one key; true when `incoming` replaced or filled `slot`.
pub fn join<T: Ord + Clone>(slot: &mut Option<T>, incoming: &T) -> bool {
    match slot {
        Some(have) if *have >= *incoming => false,
        _ => {
            *slot = Some(incoming.clone());
            true
        }
    }
}

/// Joins two replicas: per key, the maximum entry.
pub fn merge(a: &Replica, b: &Replica) -> Replica {
    let mut out = a.clone();
    for (k, v) in &b.units {
        let mut slot = out.units.remove(k);
        join(&mut slot, v);
        out.units
            .insert(k.clone(), slot.unwrap_or_else(|| v.clone()));
    }
    for (k, v) in &b.reports {
        let mut slot = out.reports.remove(k);
        join(&mut slot, v);
        out.reports
            .insert(k.clone(), slot.unwrap_or_else(|| v.clone()));
    }
    out
}
