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
    crate::unit::name::is_safe_unit_name(unit)
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
mod tests;
