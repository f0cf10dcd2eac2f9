//! Deltas applied to a model of the snapshot give the node's own snapshot, byte for byte.

use super::*;
use crate::node::testing::{self, running, status, submit, TEXT};
use crate::node::Command;

/// One step of a scenario: commands and systemd reports at a time (ms).
type Step = (
    u64,
    Vec<Command>,
    Vec<(&'static str, Option<catalog::Status>)>,
);

fn scenario() -> Vec<Step> {
    let name = |n: &str| n.to_string();
    vec![
        (
            0,
            vec![
                submit("a.service", TEXT),
                submit("b.service", "[Service]\nExecStart=/bin/sleep 1\n"),
                submit("c.service", "[Service]\nExecStart=/bin/sleep 2\n"),
                Command::Start {
                    name: name("a.service"),
                },
                Command::Start {
                    name: name("b.service"),
                },
            ],
            vec![],
        ),
        (
            1_000,
            vec![],
            vec![
                ("a.service", Some(running())),
                ("b.service", Some(running())),
            ],
        ),
        (
            2_000,
            vec![
                Command::Destroy {
                    name: name("c.service"),
                },
                Command::Stop {
                    name: name("b.service"),
                },
            ],
            vec![],
        ),
        (
            3_000,
            vec![],
            vec![("b.service", Some(status("inactive", "dead")))],
        ),
        (
            5_000,
            vec![Command::Destroy {
                name: name("b.service"),
            }],
            vec![],
        ),
        (6_000, vec![], vec![("b.service", None)]),
        // The tombstones expire (ttl 10 s): records and texts go.
        (20_000, vec![], vec![]),
        (21_000, vec![submit("d.service", TEXT)], vec![]),
    ]
}

fn node() -> Node {
    let mut cfg = testing::config("m1", 1, &[], 1);
    cfg.tombstone_ttl_ms = 10_000;
    Node::new(cfg, Millis(0))
}

#[test]
fn deltas_bring_a_model_to_the_nodes_own_snapshot_byte_for_byte() {
    let mut n = node();
    n.track_changes();
    let mut model = SnapshotModel::decode(&n.snapshot(), n.snapshot_time()).unwrap();
    assert_eq!(model.encode(), n.snapshot());
    let (mut deltas, mut installs) = (0, 0);
    for (t, commands, reports) in scenario() {
        let now = Millis(t);
        n.handle_timeout(now);
        for c in commands {
            n.handle_command(now, c).unwrap();
        }
        for (unit, s) in reports {
            n.handle_systemd_report(now, unit, s);
        }
        while let Some(a) = n.poll_action() {
            installs += usize::from(matches!(a, crate::node::Action::Install { .. }));
        }
        if let Some(d) = n.take_delta() {
            deltas += 1;
            model.apply(&d).unwrap();
            assert_eq!(model.encode(), n.snapshot(), "at {t} ms");
        }
        assert!(n.take_delta().is_none(), "a second take at {t} ms is empty");
    }
    assert!(deltas >= 6, "{deltas}");
    assert!(
        installs >= 2,
        "installed units are part of the scenario: {installs}"
    );
    assert_eq!(model.units(), 2, "b and c expired; a and d remain");
}

#[test]
fn no_change_is_tracked_until_asked_and_a_bad_delta_changes_nothing() {
    let mut n = node();
    n.handle_command(Millis(0), submit("a.service", TEXT))
        .unwrap();
    assert!(!n.has_changes());
    assert!(n.take_delta().is_none());
    n.track_changes();
    let mut model = SnapshotModel::decode(&n.snapshot(), n.snapshot_time()).unwrap();
    let before = model.clone();
    assert!(model.apply(&[DELTA_FORMAT, 0xff]).is_err());
    assert!(model.apply(&[9]).is_err());
    assert!(model.apply(&[]).is_err());
    assert_eq!(model, before);
}
