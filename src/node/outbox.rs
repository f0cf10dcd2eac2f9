//! The node's one door to the world: datagrams to send, systemd actions and events, queued.
//!
//! Every sub-protocol writes here (foca's `Runtime` in spirit); the driver drains it
//! through `Node::poll_*` after each input. It seals datagrams (nonces are drawn in
//! the order sends happen, so a seeded run replays), counts traffic, and bounds
//! every queue.

use std::collections::VecDeque;
use std::net::SocketAddr;

use super::packet::Packet;
use crate::wire::{self, KeyRing, NonceSource};

/// Most events queued between two drains.
pub const MAX_EVENTS: usize = 4096;
/// Most datagrams queued for sending between two drains.
pub const MAX_TRANSMITS: usize = 65_536;

/// What local systemd must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Write the unit file and reload systemd.
    Install {
        unit: String,
        text: String,
    },
    /// Remove the unit file (it is stopped already) and reload systemd.
    Remove {
        unit: String,
    },
    Start {
        unit: String,
    },
    Stop {
        unit: String,
    },
}

/// Things worth a log line, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeEvent {
    MemberUp {
        machine: String,
        addr: SocketAddr,
    },
    MemberDown {
        machine: String,
        addr: SocketAddr,
    },
    /// One machine id claimed from several addresses (cloned images share ids).
    DuplicateMachineId {
        machine: String,
        addrs: Vec<SocketAddr>,
    },
    /// This member refuses to take part; it has left the cluster and runs nothing.
    Refused {
        reason: String,
    },
    /// This member has left the cluster (after a `Leave` command).
    Left,
    /// Starts are no longer held after start-up: a settled member at `by` synced with
    /// us completely, or (`by` is `None`) the join grace ran out.
    StartsReleased {
        by: Option<SocketAddr>,
    },
}

/// Traffic counters for operators and the simulation's figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub datagrams_sent: u64,
    pub bytes_sent: u64,
    pub datagrams_received: u64,
    /// Authentic datagrams membership refused (foca's own checks).
    pub swim_refused: u64,
    /// Records the catalog refused (over a limit).
    pub records_refused: u64,
}

pub(super) struct Outbox {
    /// Our own address: nothing is sent to it.
    addr: SocketAddr,
    keys: KeyRing,
    nonces: NonceSource,
    transmits: VecDeque<(SocketAddr, Vec<u8>)>,
    actions: VecDeque<Action>,
    events: VecDeque<NodeEvent>,
    pub(super) stats: Stats,
}

impl Outbox {
    pub(super) fn new(addr: SocketAddr, keys: KeyRing, nonces: NonceSource) -> Outbox {
        Outbox {
            addr,
            keys,
            nonces,
            transmits: VecDeque::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
        }
    }

    pub(super) fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// Seals `packet` for `to` and queues it (not to ourselves; past [`MAX_TRANSMITS`]
    /// queued datagrams it is dropped, as a lossy network would).
    pub(super) fn send(&mut self, to: SocketAddr, packet: &Packet) {
        if to == self.addr || self.transmits.len() >= MAX_TRANSMITS {
            return;
        }
        // Bodies are built within the size limit; a failure would be a bug upstream, and
        // dropping one datagram is what the protocol tolerates anyway.
        if let Ok(d) = wire::encode(&self.keys, &mut self.nonces, packet) {
            self.stats.datagrams_sent += 1;
            self.stats.bytes_sent += d.len() as u64;
            self.transmits.push_back((to, d));
        }
    }

    /// [`Outbox::send`] of one sub-protocol's message.
    pub(super) fn send_msg(&mut self, to: SocketAddr, msg: impl Into<Packet>) {
        self.send(to, &msg.into());
    }

    /// Asks local systemd to do something.
    pub(super) fn act(&mut self, a: Action) {
        self.actions.push_back(a);
    }

    /// Queues an event; past [`MAX_EVENTS`] undrained events the oldest is dropped.
    pub(super) fn emit(&mut self, e: NodeEvent) {
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }

    pub(super) fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.transmits.pop_front()
    }

    pub(super) fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    pub(super) fn poll_event(&mut self) -> Option<NodeEvent> {
        self.events.pop_front()
    }
}
