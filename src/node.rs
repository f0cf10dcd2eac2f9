//! One member's whole state machine: membership + catalog + placement + what to start and stop.
//!
//! Driver contract (quinn-proto style): feed inputs with `handle_datagram`,
//! `handle_timeout`, `handle_systemd_report` and `handle_command`, each with the
//! current time; after every call drain `poll_transmit` (send each datagram to its
//! address), `poll_action` (apply each to local systemd, then report back what
//! systemd says), and `poll_event` (log it); then sleep until `poll_timeout` or
//! the next datagram. Save `snapshot()` after commands and periodically.
//!
//! Inside, the node is a router: it decodes a datagram and hands it to the
//! sub-protocol it belongs to (catalog sync, member repair, the start hold, remote
//! questions), each of which owns its state and writes into the one outbox; then it
//! reconciles when due and records the sub-protocols' deadlines in its timer table.
//!
//! Architecture invariant: no clock, socket, file or unseeded randomness in here;
//! the same inputs give the same outputs. A non-global unit is started here only
//! when no other live member reports running it; a unit placement moves away is
//! stopped here first and that is reported before anyone else may start it.

pub mod answers;
mod command;
mod config;
mod duplicates;
mod health;
mod hold;
mod inputs;
mod intake;
mod outbox;
mod packet;
mod parsed;
mod reconcile;
mod remote;
mod repair;
mod reports;
mod snapshot;
mod sync;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod timers;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use crate::catalog::{Catalog, Digest, Msg, Status, WireEntry};
use crate::membership::rng::SplitMix;
use crate::membership::{self, Identity, Membership};
use crate::schedule::Placement;
use crate::time::Millis;
use crate::wire::{DropCounters, NonceSource, ReplayGuard};

use hold::StartHold;
use outbox::Outbox;
use repair::MemberRepair;
use sync::CatalogSync;
use timers::{Timer, TimerTable};

pub use command::{Command, CommandError};
pub use config::{parse_fleet_options, NodeConfig, ParseFn};
pub use outbox::{Action, NodeEvent, Stats, MAX_EVENTS, MAX_TRANSMITS};
pub use packet::describe as describe_packet;
pub use remote::{
    Query, RemoteEvent, RemoteMsg, ASK_TIMEOUT_MS, MAX_JOURNAL_LINES, MAX_OUTPUT_BYTES, RESEND_MS,
    SILENCE_MS,
};
pub use repair::{MAX_ALIVE_PACKETS, MAX_DOWN_LISTED, MAX_MEMBERS_LISTED, RECENT_DOWN_MS};
pub use snapshot::{SnapshotError, SnapshotModel, SNAPSHOT_MAX_BYTES};
pub use sync::TEXT_RETRY_MS;

/// How often the periodic work runs (anti-entropy, text fetches, retries, expiry).
pub const TICK_MS: u64 = 250;
/// Anti-entropy: one push-pull with one member this often (digests ride on a probe; the
/// full summaries follow only where they differ). Repairs what rumours missed.
pub const ANTI_ENTROPY_MS: u64 = 1_000;
/// While alone, announce to the static peers this often.
pub const JOIN_RETRY_MS: u64 = 1_000;
/// Even when joined, announce to one static peer this often: heals partitions after the
/// other side's members have been forgotten (the answer is the whole member list, about
/// 600 bytes at 10 members, so not too often).
pub const REANNOUNCE_MS: u64 = 30_000;
/// New records are pushed to this many random members, once, by everyone who learns them
/// (about 2% of members miss a rumour at fanout 4; anti-entropy repairs them).
pub const RUMOUR_FANOUT: usize = 4;
/// A start or stop systemd has not answered (or a start that failed) is tried again after
/// this long: a back-off for units that keep failing.
pub const ACTION_RETRY_MS: u64 = 5_000;
/// Placement runs at most this often: a burst of membership changes (a big cluster
/// joining) costs one placement, not one per change, for at most this much delay.
pub const RECONCILE_MIN_MS: u64 = 50;
/// A member that finds its machine id at another address within this long of joining
/// takes itself to be the newcomer (a cloned image) and refuses to run.
pub const DUPLICATE_GRACE_MS: u64 = 5_000;
/// After a start-up with peers configured, starts wait at most this long for the
/// cluster's state: a member that boots alone would otherwise place every unit on
/// itself and start them all before hearing that the others run them (a whole-cluster
/// power cut, or a member rebooting while its units run elsewhere). The wait ends
/// sooner once a settled member (one past its own wait) has synced with us completely:
/// then we know all it knows, which is all any settled member acts on. In a cold start
/// nobody is settled, so everyone waits this long and all place from the same view.
pub const JOIN_GRACE_MS: u64 = 3_000;
/// A leaving member waits at most this long for its units to stop before leaving.
pub const LEAVE_TIMEOUT_MS: u64 = 10_000;

/// A start or stop asked of systemd and not yet confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pending {
    Start(Millis),
    Stop(Millis),
}

pub struct Node {
    cfg: NodeConfig,
    now: Millis,
    membership: Membership,
    catalog: Catalog,
    /// The one random stream behind every random choice (peers to gossip with).
    rng: SplitMix,
    /// Highest boot number we have used (identity renewals bump it).
    boot: u64,
    report_counter: u64,
    /// What local systemd last said, by unit.
    local: BTreeMap<String, Status>,
    /// Units whose file we installed, with the text's digest.
    installed: BTreeMap<String, Digest>,
    /// What changed since persistence last asked (see `snapshot.rs`).
    changes: snapshot::Tracker,
    pending: BTreeMap<String, Pending>,
    placement: Placement,
    /// The parsed options of the units placed last time (see `parsed.rs`).
    parsed: parsed::ParseCache,
    /// Placement's inputs kept between reconciles (see `inputs.rs`).
    inputs: inputs::Inputs,
    /// How late this member's own timers run (scales the time suspects get).
    health: health::LocalHealth,
    dirty: bool,
    last_reconcile: Option<Millis>,
    out: Outbox,
    timers: TimerTable,
    sync: CatalogSync,
    repair: MemberRepair,
    hold: StartHold,
    remote: remote::Remote,
    reported_duplicates: BTreeSet<(String, Vec<SocketAddr>)>,
    drops: DropCounters,
    replays: ReplayGuard,
    active_since: Option<Millis>,
    refused: Option<String>,
    leaving_since: Option<Millis>,
    left: bool,
}

/// Up to `n` distinct live members, drawn at random.
fn random_live(membership: &Membership, rng: &mut SplitMix, n: usize) -> Vec<SocketAddr> {
    let mut live: Vec<SocketAddr> = membership.live_addrs();
    let mut out = Vec::new();
    while out.len() < n && !live.is_empty() {
        let i = rng.below(live.len() as u64) as usize;
        out.push(live.swap_remove(i));
    }
    out
}

impl Node {
    /// A member starting with no saved state.
    pub fn new(cfg: NodeConfig, now: Millis) -> Node {
        Node::start(cfg, now, 0, 0, Catalog::new(0), BTreeMap::new())
    }

    fn start(
        cfg: NodeConfig,
        now: Millis,
        boot: u64,
        report_counter: u64,
        catalog: Catalog,
        installed: BTreeMap<String, Digest>,
    ) -> Node {
        // The order of these draws is part of a seeded run: nonces, then the rng's seed,
        // then membership's.
        let mut nonces = NonceSource::from_seed(cfg.seed);
        let remote = remote::Remote::new(&cfg.seed);
        let rng = SplitMix::new(nonces.next_u64());
        let mut metadata = cfg.metadata.clone();
        metadata.truncate(membership::MAX_METADATA_BYTES);
        let me = Identity {
            machine: cfg.machine_id.clone(),
            addr: cfg.addr,
            boot,
            metadata,
        };
        let membership = Membership::new(now, me, &cfg.timing, cfg.cluster_size, nonces.next_u64());
        let others = cfg.peers.iter().any(|p| *p != cfg.addr);
        let hold = StartHold::new(now, others, cfg.join_grace_ms);
        let catalog = if catalog.replica().units.is_empty() && catalog.replica().reports.is_empty()
        {
            Catalog::new(cfg.tombstone_ttl_ms)
        } else {
            catalog
        };
        let mut timers = TimerTable::default();
        timers.set(Timer::Tick, Some(now));
        timers.set(Timer::AntiEntropy, Some(now.plus(ANTI_ENTROPY_MS)));
        timers.set(Timer::Announce, Some(now));
        let mut node = Node {
            out: Outbox::new(cfg.addr, cfg.keys.clone(), nonces),
            cfg,
            now,
            membership,
            catalog,
            rng,
            boot,
            report_counter,
            local: BTreeMap::new(),
            installed,
            changes: snapshot::Tracker::default(),
            pending: BTreeMap::new(),
            placement: Placement::default(),
            parsed: parsed::ParseCache::default(),
            inputs: inputs::Inputs::default(),
            health: health::LocalHealth::default(),
            dirty: true,
            last_reconcile: None,
            timers,
            sync: CatalogSync::default(),
            repair: MemberRepair::default(),
            hold,
            remote,
            reported_duplicates: BTreeSet::new(),
            drops: DropCounters::default(),
            replays: ReplayGuard::default(),
            active_since: None,
            refused: None,
            leaving_since: None,
            left: false,
        };
        node.handle_timeout(now);
        node
    }

    // ----- inputs -----

    /// Time passed; run whatever is due.
    pub fn handle_timeout(&mut self, now: Millis) {
        if let Some(due) = self.timers.next().filter(|t| *t <= now) {
            if let Some(factor) = self.health.observe(due, now) {
                self.membership.set_suspicion_scale(factor);
            }
        }
        self.now = now.max(self.now);
        if self.left {
            self.update_timers();
            return;
        }
        self.membership.handle_timeout(self.now);
        let hold_over = self.hold.deadline().is_some_and(|t| self.now >= t);
        if hold_over && self.hold.release(None, &mut self.out) {
            self.dirty = true;
        }
        if self.timers.is_due(Timer::Tick, self.now) {
            self.timers.set(Timer::Tick, Some(self.now.plus(TICK_MS)));
            self.tick();
        }
        if !self.is_out() {
            self.remote.handle_timeout(self.now, &mut self.out);
        }
        self.after_input();
    }

    /// Asks the live member `machine` to run `query`; the answer comes as a
    /// [`RemoteEvent`] with the returned id. Errors when the member is not live or too
    /// many questions are out. Doesn't affect any other state.
    pub fn ask_remote(&mut self, now: Millis, machine: &str, query: Query) -> Result<u64, String> {
        self.now = now.max(self.now);
        let asked = self.ask(machine, query);
        self.update_timers();
        asked
    }

    fn ask(&mut self, machine: &str, query: Query) -> Result<u64, String> {
        if !remote::query_ok(&query) {
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
        self.remote.ask(self.now, to, query, &mut self.out)
    }

    /// Sends the output of the question `id` from `to` back, cut to [`MAX_OUTPUT_BYTES`],
    /// and keeps it for repeats of the question.
    pub fn answer_remote(&mut self, now: Millis, to: SocketAddr, id: u64, code: i32, text: &str) {
        self.now = now.max(self.now);
        self.remote.answer(to, id, code, text, &mut self.out);
        self.update_timers();
    }

    // ----- outputs -----

    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.out.poll_transmit()
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.out.poll_action()
    }

    pub fn poll_event(&mut self) -> Option<NodeEvent> {
        self.out.poll_event()
    }

    pub fn poll_remote(&mut self) -> Option<RemoteEvent> {
        self.remote.poll_event()
    }

    /// When `handle_timeout` must next be called.
    pub fn poll_timeout(&self) -> Option<Millis> {
        if self.left {
            return None;
        }
        self.timers.next()
    }

    // ----- views -----

    pub fn machine_id(&self) -> &str {
        &self.cfg.machine_id
    }

    pub fn identity(&self) -> &Identity {
        self.membership.identity()
    }

    /// Other live members (alive or suspect), sorted.
    pub fn live_members(&self) -> Vec<Identity> {
        self.membership.live()
    }

    /// The placement this member computed last (all units, with waiting reasons).
    pub fn placement(&self) -> &Placement {
        &self.placement
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn drops(&self) -> DropCounters {
        self.drops
    }

    pub fn stats(&self) -> Stats {
        self.out.stats
    }

    /// Units the driver must report systemd's state of after a (re)start: those whose
    /// file we installed and those this member last reported. Until it does, the
    /// cluster believes our previous boot's reports.
    pub fn managed_units(&self) -> Vec<String> {
        let me = &self.cfg.machine_id;
        let mut v: BTreeSet<String> = crate::btree::set(self.installed.keys().cloned());
        v.extend(
            self.catalog
                .replica()
                .reports
                .keys()
                .filter(|(m, _)| m == me)
                .map(|(_, u)| u.clone()),
        );
        v.into_iter().collect()
    }

    /// Whether starts are still held after start-up (see [`JOIN_GRACE_MS`]).
    pub fn holding_starts(&self) -> bool {
        self.hold.holding()
    }

    /// Whether this member refused to take part (duplicate machine id).
    pub fn refused(&self) -> Option<&str> {
        self.refused.as_deref()
    }

    pub fn has_left(&self) -> bool {
        self.left
    }

    fn is_out(&self) -> bool {
        self.left || self.refused.is_some()
    }

    // ----- internals -----

    /// Merges records one by one: a report from an earlier life of this member is
    /// overruled before the next record is merged.
    fn merge_entries(&mut self, from: SocketAddr, entries: Vec<WireEntry>) {
        for e in entries {
            if self
                .sync
                .apply(self.now, from, &e, &mut self.catalog, &mut self.out)
            {
                self.dirty = true;
                self.overrule_report_from_past_life(&e);
            }
        }
    }

    fn handle_catalog(&mut self, from: SocketAddr, msg: Msg) {
        if let Msg::Entries(entries) = msg {
            return self.merge_entries(from, entries);
        }
        let (catalog, out) = (&mut self.catalog, &mut self.out);
        if self.sync.handle(self.now, from, msg, catalog, out) {
            self.dirty = true;
        }
    }

    /// Periodic work: joining, anti-entropy, missing texts, retries, expiry. The order
    /// of the random draws here is part of a seeded run.
    fn tick(&mut self) {
        if self.is_out() {
            return;
        }
        self.announce();
        let (m, rng, out) = (&self.membership, &mut self.rng, &mut self.out);
        self.hold.tick(m, rng, &self.catalog, out);
        if self.timers.is_due(Timer::AntiEntropy, self.now) {
            let next = self.now.plus(ANTI_ENTROPY_MS);
            self.timers.set(Timer::AntiEntropy, Some(next));
            if let Some(peer) = random_live(m, rng, 1).pop() {
                self.repair.anti_entropy(self.now, peer, m, out);
            }
        }
        self.sync.tick(self.now, &self.catalog, m, rng, out);
        let now = self.now;
        let before = self.pending.len();
        self.pending.retain(|_, p| match p {
            Pending::Start(t) | Pending::Stop(t) => now.since(*t) < ACTION_RETRY_MS,
        });
        if self.pending.len() != before {
            self.dirty = true;
        }
        let units_before = self.catalog.replica().units.len();
        self.catalog.expire(self.now);
        if self.catalog.replica().units.len() != units_before {
            self.dirty = true;
        }
        if let Some(since) = self.leaving_since {
            self.dirty = true;
            let all_stopped = !self.local.values().any(Status::is_running);
            if all_stopped || self.now.since(since) >= LEAVE_TIMEOUT_MS {
                self.membership.leave(self.now);
                self.drain_membership();
                self.left = true;
                self.out.emit(NodeEvent::Left);
            }
        }
    }

    /// Announces to the static peers: all of them while alone, one now and then once
    /// joined (heals partitions after the other side forgot us).
    fn announce(&mut self) {
        if !self.timers.is_due(Timer::Announce, self.now) {
            return;
        }
        let alone = self.membership.live_addrs().is_empty();
        let peers: Vec<SocketAddr> = self
            .cfg
            .peers
            .iter()
            .copied()
            .filter(|p| *p != self.cfg.addr)
            .collect();
        let next = if alone {
            self.membership.announce(self.now, &peers);
            JOIN_RETRY_MS
        } else {
            if !peers.is_empty() {
                let p = peers[self.rng.below(peers.len() as u64) as usize];
                self.membership.announce(self.now, &[p]);
            }
            REANNOUNCE_MS
        };
        self.timers.set(Timer::Announce, Some(self.now.plus(next)));
    }

    fn drain_membership(&mut self) {
        while let Some((to, data)) = self.membership.poll_send() {
            let packet = self.repair.wrap_swim(data, &self.membership, &self.catalog);
            self.out.send(to, &packet);
        }
        while let Some(e) = self.membership.poll_event() {
            self.dirty = true;
            match e {
                membership::Event::MemberUp(id) => self.out.emit(NodeEvent::MemberUp {
                    machine: id.machine,
                    addr: id.addr,
                }),
                membership::Event::MemberDown(id) => {
                    let (m, rng, out) = (&self.membership, &mut self.rng, &mut self.out);
                    self.repair.member_down(self.now, &id, m, rng, out);
                    self.out.emit(NodeEvent::MemberDown {
                        machine: id.machine,
                        addr: id.addr,
                    })
                }
                membership::Event::Active => {
                    self.active_since.get_or_insert(self.now);
                }
                membership::Event::Rejoined(id) => {
                    if id.boot > self.boot {
                        self.boot = id.boot;
                        self.restamp_reports();
                    }
                }
                membership::Event::Renamed(..)
                | membership::Event::Idle
                | membership::Event::Defunct => {}
            }
        }
    }

    /// After every input: membership's output, placement when due, rumours out.
    fn after_input(&mut self) {
        self.after_input_deferring_placement(false);
    }

    /// [`Node::after_input`]; with `defer`, a placement that is due is left to the
    /// reconcile timer (due now) instead of run here.
    fn after_input_deferring_placement(&mut self, defer: bool) {
        if self.left {
            self.update_timers();
            return;
        }
        self.drain_membership();
        if !defer && self.dirty && self.now >= self.reconcile_due() {
            self.dirty = false;
            self.last_reconcile = Some(self.now);
            self.check_duplicates();
            if self.refused.is_none() {
                self.reconcile();
            }
        }
        if self.refused.is_some() {
            self.drain_membership();
            self.dirty = false;
        } else {
            let (m, rng, out) = (&self.membership, &mut self.rng, &mut self.out);
            self.sync.flush_rumours(m, rng, out);
        }
        self.update_timers();
    }

    fn reconcile_due(&self) -> Millis {
        self.last_reconcile
            .map_or(self.now, |t| t.plus(RECONCILE_MIN_MS))
    }

    /// The deadlines the sub-protocols hold, into the timer table (after every input).
    fn update_timers(&mut self) {
        let reconcile = self.dirty.then(|| self.reconcile_due());
        self.timers.set(Timer::Reconcile, reconcile);
        self.timers.set(Timer::HoldEnd, self.hold.deadline());
        self.timers.set(Timer::Remote, self.remote.deadline());
        self.timers
            .set(Timer::Membership, self.membership.poll_timeout());
    }
}

#[cfg(test)]
mod tests;
