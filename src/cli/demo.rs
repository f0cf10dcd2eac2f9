//! `shoal demo`: the chapter's scenarios, placed offline from unit files built into the binary.
//!
//! Architecture invariant: needs no files, no root and no cluster; it runs the same
//! parser and placement as the agents, so what it prints is what a cluster would do.

use std::io::Write;

use super::output::Table;
use super::EXIT_OK;
use crate::schedule::{explain, place, Decision, Job, MachineId, Member, Metadata, Running};
use crate::unit::parse_unit;

const MACHINES: &str = include_str!("../../deploy/examples/machines.txt");
const EXAMPLE_01: &str = include_str!("../../deploy/examples/example_01.service");
const EXAMPLE_02: &str = include_str!("../../deploy/examples/example_02.service");
const EXAMPLE_03: &str = include_str!("../../deploy/examples/example_03.service");
const COMMON: &str = include_str!("../../deploy/examples/common@.service");
const COMMON_ANTI: &str = include_str!("../../deploy/examples/anti-affinity/common@.service");
const COMMON_OF: &str = include_str!("../../deploy/examples/machineof/common@.service");
const EXAMPLE_TEST: &str = include_str!("../../deploy/examples/example_test.service");

/// One scenario: a title and the units started, in order, as (name, text).
struct Scenario {
    title: &'static str,
    units: Vec<(&'static str, &'static str)>,
}

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            title: "metadata: each example pinned by MachineMetadata=host=service_0N",
            units: vec![
                ("example_01.service", EXAMPLE_01),
                ("example_02.service", EXAMPLE_02),
                ("example_03.service", EXAMPLE_03),
            ],
        },
        Scenario {
            title: "templates: common@.service on disk=ssd, Conflicts=common@*.service",
            units: vec![
                ("common@1.service", COMMON),
                ("common@2.service", COMMON),
                ("common@3.service", COMMON),
                ("example_02.service", EXAMPLE_02),
                ("example_03.service", EXAMPLE_03),
            ],
        },
        Scenario {
            title: "anti-affinity: common@ also Conflicts=example_02.service",
            units: vec![
                ("example_02.service", EXAMPLE_02),
                ("common@1.service", COMMON_ANTI),
                ("common@2.service", COMMON_ANTI),
                ("common@3.service", COMMON_ANTI),
                ("example_03.service", EXAMPLE_03),
            ],
        },
        Scenario {
            title: "affinity: common@1 has MachineOf=example_02.service",
            units: vec![
                ("common@1.service", COMMON_OF),
                ("example_02.service", EXAMPLE_02),
                ("example_03.service", EXAMPLE_03),
            ],
        },
        Scenario {
            title: "node affinity: MachineID=f70fc5f45cdc49f99fc47757f6fe5ae6",
            units: vec![("example_test.service", EXAMPLE_TEST)],
        },
    ]
}

fn members() -> Vec<Member> {
    MACHINES
        .lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter(|line| !line.is_empty())
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let id = MachineId::parse(words.next()?).ok()?;
            let metadata = Metadata::parse(words.next().unwrap_or("")).ok()?;
            Some(Member { id, metadata })
        })
        .collect()
}

fn jobs(scenario: &Scenario) -> Vec<Job> {
    scenario
        .units
        .iter()
        .enumerate()
        .filter_map(|(seq, (name, text))| {
            let unit = parse_unit(name, name, text).ok()?;
            Some(Job {
                name: name.to_string(),
                seq: seq as u64,
                options: unit.options,
            })
        })
        .collect()
}

fn print_placement(out: &mut dyn Write, members: &[Member], jobs: &[Job], running: &Running) {
    let placement = place(members, jobs, running);
    let mut table = Table::new(&["UNIT", "MACHINE", "REASON"]);
    for (name, decision) in &placement.units {
        match decision {
            Decision::Placed(machines) => {
                for m in machines {
                    table.row(vec![name.clone(), m.short(), String::new()]);
                }
            }
            Decision::Waiting(reason) => table.row(vec![name.clone(), "-".into(), reason.clone()]),
        }
    }
    let _ = write!(out, "{}", table.render());
}

pub fn demo(out: &mut dyn Write) -> i32 {
    let members = members();
    let _ = writeln!(out, "Members (deploy/examples/machines.txt):");
    let mut table = Table::new(&["MACHINE", "METADATA"]);
    for m in &members {
        table.row(vec![m.id.short(), m.metadata.to_string()]);
    }
    let _ = write!(out, "{}", table.render());
    let all = scenarios();
    for (i, scenario) in all.iter().enumerate() {
        let _ = writeln!(out, "\n{}. {}", i + 1, scenario.title);
        print_placement(out, &members, &jobs(scenario), &Running::new());
    }

    // High availability: the templates scenario loses a member.
    let templates = &all[1];
    let jobs = jobs(templates);
    let before = place(&members, &jobs, &Running::new());
    let lost = members[1].id.clone();
    let survivors: Vec<Member> = members.iter().filter(|m| m.id != lost).cloned().collect();
    let _ = writeln!(
        out,
        "\n{}. high availability: scenario 2 after {} is lost (units stay put unless they must move)",
        all.len() + 1,
        lost.short()
    );
    print_placement(out, &survivors, &jobs, &before.as_running());
    if let Some(why) = explain(
        &survivors,
        &jobs,
        &before.as_running(),
        "example_02.service",
    ) {
        let _ = writeln!(out, "\nwhy example_02.service:");
        for (id, verdict) in &why.members {
            let _ = writeln!(out, "  {}  {verdict}", id.short());
        }
    }
    EXIT_OK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_unit_parses_and_every_scenario_places_as_the_chapter_says() {
        let members = members();
        assert_eq!(members.len(), 3);
        for scenario in scenarios() {
            assert_eq!(
                jobs(&scenario).len(),
                scenario.units.len(),
                "{}",
                scenario.title
            );
        }
        let mut out = Vec::new();
        assert_eq!(demo(&mut out), EXIT_OK);
        let text = String::from_utf8(out).expect("utf-8");
        // Scenario 1: example_0N on the member with host=service_0N.
        assert!(text.contains("example_02.service  f70fc5f4..."), "{text}");
        // Scenario 5: the MachineID unit on its member.
        assert!(text.contains("example_test.service  f70fc5f4..."), "{text}");
        // The lost member's pinned unit waits, with the reason.
        assert!(
            text.contains("MachineMetadata host=service_02 not met (2 members)"),
            "{text}"
        );
    }
}
