//! One node alone: commands, systemd reports, snapshots and hostile input.

use super::testing::{self, actions, running, start, stop, submit, TEXT};
use super::*;

/// A member alone (no peers) at `10.0.0.1`.
fn node(seed: u8) -> Node {
    let cfg = testing::config("aaaaaaaaaaaaaaaa", 1, &[], seed);
    Node::new(cfg, Millis(0))
}

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

/// `n` units `u0.service`... submitted then started, as one batch would carry them.
fn submits_then_starts(n: usize) -> Vec<Command> {
    let names: Vec<String> = (0..n).map(|i| format!("u{i}.service")).collect();
    let mut cmds: Vec<Command> = names.iter().map(|u| submit(u, TEXT)).collect();
    cmds.extend(names.iter().map(|u| start(u)));
    cmds
}

#[test]
fn a_batch_is_one_input_one_reconcile_and_stops_at_its_first_refusal() {
    let mut n = node(3);
    // Past the join grace, so the batch's own reconcile may start units.
    n.handle_timeout(Millis(60_000));
    assert_eq!(actions(&mut n), vec![]);
    let (applied, result) = n.handle_commands(Millis(60_010), submits_then_starts(20));
    assert_eq!((applied, result), (40, Ok(())));
    // The one reconcile after the batch already decided for all twenty units.
    let got = actions(&mut n);
    let starts = got
        .iter()
        .filter(|a| matches!(a, Action::Start { .. }))
        .count();
    let installs = got
        .iter()
        .filter(|a| matches!(a, Action::Install { .. }))
        .count();
    assert_eq!((installs, starts), (20, 20), "{got:?}");

    // A refusal stops the batch there: the step before it applied, the one after untried.
    let cmds = vec![
        stop("u0.service"),
        start("nope.service"),
        stop("u1.service"),
    ];
    let (applied, result) = n.handle_commands(Millis(60_020), cmds);
    assert_eq!(applied, 1);
    assert_eq!(
        result,
        Err(CommandError::UnknownUnit("nope.service".into()))
    );
    let target = |u: &str| match n.catalog().unit(u).map(|e| &e.state) {
        Some(crate::catalog::Desired::Live { target, .. }) => Some(*target),
        _ => None,
    };
    assert_eq!(target("u0.service"), Some(crate::catalog::Target::Loaded));
    assert_eq!(target("u1.service"), Some(crate::catalog::Target::Launched));
}

#[test]
fn a_batch_flushes_its_rumours_once_not_once_per_unit() {
    let sent = |batch: bool| {
        let mut net = testing::Net::new(vec![
            testing::member(4, 1, &[2], 0),
            testing::member(5, 2, &[1], 0),
        ]);
        net.join(10);
        let now = net.now;
        let node = &mut net.nodes[0];
        while node.poll_transmit().is_some() {}
        if batch {
            node.handle_commands(now, submits_then_starts(20))
                .1
                .unwrap();
        } else {
            for c in submits_then_starts(20) {
                node.handle_command(now, c).unwrap();
            }
        }
        std::iter::from_fn(|| node.poll_transmit()).count()
    };
    let (one_by_one, batched) = (sent(false), sent(true));
    assert!(one_by_one >= 40, "{one_by_one}");
    assert!(batched <= 4, "one flush packs the forty rumours: {batched}");
}

#[test]
fn one_poll_of_systemd_states_is_gossiped_packed_not_one_flush_per_unit() {
    let units: Vec<String> = (0..40).map(|i| format!("r{i}.service")).collect();
    let sent = |batch: bool| {
        let mut net = testing::Net::new(vec![
            testing::member(4, 1, &[2], 0),
            testing::member(5, 2, &[1], 0),
        ]);
        net.join(10);
        let now = net.now;
        let node = &mut net.nodes[0];
        while node.poll_transmit().is_some() {}
        if batch {
            node.handle_systemd_reports(now, units.iter().map(|u| (u.as_str(), Some(running()))));
        } else {
            for u in &units {
                node.handle_systemd_report(now, u, Some(running()));
            }
        }
        let sent = std::iter::from_fn(|| net.nodes[0].poll_transmit()).count();
        (sent, net)
    };
    let (one_by_one, _) = sent(false);
    let (batched, mut net) = sent(true);
    assert!(one_by_one >= 40, "{one_by_one}");
    assert!(batched <= 4, "one flush packs the forty reports: {batched}");
    // Packed or not, the other member learns every state (anti-entropy included).
    let t = net.now.plus(3_000);
    net.at(t);
    let me = net.nodes[0].machine_id().to_string();
    let known = net.nodes[1].catalog().replica().reports.clone();
    for u in &units {
        assert!(known.contains_key(&(me.clone(), u.clone())), "{u} unknown");
    }
}

/// What kind of packet `bytes` is (test members share one key).
fn kind(bytes: &[u8]) -> &'static str {
    let mut drops = crate::wire::DropCounters::default();
    match crate::wire::decode::<packet::Packet>(&testing::key(), bytes, &mut drops) {
        Some(packet::Packet::Swim(_)) => "swim",
        Some(packet::Packet::Catalog(_)) => "catalog",
        Some(_) => "other",
        None => "undecodable",
    }
}

#[test]
fn a_probe_behind_a_burst_of_catalog_records_is_answered_first() {
    let mut net = testing::Net::new(vec![
        testing::member(4, 1, &[2], 0),
        testing::member(5, 2, &[1], 0),
    ]);
    net.join(10);
    for n in net.nodes.iter_mut() {
        while n.poll_transmit().is_some() {}
    }
    let b_addr = net.nodes[1].identity().addr;
    // B's burst: forty new units, as rumours to A.
    let now = net.now;
    net.nodes[1]
        .handle_commands(now, submits_then_starts(40))
        .1
        .unwrap();
    let mut burst: Vec<Vec<u8>> = std::iter::from_fn(|| net.nodes[1].poll_transmit())
        .map(|(_, b)| b)
        .filter(|b| kind(b) == "catalog")
        .collect();
    assert!(!burst.is_empty());
    // Then a second of B's membership traffic to A: its probes among it.
    let mut t = now;
    while t.0 < now.0 + 1_000 {
        t = t.plus(10);
        net.nodes[1].handle_timeout(t);
        burst.extend(
            std::iter::from_fn(|| net.nodes[1].poll_transmit())
                .map(|(_, b)| b)
                .filter(|b| kind(b) == "swim"),
        );
    }
    let a = &mut net.nodes[0];
    a.handle_datagrams(t, burst.iter().map(|b| (b_addr, b.as_slice())));
    let out: Vec<_> = std::iter::from_fn(|| a.poll_transmit()).collect();
    assert!(
        out.len() > 1,
        "the burst caused traffic of its own: {}",
        out.len()
    );
    assert_eq!(kind(&out[0].1), "swim", "the ack leaves first");
    assert_eq!(out[0].0, b_addr);
}

#[test]
fn a_member_running_late_gives_a_silent_peer_longer_before_declaring_it_down() {
    // How long after B falls silent A declares it down; before that, A's timers run
    // `late_turns` times half a second late.
    let detection_ms = |late_turns: u64| {
        let mut net = testing::Net::new(vec![
            testing::member(4, 1, &[2], 0),
            testing::member(5, 2, &[1], 0),
        ]);
        net.join(10);
        for _ in 0..late_turns {
            let due = net.nodes[0].poll_timeout().expect("a timer");
            net.at(due.plus(500));
        }
        net.remove(1);
        let silent_at = net.now;
        net.run_until(60_000, 10, |n| n.nodes[0].live_members().is_empty());
        net.now.since(silent_at)
    };
    let on_time = detection_ms(0);
    let late = detection_ms(4);
    assert!(on_time < 2_000, "healthy detection unchanged: {on_time} ms");
    assert!(
        late >= on_time + 1_500,
        "on time {on_time} ms, running late {late} ms"
    );
}
