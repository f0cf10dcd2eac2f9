//! Machine ids: what `MachineID=` names and what every member is known by.
//!
//! Architecture invariant: a value type; it lives with the unit files (which validate
//! `MachineID=`) so that placement builds on units, never the other way round.

use std::fmt;

/// A member's machine id (`/etc/machine-id`: 32 lowercase hex characters on real hosts).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MachineId(pub String);

impl MachineId {
    /// Validates an id: 1..=64 characters of `[A-Za-z0-9_.:-]`. Real ids are
    /// 32 hex characters; tests and `plan` files may use readable names.
    pub fn parse(id: &str) -> Result<MachineId, String> {
        if id.is_empty() {
            return Err("empty machine id".to_string());
        }
        if id.len() > 64 {
            return Err(format!("machine id {id:?} is longer than 64 characters"));
        }
        if let Some(bad) = id
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-')))
        {
            return Err(format!(
                "machine id {id:?} contains {bad:?}; allowed are letters, digits and _ . : -"
            ));
        }
        Ok(MachineId(id.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// fleet's short form in tables: the first 8 characters and an ellipsis.
    pub fn short(&self) -> String {
        match self.0.char_indices().nth(8) {
            Some((cut, _)) => format!("{}...", &self.0[..cut]),
            None => self.0.clone(),
        }
    }
}

impl fmt::Display for MachineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
