//! Members as placement sees them: a machine id and fleet-style metadata.
//!
//! Architecture invariant: values only; parsing errors are strings the caller
//! wraps with a file and line.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

pub use crate::unit::MachineId;

/// A member's metadata: key -> values. fleet's string form is `k=v,k2=v2`;
/// a key given twice holds both values, and a unit matches when any does.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Metadata(pub BTreeMap<String, BTreeSet<String>>);

impl Metadata {
    /// Parses fleet's `key=value,key2=value2` (spaces around items are ignored;
    /// an empty string is no metadata). A malformed pair is an error, not skipped.
    pub fn parse(text: &str) -> Result<Metadata, String> {
        let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for item in text.split(',') {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let Some((key, value)) = item.split_once('=') else {
                return Err(format!("metadata item {item:?} is not key=value"));
            };
            let (key, value) = (key.trim(), value.trim());
            if key.is_empty() || value.is_empty() {
                return Err(format!(
                    "metadata item {item:?} needs both a key and a value"
                ));
            }
            if let Some(bad) = key
                .chars()
                .chain(value.chars())
                .find(|c| c.is_whitespace() || c.is_control() || *c == '=')
            {
                return Err(format!("metadata item {item:?} contains {bad:?}"));
            }
            map.entry(key.to_string())
                .or_default()
                .insert(value.to_string());
        }
        Ok(Metadata(map))
    }

    /// The values this member has for `key` (empty when it has none).
    pub fn values(&self, key: &str) -> Option<&BTreeSet<String>> {
        self.0.get(key)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Metadata {
    /// fleet's form, keys sorted: `disk=ssd,host=service_01`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (key, values) in &self.0 {
            for value in values {
                if !first {
                    f.write_str(",")?;
                }
                first = false;
                write!(f, "{key}={value}")?;
            }
        }
        Ok(())
    }
}

/// A live member that placement may use.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Member {
    pub id: MachineId,
    pub metadata: Metadata,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_in_fleet_form() {
        let m = Metadata::parse("host=service_01, disk=ssd,disk=hdd").expect("valid");
        assert_eq!(m.to_string(), "disk=hdd,disk=ssd,host=service_01");
        assert_eq!(Metadata::parse("").expect("empty"), Metadata::default());
    }

    #[test]
    fn malformed_metadata_is_an_error() {
        for bad in ["foo", "foo=", "=x", "a=b=c", "a b=c"] {
            assert!(Metadata::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn machine_ids_are_checked_and_shortened_like_fleet() {
        let id = MachineId::parse("41b7574b33b0462c8e311ded39302a19").expect("valid");
        assert_eq!(id.short(), "41b7574b...");
        assert_eq!(MachineId::parse("h1").expect("valid").short(), "h1");
        assert!(MachineId::parse("a b").is_err());
        assert!(MachineId::parse("").is_err());
    }
}
