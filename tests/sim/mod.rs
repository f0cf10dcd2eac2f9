//! A seeded whole-cluster simulator: many `Node`s, a lossy network, fake systemds, checkers.
//!
//! One seed decides everything (faults, delays, commands, node seeds), so a failing
//! seed replays exactly. The production wire code runs: every datagram is sealed by
//! the sender and opened by the receiver.

#![allow(dead_code)]

pub mod systemd;
pub mod traffic;
pub mod units;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::net::SocketAddr;

use shoal::catalog::{Desired, Target, UnitEntry};
use shoal::membership::rng::SplitMix;
use shoal::node::{Action, Command, Node, NodeConfig, Query, RemoteEvent};
use shoal::schedule::Decision;
use shoal::time::Millis;
use shoal::wire::{Key, KeyRing};

use systemd::Systemd;

pub fn addr(i: usize) -> SocketAddr {
    SocketAddr::from((
        [
            10,
            (i / 62_500) as u8,
            ((i / 250) % 250) as u8,
            (i % 250 + 1) as u8,
        ],
        4700,
    ))
}

pub fn machine(i: usize) -> String {
    let mut r = SplitMix::new(i as u64 ^ 0x5eed);
    format!("{:016x}{:016x}", r.next_u64(), r.next_u64())
}

/// The network's misbehaviour right now.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    pub loss_permille: u64,
    pub dup_permille: u64,
    pub delay_min_ms: u64,
    pub delay_max_ms: u64,
    /// (from, to) pairs that drop everything.
    pub blocked: BTreeSet<(usize, usize)>,
    /// Per-mille of systemd starts that fail.
    pub start_fail_permille: u64,
}

struct Datagram {
    at: Millis,
    seq: u64,
    to: usize,
    from: SocketAddr,
    bytes: Vec<u8>,
}

impl PartialEq for Datagram {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Datagram {}
impl PartialOrd for Datagram {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Datagram {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

pub struct Slot {
    pub cfg: NodeConfig,
    pub node: Option<Node>,
    pub systemd: Systemd,
    pub snapshot: Option<Vec<u8>>,
    pub boots: u64,
    deadline: Option<Millis>,
    /// Answers to (and give-ups of) this member's remote questions, in order.
    pub remote: Vec<RemoteEvent>,
    /// Ids of the questions from others this member ran (the driver's `Asked`).
    pub served: Vec<u64>,
}

pub struct Cluster {
    pub seed: u64,
    pub now: Millis,
    pub rng: SplitMix,
    pub slots: Vec<Slot>,
    by_addr: BTreeMap<SocketAddr, usize>,
    queue: BinaryHeap<Reverse<Datagram>>,
    timers: BTreeSet<(Millis, usize)>,
    seq: u64,
    pub faults: Faults,
    /// The newest version of every unit any command wrote: what must survive.
    pub oracle: BTreeMap<String, UnitEntry>,
    pub trace: Vec<String>,
    pub snapshots: bool,
    /// Datagrams dropped by the checks of the receiving node (must stay zero here).
    pub delivered: u64,
    /// When set, every datagram sent is opened and counted by kind.
    pub traffic: Option<traffic::Traffic>,
}

pub fn cluster_key() -> KeyRing {
    KeyRing::new(Key::from_bytes([0x42; 32]), vec![]).expect("one key")
}

impl Cluster {
    /// `n` members with metadata `disk=ssd` on even and `disk=hdd` on odd indices, each
    /// joining through the first three addresses.
    pub fn new(seed: u64, n: usize) -> Cluster {
        let peers: Vec<SocketAddr> = (0..n.min(3)).map(addr).collect();
        let slots = (0..n)
            .map(|i| {
                let mut cfg = NodeConfig::new(&machine(i), addr(i), cluster_key(), [0; 32]);
                cfg.metadata = if i % 2 == 0 {
                    "disk=ssd".into()
                } else {
                    "disk=hdd".into()
                };
                cfg.peers = peers.clone();
                cfg.cluster_size = n as u32;
                Slot {
                    cfg,
                    node: None,
                    systemd: Systemd::default(),
                    snapshot: None,
                    boots: 0,
                    deadline: None,
                    remote: Vec::new(),
                    served: Vec::new(),
                }
            })
            .collect();
        Cluster {
            seed,
            now: Millis(0),
            rng: SplitMix::new(seed),
            slots,
            by_addr: (0..n).map(|i| (addr(i), i)).collect(),
            queue: BinaryHeap::new(),
            timers: BTreeSet::new(),
            seq: 0,
            faults: Faults {
                delay_min_ms: 1,
                delay_max_ms: 5,
                ..Faults::default()
            },
            oracle: BTreeMap::new(),
            trace: Vec::new(),
            snapshots: true,
            delivered: 0,
            traffic: None,
        }
    }

    pub fn is_up(&self, i: usize) -> bool {
        self.slots[i].node.is_some()
    }

    /// Live members: up, not refused, not left.
    pub fn live(&self) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|i| {
                self.slots[*i]
                    .node
                    .as_ref()
                    .is_some_and(|n| n.refused().is_none() && !n.has_left())
            })
            .collect()
    }

    /// Starts member `i`, from its last snapshot if it has one.
    pub fn boot(&mut self, i: usize) {
        let mut seed = [0u8; 32];
        let mut r = SplitMix::new(self.seed ^ ((i as u64) << 20) ^ (self.slots[i].boots << 48));
        for c in seed.chunks_mut(8) {
            c.copy_from_slice(&r.next_u64().to_le_bytes());
        }
        let slot = &mut self.slots[i];
        slot.boots += 1;
        let mut cfg = slot.cfg.clone();
        cfg.seed = seed;
        let node = match &slot.snapshot {
            Some(s) => Node::restore(cfg, self.now, s).expect("own snapshot restores"),
            None => Node::new(cfg, self.now),
        };
        slot.node = Some(node);
        self.trace.push(format!("{:>7} boot {i}", self.now.0));
        let mut reports = self.slots[i].systemd.all_reports();
        let managed = self.slots[i]
            .node
            .as_ref()
            .map(|n| n.managed_units())
            .unwrap_or_default();
        for unit in managed {
            if !self.slots[i].systemd.units.contains_key(&unit) {
                reports.push((unit, None));
            }
        }
        for (unit, st) in reports {
            self.with(i, |n, now| n.handle_systemd_report(now, &unit, st.clone()));
        }
        self.with(i, |_, _| {});
    }

    /// Stops member `i` abruptly. `power_cut`: its units stop too (else they keep running).
    pub fn crash(&mut self, i: usize, power_cut: bool) {
        self.trace
            .push(format!("{:>7} crash {i} power_cut={power_cut}", self.now.0));
        self.slots[i].node = None;
        if power_cut {
            self.slots[i].systemd.power_cut();
        }
        self.reschedule(i);
    }

    pub fn take_snapshot(&mut self, i: usize) {
        if let Some(n) = &self.slots[i].node {
            self.slots[i].snapshot = Some(n.snapshot());
        }
    }

    /// Runs a client command on member `i`; records what it wrote.
    pub fn command(&mut self, i: usize, cmd: Command) -> bool {
        let name = match &cmd {
            Command::Submit { name, .. }
            | Command::Load { name }
            | Command::Start { name }
            | Command::Stop { name }
            | Command::Unload { name }
            | Command::Destroy { name } => Some(name.clone()),
            Command::Leave => None,
        };
        self.trace.push(
            format!("{:>7} command {i} {cmd:?}", self.now.0)
                .chars()
                .take(120)
                .collect(),
        );
        let mut ok = false;
        self.with(i, |n, now| ok = n.handle_command(now, cmd.clone()).is_ok());
        if let (Some(name), true) = (name, ok) {
            if let Some(e) = self.slots[i]
                .node
                .as_ref()
                .and_then(|n| n.catalog().unit(&name).cloned())
            {
                let newer = self.oracle.get(&name).is_none_or(|o| e.version > o.version);
                if newer {
                    self.oracle.insert(name, e);
                }
            }
            self.take_snapshot(i);
        }
        ok
    }

    fn delay(&mut self) -> u64 {
        let f = &self.faults;
        let span = f.delay_max_ms.saturating_sub(f.delay_min_ms) + 1;
        f.delay_min_ms + self.rng.below(span)
    }

    /// Calls `f` on node `i` (if up), then moves all its outputs.
    fn with(&mut self, i: usize, f: impl FnOnce(&mut Node, Millis)) {
        let now = self.now;
        let Some(node) = self.slots[i].node.as_mut() else {
            return;
        };
        f(node, now);
        self.drain(i);
    }

    fn drain(&mut self, i: usize) {
        let now = self.now;
        for _round in 0..64 {
            let Some(node) = self.slots[i].node.as_mut() else {
                break;
            };
            let mut sends = Vec::new();
            while let Some(t) = node.poll_transmit() {
                sends.push(t);
            }
            let mut actions = Vec::new();
            while let Some(a) = node.poll_action() {
                actions.push(a);
            }
            while let Some(e) = node.poll_event() {
                if !matches!(
                    e,
                    shoal::node::NodeEvent::MemberUp { .. }
                        | shoal::node::NodeEvent::MemberDown { .. }
                ) {
                    self.trace.push(format!("{:>7} event {i} {e:?}", now.0));
                }
            }
            // The driver's part of remote questions: answer at once, log the answers.
            let mut answered = false;
            let mut log = Vec::new();
            let mut served = Vec::new();
            while let Some(e) = node.poll_remote() {
                match e {
                    RemoteEvent::Asked { from, id, query } => {
                        let text = format!("{} on {}: {query:?}\n", id, node.machine_id());
                        node.answer_remote(now, from, id, 0, &text);
                        answered = true;
                        served.push(id);
                    }
                    other => log.push(other),
                }
            }
            self.slots[i].remote.extend(log);
            self.slots[i].served.extend(served);
            for (to, bytes) in sends {
                self.send(i, to, bytes);
            }
            if actions.is_empty() && !answered {
                break;
            }
            let mut reports = Vec::new();
            for a in actions {
                let fail = matches!(a, Action::Start { .. })
                    && self.rng.below(1000) < self.faults.start_fail_permille;
                let d = 20 + self.rng.below(280);
                reports.extend(self.slots[i].systemd.apply(now, a, d, fail));
            }
            let Some(node) = self.slots[i].node.as_mut() else {
                break;
            };
            for (unit, st) in reports {
                node.handle_systemd_report(now, &unit, st);
            }
        }
        self.reschedule(i);
    }

    fn reschedule(&mut self, i: usize) {
        if let Some(old) = self.slots[i].deadline.take() {
            self.timers.remove(&(old, i));
        }
        let node_t = self.slots[i].node.as_ref().and_then(|n| n.poll_timeout());
        let sd_t = self.slots[i].systemd.next_deadline();
        let t = match (node_t, sd_t) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(t) = t {
            let t = t.max(self.now);
            self.timers.insert((t, i));
            self.slots[i].deadline = Some(t);
        }
    }

    fn send(&mut self, from: usize, to: SocketAddr, bytes: Vec<u8>) {
        if let Some(t) = self.traffic.as_mut() {
            t.count(&bytes);
        }
        let Some(&j) = self.by_addr.get(&to) else {
            return;
        };
        if self.faults.blocked.contains(&(from, j))
            || self.rng.below(1000) < self.faults.loss_permille
        {
            return;
        }
        let copies = if self.rng.below(1000) < self.faults.dup_permille {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let at = self.now.plus(self.delay());
            self.seq += 1;
            self.queue.push(Reverse(Datagram {
                at,
                seq: self.seq,
                to: j,
                from: addr(from),
                bytes: bytes.clone(),
            }));
        }
    }

    /// Runs every event up to and including `until`.
    pub fn run_until(&mut self, until: Millis) {
        loop {
            let net = self.queue.peek().map(|Reverse(d)| d.at);
            let timer = self.timers.first().map(|(t, _)| *t);
            let next = match (net, timer) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => match a.or(b) {
                    Some(t) => t,
                    None => break,
                },
            };
            if next > until {
                break;
            }
            self.now = next.max(self.now);
            if net == Some(next) {
                let Some(Reverse(d)) = self.queue.pop() else {
                    break;
                };
                if self.slots[d.to].node.is_some() {
                    self.delivered += 1;
                    let now = self.now;
                    self.with(d.to, |n, _| n.handle_datagram(now, d.from, &d.bytes));
                }
                continue;
            }
            let Some((_, i)) = self.timers.pop_first() else {
                break;
            };
            self.slots[i].deadline = None;
            let reports = self.slots[i].systemd.advance(self.now);
            let now = self.now;
            self.with(i, |n, _| {
                for (unit, st) in reports {
                    n.handle_systemd_report(now, &unit, st);
                }
                n.handle_timeout(now);
            });
            self.reschedule(i);
        }
        self.now = until.max(self.now);
    }

    /// Runs until `until`, snapshotting every member every second when enabled.
    pub fn run_for(&mut self, ms: u64) {
        let end = self.now.plus(ms);
        while self.now < end {
            let step = self.now.plus(1000).min(end);
            self.run_until(step);
            if self.snapshots {
                for i in 0..self.slots.len() {
                    self.take_snapshot(i);
                }
            }
        }
    }

    /// Runs until `check` passes (polled every `poll_ms`), at most `max_ms`; returns the time taken.
    pub fn run_until_ok(
        &mut self,
        max_ms: u64,
        poll_ms: u64,
        check: impl Fn(&Cluster) -> Result<(), String>,
    ) -> Result<u64, String> {
        let start = self.now;
        loop {
            match check(self) {
                Ok(()) => return Ok(self.now.since(start)),
                Err(e) if self.now.since(start) >= max_ms => return Err(e),
                Err(_) => {
                    let t = self.now.plus(poll_ms);
                    self.run_until(t);
                }
            }
        }
    }

    /// Member `i` asks member `j` for `unit`'s status; the question's id.
    pub fn ask_status(&mut self, i: usize, j: usize, unit: &str) -> Result<u64, String> {
        let machine = self.slots[j].cfg.machine_id.clone();
        let mut r = Err(format!("member {i} is down"));
        let query = Query::Status { unit: unit.into() };
        self.with(i, |n, now| r = n.ask_remote(now, &machine, query));
        r
    }

    pub fn running_on(&self, unit: &str) -> BTreeSet<usize> {
        (0..self.slots.len())
            .filter(|i| self.slots[*i].systemd.is_active(unit))
            .collect()
    }

    pub fn total_bytes_sent(&self) -> u64 {
        self.slots
            .iter()
            .filter_map(|s| s.node.as_ref())
            .map(|n| n.stats().bytes_sent)
            .sum()
    }
}

/// The checkers: after faults stop, all of these must hold.
pub mod check {
    use super::*;

    /// Every live member sees exactly the live members.
    pub fn membership(c: &Cluster) -> Result<(), String> {
        let live = c.live();
        let want: BTreeSet<String> = live.iter().map(|i| machine(*i)).collect();
        for &i in &live {
            let n = c.slots[i].node.as_ref().expect("live");
            let mut seen: BTreeSet<String> =
                n.live_members().into_iter().map(|id| id.machine).collect();
            seen.insert(n.machine_id().to_string());
            if seen != want {
                return Err(format!(
                    "member {i} sees {} members, {} are live",
                    seen.len(),
                    want.len()
                ));
            }
        }
        Ok(())
    }

    /// Every live member holds every desired unit and tombstone, with its text.
    pub fn catalog(c: &Cluster) -> Result<(), String> {
        for i in c.live() {
            let n = c.slots[i].node.as_ref().expect("live");
            for (name, want) in &c.oracle {
                match n.catalog().unit(name) {
                    Some(have) if have.version >= want.version => {}
                    other => {
                        return Err(format!(
                            "member {i} has {name} as {other:?}, wanted {want:?}"
                        ))
                    }
                }
            }
            if let Some(d) = n.catalog().missing_texts().first() {
                return Err(format!("member {i} misses a unit text {d:02x?}"));
            }
        }
        Ok(())
    }

    /// Every live member computes the same placement.
    pub fn placement(c: &Cluster) -> Result<(), String> {
        let live = c.live();
        let Some(&first) = live.first() else {
            return Ok(());
        };
        let p0 = c.slots[first].node.as_ref().expect("live").placement();
        for &i in &live[1..] {
            let p = c.slots[i].node.as_ref().expect("live").placement();
            if p != p0 {
                let diff: Vec<&String> = p0
                    .units
                    .keys()
                    .chain(p.units.keys())
                    .filter(|u| p0.units.get(*u) != p.units.get(*u))
                    .collect();
                return Err(format!(
                    "members {first} and {i} place differently: {diff:?}"
                ));
            }
        }
        Ok(())
    }

    /// What runs is what placement says: launched units on exactly their members, nothing else.
    pub fn running(c: &Cluster) -> Result<(), String> {
        let live = c.live();
        let Some(&first) = live.first() else {
            return Ok(());
        };
        let n = c.slots[first].node.as_ref().expect("live");
        let index: BTreeMap<String, usize> = live.iter().map(|i| (machine(*i), *i)).collect();
        let mut units: BTreeSet<String> = c.oracle.keys().cloned().collect();
        for s in &c.slots {
            units.extend(s.systemd.units.keys().cloned());
        }
        for unit in units {
            let target = match n.catalog().unit(&unit).map(|e| &e.state) {
                Some(Desired::Live { target, .. }) => Some(*target),
                _ => None,
            };
            let on = c.running_on(&unit);
            let want: BTreeSet<usize> = match (target, n.placement().units.get(&unit)) {
                (Some(Target::Launched), Some(Decision::Placed(ms))) => {
                    if ms.is_empty() {
                        return Err(format!("{unit} is placed on no member"));
                    }
                    ms.iter().filter_map(|m| index.get(&m.0).copied()).collect()
                }
                _ => BTreeSet::new(),
            };
            if on != want {
                return Err(format!("{unit} runs on {on:?}, placement says {want:?}"));
            }
            if target == Some(Target::Launched) && units::always_placeable(&unit) && want.is_empty()
            {
                return Err(format!(
                    "{unit} could run but waits: {:?}",
                    n.placement().units.get(&unit)
                ));
            }
        }
        Ok(())
    }

    /// The constraints hold on what runs (checked from the unit files, independently of placement).
    pub fn constraints(c: &Cluster) -> Result<(), String> {
        let mut by_member: BTreeMap<usize, Vec<(String, shoal::unit::FleetOptions)>> =
            BTreeMap::new();
        for i in c.live() {
            for name in c.slots[i].systemd.units.keys() {
                if c.slots[i].systemd.is_active(name) {
                    if let Ok(u) = shoal::unit::parse_unit(name, name, &units::text_of(name)) {
                        by_member
                            .entry(i)
                            .or_default()
                            .push((name.clone(), u.options));
                    }
                }
            }
        }
        for (i, list) in &by_member {
            let meta = &c.slots[*i].cfg.metadata;
            for (name, o) in list {
                for (k, vs) in &o.machine_metadata {
                    if !vs.iter().any(|v| meta == &format!("{k}={v}")) {
                        return Err(format!(
                            "{name} runs on {i} ({meta}) against MachineMetadata"
                        ));
                    }
                }
                for g in &o.conflicts {
                    if let Some((other, _)) = list.iter().find(|(n, _)| n != name && g.matches(n)) {
                        return Err(format!(
                            "{name} and {other} run together on {i} against Conflicts"
                        ));
                    }
                }
                for peer in &o.machine_of {
                    // fleet: the peer must be placed here, loaded (installed) or launched.
                    if !c.slots[*i]
                        .systemd
                        .units
                        .get(peer)
                        .is_some_and(|u| u.installed)
                    {
                        return Err(format!("{name} runs on {i} without its MachineOf {peer}"));
                    }
                }
            }
        }
        Ok(())
    }

    pub fn all(c: &Cluster) -> Result<(), String> {
        membership(c)?;
        catalog(c)?;
        placement(c)?;
        running(c)?;
        constraints(c)
    }
}
