//! Test support: members on an in-memory network with a stepped clock, and builders for
//! the commands and systemd reports tests use (`cfg(test)` or the `testing` feature).
//!
//! [`Net`] is foca's `testing.rs` and quinn-proto's `Pair` for shoal: every datagram
//! is sealed and opened by the production wire code, delivered at once (unless a test
//! loses it), and the clock moves only when a test steps it, so a scenario runs in
//! microseconds and replays exactly. The seeded simulation (`tests/sim`) adds delays,
//! faults and a slow systemd on top of the same builders.

use std::net::SocketAddr;

use super::{Action, Command, Node, NodeConfig, NodeEvent, RemoteEvent};
use crate::catalog::Status;
use crate::time::Millis;
use crate::wire::{Key, KeyRing};

/// A unit file with nothing to place by.
pub const TEXT: &str = "[Service]\nExecStart=/bin/true\n";

/// The key every test member shares.
pub fn key() -> KeyRing {
    KeyRing::new(Key::from_bytes([1; 32]), vec![]).expect("one key")
}

/// Member `host`'s address: `10.0.0.host:4700`.
pub fn addr(host: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, host], 4700))
}

/// A member at [`addr`]`(host)` with machine id `machine`, joining through `peers` (hosts).
pub fn config(machine: &str, host: u8, peers: &[u8], seed: u8) -> NodeConfig {
    let mut cfg = NodeConfig::new(machine, addr(host), key(), [seed; 32]);
    cfg.peers = peers.iter().map(|h| addr(*h)).collect();
    cfg
}

/// [`config`] started at `now`, with the machine id `{host:016x}`.
pub fn member(seed: u8, host: u8, peers: &[u8], now: u64) -> Node {
    Node::new(
        config(&format!("{host:016x}"), host, peers, seed),
        Millis(now),
    )
}

pub fn submit(name: &str, text: &str) -> Command {
    Command::Submit {
        name: name.into(),
        text: text.into(),
    }
}

pub fn start(name: &str) -> Command {
    Command::Start { name: name.into() }
}

pub fn stop(name: &str) -> Command {
    Command::Stop { name: name.into() }
}

/// A systemd state as systemctl prints it (`active`, `running`).
pub fn status(active: &str, sub: &str) -> Status {
    Status {
        active: active.into(),
        sub: sub.into(),
    }
}

/// `active (running)`.
pub fn running() -> Status {
    status("active", "running")
}

/// Submits `unit` (with [`TEXT`]) and asks for it to run.
pub fn submit_and_start(n: &mut Node, now: Millis, unit: &str) {
    n.handle_command(now, submit(unit, TEXT)).expect("submit");
    n.handle_command(now, start(unit)).expect("start");
}

/// Every action `n` has queued.
pub fn actions(n: &mut Node) -> Vec<Action> {
    std::iter::from_fn(|| n.poll_action()).collect()
}

/// Members on a lossless, instant network, with a clock the test steps.
pub struct Net {
    pub nodes: Vec<Node>,
    pub now: Millis,
    /// Units each member was told to start, in order. Starts are answered at once
    /// with [`running`]; other actions are dropped.
    pub started: Vec<Vec<String>>,
    /// Each member's events, in order.
    pub events: Vec<Vec<NodeEvent>>,
    /// Each member's remote events (questions to it, answers to its questions).
    pub remote: Vec<Vec<RemoteEvent>>,
}

/// Most delivery rounds per flush: a bound, not a number tests reach.
const MAX_ROUNDS: usize = 100;

impl Net {
    pub fn new(nodes: Vec<Node>) -> Net {
        let n = nodes.len();
        Net {
            nodes,
            now: Millis(0),
            started: vec![Vec::new(); n],
            events: vec![Vec::new(); n],
            remote: vec![Vec::new(); n],
        }
    }

    /// Adds a member (say, one starting later).
    pub fn add(&mut self, node: Node) {
        self.nodes.push(node);
        self.started.push(Vec::new());
        self.events.push(Vec::new());
        self.remote.push(Vec::new());
    }

    /// Takes member `i` off the network (a crash: nothing more from or to it).
    pub fn remove(&mut self, i: usize) -> Node {
        self.started.remove(i);
        self.events.remove(i);
        self.remote.remove(i);
        self.nodes.remove(i)
    }

    /// Delivers what is queued, and what that causes, until quiet.
    pub fn flush(&mut self) {
        self.flush_losing(&mut |_| false);
    }

    /// [`Net::flush`], dropping the datagrams for which `lose(sender)` says so.
    pub fn flush_losing(&mut self, lose: &mut dyn FnMut(usize) -> bool) {
        let now = self.now;
        for _ in 0..MAX_ROUNDS {
            let mut moved = false;
            for i in 0..self.nodes.len() {
                let from = self.nodes[i].identity().addr;
                while let Some((to, bytes)) = self.nodes[i].poll_transmit() {
                    moved = true;
                    if lose(i) {
                        continue;
                    }
                    if let Some(j) = self.nodes.iter().position(|n| n.identity().addr == to) {
                        self.nodes[j].handle_datagram(now, from, &bytes);
                    }
                }
                while let Some(a) = self.nodes[i].poll_action() {
                    if let Action::Start { unit } = a {
                        moved = true;
                        self.nodes[i].handle_systemd_report(now, &unit, Some(running()));
                        self.started[i].push(unit);
                    }
                }
                // As the driver does after a turn: timers that are due run (a
                // placement the datagrams made due, say).
                if self.nodes[i].poll_timeout().is_some_and(|t| t <= now) {
                    moved = true;
                    self.nodes[i].handle_timeout(now);
                }
                self.events[i].extend(std::iter::from_fn(|| self.nodes[i].poll_event()));
                self.remote[i].extend(std::iter::from_fn(|| self.nodes[i].poll_remote()));
            }
            if !moved {
                return;
            }
        }
    }

    /// Moves the clock to `t`, runs every member's timers, and flushes.
    pub fn at(&mut self, t: Millis) {
        self.now = t.max(self.now);
        for n in self.nodes.iter_mut() {
            n.handle_timeout(self.now);
        }
        self.flush();
    }

    /// Runs the members' timers every 10 ms from `from_ms` to `to_ms` (inclusive),
    /// with every datagram delivered; the units each one started meanwhile.
    pub fn span(&mut self, from_ms: u64, to_ms: u64) -> Vec<Vec<String>> {
        for s in self.started.iter_mut() {
            s.clear();
        }
        for t in (from_ms..=to_ms).step_by(10) {
            self.at(Millis(t));
        }
        self.started.clone()
    }

    /// Lets `ms` pass in steps of `step_ms`, losing what `lose(sender)` says.
    pub fn run_losing(&mut self, ms: u64, step_ms: u64, lose: &mut dyn FnMut(usize) -> bool) {
        let end = self.now.plus(ms);
        while self.now < end {
            self.now = self.now.plus(step_ms).min(end);
            for n in self.nodes.iter_mut() {
                n.handle_timeout(self.now);
            }
            self.flush_losing(lose);
        }
    }

    /// Steps the clock by `step_ms` until `done` holds; panics after `max_ms`.
    pub fn run_until(&mut self, max_ms: u64, step_ms: u64, done: impl Fn(&Net) -> bool) {
        let end = self.now.plus(max_ms);
        while !done(self) {
            assert!(self.now < end, "did not happen within {max_ms} ms");
            let t = self.now.plus(step_ms);
            self.at(t);
        }
    }

    /// Steps until every member sees all the others.
    pub fn join(&mut self, step_ms: u64) {
        let others = self.nodes.len() - 1;
        self.run_until(20_000, step_ms, |net| {
            net.nodes.iter().all(|n| n.live_members().len() == others)
        });
    }
}
