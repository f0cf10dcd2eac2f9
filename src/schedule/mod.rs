//! Placement: which members run which units (pure, deterministic).
//!
//! STAND-IN on branch `gossip`: the exact API the lead is writing on main, with a
//! minimal body (MachineID, MachineMetadata, Global, sticky, fewest units, then
//! rendezvous hash). Replaced by main's module when it lands.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::hash::Hasher;

use crate::unit::FleetOptions;

/// A member's `/etc/machine-id`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MachineId(pub String);

impl fmt::Display for MachineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A member's metadata: key -> values, as fleet's `key=value,key2=value2`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata(BTreeMap<String, BTreeSet<String>>);

impl Metadata {
    pub fn parse(text: &str) -> Result<Metadata, String> {
        let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some((k, v)) if !k.is_empty() && !v.is_empty() => {
                    map.entry(k.to_string()).or_default().insert(v.to_string());
                }
                _ => return Err(format!("malformed metadata pair {pair:?}")),
            }
        }
        Ok(Metadata(map))
    }
}

impl fmt::Display for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (k, vs) in &self.0 {
            for v in vs {
                if !first {
                    f.write_str(",")?;
                }
                first = false;
                write!(f, "{k}={v}")?;
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub id: MachineId,
    pub metadata: Metadata,
}

/// A unit whose target state is loaded or launched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub name: String,
    pub seq: u64,
    pub options: FleetOptions,
}

/// Unit name -> members running it now.
pub type Running = BTreeMap<String, BTreeSet<MachineId>>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Placed(Vec<MachineId>),
    /// The human reason.
    Waiting(String),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    pub units: BTreeMap<String, Decision>,
}

fn fits(m: &Member, o: &FleetOptions) -> bool {
    if let Some(id) = &o.machine_id {
        if !m.id.0.starts_with(id.as_str()) {
            return false;
        }
    }
    o.machine_metadata.iter().all(|(k, vs)| {
        m.metadata
            .0
            .get(k)
            .is_some_and(|have| vs.iter().any(|v| have.contains(v)))
    })
}

fn score(unit: &str, machine: &MachineId) -> u64 {
    let mut h = siphasher::sip::SipHasher13::new_with_keys(0, 0);
    h.write(unit.as_bytes());
    h.write(&[0]);
    h.write(machine.0.as_bytes());
    h.finish()
}

/// Places `jobs` on `members` given what runs where now.
pub fn place(members: &[Member], jobs: &[Job], running: &Running) -> Placement {
    let mut load: BTreeMap<&MachineId, usize> = members.iter().map(|m| (&m.id, 0)).collect();
    let mut order: Vec<&Job> = jobs.iter().collect();
    order.sort_by(|a, b| (a.seq, &a.name).cmp(&(b.seq, &b.name)));
    let mut units = BTreeMap::new();
    for job in order {
        let fit: Vec<&Member> = members.iter().filter(|m| fits(m, &job.options)).collect();
        if fit.is_empty() {
            units.insert(
                job.name.clone(),
                Decision::Waiting("no member satisfies the constraints".into()),
            );
            continue;
        }
        let chosen: Vec<MachineId> = if job.options.global {
            fit.iter().map(|m| m.id.clone()).collect()
        } else {
            let now = running.get(&job.name);
            let sticky = fit
                .iter()
                .filter(|m| now.is_some_and(|s| s.contains(&m.id)))
                .min_by_key(|m| {
                    (
                        load.get(&m.id).copied().unwrap_or(0),
                        std::cmp::Reverse(score(&job.name, &m.id)),
                    )
                });
            let best = sticky.or_else(|| {
                fit.iter().min_by_key(|m| {
                    (
                        load.get(&m.id).copied().unwrap_or(0),
                        std::cmp::Reverse(score(&job.name, &m.id)),
                    )
                })
            });
            best.map(|m| vec![m.id.clone()]).unwrap_or_default()
        };
        for id in &chosen {
            if let Some(l) = load.get_mut(id) {
                *l += 1;
            }
        }
        units.insert(job.name.clone(), Decision::Placed(chosen));
    }
    Placement { units }
}
