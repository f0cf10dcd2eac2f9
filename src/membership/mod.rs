//! SWIM membership over foca: who is alive, suspect or down; join, leave, duplicate machine ids.
//!
//! Architecture invariant: sans-IO. Bytes and the time come in; datagrams to send, timer
//! deadlines and events go out. foca's randomness comes from a seed. This module knows
//! nothing of units, the catalog or encryption (callers seal what it emits).

mod codec;
mod identity;
mod outbox;
pub mod rng;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use foca::{Config, Foca, Member, NoCustomBroadcast, PeriodicParams, State};

use codec::SwimCodec;
pub use identity::{Identity, MAX_METADATA_BYTES};
use outbox::Outbox;
use rng::SplitMix;

use crate::time::Millis;

/// What membership noticed, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    MemberUp(Identity),
    MemberDown(Identity),
    /// The member at this address restarted (or renewed itself): old, new.
    Renamed(Identity, Identity),
    /// Some member knows us: we have joined.
    Active,
    /// Every member we knew is gone.
    Idle,
    /// We were declared down and could not rejoin.
    Defunct,
    /// We were declared down and rejoined with this identity (a higher boot).
    Rejoined(Identity),
}

/// Timing, with the reason for each default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timing {
    /// How often each member probes one other. Shorter than memberlist's 1 s: with
    /// suspicion, a dead member's units run elsewhere in about 1.2 s on a LAN (fleet took
    /// 20 to 40 s). Probing is round-robin, so in a small cluster the dead member may
    /// wait a few periods for its next probe; a short period keeps that tail short.
    /// A probe costs two datagrams of about 165 bytes (frames): at 400 ms, most of an
    /// idle member's ~650 B/s (at 300 ms with the old 190-byte frames it was 1,270 B/s
    /// alone). 500 ms would bring an idle member under 600 B/s, but on real hosts it
    /// moved units half a second later (3 hosts: 1.79 s against 1.25 s; 400 ms: 1.37 s).
    /// What a stalled member is allowed, a period plus the suspicion, stays 900 ms.
    pub probe_period_ms: u64,
    /// How long to wait for a direct ack before asking others to probe: a LAN round trip
    /// at its worst plus margin.
    pub probe_rtt_ms: u64,
    /// Suspicion before down, per log10(cluster size) (at least 1): gives a slow but live
    /// member time to refute, growing slowly with size as in memberlist. 500 ms is
    /// several LAN round trips and scheduler hiccups, on top of the probe period the
    /// member already had to answer in. A live member silent for longer
    /// is declared down: it rejoins at once with a higher boot, and its units may run
    /// twice until placement's stickiness keeps one copy and the other stops.
    pub suspicion_ms_per_log: u64,
    /// How often to push membership updates to a few members besides probes.
    pub gossip_period_ms: u64,
    /// How often to try reaching members we believe down (heals partitions).
    pub announce_down_period_ms: u64,
    /// How often to announce to one live member and take its member list back (a
    /// datagram of the whole list, about 600 bytes at 10 members). Member repair's
    /// fingerprints fill in the members a join storm's rumours missed; this is a slow
    /// backstop (foca's LAN default).
    pub announce_period_ms: u64,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            probe_period_ms: 400,
            probe_rtt_ms: 150,
            suspicion_ms_per_log: 500,
            gossip_period_ms: 200,
            announce_down_period_ms: 2_000,
            announce_period_ms: 30_000,
        }
    }
}

/// Buckets of [`Membership::member_buckets`]: a member list differing by one member
/// costs one bucket's members to repair (about n/16).
pub const MEMBER_BUCKETS: usize = 16;

/// A member's bucket and fingerprint: from what names it (machine, address, boot),
/// not its metadata or SWIM incarnation, which two views may briefly disagree on.
/// Members compare these over the wire, so they are fed explicit little-endian
/// bytes (never `Hash` impls, which may differ across versions and architectures).
fn fingerprint(id: &Identity) -> (usize, u64) {
    use std::hash::Hasher;
    let addr = |h: &mut siphasher::sip::SipHasher13| {
        match id.addr.ip() {
            std::net::IpAddr::V4(ip) => h.write(&ip.octets()),
            std::net::IpAddr::V6(ip) => h.write(&ip.octets()),
        }
        h.write(&id.addr.port().to_le_bytes());
    };
    let mut h = siphasher::sip::SipHasher13::new_with_keys(0x6d656d62, 0x65727321);
    h.write(&(id.machine.len() as u64).to_le_bytes());
    h.write(id.machine.as_bytes());
    addr(&mut h);
    h.write(&id.boot.to_le_bytes());
    let mut b = siphasher::sip::SipHasher13::new_with_keys(0x6275636b, 0x65747321);
    addr(&mut b);
    ((b.finish() % MEMBER_BUCKETS as u64) as usize, h.finish())
}

/// foca packets leave room inside one datagram body for our envelope.
pub const MAX_SWIM_BYTES: usize = crate::wire::MAX_BODY_BYTES - 32;

/// Why membership refused input. Doesn't affect the membership state.
#[derive(Debug)]
pub struct Refused(pub String);

pub struct Membership {
    foca: Foca<Identity, SwimCodec, SplitMix, NoCustomBroadcast>,
    out: Outbox,
    /// Our identity as the codec sees it (see `codec.rs`): kept equal to foca's.
    me: Arc<Mutex<Identity>>,
    /// What the configuration is built from (see [`Membership::set_suspicion_scale`]).
    timing: Timing,
    cluster_size: u32,
}

fn config(timing: &Timing, cluster_size: u32) -> Config {
    let size = NonZeroU32::new(cluster_size.max(1)).unwrap_or(NonZeroU32::MIN);
    let mut c = Config::new_lan(size);
    let log = f64::max(1.0, f64::from(size.get()).log10());
    c.probe_period = Duration::from_millis(timing.probe_period_ms);
    c.probe_rtt = Duration::from_millis(timing.probe_rtt_ms);
    c.suspect_to_down_after =
        Duration::from_millis((timing.suspicion_ms_per_log as f64 * log) as u64);
    c.max_packet_size = NonZeroUsize::new(MAX_SWIM_BYTES).unwrap_or(NonZeroUsize::MIN);
    c.periodic_gossip = Some(PeriodicParams {
        frequency: Duration::from_millis(timing.gossip_period_ms),
        num_members: NonZeroUsize::new(3).unwrap_or(NonZeroUsize::MIN),
    });
    c.periodic_announce = Some(PeriodicParams {
        frequency: Duration::from_millis(timing.announce_period_ms),
        num_members: NonZeroUsize::MIN,
    });
    c.periodic_announce_to_down_members = Some(PeriodicParams {
        frequency: Duration::from_millis(timing.announce_down_period_ms),
        num_members: NonZeroUsize::new(2).unwrap_or(NonZeroUsize::MIN),
    });
    c
}

impl Membership {
    /// A member that knows only itself. `cluster_size` is the expected size (tunes
    /// dissemination and suspicion); `seed` drives every random choice.
    pub fn new(
        now: Millis,
        me: Identity,
        timing: &Timing,
        cluster_size: u32,
        seed: u64,
    ) -> Membership {
        let (codec, shared) = SwimCodec::new(me.clone());
        let foca = Foca::new(me, config(timing, cluster_size), SplitMix::new(seed), codec);
        Membership {
            foca,
            out: Outbox {
                now,
                ..Outbox::default()
            },
            me: shared,
            timing: timing.clone(),
            cluster_size,
        }
    }

    /// Gives a member suspected from now on `factor` times the usual time to refute
    /// before it is declared down (Lifeguard's local health: a member that runs late
    /// cannot tell a slow peer from its own slowness, so it judges less quickly).
    /// Suspicions already running keep their deadline.
    pub fn set_suspicion_scale(&mut self, factor: u32) {
        let mut c = config(&self.timing, self.cluster_size);
        c.suspect_to_down_after = c.suspect_to_down_after.saturating_mul(factor.max(1));
        // Only the suspicion time differs, which foca allows to change.
        let _ = self.foca.set_config(c);
    }

    /// After anything that may have renewed our identity: the codec decodes for it.
    fn sync_me(&mut self) {
        let mut me = self.me.lock().unwrap_or_else(|e| e.into_inner());
        if *me != *self.foca.identity() {
            *me = self.foca.identity().clone();
        }
    }

    pub fn identity(&self) -> &Identity {
        self.foca.identity()
    }

    /// Announces us to peers known only by address (the static peer list).
    pub fn announce(&mut self, now: Millis, peers: &[SocketAddr]) {
        self.out.now = now;
        let me = self.foca.identity().addr;
        for p in peers.iter().filter(|p| **p != me) {
            // Only fails on encoding our own identity, which is bounded; nothing to undo.
            let _ = self.foca.announce(Identity::placeholder(*p), &mut self.out);
        }
    }

    /// Takes one SWIM packet (already authenticated and unwrapped).
    pub fn handle_data(&mut self, now: Millis, data: &[u8]) -> Result<(), Refused> {
        self.out.now = now;
        let r = self
            .foca
            .handle_data(data, &mut self.out)
            .map_err(|e| Refused(e.to_string()));
        self.sync_me();
        r
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Millis) {
        self.out.now = now;
        // Bounded: a timer submitted while firing is due at now + 1 ms at the earliest.
        while let Some(entry) = self.out.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let timer = entry.remove();
            let _ = self.foca.handle_timer(timer, &mut self.out);
        }
        self.sync_me();
    }

    pub fn poll_timeout(&self) -> Option<Millis> {
        self.out.timers.keys().next().map(|(t, _)| *t)
    }

    pub fn poll_send(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.out.sends.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.out.events.pop_front()
    }

    /// Tells the cluster we are leaving; afterwards we are out of it.
    pub fn leave(&mut self, now: Millis) {
        self.out.now = now;
        let _ = self.foca.leave_cluster(&mut self.out);
        self.sync_me();
    }

    /// Addresses of the other live members, in foca's (deterministic) order; cheaper than [`Self::live`].
    pub fn live_addrs(&self) -> Vec<SocketAddr> {
        self.foca.iter_members().map(|m| m.id().addr).collect()
    }

    /// Other members believed alive or suspect, sorted.
    pub fn live(&self) -> Vec<Identity> {
        let mut v: Vec<Identity> = self.foca.iter_members().map(|m| m.id().clone()).collect();
        crate::sort::sort(&mut v);
        v
    }

    /// Members of `among` we hold as down (at most `max`), to share in anti-entropy: a member that
    /// missed the rumour of a death learns it from the next peer it syncs with, instead of
    /// waiting until it probes the dead member itself.
    pub fn down_members(
        &self,
        among: &BTreeMap<Identity, Millis>,
        max: usize,
    ) -> Vec<Member<Identity>> {
        let mut v: Vec<Member<Identity>> = self
            .foca
            .iter_membership_state()
            .filter(|m| m.state() == State::Down && among.contains_key(m.id()))
            .cloned()
            .collect();
        crate::sort::sort_by(&mut v, |a, b| a.id().cmp(b.id()));
        v.truncate(max);
        v
    }

    /// Fingerprints of the members we hold as live, us included, in [`MEMBER_BUCKETS`]
    /// buckets by address. Two members whose lists agree have equal fingerprints; where
    /// a bucket differs, [`Self::members_in_other_buckets`] lists what to send. SWIM's
    /// rumours miss a join now and then in a join storm, and a member that missed one
    /// would otherwise learn it only when the newcomer happens to probe it.
    pub fn member_buckets(&self) -> Vec<u64> {
        let mut out = vec![0u64; MEMBER_BUCKETS];
        let me = self.foca.identity();
        for id in self
            .foca
            .iter_members()
            .map(|m| m.id())
            .chain(std::iter::once(me))
        {
            let (bucket, print) = fingerprint(id);
            out[bucket] ^= print;
        }
        out
    }

    /// Our live members (us included) in the buckets where `theirs` differs from ours,
    /// at most `max`, sorted; empty when `theirs` is malformed.
    pub fn members_in_other_buckets(&self, theirs: &[u64], max: usize) -> Vec<Member<Identity>> {
        let mine = self.member_buckets();
        if theirs.len() != mine.len() {
            return Vec::new();
        }
        let differs = |id: &Identity| {
            let (b, _) = fingerprint(id);
            mine[b] != theirs[b]
        };
        let me = Member::alive(self.foca.identity().clone());
        let mut v: Vec<Member<Identity>> = self
            .foca
            .iter_members()
            .filter(|m| differs(m.id()))
            .cloned()
            .chain(differs(me.id()).then_some(me))
            .collect();
        crate::sort::sort_by(&mut v, |a, b| a.id().cmp(b.id()));
        v.truncate(max);
        v
    }

    /// Takes live members another member listed (see [`Self::member_buckets`]); anything
    /// but alive is ignored, and SWIM's own rules (incarnations, boots) decide the rest.
    pub fn apply_alive(&mut self, now: Millis, members: Vec<Member<Identity>>) {
        self.out.now = now;
        let alive = members.into_iter().filter(|m| m.state() == State::Alive);
        let _ = self.foca.apply_many(alive, true, &mut self.out);
        self.sync_me();
    }

    /// Takes deaths another member reported (anything but `Down` is ignored: liveness is
    /// only learnt from the members themselves or SWIM's own rumours).
    pub fn apply_down(&mut self, now: Millis, members: Vec<Member<Identity>>) {
        self.out.now = now;
        let down = members.into_iter().filter(|m| m.state() == State::Down);
        let _ = self.foca.apply_many(down, true, &mut self.out);
        self.sync_me();
    }

    /// Machine ids claimed from more than one address among us and the live members.
    pub fn duplicate_machine_ids(&self) -> BTreeMap<String, Vec<SocketAddr>> {
        let mut by_machine: BTreeMap<String, Vec<SocketAddr>> = BTreeMap::new();
        for id in self.live().iter().chain(std::iter::once(self.identity())) {
            let addrs = by_machine.entry(id.machine.clone()).or_default();
            if !addrs.contains(&id.addr) {
                addrs.push(id.addr);
            }
        }
        by_machine.retain(|_, a| a.len() > 1);
        for a in by_machine.values_mut() {
            crate::sort::sort(a);
        }
        by_machine
    }
}

/// What kind of SWIM message `data` is (`ping`, `ack`, `feed`, ...), for traffic
/// breakdowns; `?` when it does not decode.
pub fn describe(data: &[u8]) -> &'static str {
    use foca::{Codec, Message};
    let (mut codec, _) = SwimCodec::new(Identity::placeholder(([0, 0, 0, 0], 0).into()));
    let Ok(header) = codec.decode_header(data) else {
        return "?";
    };
    match header.message {
        Message::Ping(_) => "ping",
        Message::Ack(_) => "ack",
        Message::PingReq { .. } => "ping-req",
        Message::IndirectPing { .. } => "indirect-ping",
        Message::IndirectAck { .. } => "indirect-ack",
        Message::ForwardedAck { .. } => "forwarded-ack",
        Message::Announce => "announce",
        Message::Feed => "feed",
        Message::Gossip => "gossip",
        Message::Broadcast => "broadcast",
        Message::TurnUndead => "turn-undead",
    }
}

#[cfg(test)]
mod tests;
