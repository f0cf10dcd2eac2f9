//! The start hold between members: held for the grace, released by a settled member.

use crate::node::testing::{member, submit_and_start, Net};
use crate::node::{Node, NodeEvent, JOIN_GRACE_MS};
use crate::time::Millis;

#[test]
fn a_member_with_peers_holds_its_starts_for_the_join_grace_when_nobody_answers() {
    let mut n = member(1, 1, &[1, 2], 0);
    assert!(n.holding_starts());
    submit_and_start(&mut n, Millis(10), "a.service");
    let mut net = Net::new(vec![n]);
    let early = net.span(30, JOIN_GRACE_MS - 10);
    assert_eq!(early, vec![Vec::<String>::new()], "no start while holding");
    let late = net.span(JOIN_GRACE_MS, JOIN_GRACE_MS + 100);
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
    let first = net.span(0, JOIN_GRACE_MS + 500);
    assert_eq!(first.concat(), vec!["a.service".to_string()], "{first:?}");
    assert!(net.nodes.iter().all(|n| !n.holding_starts()));
    // ... when a third member starts with peers configured: it learns the cluster's
    // state from a settled member and stops holding well before the grace runs out.
    let t0 = JOIN_GRACE_MS + 500;
    net.add(member(3, 3, &[1, 2, 3], t0));
    let mut released_at = None;
    for t in (t0..t0 + JOIN_GRACE_MS).step_by(10) {
        let started = net.span(t, t);
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
    net.span(0, JOIN_GRACE_MS - 10);
    assert!(net.nodes.iter().all(Node::holding_starts));
    net.span(JOIN_GRACE_MS, JOIN_GRACE_MS + 10);
    assert!(net.nodes.iter().all(|n| !n.holding_starts()));
}
