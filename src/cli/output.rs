//! Output formatting: fleetctl-style aligned tables, JSON strings, and the rows of
//! `list-units`, `list-unit-files` and `list-machines`.
//!
//! Architecture invariant: formatting only; no decisions.

use std::io::Write;

use super::command::TableOpts;
use super::exit::EXIT_BAD_INPUT;
use super::session::Fail;
use crate::catalog::Target;
use crate::control::{MachineInfo, UnitInfo};
use crate::states::ActiveState;

/// A table printed like fleetctl's: a header row, columns separated by at least two spaces.
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            rows: vec![header.iter().map(|h| h.to_string()).collect()],
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Aligned text; trailing empty cells leave no trailing spaces.
    pub fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut text = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                line.push_str(cell);
                if c + 1 < row.len() {
                    let pad = widths[c] - cell.chars().count() + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            text.push_str(line.trim_end());
            text.push('\n');
        }
        text
    }
}

/// `s` as a JSON string literal.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `ID.../IP` (or `ID/IP` with -l), fleetctl's MACHINE column.
pub fn machine_label(id: &str, machines: &[MachineInfo], full: bool) -> String {
    let shown = if full {
        id.to_string()
    } else {
        crate::schedule::MachineId(id.to_string()).short()
    };
    match machines.iter().find(|m| m.id == id) {
        Some(m) => format!("{shown}/{}", m.ip),
        None => shown,
    }
}

/// Prints rows under `columns`, honouring --fields, --no-legend and --json.
pub fn print_table(
    out: &mut dyn Write,
    columns: &[&str],
    rows: &[Vec<String>],
    o: &TableOpts,
) -> Result<(), Fail> {
    let lower: Vec<String> = columns.iter().map(|c| c.to_lowercase()).collect();
    let pick: Vec<usize> = match &o.fields {
        None => (0..columns.len()).collect(),
        Some(fields) => fields
            .iter()
            .map(|f| {
                lower.iter().position(|c| c == f).ok_or_else(|| {
                    Fail(
                        EXIT_BAD_INPUT,
                        format!("unknown field {f:?}; fields: {}", lower.join(",")),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
    };
    if o.json {
        let objs: Vec<String> = rows
            .iter()
            .map(|r| {
                let kv: Vec<String> = pick
                    .iter()
                    .map(|&i| format!("{}:{}", json_string(&lower[i]), json_string(&r[i])))
                    .collect();
                format!("{{{}}}", kv.join(","))
            })
            .collect();
        let _ = writeln!(out, "[{}]", objs.join(","));
        return Ok(());
    }
    let picked: Vec<Vec<String>> = rows
        .iter()
        .map(|r| pick.iter().map(|&i| r[i].clone()).collect())
        .collect();
    // Without the legend, the header must not widen the columns either.
    let header: Vec<String> = match (o.no_legend, picked.first()) {
        (false, _) => pick.iter().map(|&i| columns[i].to_string()).collect(),
        (true, Some(first)) => first.clone(),
        (true, None) => return Ok(()),
    };
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut t = Table::new(&header);
    let skip = usize::from(o.no_legend);
    for r in picked.into_iter().skip(skip) {
        t.row(r);
    }
    let _ = write!(out, "{}", t.render());
    Ok(())
}

/// list-units rows: one per (unit, member) that runs or is given the unit.
pub fn unit_rows(units: &[UnitInfo], machines: &[MachineInfo], full: bool) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for u in units.iter().filter(|u| u.dstate != Target::Inactive) {
        // A stopped copy on a member placement no longer gives the unit is about to be
        // removed: noise. Anything that may still run is shown wherever it is.
        let mut shown: Vec<(String, String, String)> = u
            .runs
            .iter()
            .filter(|r| u.machines.contains(&r.machine) || r.active != ActiveState::Inactive)
            .map(|r| (r.machine.clone(), r.active.to_string(), r.sub.clone()))
            .collect();
        for m in &u.machines {
            if !shown.iter().any(|(id, ..)| id == m) {
                shown.push((m.clone(), "-".into(), "-".into()));
            }
        }
        if shown.is_empty() {
            rows.push(vec![
                u.name.clone(),
                "-".into(),
                "inactive".into(),
                "-".into(),
            ]);
        }
        for (id, active, sub) in shown {
            rows.push(vec![
                u.name.clone(),
                machine_label(&id, machines, full),
                active,
                sub,
            ]);
        }
    }
    rows
}

/// list-unit-files rows: UNIT HASH DSTATE STATE TARGET.
pub fn unit_file_rows(
    units: &[UnitInfo],
    machines: &[MachineInfo],
    full: bool,
) -> Vec<Vec<String>> {
    units
        .iter()
        .map(|u| {
            let on_target = |r: &&crate::control::UnitRun| u.machines.contains(&r.machine);
            let state = if u
                .runs
                .iter()
                .filter(on_target)
                .any(|r| r.active == ActiveState::Active)
            {
                "launched"
            } else if u.runs.iter().any(|r| on_target(&r)) {
                "loaded"
            } else {
                "inactive"
            };
            let target = match u.machines.as_slice() {
                [one] => machine_label(one, machines, full),
                _ => "-".to_string(),
            };
            let hash = if full {
                u.hash.clone()
            } else {
                u.hash.chars().take(7).collect()
            };
            vec![
                u.name.clone(),
                hash,
                u.dstate.to_string(),
                state.to_string(),
                target,
            ]
        })
        .collect()
}

pub fn machine_rows(machines: &[MachineInfo], full: bool) -> Vec<Vec<String>> {
    machines
        .iter()
        .map(|m| {
            let id = if full {
                m.id.clone()
            } else {
                crate::schedule::MachineId(m.id.clone()).short()
            };
            let meta = if m.metadata.is_empty() {
                "-".to_string()
            } else {
                m.metadata.clone()
            };
            vec![id, m.ip.clone(), meta]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_like_fleetctl() {
        let mut t = Table::new(&["UNIT", "MACHINE", "REASON"]);
        t.row(vec!["a.service".into(), "h1".into(), String::new()]);
        t.row(vec![
            "bb.service".into(),
            "-".into(),
            "no live members".into(),
        ]);
        assert_eq!(
            t.render(),
            "UNIT        MACHINE  REASON\na.service   h1\nbb.service  -        no live members\n"
        );
    }

    #[test]
    fn json_strings_escape_quotes_and_controls() {
        assert_eq!(json_string("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }
}

#[cfg(test)]
mod rows_tests {
    use super::*;
    use crate::control::UnitRun;

    fn machines() -> Vec<MachineInfo> {
        vec![
            MachineInfo {
                id: "41b7574b33b0462c8e311ded39302a19".into(),
                ip: "10.77.0.1".into(),
                metadata: "disk=ssd".into(),
            },
            MachineInfo {
                id: "9a0ffe43c2d244e5b9a2d7a9a0e5a2f1".into(),
                ip: "10.77.0.2".into(),
                metadata: String::new(),
            },
        ]
    }

    fn units() -> Vec<UnitInfo> {
        vec![
            UnitInfo {
                name: "web.service".into(),
                hash: "0123456789abcdef".into(),
                dstate: Target::Launched,
                seq: 1,
                machines: vec!["41b7574b33b0462c8e311ded39302a19".into()],
                reason: None,
                runs: vec![UnitRun {
                    machine: "41b7574b33b0462c8e311ded39302a19".into(),
                    active: "active".into(),
                    sub: "running".into(),
                }],
            },
            UnitInfo {
                name: "db.service".into(),
                hash: "fedcba9876543210".into(),
                dstate: Target::Launched,
                seq: 2,
                machines: vec![],
                reason: Some("no member has metadata disk=nvme".into()),
                runs: vec![],
            },
            UnitInfo {
                name: "idle.service".into(),
                hash: "aaaaaaaaaaaaaaaa".into(),
                dstate: Target::Inactive,
                seq: 0,
                machines: vec![],
                reason: None,
                runs: vec![],
            },
        ]
    }

    fn render(columns: &[&str], rows: &[Vec<String>], args: &[&str]) -> String {
        let o = crate::cli::command::table_opts(args).unwrap();
        let mut out = Vec::new();
        print_table(&mut out, columns, rows, &o)
            .map_err(|f| f.1)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    const UNITS: [&str; 4] = ["UNIT", "MACHINE", "ACTIVE", "SUB"];

    #[test]
    fn list_units_shows_fleetctls_columns_and_short_machines() {
        let rows = unit_rows(&units(), &machines(), false);
        assert_eq!(
            render(&UNITS, &rows, &[]),
            "UNIT         MACHINE                ACTIVE    SUB\n\
             web.service  41b7574b.../10.77.0.1  active    running\n\
             db.service   -                      inactive  -\n"
        );
        let rows = unit_rows(&units(), &machines(), true);
        assert!(render(&UNITS, &rows, &["--no-legend"])
            .starts_with("web.service  41b7574b33b0462c8e311ded39302a19/10.77.0.1  active"));
    }

    #[test]
    fn fields_pick_and_order_columns_and_json_uses_lowercase_keys() {
        let rows = unit_rows(&units(), &machines(), false);
        assert_eq!(
            render(&UNITS, &rows, &["--no-legend", "--fields", "sub,unit"]),
            "running  web.service\n-        db.service\n"
        );
        assert_eq!(
            render(&UNITS, &rows[..1], &["--json", "--fields=unit,active"]),
            "[{\"unit\":\"web.service\",\"active\":\"active\"}]\n"
        );
        let o = crate::cli::command::table_opts(&["--fields", "nope"]).unwrap();
        let e = print_table(&mut Vec::new(), &UNITS, &rows, &o)
            .err()
            .unwrap();
        assert_eq!(e.0, EXIT_BAD_INPUT);
        assert!(e.1.contains("unit,machine,active,sub"), "{}", e.1);
    }

    #[test]
    fn list_unit_files_and_list_machines_match_fleet() {
        let rows = unit_file_rows(&units(), &machines(), false);
        assert_eq!(
            render(&["UNIT", "HASH", "DSTATE", "STATE", "TARGET"], &rows, &[]),
            "UNIT          HASH     DSTATE    STATE     TARGET\n\
             web.service   0123456  launched  launched  41b7574b.../10.77.0.1\n\
             db.service    fedcba9  launched  inactive  -\n\
             idle.service  aaaaaaa  inactive  inactive  -\n"
        );
        let rows = machine_rows(&machines(), false);
        assert_eq!(
            render(&["MACHINE", "IP", "METADATA"], &rows, &[]),
            "MACHINE      IP         METADATA\n\
             41b7574b...  10.77.0.1  disk=ssd\n\
             9a0ffe43...  10.77.0.2  -\n"
        );
    }
}
