//! Unit names as fleet and systemd allow them, templates and instances, and `%n %N %p %i`.
//!
//! STUB: to be replaced by the unit-file work (branch `unit`).

use std::fmt;

/// A valid unit name such as `web.service`, `common@.service` or `common@1.service`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnitName(String);

impl UnitName {
    /// Validates `name`: `[a-zA-Z0-9:_.@-]+` with a systemd unit suffix.
    pub fn parse(name: &str) -> Result<UnitName, String> {
        Ok(UnitName(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UnitName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
