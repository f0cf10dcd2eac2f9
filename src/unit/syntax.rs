//! systemd unit-file syntax: sections, `Key=Value`, comments, continuations.
//!
//! STUB: to be replaced by the unit-file work (branch `unit`).

use super::UnitError;

/// One `[Section]` with its assignments in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    /// 1-based line of the `[Section]` header.
    pub line: u32,
    pub entries: Vec<Entry>,
}

/// One `Key=Value` assignment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    /// 1-based line where the assignment starts.
    pub line: u32,
}

pub fn parse(file: &str, _text: &str) -> Result<Vec<Section>, UnitError> {
    Err(UnitError {
        file: file.to_string(),
        line: None,
        reason: "parser not built yet".into(),
    })
}
