//! The `[X-Fleet]` section: fleet's keys, their meaning and the combinations fleet rejects.
//!
//! STUB: to be replaced by the unit-file work (branch `unit`).

use super::syntax::Section;
use super::{FleetOptions, UnitError, UnitName};

/// Reads `[X-Fleet]` of `sections` for the unit `name`; returns the options and warnings.
pub fn options(
    file: &str,
    _name: &UnitName,
    _sections: &[Section],
) -> Result<(FleetOptions, Vec<UnitError>), UnitError> {
    Err(UnitError {
        file: file.to_string(),
        line: None,
        reason: "parser not built yet".into(),
    })
}
