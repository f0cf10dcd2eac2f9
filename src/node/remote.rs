//! Remote queries over the gossip wire: `status` and `journal` run on the member that holds a unit.
//!
//! A small request/response beside gossip: [`super::Node::ask_remote`] sends an `Ask` to one
//! member; that member's driver gets [`RemoteEvent::Asked`], runs the query and hands
//! the output to [`super::Node::answer_remote`], which sends it back in numbered parts; the
//! asker's driver gets [`RemoteEvent::Answered`] once all parts are in.
//!
//! Loss: a question not answered whole within [`RESEND_MS`] is sent again under the
//! same id. The answering member remembers the questions it serves (by asker and id)
//! for as long as the asker may ask again: a repeat of a question whose answer is
//! being made gets a small `Working` reply, a repeat of an answered one gets the same
//! answer again, and the query runs once. The asker takes the first whole answer and
//! ignores the parts that come after it. It gives up after [`SILENCE_MS`] without a
//! word from the member (gone, or cut off), or after [`ASK_TIMEOUT_MS`] in all.
//! Everything is bounded: output size, parts, outstanding asks, served questions.
//!
//! Architecture invariant: sans-IO like the rest of the node; running the query is
//! the driver's business.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::outbox::Outbox;
use crate::journal::Position;
use crate::time::Millis;

/// Largest output sent back; longer output is cut (with a note).
pub const MAX_OUTPUT_BYTES: usize = 48 * 1024;
/// Output bytes per datagram.
const PART_BYTES: usize = 1_000;
/// Most questions this member waits answers for at once.
const MAX_ASKS: usize = 16;
/// Most questions from others this member serves (being answered, or answered and
/// kept for repeats) at once.
const MAX_SERVED: usize = 16;
/// A question without its whole answer is sent again this often.
pub const RESEND_MS: u64 = 400;
/// A question is given up when the member has said nothing about it (no part, no
/// `Working`) for this long: about seven tries.
pub const SILENCE_MS: u64 = 3_000;
/// A question is given up after this long in any case (a member working on it
/// answers within its tool's time limit).
pub const ASK_TIMEOUT_MS: u64 = 12_000;
/// An answered question is kept this long after it arrived, for repeats.
const SERVED_KEEP_MS: u64 = ASK_TIMEOUT_MS + 1_000;
/// Most journal lines one may ask for.
pub const MAX_JOURNAL_LINES: u32 = 10_000;

// A follow page and its trailer fit in one answer, so the answer is never cut.
const _: () = assert!(crate::journal::PAGE_BYTES + 2 * 1024 <= MAX_OUTPUT_BYTES);

/// What may be asked of another member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Query {
    Status {
        unit: String,
    },
    Journal {
        unit: String,
        lines: u32,
    },
    /// One page of `journal -f` (added last: older members drop it as undecodable).
    Follow {
        unit: String,
        from: Position,
    },
}

/// The remote messages inside a datagram.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RemoteMsg {
    Ask {
        id: u64,
        query: Query,
    },
    Part {
        id: u64,
        index: u16,
        count: u16,
        code: i32,
        data: String,
    },
    /// The question `id` came again while its answer is still being made.
    Working {
        id: u64,
    },
}

/// What the driver must handle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteEvent {
    /// Another member asks: run `query` and call `answer_remote(from, id, ..)`.
    Asked {
        from: SocketAddr,
        id: u64,
        query: Query,
    },
    /// The whole answer to our question `id`.
    Answered { id: u64, code: i32, text: String },
    /// Our question `id` got no (whole) answer in time.
    TimedOut { id: u64 },
}

/// One question of ours awaiting its answer.
pub(super) struct Ask {
    to: SocketAddr,
    query: Query,
    /// First sent.
    since: Millis,
    /// Last sent.
    sent: Millis,
    /// Last heard of from the member (a part or `Working`; first sent before that).
    heard: Millis,
    parts: BTreeMap<u16, String>,
    count: Option<u16>,
    code: i32,
}

/// One question from another member, while the asker may still repeat it.
struct Served {
    query: Query,
    since: Millis,
    /// The answer once made: exit code and (cut) text.
    answer: Option<(i32, String)>,
}

pub(super) struct Remote {
    next_id: u64,
    asks: BTreeMap<u64, Ask>,
    served: BTreeMap<(SocketAddr, u64), Served>,
    events: VecDeque<RemoteEvent>,
}

impl Remote {
    /// Ids start from bits of this start's seed, so a restarted member does not reuse
    /// the ids of its previous life (which others may still hold answers for).
    pub(super) fn new(seed: &[u8; 32]) -> Remote {
        let base = u32::from_le_bytes([seed[28], seed[29], seed[30], seed[31]]);
        Remote {
            next_id: u64::from(base) << 32,
            asks: BTreeMap::new(),
            served: BTreeMap::new(),
            events: VecDeque::new(),
        }
    }

    /// When the next resend or give-up is due.
    pub(super) fn deadline(&self) -> Option<Millis> {
        self.asks
            .values()
            .map(|a| {
                a.sent
                    .plus(RESEND_MS)
                    .min(a.heard.plus(SILENCE_MS))
                    .min(a.since.plus(ASK_TIMEOUT_MS))
            })
            .min()
    }
}

impl Query {
    /// The unit asked about.
    pub fn unit(&self) -> &str {
        match self {
            Query::Status { unit } | Query::Journal { unit, .. } | Query::Follow { unit, .. } => {
                unit
            }
        }
    }
}

pub(super) fn query_ok(q: &Query) -> bool {
    let unit = match q {
        Query::Status { unit } => unit,
        Query::Journal { unit, lines } => {
            if *lines > MAX_JOURNAL_LINES {
                return false;
            }
            unit
        }
        Query::Follow { unit, from } => {
            if !from.is_valid(MAX_JOURNAL_LINES) {
                return false;
            }
            unit
        }
    };
    crate::systemd::is_unit_name(unit)
}

/// Cuts `text` to at most `max` bytes on a character boundary.
fn cut(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl Remote {
    /// Sends `query` to the member at `to`; the answer comes as a [`RemoteEvent`] with
    /// the returned id. Errors when too many questions are out (nothing changed).
    pub(super) fn ask(
        &mut self,
        now: Millis,
        to: SocketAddr,
        query: Query,
        out: &mut Outbox,
    ) -> Result<u64, String> {
        if self.asks.len() >= MAX_ASKS {
            return Err("too many questions in flight; try again".into());
        }
        self.next_id = self.next_id.wrapping_add(1);
        let id = self.next_id;
        self.asks.insert(
            id,
            Ask {
                to,
                query: query.clone(),
                since: now,
                sent: now,
                heard: now,
                parts: BTreeMap::new(),
                count: None,
                code: 0,
            },
        );
        out.send_msg(to, RemoteMsg::Ask { id, query });
        Ok(id)
    }

    /// Sends the output of the question `id` from `to` back, cut to [`MAX_OUTPUT_BYTES`],
    /// and keeps it for repeats of the question.
    pub(super) fn answer(
        &mut self,
        to: SocketAddr,
        id: u64,
        code: i32,
        text: &str,
        out: &mut Outbox,
    ) {
        let note = "\n[output cut by shoal]\n";
        let mut body = cut(text, MAX_OUTPUT_BYTES).to_string();
        if body.len() < text.len() {
            body.truncate(cut(&body, MAX_OUTPUT_BYTES - note.len()).len());
            body.push_str(note);
        }
        send_parts(to, id, code, &body, out);
        if let Some(s) = self.served.get_mut(&(to, id)) {
            s.answer = Some((code, body));
        }
    }

    pub(super) fn poll_event(&mut self) -> Option<RemoteEvent> {
        self.events.pop_front()
    }

    pub(super) fn handle(
        &mut self,
        now: Millis,
        from: SocketAddr,
        msg: RemoteMsg,
        out: &mut Outbox,
    ) {
        match msg {
            RemoteMsg::Ask { id, query } => self.asked(now, from, id, query, out),
            RemoteMsg::Working { id } => {
                if let Some(ask) = self.asks.get_mut(&id) {
                    if ask.to == from {
                        ask.heard = now;
                    }
                }
            }
            RemoteMsg::Part {
                id,
                index,
                count,
                code,
                data,
            } => {
                let Some(ask) = self.asks.get_mut(&id) else {
                    // Answered already (a repeat's answer), or given up.
                    return;
                };
                let max_parts = MAX_OUTPUT_BYTES.div_ceil(PART_BYTES) as u16 + 1;
                if ask.to != from
                    || count == 0
                    || count > max_parts
                    || index >= count
                    || data.len() > PART_BYTES
                    || ask.count.is_some_and(|c| c != count)
                {
                    return;
                }
                ask.heard = now;
                ask.count = Some(count);
                ask.code = code;
                ask.parts.insert(index, data);
                if ask.parts.len() == count as usize {
                    if let Some(ask) = self.asks.remove(&id) {
                        let text: String = ask.parts.into_values().collect();
                        self.events.push_back(RemoteEvent::Answered {
                            id,
                            code: ask.code,
                            text,
                        });
                    }
                }
            }
        }
    }

    /// A question from `from`: new ones go to the driver, repeats are answered here.
    fn asked(&mut self, now: Millis, from: SocketAddr, id: u64, query: Query, out: &mut Outbox) {
        let key = (from, id);
        if let Some(s) = self.served.get(&key) {
            if s.query == query {
                match s.answer.clone() {
                    None => out.send_msg(from, RemoteMsg::Working { id }),
                    Some((code, body)) => send_parts(from, id, code, &body, out),
                }
                return;
            }
            // The same id for another question: not a repeat (the asker restarted).
            self.served.remove(&key);
        }
        if !query_ok(&query) {
            return;
        }
        if self.served.len() >= MAX_SERVED {
            // Room: forget the oldest answered question; with none, refuse (the asker
            // gives up after its silence limit).
            let oldest = self
                .served
                .iter()
                .filter(|(_, s)| s.answer.is_some())
                .min_by_key(|(_, s)| s.since)
                .map(|(k, _)| *k);
            match oldest {
                Some(k) => {
                    self.served.remove(&k);
                }
                None => return,
            }
        }
        self.served.insert(
            key,
            Served {
                query: query.clone(),
                since: now,
                answer: None,
            },
        );
        self.events
            .push_back(RemoteEvent::Asked { from, id, query });
    }

    /// Resends questions still without their answer, gives up those past their limits,
    /// forgets served questions no one will repeat (called from every timeout).
    pub(super) fn handle_timeout(&mut self, now: Millis, out: &mut Outbox) {
        let given_up: Vec<u64> = self
            .asks
            .iter()
            .filter(|(_, a)| {
                now.since(a.since) >= ASK_TIMEOUT_MS || now.since(a.heard) >= SILENCE_MS
            })
            .map(|(id, _)| *id)
            .collect();
        for id in given_up {
            self.asks.remove(&id);
            self.events.push_back(RemoteEvent::TimedOut { id });
        }
        let mut again = Vec::new();
        for (id, a) in self.asks.iter_mut() {
            if now.since(a.sent) >= RESEND_MS {
                a.sent = now;
                again.push((a.to, *id, a.query.clone()));
            }
        }
        for (to, id, query) in again {
            out.send_msg(to, RemoteMsg::Ask { id, query });
        }
        self.served
            .retain(|_, s| now.since(s.since) < SERVED_KEEP_MS);
    }
}

fn send_parts(to: SocketAddr, id: u64, code: i32, body: &str, out: &mut Outbox) {
    let mut parts = Vec::new();
    let mut rest = body;
    loop {
        let p = cut(rest, PART_BYTES);
        parts.push(p);
        rest = &rest[p.len()..];
        if rest.is_empty() {
            break;
        }
    }
    let count = parts.len() as u16;
    for (index, data) in parts.into_iter().enumerate() {
        let msg = RemoteMsg::Part {
            id,
            index: index as u16,
            count,
            code,
            data: data.to_string(),
        };
        out.send_msg(to, msg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{Node, NodeConfig, NodeEvent};
    use crate::wire::{Key, KeyRing};

    fn node(i: u8) -> Node {
        let keys = KeyRing::new(Key::from_bytes([5; 32]), vec![]).unwrap();
        let addr: SocketAddr = format!("10.0.0.{i}:4774").parse().unwrap();
        let mut cfg = NodeConfig::new(&format!("m{i}"), addr, keys, [i; 32]);
        cfg.peers = vec![
            "10.0.0.1:4774".parse().unwrap(),
            "10.0.0.2:4774".parse().unwrap(),
        ];
        Node::new(cfg, Millis(0))
    }

    /// Delivers every datagram until both are quiet, advancing time in ticks.
    fn exchange(nodes: &mut [Node], until: impl Fn(&[Node]) -> bool) -> Millis {
        let mut now = Millis(0);
        for _ in 0..400 {
            now = now.plus(50);
            for n in nodes.iter_mut() {
                n.handle_timeout(now);
            }
            loop {
                let mut moved = false;
                for i in 0..nodes.len() {
                    while let Some((to, bytes)) = nodes[i].poll_transmit() {
                        let from = nodes[i].identity().addr;
                        if let Some(j) = nodes.iter().position(|n| n.identity().addr == to) {
                            nodes[j].handle_datagram(now, from, &bytes);
                            moved = true;
                        }
                    }
                    while nodes[i].poll_event().is_some() {}
                }
                if !moved {
                    break;
                }
            }
            if until(nodes) {
                return now;
            }
        }
        panic!("did not happen in time");
    }

    #[test]
    fn a_question_goes_to_the_member_and_its_long_answer_comes_back_whole() {
        let mut nodes = vec![node(1), node(2)];
        let now = exchange(&mut nodes, |n| !n[0].live_members().is_empty());
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
        let mut nodes = vec![node(1), node(2)];
        let now = exchange(&mut nodes, |n| !n[0].live_members().is_empty());
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

    /// Two joined members, the time they joined at, and each one's remote events.
    struct Pair {
        nodes: Vec<Node>,
        now: Millis,
        events: [Vec<RemoteEvent>; 2],
    }

    impl Pair {
        fn new() -> Pair {
            let mut nodes = vec![node(1), node(2)];
            let now = exchange(&mut nodes, |n| {
                !n[0].live_members().is_empty() && !n[1].live_members().is_empty()
            });
            Pair {
                nodes,
                now,
                events: [Vec::new(), Vec::new()],
            }
        }

        /// Delivers what is queued (and what that causes) until quiet; datagrams that
        /// `lose(sender)` says are lost are dropped.
        fn flush(&mut self, lose: &mut dyn FnMut(usize) -> bool) {
            for _ in 0..100 {
                let mut moved = false;
                for i in 0..2 {
                    let from = self.nodes[i].identity().addr;
                    while let Some((_, bytes)) = self.nodes[i].poll_transmit() {
                        moved = true;
                        if !lose(i) {
                            self.nodes[1 - i].handle_datagram(self.now, from, &bytes);
                        }
                    }
                    while let Some(e) = self.nodes[i].poll_remote() {
                        self.events[i].push(e);
                    }
                }
                if !moved {
                    return;
                }
            }
        }

        /// Lets `ms` pass in 50 ms steps, delivering as `flush` does.
        fn run(&mut self, ms: u64, lose: &mut dyn FnMut(usize) -> bool) {
            let end = self.now.plus(ms);
            while self.now < end {
                self.now = self.now.plus(50).min(end);
                for n in self.nodes.iter_mut() {
                    n.handle_timeout(self.now);
                }
                self.flush(lose);
            }
        }

        fn ask(&mut self, query: Query) -> u64 {
            let now = self.now;
            self.nodes[0].ask_remote(now, "m2", query).unwrap()
        }

        fn questions(&self) -> Vec<(SocketAddr, u64, Query)> {
            self.events[1]
                .iter()
                .filter_map(|e| match e {
                    RemoteEvent::Asked { from, id, query } => Some((*from, *id, query.clone())),
                    _ => None,
                })
                .collect()
        }

        fn answers(&self) -> Vec<RemoteEvent> {
            self.events[0].clone()
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
        let now = p.now;
        p.nodes[1].answer_remote(now, qs[0].0, id, 0, "active\n");
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
        let now = p.now;
        p.nodes[1].answer_remote(now, from, asked, 0, &text);
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
            let now = p.now.plus(RESEND_MS);
            p.now = now;
            p.nodes[0].handle_timeout(now);
            let from = p.nodes[0].identity().addr;
            while let Some((_, bytes)) = p.nodes[0].poll_transmit() {
                p.nodes[1].handle_datagram(now, from, &bytes);
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
        let now = p.now;
        p.nodes[1].answer_remote(now, qs[0].0, id, 3, "inactive\n");
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
        let start = p.now;
        let id = p.ask(status("a.service"));
        let mut tries = 0;
        let mut timed_out_at = None;
        while timed_out_at.is_none() && p.now.since(start) < ASK_TIMEOUT_MS {
            // Everything from the asker is lost.
            p.run(50, &mut |i| {
                tries += usize::from(i == 0);
                i == 0
            });
            if p.answers().contains(&RemoteEvent::TimedOut { id }) {
                timed_out_at = Some(p.now.since(start));
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
}
