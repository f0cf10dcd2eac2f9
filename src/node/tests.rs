//! One node alone: commands, systemd reports, snapshots and hostile input.

use super::testing::{self, actions, member, running, start, stop, submit, Net};
use super::*;
use crate::catalog::{self, ReportEntry, ReportVersion};

/// A member alone (no peers) at `10.0.0.1`.
fn node(seed: u8) -> Node {
    let cfg = testing::config("aaaaaaaaaaaaaaaa", 1, &[], seed);
    Node::new(cfg, Millis(0))
}

const TEXT: &str = "[Service]\nExecStart=/bin/true\n";

#[test]
fn a_lone_member_installs_and_starts_a_started_unit_and_stops_it_on_stop() {
    let mut n = node(1);
    n.handle_command(Millis(10), submit("a.service", TEXT))
        .unwrap();
    assert_eq!(actions(&mut n), vec![], "submitted units are not placed");
    n.handle_command(Millis(20), start("a.service")).unwrap();
    n.handle_timeout(Millis(100));
    let unit = || "a.service".to_string();
    let want = vec![
        Action::Install {
            unit: unit(),
            text: TEXT.into(),
        },
        Action::Start { unit: unit() },
    ];
    assert_eq!(actions(&mut n), want);
    n.handle_systemd_report(Millis(150), "a.service", Some(running()));
    n.handle_command(Millis(200), stop("a.service")).unwrap();
    n.handle_timeout(Millis(300));
    assert_eq!(actions(&mut n), vec![Action::Stop { unit: unit() }]);
}

#[test]
fn commands_on_unknown_units_or_with_another_text_are_refused() {
    let mut n = node(2);
    assert_eq!(
        n.handle_command(Millis(1), start("x.service")),
        Err(CommandError::UnknownUnit("x.service".into()))
    );
    n.handle_command(Millis(2), submit("x.service", TEXT))
        .unwrap();
    n.handle_command(Millis(3), submit("x.service", TEXT))
        .unwrap();
    assert_eq!(
        n.handle_command(Millis(4), submit("x.service", "[Service]\n")),
        Err(CommandError::DifferentText("x.service".into()))
    );
}

#[test]
fn a_unit_that_does_not_parse_waits_with_the_parser_error() {
    let mut n = node(3);
    let bad = "[X-Fleet]\nNoSuchKey=1\n";
    n.handle_command(Millis(1), submit("b.service", bad))
        .unwrap();
    n.handle_command(Millis(2), start("b.service")).unwrap();
    n.handle_timeout(Millis(100));
    match n.placement().units.get("b.service") {
        Some(crate::schedule::Decision::Waiting(why)) => {
            assert!(why.contains("NoSuchKey"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(actions(&mut n), vec![]);
}

#[test]
fn a_snapshot_brings_back_the_catalog_with_the_next_boot_and_refuses_another_machine() {
    let mut n = node(4);
    n.handle_command(Millis(1), submit("a.service", TEXT))
        .unwrap();
    let destroy = Command::Destroy {
        name: "a.service".into(),
    };
    n.handle_command(Millis(2), destroy).unwrap();
    n.handle_command(Millis(3), submit("c.service", TEXT))
        .unwrap();
    let snap = n.snapshot();
    let cfg = n.cfg.clone();
    let back = Node::restore(cfg.clone(), Millis(0), &snap).expect("restores");
    assert_eq!(back.catalog().replica(), n.catalog().replica());
    assert_eq!(back.identity().boot, 1);
    assert!(back
        .catalog()
        .text(&crate::catalog::text_digest(TEXT))
        .is_some());
    let mut other = cfg.clone();
    other.machine_id = "bbbbbbbbbbbbbbbb".into();
    assert!(matches!(
        Node::restore(other, Millis(0), &snap),
        Err(SnapshotError::OtherMachine(_))
    ));
    assert!(matches!(
        Node::restore(cfg.clone(), Millis(0), &[9, 1, 2]),
        Err(SnapshotError::UnknownFormat(9))
    ));
    assert!(matches!(
        Node::restore(cfg, Millis(0), &snap[..snap.len() / 2]),
        Err(SnapshotError::Corrupt(_))
    ));
}

#[test]
fn garbage_datagrams_are_counted_and_change_nothing() {
    let mut n = node(5);
    let from = SocketAddr::from(([10, 0, 0, 9], 4700));
    let mut x = 7u64;
    for len in 0..300usize {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                (x >> 56) as u8
            })
            .collect();
        n.handle_datagram(Millis(len as u64), from, &bytes);
    }
    assert_eq!(n.drops().total(), 300);
    assert!(n.catalog().replica().units.is_empty());
    assert!(n.live_members().is_empty());
}

/// Submits `unit` (with [`TEXT`]) and asks for it to run.
fn submit_and_start(n: &mut Node, now: Millis, unit: &str) {
    n.handle_command(now, submit(unit, TEXT)).expect("submit");
    n.handle_command(now, start(unit)).expect("start");
}

/// Runs the members' timers every 10 ms from `from_ms` to `to_ms` (inclusive), with
/// every datagram delivered; the units each one started meanwhile.
fn run(net: &mut Net, from_ms: u64, to_ms: u64) -> Vec<Vec<String>> {
    for s in net.started.iter_mut() {
        s.clear();
    }
    for t in (from_ms..=to_ms).step_by(10) {
        net.at(Millis(t));
    }
    net.started.clone()
}

#[test]
fn a_member_with_peers_holds_its_starts_for_the_join_grace_when_nobody_answers() {
    let mut n = member(1, 1, &[1, 2], 0);
    assert!(n.holding_starts());
    submit_and_start(&mut n, Millis(10), "a.service");
    let mut net = Net::new(vec![n]);
    let early = run(&mut net, 30, JOIN_GRACE_MS - 10);
    assert_eq!(early, vec![Vec::<String>::new()], "no start while holding");
    let late = run(&mut net, JOIN_GRACE_MS, JOIN_GRACE_MS + 100);
    assert_eq!(late, vec![vec!["a.service".to_string()]]);
    assert!(!net.nodes[0].holding_starts());
}

#[test]
fn a_restarted_member_stops_holding_once_a_settled_member_synced_with_it() {
    // Two settled members run a.service (on one of them) ...
    let mut net = Net::new(vec![
        member(1, 1, &[1, 2, 3], 0),
        member(2, 2, &[1, 2, 3], 0),
    ]);
    submit_and_start(&mut net.nodes[0], Millis(10), "a.service");
    let first = run(&mut net, 0, JOIN_GRACE_MS + 500);
    assert_eq!(first.concat(), vec!["a.service".to_string()], "{first:?}");
    assert!(net.nodes.iter().all(|n| !n.holding_starts()));
    // ... when a third member starts with peers configured: it learns the cluster's
    // state from a settled member and stops holding well before the grace runs out.
    let t0 = JOIN_GRACE_MS + 500;
    net.add(member(3, 3, &[1, 2, 3], t0));
    let mut released_at = None;
    for t in (t0..t0 + JOIN_GRACE_MS).step_by(10) {
        let started = run(&mut net, t, t);
        assert_eq!(
            started.concat(),
            Vec::<String>::new(),
            "nothing starts twice"
        );
        if !net.nodes[2].holding_starts() {
            released_at = Some(t - t0);
            break;
        }
    }
    let released_at = released_at.expect("released before the grace ran out");
    assert!(released_at <= 1_000, "released after {released_at} ms");
    let events = &net.events[2];
    assert!(
        events
            .iter()
            .any(|e| matches!(e, NodeEvent::StartsReleased { by: Some(_) })),
        "{events:?}"
    );
    assert!(
        net.nodes[2].catalog().unit("a.service").is_some(),
        "it knows the unit"
    );
}

#[test]
fn members_starting_together_wait_out_the_grace_since_none_is_settled() {
    let mut net = Net::new(vec![member(1, 1, &[1, 2], 0), member(2, 2, &[1, 2], 0)]);
    run(&mut net, 0, JOIN_GRACE_MS - 10);
    assert!(net.nodes.iter().all(Node::holding_starts));
    run(&mut net, JOIN_GRACE_MS, JOIN_GRACE_MS + 10);
    assert!(net.nodes.iter().all(|n| !n.holding_starts()));
}

#[test]
fn a_report_from_an_earlier_life_of_this_member_is_overruled_with_what_runs_here() {
    let mut n = node(7);
    n.handle_systemd_report(Millis(10), "w.service", None);
    // Another member gossips a report about us, written by an earlier life that reused
    // our boot number: it claims w.service runs here, with a higher version.
    let stale = WireEntry::Report {
        member: "aaaaaaaaaaaaaaaa".into(),
        unit: "w.service".into(),
        entry: ReportEntry {
            version: ReportVersion {
                boot: n.boot,
                counter: 1_000,
            },
            status: Some(running()),
        },
    };
    let before = n.boot;
    n.handle_catalog(
        SocketAddr::from(([10, 0, 0, 2], 4700)),
        Msg::Entries(vec![stale]),
    );
    let key = ("aaaaaaaaaaaaaaaa".to_string(), "w.service".to_string());
    let now = &n.catalog.replica().reports[&key];
    assert!(n.boot > before, "moved to a boot above the earlier life's");
    assert_eq!(now.version.boot, n.boot);
    assert_eq!(
        now.status, None,
        "says again that w.service does not run here"
    );
}

#[test]
fn a_death_reaches_every_member_at_once_not_after_rounds_of_gossip() {
    let hosts: Vec<u8> = (1..=8).collect();
    let mut net = Net::new(hosts.iter().map(|h| member(*h, *h, &hosts, 0)).collect());
    run(&mut net, 0, 5_000);
    assert!(
        net.nodes.iter().all(|n| n.live_members().len() == 7),
        "all met"
    );
    let dead = net.remove(7).identity().clone();
    let sees_dead = |n: &Node| n.live_members().contains(&dead);
    let mut first = None;
    for t in (5_010..15_000).step_by(10) {
        run(&mut net, t, t);
        let knowing = net.nodes.iter().filter(|n| !sees_dead(n)).count();
        if knowing > 0 && first.is_none() {
            first = Some(t);
        }
        if knowing == net.nodes.len() {
            let first = first.unwrap_or(t);
            assert!(
                t - first <= 10,
                "the last member learnt it {} ms after the first",
                t - first
            );
            return;
        }
    }
    panic!("the death never reached everyone");
}

thread_local! {
    static PARSES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn counting_parse(name: &str, text: &str) -> Result<crate::unit::FleetOptions, String> {
    PARSES.with(|p| p.set(p.get() + 1));
    parse_fleet_options(name, text)
}

#[test]
fn a_reconcile_of_ten_thousand_unchanged_units_parses_no_text() {
    let mut cfg = testing::config("aaaaaaaaaaaaaaaa", 1, &[], 9);
    cfg.parse = counting_parse;
    let mut n = Node::new(cfg, Millis(0));
    let parses = || PARSES.with(std::cell::Cell::get);
    for u in 0..catalog::MAX_UNITS {
        let name = format!("u{u}@{}.service", u % 10);
        let text = format!("[X-Fleet]\nConflicts=u{u}@*.service\n");
        n.handle_command(
            Millis(10),
            Command::Submit {
                name: name.clone(),
                text,
            },
        )
        .expect("submit");
        n.handle_command(Millis(10), Command::Start { name })
            .expect("start");
    }
    let p0 = parses();
    n.handle_timeout(Millis(100));
    assert_eq!(parses() - p0, catalog::MAX_UNITS, "each text parsed once");
    assert_eq!(n.placement().units.len(), catalog::MAX_UNITS);
    let placed = n.placement().clone();
    let p1 = parses();
    // A report makes the member reconcile everything again.
    n.handle_systemd_report(Millis(200), "other.service", None);
    n.handle_timeout(Millis(300));
    assert_eq!(parses() - p1, 0, "nothing changed: nothing parsed");
    assert_eq!(n.placement(), &placed);
    // A unit that leaves placement is forgotten, and parsed again when it comes back.
    let name = || "u1@1.service".to_string();
    n.handle_command(Millis(400), Command::Unload { name: name() })
        .expect("unload");
    n.handle_timeout(Millis(500));
    assert_eq!(n.parsed.len(), catalog::MAX_UNITS - 1);
    n.handle_command(Millis(600), start(&name()))
        .expect("start");
    n.handle_timeout(Millis(700));
    assert_eq!(parses() - p1, 1);
    assert_eq!(n.parsed.len(), catalog::MAX_UNITS);
}

/// One datagram body of every kind, as postcard bytes: the wire format. Splitting the
/// node into sub-protocols must not change a byte of these.
fn every_packet() -> Vec<Packet> {
    let id = Identity {
        machine: "m1".into(),
        addr: SocketAddr::from(([10, 0, 0, 1], 4700)),
        boot: 3,
        metadata: "disk=ssd".into(),
    };
    let report = WireEntry::Report {
        member: "m1".into(),
        unit: "a.service".into(),
        entry: ReportEntry {
            version: ReportVersion {
                boot: 3,
                counter: 7,
            },
            status: Some(running()),
        },
    };
    vec![
        Packet::Swim(vec![1, 2, 3]),
        Packet::Catalog(Msg::Entries(vec![report])),
        Packet::Catalog(Msg::Summary {
            buckets: vec![1, 300],
            reply: true,
        }),
        Packet::Catalog(Msg::WantText([7; 16])),
        Packet::Down(vec![foca::Member::down(id.clone())]),
        Packet::Remote(RemoteMsg::Ask {
            id: 9,
            query: Query::Status {
                unit: "a.service".into(),
            },
        }),
        Packet::Remote(RemoteMsg::Part {
            id: 9,
            index: 0,
            count: 1,
            code: -1,
            data: "x".into(),
        }),
        Packet::Remote(RemoteMsg::Working { id: 9 }),
        Packet::Joining(vec![5]),
        Packet::Settled(vec![6]),
        Packet::MemberSummary {
            buckets: vec![2],
            reply: false,
        },
        Packet::Alive(vec![foca::Member::alive(id)]),
    ]
}

#[test]
fn every_packet_kind_keeps_its_wire_bytes() {
    let got: Vec<String> = every_packet()
        .iter()
        .map(|p| {
            let bytes = postcard::to_allocvec(p).expect("encodes");
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        })
        .collect();
    let want = [
        "0003010203",
        "01000101026d3109612e73657276696365030701066163746976650772756e6e696e67",
        "01010201ac0201",
        "010207070707070707070707070707070707",
        "0201026d31000a000001dc2403086469736b3d7373640002",
        "0300090009612e73657276696365",
        "0301090001010178",
        "030209",
        "040105",
        "050106",
        "06010200",
        "0701026d31000a000001dc2403086469736b3d7373640000",
    ];
    assert_eq!(got, want);
}
