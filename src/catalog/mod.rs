//! The replicated catalog: desired units, tombstones and member reports, with anti-entropy.
//!
//! Architecture invariant: pure and sans-IO. Records merge by [`entry::merge`] (a
//! semilattice join); texts are content-addressed and travel in bounded chunks; every
//! collection has a limit; time is only used to expire tombstones and partial texts.
//! Nothing here knows about members' liveness or placement.

pub mod changes;
pub mod chunk;
pub mod digest;
pub mod entry;
pub mod msg;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use changes::{CatalogDelta, ChangeKey, UnitValue};
pub use chunk::{Assembly, Chunk};
pub use digest::{text_digest, BUCKETS};
pub use entry::{
    merge, Desired, Digest, Replica, ReportEntry, ReportVersion, Status, Target, UnitEntry, Version,
};
pub use msg::{pack, Msg, WireEntry};

use crate::time::Millis;

/// Largest unit file.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;
/// Most bytes of unit texts a catalog holds in all (each distinct text counted
/// once): [`MAX_UNITS`] texts of [`MAX_TEXT_BYTES`] would be 640 MiB, more than a
/// member should keep in memory or in its snapshot. The snapshot's size limit is
/// derived from this and the other limits here (see `node::snapshot`).
pub const MAX_TEXT_TOTAL_BYTES: usize = 32 << 20;
/// Longest unit name.
pub const MAX_NAME_BYTES: usize = 256;
/// Longest machine id.
pub const MAX_MACHINE_BYTES: usize = 128;
/// Longest systemd state string.
pub const MAX_STATUS_BYTES: usize = 32;
/// Most units (live or destroyed) in a catalog.
pub const MAX_UNITS: usize = 10_000;
/// Most (member, unit) reports in a catalog.
pub const MAX_REPORTS: usize = 200_000;
/// Texts this small travel inside their record.
pub const INLINE_TEXT_BYTES: usize = 800;
/// Default tombstone lifetime: a member away longer than this may bring a destroyed unit back.
pub const TOMBSTONE_TTL_MS: u64 = 24 * 3600 * 1000;

/// Why a write or a record was refused. Doesn't affect the catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    TooLarge(&'static str),
    Full(&'static str),
    BadText,
    /// Holding this text would bring the catalog's texts to `total` bytes, over
    /// [`MAX_TEXT_TOTAL_BYTES`].
    TextBudget {
        total: usize,
    },
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::TooLarge(what) => write!(f, "its {what}"),
            Refused::Full(what) => write!(f, "the catalog's number of {what}"),
            Refused::BadText => write!(f, "its text (it does not match its digest)"),
            Refused::TextBudget { total } => write!(
                f,
                "the total of all unit texts ({total} bytes with this one; the limit, \
                 MAX_TEXT_TOTAL_BYTES, is {MAX_TEXT_TOTAL_BYTES} bytes)"
            ),
        }
    }
}

/// What [`Catalog::apply`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// The record was newer than ours and is now kept (worth forwarding).
    pub changed: bool,
    /// The record names a text we don't hold yet.
    pub missing_text: Option<Digest>,
}

/// One member's copy of the replicated state plus the texts it references.
#[derive(Default)]
pub struct Catalog {
    replica: Replica,
    texts: BTreeMap<Digest, String>,
    /// Local deadline of each tombstone.
    tomb_expires: BTreeMap<String, Millis>,
    assembly: Assembly,
    lamport: u64,
    tombstone_ttl_ms: u64,
    /// Sum of the lengths of `texts`, kept under [`MAX_TEXT_TOTAL_BYTES`].
    text_bytes: usize,
    /// Keys changed since persistence last asked (see [`changes`]).
    changes: changes::Changes,
    /// [`Catalog::summary`], kept up to date at every change of a record (each one
    /// XORs its old fingerprint out and its new one in): anti-entropy digests ride
    /// on every probe, and recomputing them meant hashing every record each time.
    summary: Summary,
    /// Whether a unit record changed since unreferenced texts were last dropped.
    texts_to_check: bool,
}

/// The per-bucket XOR of the records' fingerprints (see [`Catalog::summary`]).
#[derive(Clone, Debug, PartialEq)]
struct Summary([u64; BUCKETS]);

impl Default for Summary {
    fn default() -> Summary {
        Summary([0; BUCKETS])
    }
}

impl Summary {
    fn toggle_unit(&mut self, name: &str, e: &UnitEntry) {
        let k = (0u8, name, "");
        self.0[digest::bucket_of(&k)] ^= digest::fingerprint(&k, e);
    }

    fn toggle_report(&mut self, member: &str, unit: &str, e: &ReportEntry) {
        let k = (1u8, member, unit);
        self.0[digest::bucket_of(&k)] ^= digest::fingerprint(&k, e);
    }

    fn of(replica: &Replica) -> Summary {
        let mut s = Summary::default();
        for (n, e) in &replica.units {
            s.toggle_unit(n, e);
        }
        for ((m, u), e) in &replica.reports {
            s.toggle_report(m, u, e);
        }
        s
    }
}

/// What a member keeps across restarts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogSnapshot {
    pub replica: Replica,
    pub texts: Vec<String>,
    /// Tombstone name -> lifetime left.
    pub tomb_left_ms: Vec<(String, u64)>,
    pub lamport: u64,
}

fn check_entry(e: &WireEntry) -> Result<(), Refused> {
    match e {
        WireEntry::Unit {
            name, entry, text, ..
        } => {
            if name.len() > MAX_NAME_BYTES || entry.version.machine.len() > MAX_MACHINE_BYTES {
                return Err(Refused::TooLarge("name"));
            }
            if let Desired::Live { digest, len, .. } = &entry.state {
                if *len as usize > MAX_TEXT_BYTES {
                    return Err(Refused::TooLarge("text"));
                }
                if let Some(t) = text {
                    if t.len() != *len as usize || text_digest(t) != *digest {
                        return Err(Refused::BadText);
                    }
                }
            }
            Ok(())
        }
        WireEntry::Report {
            member,
            unit,
            entry,
        } => {
            let status_long = entry.status.as_ref().is_some_and(|s| {
                s.active.as_str().len() > MAX_STATUS_BYTES || s.sub.len() > MAX_STATUS_BYTES
            });
            if member.len() > MAX_MACHINE_BYTES || unit.len() > MAX_NAME_BYTES || status_long {
                return Err(Refused::TooLarge("report"));
            }
            Ok(())
        }
    }
}

impl Catalog {
    pub fn new(tombstone_ttl_ms: u64) -> Catalog {
        Catalog {
            tombstone_ttl_ms,
            ..Catalog::default()
        }
    }

    pub fn replica(&self) -> &Replica {
        &self.replica
    }

    pub fn text(&self, digest: &Digest) -> Option<&str> {
        self.texts.get(digest).map(String::as_str)
    }

    pub fn unit(&self, name: &str) -> Option<&UnitEntry> {
        self.replica.units.get(name)
    }

    /// A version greater than every version this catalog has seen, written by `machine`.
    pub fn next_version(&mut self, machine: &str) -> Version {
        self.lamport += 1;
        Version {
            counter: self.lamport,
            machine: machine.to_string(),
        }
    }

    /// Records a local edit of a unit (a client command) and returns it ready to spread.
    pub fn write_unit(
        &mut self,
        now: Millis,
        name: &str,
        entry: UnitEntry,
        text: Option<String>,
    ) -> Result<WireEntry, Refused> {
        let ttl_left_ms = self.tombstone_ttl_ms;
        let e = WireEntry::Unit {
            name: name.to_string(),
            entry,
            ttl_left_ms,
            text,
        };
        check_entry(&e)?;
        self.apply(now, e.clone())?;
        Ok(self.wire_unit(now, name).unwrap_or(e))
    }

    /// Merges one record. Refused records change nothing.
    pub fn apply(&mut self, now: Millis, e: WireEntry) -> Result<Applied, Refused> {
        check_entry(&e)?;
        let mut applied = Applied::default();
        match e {
            WireEntry::Unit {
                name,
                entry,
                ttl_left_ms,
                text,
            } => {
                let tomb = entry.state == Desired::Destroyed;
                if tomb && ttl_left_ms == 0 {
                    return Ok(applied);
                }
                if !self.replica.units.contains_key(&name) && self.replica.units.len() >= MAX_UNITS
                {
                    return Err(Refused::Full("units"));
                }
                self.check_text_budget(&name, &entry, text.is_some())?;
                self.lamport = self.lamport.max(entry.version.counter);
                let mut slot = self.replica.units.get(&name).cloned();
                if entry::join(&mut slot, &entry) {
                    if let Some(old) = self.replica.units.insert(name.clone(), entry.clone()) {
                        self.summary.toggle_unit(&name, &old);
                    }
                    self.summary.toggle_unit(&name, &entry);
                    self.texts_to_check = true;
                    applied.changed = true;
                    self.tomb_expires.remove(&name);
                    self.changes.mark(|| ChangeKey::Unit(name.clone()));
                }
                if tomb && slot.as_ref() == Some(&entry) {
                    let deadline = now.plus(ttl_left_ms.min(self.tombstone_ttl_ms));
                    let old = self.tomb_expires.get(&name).copied();
                    let new = old.map_or(deadline, |d| d.min(deadline));
                    if old != Some(new) {
                        self.changes.mark(|| ChangeKey::Unit(name.clone()));
                        self.tomb_expires.insert(name, new);
                    }
                }
                if let Desired::Live { digest, .. } = entry.state {
                    if let Some(t) = text {
                        self.insert_text(digest, t);
                    }
                    if applied.changed && !self.texts.contains_key(&digest) {
                        applied.missing_text = Some(digest);
                    }
                }
            }
            WireEntry::Report {
                member,
                unit,
                entry,
            } => applied.changed = self.apply_report((member, unit), entry)?,
        }
        Ok(applied)
    }

    /// Merges one member's report of one unit; whether it changed the catalog.
    fn apply_report(&mut self, key: (String, String), entry: ReportEntry) -> Result<bool, Refused> {
        if !self.replica.reports.contains_key(&key) && self.replica.reports.len() >= MAX_REPORTS {
            return Err(Refused::Full("reports"));
        }
        let mut slot = self.replica.reports.get(&key).cloned();
        if !entry::join(&mut slot, &entry) {
            return Ok(false);
        }
        self.changes
            .mark(|| ChangeKey::Report(key.0.clone(), key.1.clone()));
        self.summary.toggle_report(&key.0, &key.1, &entry);
        if let Some(old) = self.replica.reports.get(&key) {
            self.summary.toggle_report(&key.0, &key.1, old);
        }
        self.replica.reports.insert(key, entry);
        Ok(true)
    }

    /// Refuses a live record whose text this catalog would have to hold (it comes
    /// inline, or the record is newer than ours and the text will be asked for) when
    /// that text would bring all texts over [`MAX_TEXT_TOTAL_BYTES`].
    fn check_text_budget(&self, name: &str, e: &UnitEntry, inline: bool) -> Result<(), Refused> {
        let Desired::Live { digest, len, .. } = &e.state else {
            return Ok(());
        };
        if self.texts.contains_key(digest) {
            return Ok(());
        }
        let newer = self.replica.units.get(name).is_none_or(|have| have < e);
        let total = self.text_bytes + *len as usize;
        if (inline || newer) && total > MAX_TEXT_TOTAL_BYTES {
            return Err(Refused::TextBudget { total });
        }
        Ok(())
    }

    /// Keeps a text (once per digest), counting its bytes and marking it changed.
    fn insert_text(&mut self, digest: Digest, text: String) -> bool {
        if self.texts.contains_key(&digest) || self.text_bytes + text.len() > MAX_TEXT_TOTAL_BYTES {
            return false;
        }
        self.text_bytes += text.len();
        self.texts.insert(digest, text);
        self.changes.mark(|| ChangeKey::Text(digest));
        self.texts_to_check = true;
        true
    }

    /// The record of unit `name` as it travels (text inlined when small).
    pub fn wire_unit(&self, now: Millis, name: &str) -> Option<WireEntry> {
        let entry = self.replica.units.get(name)?.clone();
        let text = match &entry.state {
            Desired::Live { digest, len, .. } if (*len as usize) <= INLINE_TEXT_BYTES => {
                self.texts.get(digest).cloned()
            }
            _ => None,
        };
        let ttl_left_ms = self
            .tomb_expires
            .get(name)
            .map_or(self.tombstone_ttl_ms, |d| d.since(now));
        Some(WireEntry::Unit {
            name: name.to_string(),
            entry,
            ttl_left_ms,
            text,
        })
    }

    pub fn wire_report(&self, member: &str, unit: &str) -> Option<WireEntry> {
        let key = (member.to_string(), unit.to_string());
        let entry = self.replica.reports.get(&key)?.clone();
        Some(WireEntry::Report {
            member: key.0,
            unit: key.1,
            entry,
        })
    }

    /// Drops expired tombstones, stale partial texts and texts no record references.
    pub fn expire(&mut self, now: Millis) {
        let dead: Vec<String> = self
            .tomb_expires
            .iter()
            .filter(|(_, d)| **d <= now)
            .map(|(n, _)| n.clone())
            .collect();
        for name in dead {
            self.tomb_expires.remove(&name);
            if self
                .replica
                .units
                .get(&name)
                .is_some_and(|e| e.state == Desired::Destroyed)
            {
                if let Some(old) = self.replica.units.remove(&name) {
                    self.summary.toggle_unit(&name, &old);
                    self.texts_to_check = true;
                }
            }
            self.changes.mark(|| ChangeKey::Unit(name));
        }
        self.assembly.expire(now);
        if !std::mem::take(&mut self.texts_to_check) {
            return;
        }
        let used: std::collections::BTreeSet<Digest> =
            crate::btree::set(self.replica.units.values().filter_map(|e| match e.state {
                Desired::Live { digest, .. } => Some(digest),
                Desired::Destroyed => None,
            }));
        let (changes, bytes) = (&mut self.changes, &mut self.text_bytes);
        self.texts.retain(|d, t| {
            let keep = used.contains(d);
            if !keep {
                *bytes -= t.len();
                changes.mark(|| ChangeKey::Text(*d));
            }
            keep
        });
    }

    fn bucketed(&self) -> Vec<(usize, u64, BucketKey<'_>)> {
        let units = self.replica.units.iter().map(|(n, e)| {
            let k = (0u8, n.as_str(), "");
            (
                digest::bucket_of(&k),
                digest::fingerprint(&k, e),
                BucketKey::Unit(n),
            )
        });
        let reports = self.replica.reports.iter().map(|((m, u), e)| {
            let k = (1u8, m.as_str(), u.as_str());
            (
                digest::bucket_of(&k),
                digest::fingerprint(&k, e),
                BucketKey::Report(m, u),
            )
        });
        units.chain(reports).collect()
    }

    /// One fingerprint per bucket: the XOR of its records' fingerprints (kept up
    /// to date as records change, so this costs one copy).
    pub fn summary(&self) -> Vec<u64> {
        self.summary.0.to_vec()
    }

    /// [`Catalog::summary`] computed from every record (what the kept one must equal).
    #[cfg(test)]
    pub(crate) fn summary_from_scratch(&self) -> Vec<u64> {
        Summary::of(&self.replica).0.to_vec()
    }

    /// Our records in the buckets where `theirs` differs from our summary.
    pub fn differing(&self, now: Millis, theirs: &[u64]) -> Vec<WireEntry> {
        if theirs.len() != BUCKETS {
            return Vec::new();
        }
        let mine = self.summary();
        self.bucketed()
            .into_iter()
            .filter(|(b, _, _)| mine[*b] != theirs[*b])
            .filter_map(|(_, _, k)| match k {
                BucketKey::Unit(n) => self.wire_unit(now, n),
                BucketKey::Report(m, u) => self.wire_report(m, u),
            })
            .collect()
    }

    /// Texts that live records reference but we don't hold, in digest order.
    pub fn missing_texts(&self) -> Vec<Digest> {
        let mut out: Vec<Digest> = self
            .replica
            .units
            .values()
            .filter_map(|e| match e.state {
                Desired::Live { digest, .. } if !self.texts.contains_key(&digest) => Some(digest),
                _ => None,
            })
            .collect();
        crate::sort::sort(&mut out);
        out.dedup();
        out
    }

    pub fn chunks_of(&self, digest: &Digest) -> Vec<Chunk> {
        self.texts
            .get(digest)
            .map(|t| chunk::split(*digest, t))
            .unwrap_or_default()
    }

    /// Takes a chunk of a text we are missing; true when it completed the text.
    pub fn accept_chunk(&mut self, now: Millis, c: Chunk) -> bool {
        let wanted = self.missing_texts().contains(&c.digest);
        if !wanted {
            return false;
        }
        let digest = c.digest;
        match self.assembly.accept(now, c) {
            Some(text) => self.insert_text(digest, text),
            None => false,
        }
    }

    pub fn snapshot(&self, now: Millis) -> CatalogSnapshot {
        CatalogSnapshot {
            replica: self.replica.clone(),
            texts: self.texts.values().cloned().collect(),
            tomb_left_ms: self
                .tomb_expires
                .iter()
                .map(|(n, d)| (n.clone(), d.since(now)))
                .collect(),
            lamport: self.lamport,
        }
    }

    pub fn restore(now: Millis, tombstone_ttl_ms: u64, s: CatalogSnapshot) -> Catalog {
        let mut c = Catalog::new(tombstone_ttl_ms);
        c.lamport = s.lamport;
        c.texts = crate::btree::map(s.texts.into_iter().map(|t| (text_digest(&t), t)));
        c.text_bytes = c.texts.values().map(String::len).sum();
        c.tomb_expires = crate::btree::map(
            s.tomb_left_ms
                .into_iter()
                .map(|(n, left)| (n, now.plus(left.min(tombstone_ttl_ms)))),
        );
        c.replica = s.replica;
        c.summary = Summary::of(&c.replica);
        c.texts_to_check = true;
        let full = now.plus(tombstone_ttl_ms);
        for (name, e) in &c.replica.units {
            if e.state == Desired::Destroyed {
                c.tomb_expires.entry(name.clone()).or_insert(full);
            }
        }
        c.expire(now);
        c
    }

    /// Starts marking changes for [`Catalog::take_changes`]; the caller has just
    /// taken a full snapshot.
    pub fn track_changes(&mut self) {
        self.changes.start();
    }

    /// Whether anything changed since the last [`Catalog::take_changes`].
    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty()
    }

    /// The records, tombstone lifetimes and texts changed since the last call, with
    /// their values now (ages as of `now`): O(changes), not O(catalog).
    pub fn take_changes(&mut self, now: Millis) -> CatalogDelta {
        let mut d = CatalogDelta {
            lamport: self.lamport,
            ..CatalogDelta::default()
        };
        for key in self.changes.take() {
            match key {
                ChangeKey::Unit(name) => {
                    let v = self.replica.units.get(&name).map(|e| {
                        let left = self.tomb_expires.get(&name).map(|t| t.since(now));
                        (e.clone(), left)
                    });
                    d.units.push((name, v));
                }
                ChangeKey::Report(m, u) => {
                    let key = (m, u);
                    let v = self.replica.reports.get(&key).cloned();
                    d.reports.push((key, v));
                }
                ChangeKey::Text(digest) => {
                    d.texts.push((digest, self.texts.get(&digest).cloned()));
                }
            }
        }
        d
    }

    /// Bytes of unit texts held now (at most [`MAX_TEXT_TOTAL_BYTES`]).
    pub fn text_bytes(&self) -> usize {
        self.text_bytes
    }
}

enum BucketKey<'a> {
    Unit(&'a str),
    Report(&'a str, &'a str),
}

#[cfg(test)]
mod tests;
