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
