//! Remote queries over the gossip wire: `status` and `journal` run on the member that holds a unit.
//!
//! A small request/response beside gossip: [`Node::ask_remote`] sends an `Ask` to one
//! member; that member's driver gets [`RemoteEvent::Asked`], runs the query and hands
//! the output to [`Node::answer_remote`], which sends it back in numbered parts; the
//! asker's driver gets [`RemoteEvent::Answered`] once all parts are in. A lost part
//! loses the answer (the driver times out and says so). Everything is bounded: output
//! size, parts, outstanding asks and queued questions.
//!
//! Architecture invariant: sans-IO like the rest of the node; running the query is
//! the driver's business.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::{Node, Packet};
use crate::time::Millis;

/// Largest output sent back; longer output is cut (with a note).
pub const MAX_OUTPUT_BYTES: usize = 48 * 1024;
/// Output bytes per datagram.
const PART_BYTES: usize = 1_000;
/// Most questions this member waits answers for at once.
const MAX_ASKS: usize = 16;
/// Most questions from others queued for the driver.
const MAX_QUESTIONS: usize = 16;
/// An unanswered question is forgotten after this long.
pub const ASK_TIMEOUT_MS: u64 = 12_000;
/// Most journal lines one may ask for.
pub const MAX_JOURNAL_LINES: u32 = 10_000;

/// What may be asked of another member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Query {
    Status { unit: String },
    Journal { unit: String, lines: u32 },
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
    since: Millis,
    parts: BTreeMap<u16, String>,
    count: Option<u16>,
    code: i32,
}

#[derive(Default)]
pub(super) struct Remote {
    next_id: u64,
    asks: BTreeMap<u64, Ask>,
    events: std::collections::VecDeque<RemoteEvent>,
}

fn query_ok(q: &Query) -> bool {
    let unit = match q {
        Query::Status { unit } => unit,
        Query::Journal { unit, lines } => {
            if *lines > MAX_JOURNAL_LINES {
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

impl Node {
    /// Asks the live member `machine` to run `query`; the answer comes as a
    /// [`RemoteEvent`] with the returned id. Errors when the member is not live or too
    /// many questions are out. Doesn't affect any other state.
    pub fn ask_remote(&mut self, now: Millis, machine: &str, query: Query) -> Result<u64, String> {
        self.now = now.max(self.now);
        if !query_ok(&query) {
            return Err("not a query shoal answers".into());
        }
        let Some(to) = self
            .membership
            .live()
            .into_iter()
            .filter(|i| i.machine == machine)
            .map(|i| i.addr)
            .min()
        else {
            return Err(format!("member {machine} is not live"));
        };
        if self.remote.asks.len() >= MAX_ASKS {
            return Err("too many questions in flight; try again".into());
        }
        self.remote.next_id += 1;
        let id = self.remote.next_id;
        self.remote.asks.insert(
            id,
            Ask {
                to,
                since: self.now,
                parts: BTreeMap::new(),
                count: None,
                code: 0,
            },
        );
        self.send(to, &Packet::Remote(RemoteMsg::Ask { id, query }));
        Ok(id)
    }

    /// Sends the output of the question `id` from `to` back, cut to [`MAX_OUTPUT_BYTES`].
    pub fn answer_remote(&mut self, now: Millis, to: SocketAddr, id: u64, code: i32, text: &str) {
        self.now = now.max(self.now);
        let note = "\n[output cut by shoal]\n";
        let mut body = cut(text, MAX_OUTPUT_BYTES).to_string();
        if body.len() < text.len() {
            body.truncate(cut(&body, MAX_OUTPUT_BYTES - note.len()).len());
            body.push_str(note);
        }
        let mut parts = Vec::new();
        let mut rest = body.as_str();
        loop {
            let p = cut(rest, PART_BYTES);
            parts.push(p.to_string());
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
                data,
            };
            self.send(to, &Packet::Remote(msg));
        }
    }

    pub fn poll_remote(&mut self) -> Option<RemoteEvent> {
        self.remote.events.pop_front()
    }

    pub(super) fn handle_remote(&mut self, from: SocketAddr, msg: RemoteMsg) {
        match msg {
            RemoteMsg::Ask { id, query } => {
                let queued = self
                    .remote
                    .events
                    .iter()
                    .filter(|e| matches!(e, RemoteEvent::Asked { .. }))
                    .count();
                if queued < MAX_QUESTIONS && query_ok(&query) {
                    self.remote
                        .events
                        .push_back(RemoteEvent::Asked { from, id, query });
                }
            }
            RemoteMsg::Part {
                id,
                index,
                count,
                code,
                data,
            } => {
                let Some(ask) = self.remote.asks.get_mut(&id) else {
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
                ask.count = Some(count);
                ask.code = code;
                ask.parts.insert(index, data);
                if ask.parts.len() == count as usize {
                    if let Some(ask) = self.remote.asks.remove(&id) {
                        let text: String = ask.parts.into_values().collect();
                        self.remote.events.push_back(RemoteEvent::Answered {
                            id,
                            code: ask.code,
                            text,
                        });
                    }
                }
            }
        }
    }

    /// Forgets questions unanswered for too long (called from the periodic tick).
    pub(super) fn expire_remote(&mut self) {
        let now = self.now;
        let expired: Vec<u64> = self
            .remote
            .asks
            .iter()
            .filter(|(_, a)| now.since(a.since) >= ASK_TIMEOUT_MS)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            self.remote.asks.remove(&id);
            self.remote.events.push_back(RemoteEvent::TimedOut { id });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{NodeConfig, NodeEvent};
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
}
