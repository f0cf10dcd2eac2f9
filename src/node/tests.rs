//! One node alone: commands, systemd reports, snapshots and hostile input.

use super::*;
use crate::catalog::{self, ReportEntry, ReportVersion};
use crate::wire::{Key, KeyRing};

fn node(seed: u8) -> Node {
    let keys = KeyRing::new(Key::from_bytes([1; 32]), vec![]).expect("ring");
    let addr = SocketAddr::from(([10, 0, 0, 1], 4700));
    Node::new(
        NodeConfig::new("aaaaaaaaaaaaaaaa", addr, keys, [seed; 32]),
        Millis(0),
    )
}

fn actions(n: &mut Node) -> Vec<Action> {
    std::iter::from_fn(|| n.poll_action()).collect()
}

const TEXT: &str = "[Service]\nExecStart=/bin/true\n";

#[test]
fn a_lone_member_installs_and_starts_a_started_unit_and_stops_it_on_stop() {
    let mut n = node(1);
    n.handle_command(
        Millis(10),
        Command::Submit {
            name: "a.service".into(),
            text: TEXT.into(),
        },
    )
    .unwrap();
    assert_eq!(actions(&mut n), vec![], "submitted units are not placed");
    n.handle_command(
        Millis(20),
        Command::Start {
            name: "a.service".into(),
        },
    )
    .unwrap();
    n.handle_timeout(Millis(100));
    assert_eq!(
        actions(&mut n),
        vec![
            Action::Install {
                unit: "a.service".into(),
                text: TEXT.into()
            },
            Action::Start {
                unit: "a.service".into()
            }
        ]
    );
    let active = Status {
        active: "active".into(),
        sub: "running".into(),
    };
    n.handle_systemd_report(Millis(150), "a.service", Some(active));
    n.handle_command(
        Millis(200),
        Command::Stop {
            name: "a.service".into(),
        },
    )
    .unwrap();
    n.handle_timeout(Millis(300));
    assert_eq!(
        actions(&mut n),
        vec![Action::Stop {
            unit: "a.service".into()
        }]
    );
}

#[test]
fn commands_on_unknown_units_or_with_another_text_are_refused() {
    let mut n = node(2);
    assert_eq!(
        n.handle_command(
            Millis(1),
            Command::Start {
                name: "x.service".into()
            }
        ),
        Err(CommandError::UnknownUnit("x.service".into()))
    );
    n.handle_command(
        Millis(2),
        Command::Submit {
            name: "x.service".into(),
            text: TEXT.into(),
        },
    )
    .unwrap();
    n.handle_command(
        Millis(3),
        Command::Submit {
            name: "x.service".into(),
            text: TEXT.into(),
        },
    )
    .unwrap();
    let other = Command::Submit {
        name: "x.service".into(),
        text: "[Service]\n".into(),
    };
    assert_eq!(
        n.handle_command(Millis(4), other),
        Err(CommandError::DifferentText("x.service".into()))
    );
}

#[test]
fn a_unit_that_does_not_parse_waits_with_the_parser_error() {
    let mut n = node(3);
    let bad = "[X-Fleet]\nNoSuchKey=1\n";
    n.handle_command(
        Millis(1),
        Command::Submit {
            name: "b.service".into(),
            text: bad.into(),
        },
    )
    .unwrap();
    n.handle_command(
        Millis(2),
        Command::Start {
            name: "b.service".into(),
        },
    )
    .unwrap();
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
    n.handle_command(
        Millis(1),
        Command::Submit {
            name: "a.service".into(),
            text: TEXT.into(),
        },
    )
    .unwrap();
    n.handle_command(
        Millis(2),
        Command::Destroy {
            name: "a.service".into(),
        },
    )
    .unwrap();
    n.handle_command(
        Millis(3),
        Command::Submit {
            name: "c.service".into(),
            text: TEXT.into(),
        },
    )
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

fn member(seed: u8, host: u8, peers: &[u8], now: u64) -> Node {
    let keys = KeyRing::new(Key::from_bytes([1; 32]), vec![]).expect("ring");
    let addr = |h: u8| SocketAddr::from(([10, 0, 0, h], 4700));
    let mut cfg = NodeConfig::new(&format!("{:016x}", host), addr(host), keys, [seed; 32]);
    cfg.peers = peers.iter().map(|h| addr(*h)).collect();
    Node::new(cfg, Millis(now))
}

/// Submits `unit` (with [`TEXT`]) and asks for it to run.
fn submit_and_start(n: &mut Node, now: Millis, unit: &str) {
    let submit = Command::Submit {
        name: unit.into(),
        text: TEXT.into(),
    };
    n.handle_command(now, submit).expect("submit");
    let start = Command::Start { name: unit.into() };
    n.handle_command(now, start).expect("start");
}

/// Delivers every queued datagram between `nodes` (lossless, instant) at `now`, and
/// feeds each node's starts back as "running"; returns the units each one started.
fn exchange(nodes: &mut [Node], now: Millis) -> Vec<Vec<String>> {
    let mut started = vec![Vec::new(); nodes.len()];
    for _ in 0..20 {
        let mut moved = false;
        for i in 0..nodes.len() {
            while let Some((to, bytes)) = nodes[i].poll_transmit() {
                let from = nodes[i].cfg.addr;
                if let Some(j) = nodes.iter().position(|n| n.cfg.addr == to) {
                    nodes[j].handle_datagram(now, from, &bytes);
                    moved = true;
                }
            }
            while let Some(a) = nodes[i].poll_action() {
                if let Action::Start { unit } = a {
                    started[i].push(unit.clone());
                    let running = Status {
                        active: "active".into(),
                        sub: "running".into(),
                    };
                    nodes[i].handle_systemd_report(now, &unit, Some(running));
                    moved = true;
                }
            }
        }
        if !moved {
            break;
        }
    }
    started
}

fn run(nodes: &mut [Node], from_ms: u64, to_ms: u64) -> Vec<Vec<String>> {
    let mut started = vec![Vec::new(); nodes.len()];
    for t in (from_ms..=to_ms).step_by(10) {
        for n in nodes.iter_mut() {
            n.handle_timeout(Millis(t));
        }
        for (all, now) in started.iter_mut().zip(exchange(nodes, Millis(t))) {
            all.extend(now);
        }
    }
    started
}

#[test]
fn a_member_with_peers_holds_its_starts_for_the_join_grace_when_nobody_answers() {
    let mut n = member(1, 1, &[1, 2], 0);
    assert!(n.holding_starts());
    submit_and_start(&mut n, Millis(10), "a.service");
    let early = run(std::slice::from_mut(&mut n), 30, JOIN_GRACE_MS - 10);
    assert_eq!(early, vec![Vec::<String>::new()], "no start while holding");
    let late = run(
        std::slice::from_mut(&mut n),
        JOIN_GRACE_MS,
        JOIN_GRACE_MS + 100,
    );
    assert_eq!(late, vec![vec!["a.service".to_string()]]);
    assert!(!n.holding_starts());
}

#[test]
fn a_restarted_member_stops_holding_once_a_settled_member_synced_with_it() {
    // Two settled members run a.service (on one of them) ...
    let mut nodes = vec![member(1, 1, &[1, 2, 3], 0), member(2, 2, &[1, 2, 3], 0)];
    submit_and_start(&mut nodes[0], Millis(10), "a.service");
    let first = run(&mut nodes, 0, JOIN_GRACE_MS + 500);
    assert_eq!(first.concat(), vec!["a.service".to_string()], "{first:?}");
    assert!(nodes.iter().all(|n| !n.holding_starts()));
    // ... when a third member starts with peers configured: it learns the cluster's
    // state from a settled member and stops holding well before the grace runs out.
    let t0 = JOIN_GRACE_MS + 500;
    let third = member(3, 3, &[1, 2, 3], t0);
    nodes.push(third);
    let mut released_at = None;
    for t in (t0..t0 + JOIN_GRACE_MS).step_by(10) {
        for n in nodes.iter_mut() {
            n.handle_timeout(Millis(t));
        }
        let started = exchange(&mut nodes, Millis(t));
        assert_eq!(
            started.concat(),
            Vec::<String>::new(),
            "nothing starts twice"
        );
        if !nodes[2].holding_starts() {
            released_at = Some(t - t0);
            break;
        }
    }
    let released_at = released_at.expect("released before the grace ran out");
    assert!(released_at <= 1_000, "released after {released_at} ms");
    let events: Vec<NodeEvent> = std::iter::from_fn(|| nodes[2].poll_event()).collect();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, NodeEvent::StartsReleased { by: Some(_) })),
        "{events:?}"
    );
    assert!(
        nodes[2].catalog().unit("a.service").is_some(),
        "it knows the unit"
    );
}

#[test]
fn members_starting_together_wait_out_the_grace_since_none_is_settled() {
    let mut nodes = vec![member(1, 1, &[1, 2], 0), member(2, 2, &[1, 2], 0)];
    run(&mut nodes, 0, JOIN_GRACE_MS - 10);
    assert!(nodes.iter().all(Node::holding_starts));
    run(&mut nodes, JOIN_GRACE_MS, JOIN_GRACE_MS + 10);
    assert!(nodes.iter().all(|n| !n.holding_starts()));
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
            status: Some(Status {
                active: "active".into(),
                sub: "running".into(),
            }),
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
    let mut nodes: Vec<Node> = hosts.iter().map(|h| member(*h, *h, &hosts, 0)).collect();
    run(&mut nodes, 0, 5_000);
    assert!(nodes.iter().all(|n| n.live_members().len() == 7), "all met");
    let dead = nodes.pop().expect("eight").identity().clone();
    let sees_dead = |n: &Node| n.live_members().contains(&dead);
    let mut first = None;
    for t in (5_010..15_000).step_by(10) {
        for n in nodes.iter_mut() {
            n.handle_timeout(Millis(t));
        }
        exchange(&mut nodes, Millis(t));
        let knowing = nodes.iter().filter(|n| !sees_dead(n)).count();
        if knowing > 0 && first.is_none() {
            first = Some(t);
        }
        if knowing == nodes.len() {
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
    let keys = KeyRing::new(Key::from_bytes([1; 32]), vec![]).expect("ring");
    let addr = SocketAddr::from(([10, 0, 0, 1], 4700));
    let mut cfg = NodeConfig::new("aaaaaaaaaaaaaaaa", addr, keys, [9; 32]);
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
    n.handle_command(Millis(600), Command::Start { name: name() })
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
            status: Some(Status {
                active: "active".into(),
                sub: "running".into(),
            }),
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
