//! Unit files: systemd syntax, fleet's unit names and templates, and the `[X-Fleet]` options.
//!
//! Architecture invariant: pure. Text in, [`Unit`] or [`UnitError`] out; no file
//! reads (callers pass the text and a label for messages).

pub mod fleet;
pub mod glob;
pub mod machine_id;
pub mod name;
pub mod syntax;
pub mod value;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

pub use glob::Glob;
pub use machine_id::MachineId;
pub use name::UnitName;

/// A parsed unit: its name, its original text and what `[X-Fleet]` asks of placement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unit {
    pub name: UnitName,
    /// The unit file exactly as given (for a template instance: the template's text).
    pub text: String,
    pub options: FleetOptions,
    /// Non-fatal findings (deprecated key spellings, ...), each naming file and line.
    pub warnings: Vec<UnitError>,
}

/// The `[X-Fleet]` constraints of one unit, with specifiers already expanded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FleetOptions {
    /// `MachineID=`: a full machine id or a prefix of 8 or more characters.
    pub machine_id: Option<String>,
    /// `MachineOf=`: every named unit must run on the chosen member.
    pub machine_of: Vec<String>,
    /// `MachineMetadata=`: key -> accepted values. Values of one key are OR, keys are AND.
    pub machine_metadata: BTreeMap<String, BTreeSet<String>>,
    /// `Conflicts=`: never on a member running a unit that matches one of these.
    pub conflicts: Vec<Glob>,
    /// `Global=`: run on every member that satisfies the other constraints.
    pub global: bool,
    /// `Replaces=`: take the member of a matching unit, which moves away.
    pub replaces: Vec<Glob>,
}

/// A unit file that cannot be used, or a warning about one: where and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitError {
    /// The label of the file (usually its path as the user gave it).
    pub file: String,
    /// 1-based line number, when the problem sits on one line.
    pub line: Option<u32>,
    pub reason: String,
}

impl fmt::Display for UnitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file, line, self.reason),
            None => write!(f, "{}: {}", self.file, self.reason),
        }
    }
}

impl std::error::Error for UnitError {}

/// Parses the unit file `text` as the unit `name` (an instance name such as
/// `common@1.service` may be given with its template's text). `file` labels messages.
pub fn parse_unit(file: &str, name: &str, text: &str) -> Result<Unit, UnitError> {
    let name = UnitName::parse(name).map_err(|reason| UnitError {
        file: file.to_string(),
        line: None,
        reason,
    })?;
    let sections = syntax::parse(file, text)?;
    let (options, warnings) = fleet::options(file, &name, &sections)?;
    Ok(Unit {
        name,
        text: text.to_string(),
        options,
        warnings,
    })
}
