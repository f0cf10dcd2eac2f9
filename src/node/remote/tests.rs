//! Remote questions between two members: loss, repeats, silence, slow answers.

use super::*;
use crate::node::testing::{self, Net};
use crate::node::{Node, NodeEvent};

fn node(i: u8) -> Node {
    Node::new(testing::config(&format!("m{i}"), i, &[1, 2], i), Millis(0))
}

/// Two members, stepped 50 ms at a time until member 0 sees member 1.
fn two() -> Net {
    let mut net = Net::new(vec![node(1), node(2)]);
    net.run_until(20_000, 50, |n| !n.nodes[0].live_members().is_empty());
    net
}

#[test]
fn a_question_goes_to_the_member_and_its_long_answer_comes_back_whole() {
    let mut net = two();
    let (now, nodes) = (net.now, &mut net.nodes);
    let query = Query::Journal {
        unit: "web.service".into(),
        lines: 50,
    };
    let id = nodes[0].ask_remote(now, "m2", query.clone()).unwrap();
    let (a, b) = nodes.split_at_mut(1);
    let (to, bytes) = a[0].poll_transmit().unwrap();
    b[0].handle_datagram(now, a[0].identity().addr, &bytes);
    assert_eq!(to, b[0].identity().addr);
    let Some(RemoteEvent::Asked {
        from,
        id: asked,
        query: q,
    }) = b[0].poll_remote()
    else {
        panic!("no question arrived");
    };
    assert_eq!((asked, &q), (id, &query));
    let long: String = "línea del journal\n".repeat(4000);
    b[0].answer_remote(now, from, asked, 3, &long);
    while let Some((_, bytes)) = b[0].poll_transmit() {
        a[0].handle_datagram(now, b[0].identity().addr, &bytes);
    }
    let Some(RemoteEvent::Answered {
        id: got,
        code,
        text,
    }) = a[0].poll_remote()
    else {
        panic!("no answer");
    };
    assert_eq!((got, code), (id, 3));
    assert!(text.len() <= MAX_OUTPUT_BYTES && text.ends_with("[output cut by shoal]\n"));
    assert!(long.starts_with(&text[..1000]));
}

#[test]
fn questions_to_unknown_members_or_about_bad_names_are_refused_and_silence_times_out() {
    let mut net = two();
    let (now, nodes) = (net.now, &mut net.nodes);
    let bad = Query::Status {
        unit: "../etc/passwd".into(),
    };
    assert!(nodes[0].ask_remote(now, "m2", bad).is_err());
    let ok = Query::Status {
        unit: "a.service".into(),
    };
    assert!(nodes[0].ask_remote(now, "m9", ok.clone()).is_err());
    let id = nodes[0].ask_remote(now, "m2", ok).unwrap();
    while nodes[0].poll_transmit().is_some() {}
    nodes[0].handle_timeout(now.plus(ASK_TIMEOUT_MS + 1_000));
    let mut timed_out = false;
    while let Some(e) = nodes[0].poll_remote() {
        timed_out |= e == RemoteEvent::TimedOut { id };
    }
    assert!(timed_out);
    let _ = NodeEvent::Left;
}

/// Two joined members; member 0 asks, member 1 answers.
struct Pair {
    net: Net,
}

impl Pair {
    fn new() -> Pair {
        let mut net = Net::new(vec![node(1), node(2)]);
        net.run_until(20_000, 50, |n| {
            n.nodes.iter().all(|m| !m.live_members().is_empty())
        });
        for r in net.remote.iter_mut() {
            r.clear();
        }
        Pair { net }
    }

    fn flush(&mut self, lose: &mut dyn FnMut(usize) -> bool) {
        self.net.flush_losing(lose);
    }

    fn run(&mut self, ms: u64, lose: &mut dyn FnMut(usize) -> bool) {
        self.net.run_losing(ms, 50, lose);
    }

    fn ask(&mut self, query: Query) -> u64 {
        let now = self.net.now;
        self.net.nodes[0].ask_remote(now, "m2", query).unwrap()
    }

    fn questions(&self) -> Vec<(SocketAddr, u64, Query)> {
        self.net.remote[1]
            .iter()
            .filter_map(|e| match e {
                RemoteEvent::Asked { from, id, query } => Some((*from, *id, query.clone())),
                _ => None,
            })
            .collect()
    }

    fn answers(&self) -> Vec<RemoteEvent> {
        self.net.remote[0].clone()
    }
}

fn status(unit: &str) -> Query {
    Query::Status { unit: unit.into() }
}

#[test]
fn a_lost_question_is_sent_again_and_answered_once() {
    let mut p = Pair::new();
    let id = p.ask(status("a.service"));
    // The question is lost.
    let mut sent = 0;
    p.flush(&mut |i| {
        sent += usize::from(i == 0);
        i == 0
    });
    assert_eq!(sent, 1);
    assert!(p.questions().is_empty());
    p.run(RESEND_MS, &mut |_| false);
    let qs = p.questions();
    assert_eq!(qs.len(), 1, "{qs:?}");
    assert_eq!(qs[0].1, id);
    let now = p.net.now;
    p.net.nodes[1].answer_remote(now, qs[0].0, id, 0, "active\n");
    p.flush(&mut |_| false);
    p.run(5 * RESEND_MS, &mut |_| false);
    assert_eq!(
        p.answers(),
        vec![RemoteEvent::Answered {
            id,
            code: 0,
            text: "active\n".into()
        }]
    );
    assert_eq!(p.questions().len(), 1, "the query ran once");
}

#[test]
fn a_lost_answer_is_sent_again_from_memory_and_delivered_once() {
    let mut p = Pair::new();
    let query = Query::Journal {
        unit: "web.service".into(),
        lines: 300,
    };
    let id = p.ask(query);
    p.flush(&mut |_| false);
    let (from, asked, _) = p.questions()[0].clone();
    let text: String = (0..300).map(|i| format!("line {i:03}\n")).collect();
    assert!(text.len() > 2 * PART_BYTES);
    let now = p.net.now;
    p.net.nodes[1].answer_remote(now, from, asked, 0, &text);
    // One of its parts is lost.
    let mut k = 0;
    p.flush(&mut |i| {
        k += usize::from(i == 1);
        i == 1 && k == 1
    });
    assert!(p.answers().is_empty());
    // Two repeats reach the member before any answer comes back: both are answered
    // from memory, and the asker takes the first whole answer only.
    for _ in 0..2 {
        let now = p.net.now.plus(RESEND_MS);
        p.net.now = now;
        p.net.nodes[0].handle_timeout(now);
        let from = p.net.nodes[0].identity().addr;
        while let Some((_, bytes)) = p.net.nodes[0].poll_transmit() {
            p.net.nodes[1].handle_datagram(now, from, &bytes);
        }
    }
    p.flush(&mut |_| false);
    p.run(5 * RESEND_MS, &mut |_| false);
    assert_eq!(
        p.answers(),
        vec![RemoteEvent::Answered { id, code: 0, text }]
    );
    assert_eq!(p.questions().len(), 1, "the query ran once");
}

#[test]
fn a_slow_answer_is_waited_for_while_the_member_says_it_works() {
    let mut p = Pair::new();
    let id = p.ask(status("slow.service"));
    p.run(6_000, &mut |_| false);
    assert!(p.answers().is_empty(), "{:?}", p.answers());
    let qs = p.questions();
    assert_eq!(qs.len(), 1);
    let now = p.net.now;
    p.net.nodes[1].answer_remote(now, qs[0].0, id, 3, "inactive\n");
    p.run(RESEND_MS, &mut |_| false);
    assert_eq!(
        p.answers(),
        vec![RemoteEvent::Answered {
            id,
            code: 3,
            text: "inactive\n".into()
        }]
    );
}

#[test]
fn a_silent_member_is_given_up_after_a_few_tries_not_the_whole_timeout() {
    let mut p = Pair::new();
    let start = p.net.now;
    let id = p.ask(status("a.service"));
    let mut tries = 0;
    let mut timed_out_at = None;
    while timed_out_at.is_none() && p.net.now.since(start) < ASK_TIMEOUT_MS {
        // Everything from the asker is lost.
        p.run(50, &mut |i| {
            tries += usize::from(i == 0);
            i == 0
        });
        if p.answers().contains(&RemoteEvent::TimedOut { id }) {
            timed_out_at = Some(p.net.now.since(start));
        }
    }
    let t = timed_out_at.expect("gave up");
    assert!((SILENCE_MS..SILENCE_MS + 100).contains(&t), "after {t} ms");
    // Gossip goes out too; at least the question went out several times.
    assert!(tries >= (SILENCE_MS / RESEND_MS) as usize, "{tries}");
    assert_eq!(p.answers().len(), 1);
}

#[test]
fn a_restarted_asker_does_not_reuse_ids() {
    let a = Remote::new(&[1; 32]);
    let b = Remote::new(&[2; 32]);
    assert_ne!(a.next_id, b.next_id);
}
