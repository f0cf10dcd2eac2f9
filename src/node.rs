//! One member's whole state machine: membership + catalog + placement + what to start and stop.
//!
//! Driver contract (quinn-proto style): feed inputs with `handle_datagram`,
//! `handle_timeout`, `handle_systemd_report` and `handle_command`, each with the
//! current time; after every call drain `poll_transmit` (send each datagram to its
//! address), `poll_action` (apply each to local systemd, then report back what
//! systemd says), and `poll_event` (log it); then sleep until `poll_timeout` or
//! the next datagram. Save `snapshot()` after commands and periodically.
//!
//! Architecture invariant: no clock, socket, file or unseeded randomness in here;
//! the same inputs give the same outputs. A non-global unit is started here only
//! when no other live member reports running it; a unit placement moves away is
//! stopped here first and that is reported before anyone else may start it.

pub mod answers;
mod command;
mod reconcile;
mod remote;
mod snapshot;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::catalog::{self, Catalog, Digest, Msg, ReportEntry, ReportVersion, Status, WireEntry};
use crate::membership::rng::SplitMix;
use crate::membership::{self, Identity, Membership, Timing};
use crate::schedule::Placement;
use crate::time::Millis;
use crate::wire::{self, DropCounters, KeyRing, NonceSource, ReplayGuard};

pub use command::{Command, CommandError};
pub use remote::{
    Query, RemoteEvent, RemoteMsg, ASK_TIMEOUT_MS, MAX_JOURNAL_LINES, MAX_OUTPUT_BYTES, RESEND_MS,
    SILENCE_MS,
};
pub use snapshot::SnapshotError;

/// How often the periodic work runs (anti-entropy, text fetches, retries, expiry).
pub const TICK_MS: u64 = 250;
/// Anti-entropy: one push-pull with one random member this often. Repairs what rumours missed.
pub const ANTI_ENTROPY_MS: u64 = 1_000;
/// While alone, announce to the static peers this often.
pub const JOIN_RETRY_MS: u64 = 1_000;
/// Even when joined, announce to one static peer this often: heals partitions after the
/// other side's members have been forgotten.
pub const REANNOUNCE_MS: u64 = 10_000;
/// New records are pushed to this many random members, once, by everyone who learns them
/// (about 2% of members miss a rumour at fanout 4; anti-entropy repairs them).
pub const RUMOUR_FANOUT: usize = 4;
/// A missing text is asked for again after this long.
pub const TEXT_RETRY_MS: u64 = 1_000;
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
/// Most events queued between two drains.
pub const MAX_EVENTS: usize = 4096;
/// Most datagrams queued for sending between two drains.
pub const MAX_TRANSMITS: usize = 65_536;

/// Parses a unit's `[X-Fleet]` options from its name and text.
pub type ParseFn = fn(&str, &str) -> Result<crate::unit::FleetOptions, String>;

/// The production parser: shoal's unit-file parser.
pub fn parse_fleet_options(name: &str, text: &str) -> Result<crate::unit::FleetOptions, String> {
    crate::unit::parse_unit(name, name, text)
        .map(|u| u.options)
        .map_err(|e| e.to_string())
}

/// Everything a member is started with.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub machine_id: String,
    pub addr: SocketAddr,
    /// fleet's metadata string, `key=value,...` (at most 256 bytes).
    pub metadata: String,
    /// Static peer addresses to join through (may include our own).
    pub peers: Vec<SocketAddr>,
    pub keys: KeyRing,
    /// Fresh random bytes at every start (from the OS in the agent, from the run's seed
    /// in the simulation): drives nonces and every random choice.
    pub seed: [u8; 32],
    /// The expected number of members (tunes dissemination and suspicion).
    pub cluster_size: u32,
    pub timing: Timing,
    pub tombstone_ttl_ms: u64,
    /// See [`JOIN_GRACE_MS`]; it applies only when `peers` names another member.
    pub join_grace_ms: u64,
    pub parse: ParseFn,
}

impl NodeConfig {
    pub fn new(machine_id: &str, addr: SocketAddr, keys: KeyRing, seed: [u8; 32]) -> NodeConfig {
        NodeConfig {
            machine_id: machine_id.to_string(),
            addr,
            metadata: String::new(),
            peers: Vec::new(),
            keys,
            seed,
            cluster_size: 3,
            timing: Timing::default(),
            tombstone_ttl_ms: catalog::TOMBSTONE_TTL_MS,
            join_grace_ms: JOIN_GRACE_MS,
            parse: parse_fleet_options,
        }
    }
}

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

/// The envelope inside every datagram body.
#[derive(Debug, Serialize, Deserialize)]
enum Packet {
    Swim(Vec<u8>),
    Catalog(Msg),
    /// Members the sender holds as down (membership anti-entropy).
    Down(Vec<foca::Member<Identity>>),
    /// Status/journal queries (added last: older members drop it as undecodable).
    Remote(RemoteMsg),
    /// A member holding its starts after start-up sends its catalog summary: answered
    /// like a `Summary` that asks for a reply, and with `Settled` when equal.
    Joining(Vec<u64>),
    /// "I am settled (past my own start hold) and this is my summary": the holder
    /// releases its starts when the summary equals its own.
    Settled(Vec<u64>),
    /// Membership anti-entropy: the sender's member fingerprints
    /// ([`Membership::member_buckets`]); `reply` asks for ours back.
    MemberSummary {
        buckets: Vec<u64>,
        reply: bool,
    },
    /// Live members of the buckets that differed (at most [`MAX_MEMBERS_LISTED`]).
    Alive(Vec<foca::Member<Identity>>),
}

/// Most members listed in one `Packet::Down` (keeps it within one datagram).
pub const MAX_DOWN_LISTED: usize = 12;
/// Most members listed in one `Packet::Alive`, and most such packets per repair.
pub const MAX_MEMBERS_LISTED: usize = 12;
pub const MAX_ALIVE_PACKETS: usize = 4;
/// Deaths are shared in anti-entropy for this long after we learnt them: long enough for
/// every member to sync with a few peers.
pub const RECENT_DOWN_MS: u64 = 30_000;

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
    nonces: NonceSource,
    rng: SplitMix,
    /// Highest boot number we have used (identity renewals bump it).
    boot: u64,
    report_counter: u64,
    /// What local systemd last said, by unit.
    local: BTreeMap<String, Status>,
    /// Units whose file we installed, with the text's digest.
    installed: BTreeMap<String, Digest>,
    pending: BTreeMap<String, Pending>,
    placement: Placement,
    dirty: bool,
    last_reconcile: Option<Millis>,
    rumours: Vec<WireEntry>,
    asked: BTreeMap<Digest, Millis>,
    transmits: VecDeque<(SocketAddr, Vec<u8>)>,
    actions: VecDeque<Action>,
    events: VecDeque<NodeEvent>,
    reported_duplicates: BTreeSet<(String, Vec<SocketAddr>)>,
    /// Members we saw die recently, and when.
    recent_down: BTreeMap<Identity, Millis>,
    drops: DropCounters,
    replays: ReplayGuard,
    stats: Stats,
    next_tick: Millis,
    next_anti_entropy: Millis,
    next_announce: Millis,
    active_since: Option<Millis>,
    /// Starts are held until then (see [`JOIN_GRACE_MS`]); `None` once settled.
    hold_starts_until: Option<Millis>,
    refused: Option<String>,
    leaving_since: Option<Millis>,
    left: bool,
    remote: remote::Remote,
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
        let hold_starts_until =
            (others && cfg.join_grace_ms > 0).then(|| now.plus(cfg.join_grace_ms));
        let catalog = if catalog.replica().units.is_empty() && catalog.replica().reports.is_empty()
        {
            Catalog::new(cfg.tombstone_ttl_ms)
        } else {
            catalog
        };
        let mut node = Node {
            cfg,
            now,
            membership,
            catalog,
            nonces,
            rng,
            boot,
            report_counter,
            local: BTreeMap::new(),
            installed,
            pending: BTreeMap::new(),
            placement: Placement::default(),
            dirty: true,
            last_reconcile: None,
            rumours: Vec::new(),
            asked: BTreeMap::new(),
            transmits: VecDeque::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
            reported_duplicates: BTreeSet::new(),
            recent_down: BTreeMap::new(),
            drops: DropCounters::default(),
            replays: ReplayGuard::default(),
            stats: Stats::default(),
            next_tick: now,
            next_anti_entropy: now.plus(ANTI_ENTROPY_MS),
            next_announce: now,
            active_since: None,
            hold_starts_until,
            refused: None,
            leaving_since: None,
            left: false,
            remote,
        };
        node.handle_timeout(now);
        node
    }

    // ----- inputs -----

    /// A datagram arrived from `from`.
    pub fn handle_datagram(&mut self, now: Millis, from: SocketAddr, bytes: &[u8]) {
        self.now = now.max(self.now);
        if self.is_out() {
            return;
        }
        self.stats.datagrams_received += 1;
        match wire::decode_fresh::<Packet>(
            &self.cfg.keys,
            bytes,
            &mut self.drops,
            &mut self.replays,
        ) {
            Some(Packet::Swim(data)) if self.membership.handle_data(self.now, &data).is_err() => {
                self.stats.swim_refused += 1;
            }
            Some(Packet::Swim(_)) => {}
            Some(Packet::Catalog(msg)) => self.handle_catalog(from, msg),
            Some(Packet::Down(members)) => {
                let members = members.into_iter().take(MAX_DOWN_LISTED).collect();
                self.membership.apply_down(self.now, members);
            }
            Some(Packet::Remote(msg)) => self.handle_remote(from, msg),
            Some(Packet::Joining(buckets)) => {
                let mine = self.catalog.summary();
                if buckets != mine {
                    // Repaired like any summary that asks for a reply; it asks again next tick.
                    let summary = Msg::Summary {
                        buckets,
                        reply: true,
                    };
                    self.handle_catalog(from, summary);
                } else if self.hold_starts_until.is_none() {
                    self.send(from, &Packet::Settled(mine));
                }
            }
            Some(Packet::MemberSummary { buckets, reply }) => {
                self.handle_member_summary(from, buckets, reply)
            }
            Some(Packet::Alive(members)) => {
                let members = members.into_iter().take(MAX_MEMBERS_LISTED).collect();
                self.membership.apply_alive(self.now, members);
            }
            Some(Packet::Settled(buckets)) => {
                let from_live = self.membership.live_addrs().contains(&from);
                if from_live && buckets == self.catalog.summary() {
                    self.release_starts(Some(from));
                }
            }
            None => {}
        }
        self.after_input();
    }

    /// Time passed; run whatever is due.
    pub fn handle_timeout(&mut self, now: Millis) {
        self.now = now.max(self.now);
        if self.left {
            return;
        }
        self.membership.handle_timeout(self.now);
        if self.hold_starts_until.is_some_and(|t| self.now >= t) {
            self.release_starts(None);
        }
        if self.now >= self.next_tick {
            self.next_tick = self.now.plus(TICK_MS);
            self.tick();
        }
        if !self.is_out() {
            self.remote_timers();
        }
        self.after_input();
    }

    /// Local systemd's state of `unit`; `None` when systemd doesn't have it.
    pub fn handle_systemd_report(&mut self, now: Millis, unit: &str, status: Option<Status>) {
        self.now = now.max(self.now);
        if unit.len() > catalog::MAX_NAME_BYTES {
            return;
        }
        let status = status.map(|mut s| {
            s.active.truncate(catalog::MAX_STATUS_BYTES);
            s.sub.truncate(catalog::MAX_STATUS_BYTES);
            s
        });
        let running = status.as_ref().is_some_and(Status::is_running);
        match self.pending.get(unit) {
            Some(Pending::Start(_))
                if running || status.as_ref().is_some_and(|s| s.active == "failed") =>
            {
                self.pending.remove(unit);
            }
            Some(Pending::Stop(_)) if !running => {
                self.pending.remove(unit);
            }
            _ => {}
        }
        let before = self.local.get(unit).cloned();
        match &status {
            Some(s) => self.local.insert(unit.to_string(), s.clone()),
            None => self.local.remove(unit),
        };
        let known = self
            .catalog
            .replica()
            .reports
            .get(&(self.cfg.machine_id.clone(), unit.to_string()));
        let same_as_reported =
            known.is_some_and(|r| r.status == status) || (known.is_none() && status.is_none());
        if before != status || !same_as_reported {
            self.write_report(unit, status);
        }
        self.dirty = true;
        self.after_input();
    }

    // ----- outputs -----

    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.transmits.pop_front()
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<NodeEvent> {
        self.events.pop_front()
    }

    /// When `handle_timeout` must next be called.
    pub fn poll_timeout(&self) -> Option<Millis> {
        if self.left {
            return None;
        }
        let mut t = self.next_tick;
        if let Some(m) = self.membership.poll_timeout() {
            t = t.min(m);
        }
        if let Some(h) = self.hold_starts_until {
            t = t.min(h);
        }
        if self.dirty {
            t = t.min(self.reconcile_due());
        }
        if let Some(r) = self.remote.deadline() {
            t = t.min(r);
        }
        Some(t)
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
        self.stats
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
        self.hold_starts_until.is_some()
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

    /// A report about this member that beats the one it holds was written by an earlier
    /// life of it (a boot number reused after a crash before the last snapshot, say).
    /// It may claim a unit that systemd here no longer runs, and it would win every merge
    /// from now on; so move to a boot above it and say again what really runs here.
    fn overrule_report_from_past_life(&mut self, entry: &WireEntry) {
        let WireEntry::Report {
            member,
            unit,
            entry,
        } = entry
        else {
            return;
        };
        if *member != self.cfg.machine_id {
            return;
        }
        self.boot = self.boot.max(entry.version.boot.saturating_add(1));
        self.restamp_reports();
        let truth = self.local.get(unit).cloned();
        self.write_report(unit, truth);
    }

    /// Publishes this member's reports again under its current boot: the others count
    /// only reports from a member's current boot, so reports from before a rejoin
    /// would otherwise stop counting while the units still run here.
    fn restamp_reports(&mut self) {
        let me = self.cfg.machine_id.clone();
        let own: Vec<(String, Option<Status>)> = self
            .catalog
            .replica()
            .reports
            .iter()
            .filter(|((m, _), r)| *m == me && r.version.boot < self.boot)
            .map(|((_, unit), r)| (unit.clone(), r.status.clone()))
            .collect();
        for (unit, status) in own {
            self.write_report(&unit, status);
        }
    }

    fn write_report(&mut self, unit: &str, status: Option<Status>) {
        self.report_counter += 1;
        let entry = ReportEntry {
            version: ReportVersion {
                boot: self.boot,
                counter: self.report_counter,
            },
            status,
        };
        let w = WireEntry::Report {
            member: self.cfg.machine_id.clone(),
            unit: unit.to_string(),
            entry,
        };
        match self.catalog.apply(self.now, w.clone()) {
            Ok(_) => self.rumours.push(w),
            Err(_) => self.stats.records_refused += 1,
        }
    }

    fn handle_catalog(&mut self, from: SocketAddr, msg: Msg) {
        match msg {
            Msg::Entries(entries) => {
                for e in entries {
                    match self.catalog.apply(self.now, e.clone()) {
                        Ok(applied) => {
                            if applied.changed {
                                self.dirty = true;
                                self.rumours.push(e.clone());
                                self.overrule_report_from_past_life(&e);
                            }
                            if let Some(d) = applied.missing_text {
                                self.ask_text(d, from);
                            }
                        }
                        Err(_) => self.stats.records_refused += 1,
                    }
                }
            }
            Msg::Summary { buckets, reply } => {
                let mine = self.catalog.summary();
                if buckets == mine {
                    return;
                }
                for m in catalog::pack(self.catalog.differing(self.now, &buckets)) {
                    self.send_catalog(from, m);
                }
                if reply {
                    self.send_catalog(
                        from,
                        Msg::Summary {
                            buckets: mine,
                            reply: false,
                        },
                    );
                }
            }
            Msg::WantText(d) => {
                for c in self.catalog.chunks_of(&d) {
                    self.send_catalog(from, Msg::Chunk(c));
                }
            }
            Msg::Chunk(c) => {
                if self.catalog.accept_chunk(self.now, c) {
                    self.dirty = true;
                }
            }
        }
    }

    fn handle_member_summary(&mut self, from: SocketAddr, buckets: Vec<u64>, reply: bool) {
        let mine = self.membership.member_buckets();
        if buckets == mine {
            return;
        }
        let differing = self
            .membership
            .members_in_other_buckets(&buckets, MAX_MEMBERS_LISTED * MAX_ALIVE_PACKETS);
        for chunk in differing.chunks(MAX_MEMBERS_LISTED) {
            self.send(from, &Packet::Alive(chunk.to_vec()));
        }
        if reply {
            let packet = Packet::MemberSummary {
                buckets: mine,
                reply: false,
            };
            self.send(from, &packet);
        }
    }

    fn release_starts(&mut self, by: Option<SocketAddr>) {
        if self.hold_starts_until.take().is_some() {
            self.dirty = true;
            self.emit(NodeEvent::StartsReleased { by });
        }
    }

    fn ask_text(&mut self, d: Digest, to: SocketAddr) {
        if self
            .asked
            .get(&d)
            .is_some_and(|t| self.now.since(*t) < TEXT_RETRY_MS)
        {
            return;
        }
        self.asked.insert(d, self.now);
        self.send_catalog(to, Msg::WantText(d));
    }

    fn send_catalog(&mut self, to: SocketAddr, msg: Msg) {
        self.send(to, &Packet::Catalog(msg));
    }

    fn send(&mut self, to: SocketAddr, packet: &Packet) {
        if to == self.cfg.addr || self.transmits.len() >= MAX_TRANSMITS {
            return;
        }
        // Bodies are built within the size limit; a failure would be a bug upstream, and
        // dropping one datagram is what the protocol tolerates anyway.
        if let Ok(d) = wire::encode(&self.cfg.keys, &mut self.nonces, packet) {
            self.stats.datagrams_sent += 1;
            self.stats.bytes_sent += d.len() as u64;
            self.transmits.push_back((to, d));
        }
    }

    fn random_live(&mut self, n: usize) -> Vec<SocketAddr> {
        let mut live: Vec<SocketAddr> = self.membership.live_addrs();
        let mut out = Vec::new();
        while out.len() < n && !live.is_empty() {
            let i = self.rng.below(live.len() as u64) as usize;
            out.push(live.swap_remove(i));
        }
        out
    }

    /// Periodic work: joining, anti-entropy, missing texts, retries, expiry.
    fn tick(&mut self) {
        if self.is_out() {
            return;
        }
        let alone = self.membership.live_addrs().is_empty();
        if self.now >= self.next_announce {
            let peers: Vec<SocketAddr> = self
                .cfg
                .peers
                .iter()
                .copied()
                .filter(|p| *p != self.cfg.addr)
                .collect();
            if alone {
                self.membership.announce(self.now, &peers);
                self.next_announce = self.now.plus(JOIN_RETRY_MS);
            } else {
                if !peers.is_empty() {
                    let p = peers[self.rng.below(peers.len() as u64) as usize];
                    self.membership.announce(self.now, &[p]);
                }
                self.next_announce = self.now.plus(REANNOUNCE_MS);
            }
        }
        if self.hold_starts_until.is_some() {
            if let Some(peer) = self.random_live(1).pop() {
                let buckets = self.catalog.summary();
                self.send(peer, &Packet::Joining(buckets));
            }
        }
        if self.now >= self.next_anti_entropy {
            self.next_anti_entropy = self.now.plus(ANTI_ENTROPY_MS);
            if let Some(peer) = self.random_live(1).pop() {
                let buckets = self.catalog.summary();
                self.send_catalog(
                    peer,
                    Msg::Summary {
                        buckets,
                        reply: true,
                    },
                );
                let now = self.now;
                self.recent_down
                    .retain(|_, t| now.since(*t) < RECENT_DOWN_MS);
                let down = self
                    .membership
                    .down_members(&self.recent_down, MAX_DOWN_LISTED);
                if !down.is_empty() {
                    self.send(peer, &Packet::Down(down));
                }
                let buckets = self.membership.member_buckets();
                self.send(
                    peer,
                    &Packet::MemberSummary {
                        buckets,
                        reply: true,
                    },
                );
            }
        }
        let missing = self.catalog.missing_texts();
        for d in missing.into_iter().take(2) {
            if let Some(peer) = self.random_live(1).pop() {
                self.ask_text(d, peer);
            }
        }
        self.asked
            .retain(|_, t| self.now.since(*t) < 10 * TEXT_RETRY_MS);
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
                self.emit(NodeEvent::Left);
            }
        }
    }

    fn drain_membership(&mut self) {
        while let Some((to, data)) = self.membership.poll_send() {
            self.send(to, &Packet::Swim(data));
        }
        while let Some(e) = self.membership.poll_event() {
            self.dirty = true;
            match e {
                membership::Event::MemberUp(id) => self.emit(NodeEvent::MemberUp {
                    machine: id.machine,
                    addr: id.addr,
                }),
                membership::Event::MemberDown(id) => {
                    if self.recent_down.len() < MAX_DOWN_LISTED * 8 {
                        self.recent_down.insert(id.clone(), self.now);
                    }
                    self.spread_down(&id);
                    self.emit(NodeEvent::MemberDown {
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

    /// Tells a few live members at once that `id` is down, as everyone does who learns
    /// it first-hand or from such a rumour: its units are started elsewhere only once the
    /// member that would run them knows, and SWIM's piggybacked gossip alone takes a few
    /// probe periods to get there in a cluster of ten.
    fn spread_down(&mut self, id: &Identity) {
        let only = BTreeMap::from([(id.clone(), self.now)]);
        let down = self.membership.down_members(&only, 1);
        if down.is_empty() {
            return;
        }
        let packet = Packet::Down(down);
        for peer in self.random_live(RUMOUR_FANOUT) {
            self.send(peer, &packet);
        }
    }

    /// Queues an event; past [`MAX_EVENTS`] undrained events the oldest is dropped.
    fn emit(&mut self, e: NodeEvent) {
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }

    fn check_duplicates(&mut self) {
        for (machine, addrs) in self.membership.duplicate_machine_ids() {
            if machine == self.cfg.machine_id && self.refused.is_none() {
                let newcomer = self
                    .active_since
                    .is_none_or(|t| self.now.since(t) < DUPLICATE_GRACE_MS);
                if newcomer {
                    let reason = format!(
                        "machine id {machine} is already used by a member at {}; cloned image? give this host its own /etc/machine-id",
                        addrs.iter().filter(|a| **a != self.cfg.addr).map(|a| a.to_string()).collect::<Vec<_>>().join(", ")
                    );
                    self.refused = Some(reason.clone());
                    self.membership.leave(self.now);
                    self.emit(NodeEvent::Refused { reason });
                    for unit in self
                        .local
                        .iter()
                        .filter(|(_, s)| s.is_running())
                        .map(|(u, _)| u.clone())
                        .collect::<Vec<_>>()
                    {
                        self.actions.push_back(Action::Stop { unit });
                    }
                }
            }
            if self
                .reported_duplicates
                .insert((machine.clone(), addrs.clone()))
            {
                self.emit(NodeEvent::DuplicateMachineId { machine, addrs });
            }
        }
    }

    fn after_input(&mut self) {
        if self.left {
            return;
        }
        self.drain_membership();
        if self.dirty && self.now >= self.reconcile_due() {
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
            return;
        }
        self.flush_rumours();
    }

    fn reconcile_due(&self) -> Millis {
        self.last_reconcile
            .map_or(self.now, |t| t.plus(RECONCILE_MIN_MS))
    }

    fn flush_rumours(&mut self) {
        if self.rumours.is_empty() {
            return;
        }
        let rumours = std::mem::take(&mut self.rumours);
        let targets = self.random_live(RUMOUR_FANOUT);
        for m in catalog::pack(rumours) {
            for t in &targets {
                self.send_catalog(*t, m.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests;
