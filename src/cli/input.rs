//! Reading the offline inputs: member lists, running lists and unit files (with templates).
//!
//! Architecture invariant: every error names the file and, where it has one, the line.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use crate::schedule::{MachineId, Member, Metadata, Running};
use crate::unit::{parse_unit, Unit, UnitError};

/// A bad input file: which file, which line, why.
#[derive(Debug)]
pub struct InputError {
    pub file: String,
    pub line: Option<u32>,
    pub reason: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file, line, self.reason),
            None => write!(f, "{}: {}", self.file, self.reason),
        }
    }
}

impl From<UnitError> for InputError {
    fn from(e: UnitError) -> Self {
        InputError {
            file: e.file,
            line: e.line,
            reason: e.reason,
        }
    }
}

fn read(path: &Path) -> Result<String, InputError> {
    std::fs::read_to_string(path).map_err(|e| InputError {
        file: path.display().to_string(),
        line: None,
        reason: format!("cannot read: {e}"),
    })
}

/// Lines that carry content: (1-based number, text without comment), skipping blanks and `#`.
fn content_lines(text: &str) -> impl Iterator<Item = (u32, &str)> {
    text.lines().enumerate().filter_map(|(i, line)| {
        let line = line.split('#').next().unwrap_or("").trim();
        (!line.is_empty()).then_some((i as u32 + 1, line))
    })
}

/// Parses a member list: one member a line, `ID [METADATA]`, `#` comments.
pub fn parse_machines(file: &str, text: &str) -> Result<Vec<Member>, InputError> {
    let mut members = Vec::new();
    let mut seen = BTreeSet::new();
    for (line, content) in content_lines(text) {
        let err = |reason: String| InputError {
            file: file.to_string(),
            line: Some(line),
            reason,
        };
        let mut words = content.split_whitespace();
        let id_text = words.next().unwrap_or("");
        let id = MachineId::parse(id_text).map_err(err)?;
        let metadata_text: Vec<&str> = words.collect();
        let metadata = Metadata::parse(&metadata_text.join(",")).map_err(err)?;
        if !seen.insert(id.clone()) {
            return Err(err(format!("machine {id} is listed twice")));
        }
        members.push(Member { id, metadata });
    }
    Ok(members)
}

/// Reads a member list file.
pub fn load_machines(path: &Path) -> Result<Vec<Member>, InputError> {
    parse_machines(&path.display().to_string(), &read(path)?)
}

/// Parses a running list: `UNIT MACHINE` a line (a member may be one that is gone).
pub fn parse_running(file: &str, text: &str) -> Result<Running, InputError> {
    let mut running = Running::new();
    for (line, content) in content_lines(text) {
        let err = |reason: String| InputError {
            file: file.to_string(),
            line: Some(line),
            reason,
        };
        let words: Vec<&str> = content.split_whitespace().collect();
        let [unit, machine] = words[..] else {
            return Err(err(format!("expected `UNIT MACHINE`, found {content:?}")));
        };
        crate::unit::UnitName::parse(unit).map_err(err)?;
        let machine = MachineId::parse(machine).map_err(err)?;
        running.entry(unit.to_string()).or_default().insert(machine);
    }
    Ok(running)
}

/// Reads a running list file.
pub fn load_running(path: &Path) -> Result<Running, InputError> {
    parse_running(&path.display().to_string(), &read(path)?)
}

/// Reads unit files given as paths, as `fleetctl start` does: the unit's name is the
/// file name, and a missing `dir/name@inst.service` is made from `dir/name@.service`.
/// Returns the units in the order given (repeats dropped).
pub fn load_units(paths: &[String]) -> Result<Vec<Unit>, InputError> {
    let mut units: Vec<Unit> = Vec::new();
    for arg in paths {
        let path = Path::new(arg);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| InputError {
                file: arg.clone(),
                line: None,
                reason: "not a unit file path".into(),
            })?;
        if units.iter().any(|u| u.name.as_str() == name) {
            continue;
        }
        if let Some((prefix, rest)) = name.split_once('@') {
            if rest.starts_with('.') {
                return Err(InputError {
                    file: arg.clone(),
                    line: None,
                    reason: format!(
                        "{name} is a template; start an instance of it, such as {prefix}@1{rest}"
                    ),
                });
            }
        }
        let (file, text) = if path.exists() {
            (arg.clone(), read(path)?)
        } else {
            let template = template_path(path, &name).ok_or_else(|| InputError {
                file: arg.clone(),
                line: None,
                reason: "no such file".into(),
            })?;
            if !template.exists() {
                return Err(InputError {
                    file: arg.clone(),
                    line: None,
                    reason: format!(
                        "no such file, and no template {} either",
                        template.display()
                    ),
                });
            }
            (template.display().to_string(), read(&template)?)
        };
        units.push(parse_unit(&file, &name, &text)?);
    }
    Ok(units)
}

/// `dir/name@inst.service` -> `dir/name@.service`; `None` for a name that is no instance.
fn template_path(path: &Path, name: &str) -> Option<std::path::PathBuf> {
    let (prefix, rest) = name.split_once('@')?;
    let (_instance, suffix) = rest.rsplit_once('.')?;
    Some(path.with_file_name(format!("{prefix}@.{suffix}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machines_file_with_comments_and_metadata() {
        let text = "# the chapter's cluster\n41b7574b33b0462c8e311ded39302a19 host=service_01,disk=ssd\n\nh2   # no metadata\n";
        let members = parse_machines("m.txt", text).expect("valid");
        assert_eq!(members.len(), 2);
        assert_eq!(members[0].metadata.to_string(), "disk=ssd,host=service_01");
        assert!(members[1].metadata.is_empty());
    }

    #[test]
    fn machines_file_errors_name_file_and_line() {
        let e = parse_machines("m.txt", "h1\nh1 a=b\n").expect_err("duplicate");
        assert_eq!(e.to_string(), "m.txt:2: machine h1 is listed twice");
        let e = parse_machines("m.txt", "h1 foo=\n").expect_err("bad metadata");
        assert_eq!(
            e.to_string(),
            "m.txt:1: metadata item \"foo=\" needs both a key and a value"
        );
    }

    #[test]
    fn running_file_errors_name_file_and_line() {
        let e = parse_running("r.txt", "a.service h1\nb.service\n").expect_err("short line");
        assert_eq!(
            e.to_string(),
            "r.txt:2: expected `UNIT MACHINE`, found \"b.service\""
        );
    }
}
