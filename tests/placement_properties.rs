//! Properties of placement over generated clusters, judged by an independent checker.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use shoal::schedule::{
    explain, place, Decision, Job, MachineId, Member, Metadata, Placement, Running, Verdict,
    Violation,
};
use shoal::unit::{FleetOptions, Glob};

const NAMES: &[&str] = &[
    "web@1.service",
    "web@2.service",
    "web@3.service",
    "db.service",
    "db-backup.service",
    "cache1.service",
    "cache2.service",
    "log.service",
    "agent.service",
    "proxy.service",
];
const GLOBS: &[&str] = &[
    "web@*.service",
    "db*.service",
    "cache?.service",
    "log.service",
    "proxy.service",
    "*.timer",
];

fn member_strategy() -> impl Strategy<Value = Member> {
    (
        any::<u128>(),
        prop::option::of(prop::sample::select(vec!["ssd", "hdd"])),
        prop::option::of(prop::sample::select(vec!["a", "b"])),
    )
        .prop_map(|(id, disk, zone)| {
            let mut text = Vec::new();
            if let Some(d) = disk {
                text.push(format!("disk={d}"));
            }
            if let Some(z) = zone {
                text.push(format!("zone={z}"));
            }
            Member {
                id: MachineId(format!("{id:032x}")),
                metadata: Metadata::parse(&text.join(",")).expect("valid"),
            }
        })
}

/// Options drawn from fleet's keys; `with_replaces` allows `Replaces=`.
fn options_strategy(with_replaces: bool) -> impl Strategy<Value = (FleetOptions, Option<usize>)> {
    (
        prop::option::of(prop::sample::select(vec!["ssd", "hdd"])),
        prop::option::of(prop::sample::select(vec![
            vec!["a"],
            vec!["a", "b"],
            vec!["b"],
        ])),
        prop::collection::vec(prop::sample::select(GLOBS.to_vec()), 0..3),
        prop::option::of(prop::sample::select(NAMES.to_vec())),
        prop::bool::weighted(0.15),
        prop::option::of(prop::sample::select(GLOBS.to_vec())),
        // MachineID: which member (index, resolved later) and whether as an 8-character prefix.
        prop::option::of((0usize..8, any::<bool>())),
    )
        .prop_map(
            move |(disk, zones, conflicts, machine_of, global, replaces, machine_id)| {
                let mut options = FleetOptions::default();
                if let Some(d) = disk {
                    options
                        .machine_metadata
                        .insert("disk".into(), BTreeSet::from([d.to_string()]));
                }
                if let Some(zs) = zones {
                    options
                        .machine_metadata
                        .insert("zone".into(), zs.iter().map(|z| z.to_string()).collect());
                }
                options.conflicts = conflicts
                    .iter()
                    .map(|g| Glob::new(g).expect("valid glob"))
                    .collect();
                options.global = global;
                if !global {
                    options.machine_of = machine_of.into_iter().map(String::from).collect();
                }
                if with_replaces && !global && options.conflicts.is_empty() {
                    options.replaces = replaces
                        .iter()
                        .map(|g| Glob::new(g).expect("valid glob"))
                        .collect();
                }
                let pin = machine_id.map(|(i, prefix)| i * 2 + usize::from(prefix));
                (options, pin)
            },
        )
}

#[derive(Clone, Debug)]
struct Cluster {
    members: Vec<Member>,
    jobs: Vec<Job>,
}

fn cluster_strategy(with_replaces: bool) -> impl Strategy<Value = Cluster> {
    (
        prop::collection::vec(member_strategy(), 1..7),
        prop::collection::vec(
            (
                prop::sample::select(NAMES.to_vec()),
                options_strategy(with_replaces),
            ),
            0..10,
        ),
    )
        .prop_map(|(members, raw_jobs)| {
            let mut jobs = Vec::new();
            let mut seen = BTreeSet::new();
            for (seq, (name, (mut options, pin))) in raw_jobs.into_iter().enumerate() {
                if !seen.insert(name) {
                    continue;
                }
                // fleet's rules, as the parser enforces them: no MachineOf on itself or on a
                // unit its own Conflicts or Replaces match.
                let own_globs: Vec<Glob> = options
                    .conflicts
                    .iter()
                    .chain(&options.replaces)
                    .cloned()
                    .collect();
                options
                    .machine_of
                    .retain(|peer| peer != name && !own_globs.iter().any(|g| g.matches(peer)));
                if let Some(pin) = pin {
                    let member = &members[(pin / 2) % members.len()];
                    // fleet rejects MachineID with MachineOf/Conflicts/Global/Replaces.
                    if options.machine_of.is_empty()
                        && options.conflicts.is_empty()
                        && !options.global
                        && options.replaces.is_empty()
                    {
                        let id = member.id.as_str();
                        options.machine_id = Some(if pin % 2 == 1 {
                            id[..8].to_string()
                        } else {
                            id.to_string()
                        });
                    }
                }
                jobs.push(Job {
                    name: name.to_string(),
                    seq: seq as u64,
                    options,
                });
            }
            Cluster { members, jobs }
        })
}

/// An independent statement of fleet's constraints: does `member` satisfy `job`
/// given what else is placed there? Written apart from the library on purpose.
fn violates(
    cluster: &Cluster,
    placement: &Placement,
    job: &Job,
    member: &Member,
) -> Option<String> {
    let o = &job.options;
    if let Some(wanted) = &o.machine_id {
        let matching: Vec<&Member> = cluster
            .members
            .iter()
            .filter(|m| {
                m.id.as_str() == wanted
                    || (wanted.len() >= 8 && m.id.as_str().starts_with(wanted.as_str()))
            })
            .collect();
        if matching.len() != 1 || matching[0].id != member.id {
            return Some(format!("MachineID {wanted}"));
        }
    }
    for (key, wanted) in &o.machine_metadata {
        let ok = member
            .metadata
            .values(key)
            .is_some_and(|has| has.iter().any(|v| wanted.contains(v)));
        if !ok {
            return Some(format!("metadata {key}"));
        }
    }
    for peer in &o.machine_of {
        if !placement.machines_of(peer).contains(&member.id) {
            return Some(format!("MachineOf {peer}"));
        }
    }
    for other in placement.units_on(&member.id) {
        if other == job.name {
            continue;
        }
        let other_job = cluster
            .jobs
            .iter()
            .find(|j| j.name == other)
            .expect("placed units are jobs");
        if o.conflicts.iter().any(|g| g.matches(other))
            || other_job
                .options
                .conflicts
                .iter()
                .any(|g| g.matches(&job.name))
        {
            return Some(format!("conflict with {other}"));
        }
        if o.replaces.iter().any(|g| g.matches(other))
            || other_job
                .options
                .replaces
                .iter()
                .any(|g| g.matches(&job.name))
        {
            return Some(format!("replace with {other}"));
        }
    }
    None
}

fn member<'a>(cluster: &'a Cluster, id: &MachineId) -> &'a Member {
    cluster
        .members
        .iter()
        .find(|m| &m.id == id)
        .expect("placed on a known member")
}

fn check_constraints(cluster: &Cluster, placement: &Placement) -> Result<(), TestCaseError> {
    for job in &cluster.jobs {
        match &placement.units[&job.name] {
            Decision::Placed(machines) => {
                prop_assert!(!machines.is_empty(), "{} placed on no member", job.name);
                if !job.options.global {
                    prop_assert_eq!(
                        machines.len(),
                        1,
                        "{} is not global but runs on several members",
                        &job.name
                    );
                }
                for id in machines {
                    let why = violates(cluster, placement, job, member(cluster, id));
                    prop_assert!(why.is_none(), "{} on {}: {:?}", job.name, id, why);
                }
                if job.options.global {
                    // A global unit runs on every member that can run it.
                    for m in &cluster.members {
                        if !machines.contains(&m.id) {
                            prop_assert!(
                                violates(cluster, placement, job, m).is_some(),
                                "global {} missing on fitting {}",
                                job.name,
                                m.id
                            );
                        }
                    }
                }
            }
            Decision::Waiting(reason) => prop_assert!(!reason.is_empty()),
        }
    }
    Ok(())
}

fn shuffled<T: Clone>(items: &[T], seed: u64) -> Vec<T> {
    let mut items = items.to_vec();
    let mut state = seed | 1;
    for i in (1..items.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        items.swap(i, (state % (i as u64 + 1)) as usize);
    }
    items
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn the_same_answer_for_any_input_order(cluster in cluster_strategy(true), seed in any::<u64>()) {
        let expected = place(&cluster.members, &cluster.jobs, &Running::new());
        let running = expected.as_running();
        let sticky = place(&cluster.members, &cluster.jobs, &running);
        let members = shuffled(&cluster.members, seed);
        let jobs = shuffled(&cluster.jobs, seed.rotate_left(17));
        prop_assert_eq!(&place(&members, &jobs, &Running::new()), &expected);
        prop_assert_eq!(&place(&members, &jobs, &running), &sticky);
    }

    #[test]
    fn every_placement_satisfies_every_constraint(cluster in cluster_strategy(true)) {
        let placement = place(&cluster.members, &cluster.jobs, &Running::new());
        check_constraints(&cluster, &placement)?;
    }

    #[test]
    fn rerunning_on_the_output_changes_nothing(cluster in cluster_strategy(true)) {
        let first = place(&cluster.members, &cluster.jobs, &Running::new());
        let again = place(&cluster.members, &cluster.jobs, &first.as_running());
        prop_assert_eq!(again, first);
    }

    #[test]
    fn adding_a_member_moves_nothing(cluster in cluster_strategy(true), extra in member_strategy()) {
        prop_assume!(cluster.members.iter().all(|m| m.id.as_str()[..8] != extra.id.as_str()[..8]));
        let before = place(&cluster.members, &cluster.jobs, &Running::new());
        let mut members = cluster.members.clone();
        members.push(extra.clone());
        let after = place(&members, &cluster.jobs, &before.as_running());
        let grown = Cluster { members, jobs: cluster.jobs.clone() };
        check_constraints(&grown, &after)?;
        for (name, decision) in &before.units {
            if let Decision::Placed(machines) = decision {
                let now: Vec<&MachineId> = after.machines_of(name).iter().filter(|m| **m != extra.id).collect();
                prop_assert_eq!(now, machines.iter().collect::<Vec<_>>(), "{} moved when a member joined", name);
            }
        }
    }

    /// Replaces is left out: a replacer that loses its member takes the replaced
    /// unit's member again (fleet's meaning), which moves that unit on purpose.
    #[test]
    fn removing_a_member_moves_only_its_units(cluster in cluster_strategy(false), which in any::<prop::sample::Index>()) {
        let before = place(&cluster.members, &cluster.jobs, &Running::new());
        let lost = cluster.members[which.index(cluster.members.len())].id.clone();
        let members: Vec<Member> = cluster.members.iter().filter(|m| m.id != lost).cloned().collect();
        let mut running = before.as_running();
        for machines in running.values_mut() {
            machines.remove(&lost);
        }
        let after = place(&members, &cluster.jobs, &running);
        let shrunk = Cluster { members, jobs: cluster.jobs.clone() };
        check_constraints(&shrunk, &after)?;
        for (name, decision) in &before.units {
            if let Decision::Placed(machines) = decision {
                let kept: Vec<&MachineId> = machines.iter().filter(|m| **m != lost).collect();
                if kept.len() == machines.len() || cluster.jobs.iter().any(|j| &j.name == name && j.options.global) {
                    let now: Vec<&MachineId> = after.machines_of(name).iter().filter(|m| kept.contains(m)).collect();
                    prop_assert_eq!(now, kept, "{} moved though its member stayed", name);
                }
            }
        }
    }

    #[test]
    fn explanations_name_a_constraint_that_really_fails(cluster in cluster_strategy(true)) {
        let placement = place(&cluster.members, &cluster.jobs, &Running::new());
        for job in &cluster.jobs {
            let why = explain(&cluster.members, &cluster.jobs, &Running::new(), &job.name).expect("known unit");
            prop_assert_eq!(&why.decision, &placement.units[&job.name]);
            let placed_on = placement.machines_of(&job.name);
            for (id, verdict) in &why.members {
                let m = member(&cluster, id);
                match verdict {
                    Verdict::Chosen => prop_assert!(placed_on.contains(id)),
                    Verdict::RuledOut(Violation::Cycle { path }) => {
                        prop_assert!(placed_on.is_empty());
                        // Independently: following MachineOf from this unit comes back to it.
                        prop_assert!(path.starts_with(&job.name) || path.contains(&format!("-> {}", job.name)), "{}", path);
                    }
                    Verdict::RuledOut(v) => {
                        prop_assert!(!placed_on.contains(id));
                        let independent = violates(&cluster, &placement, job, m);
                        prop_assert!(independent.is_some(), "{} on {}: why says {:?} but the checker finds it fits", job.name, id, v);
                    }
                    Verdict::Eligible { .. } => {
                        prop_assert!(!job.options.global, "global {} left out of fitting {}", job.name, id);
                        prop_assert!(!placed_on.is_empty(), "{} waits but {} is eligible", job.name, id);
                        prop_assert!(violates(&cluster, &placement, job, m).is_none());
                    }
                }
            }
        }
    }
}

#[test]
fn ties_go_to_the_fewest_units_then_the_rendezvous_rank() {
    let members: Vec<Member> = ["h1", "h2", "h3"]
        .iter()
        .map(|id| Member {
            id: MachineId(id.to_string()),
            metadata: Metadata::default(),
        })
        .collect();
    let jobs: Vec<Job> = (0..6)
        .map(|i| Job {
            name: format!("u{i}.service"),
            seq: i,
            options: FleetOptions::default(),
        })
        .collect();
    let placement = place(&members, &jobs, &Running::new());
    let mut load: BTreeMap<&str, usize> = BTreeMap::new();
    for m in &members {
        load.insert(m.id.as_str(), placement.units_on(&m.id).count());
    }
    assert_eq!(
        load.values().copied().collect::<Vec<_>>(),
        vec![2, 2, 2],
        "{placement:?}"
    );
}
