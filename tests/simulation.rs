//! The whole-cluster simulation: seeded runs with faults, then healing, then checkers.
//!
//! `cargo test --test simulation` runs a few dozen fixed seeds. Longer sweeps:
//! `cargo xtask sim --seeds N [--first-seed S]`; one seed: `cargo xtask sim --seeds 1 --first-seed S`.

mod sim;

use shoal::membership::rng::SplitMix;
use shoal::node::testing::{start, submit};
use shoal::node::{Command, NodeEvent, RemoteEvent};
use shoal::time::Millis;
use sim::{check, units, Cluster, Faults};

/// Faults last this long; then the network heals and crashed members come back.
const FAULT_PHASE_MS: u64 = 30_000;
/// After healing, everything must converge within this bound.
const CONVERGE_BOUND_MS: u64 = 60_000;

fn replay_hint(seed: u64) -> String {
    format!("replay: cargo xtask sim --seeds 1 --first-seed {seed}")
}

/// One seeded run: boot, faults with commands, heal, converge. Ok: time to converge.
fn run_seed(seed: u64) -> Result<u64, String> {
    let mut r = SplitMix::new(seed ^ 0x51u64);
    let n = 3 + r.below(5) as usize;
    let mut c = Cluster::new(seed, n);
    let faults = Faults {
        loss_permille: r.below(150),
        dup_permille: r.below(50),
        delay_min_ms: 1,
        delay_max_ms: 2 + r.below(80),
        blocked: Default::default(),
        start_fail_permille: r.below(100),
    };
    for i in 0..n {
        c.boot(i);
        let t = c.now.plus(r.below(300));
        c.run_until(t);
    }
    c.run_for(2_000);
    for name in units::NAMES {
        let i = r.below(n as u64) as usize;
        c.command(i, submit(name, &units::text_of(name)));
        let t = c.now.plus(r.below(100));
        c.run_until(t);
        if r.below(10) < 8 {
            let i = r.below(n as u64) as usize;
            c.command(i, start(name));
        }
    }
    c.faults = faults.clone();
    let end = c.now.plus(FAULT_PHASE_MS);
    let mut down_until: Vec<Option<Millis>> = vec![None; n];
    while c.now < end {
        let step = 300 + r.below(2_500);
        c.run_for(step);
        for (i, until) in down_until.iter_mut().enumerate() {
            if until.is_some_and(|t| t <= c.now) {
                *until = None;
                c.boot(i);
            }
        }
        let up: Vec<usize> = (0..n).filter(|i| c.is_up(*i)).collect();
        if up.is_empty() {
            continue;
        }
        let pick = up[r.below(up.len() as u64) as usize];
        match r.below(100) {
            0..=44 => {
                let name = units::NAMES[r.below(units::NAMES.len() as u64) as usize].to_string();
                let cmd = match r.below(10) {
                    0..=3 => Command::Start { name },
                    4 => Command::Stop { name },
                    5 => Command::Load { name },
                    6 => Command::Unload { name },
                    7 => Command::Destroy { name },
                    _ => Command::Submit {
                        text: units::text_of(&name),
                        name,
                    },
                };
                c.command(pick, cmd);
            }
            45..=54 => {
                c.trace.push(format!("{:>7} isolate {pick}", c.now.0));
                for j in 0..n {
                    if j != pick {
                        c.faults.blocked.insert((pick, j));
                        c.faults.blocked.insert((j, pick));
                    }
                }
            }
            55..=62 => {
                let cut = 1 + r.below(n as u64 - 1) as usize;
                c.trace.push(format!("{:>7} split at {cut}", c.now.0));
                for a in 0..cut {
                    for b in cut..n {
                        c.faults.blocked.insert((a, b));
                        c.faults.blocked.insert((b, a));
                    }
                }
            }
            63..=69 => {
                let other = r.below(n as u64) as usize;
                if other != pick {
                    c.trace
                        .push(format!("{:>7} one-way {pick} -/-> {other}", c.now.0));
                    c.faults.blocked.insert((pick, other));
                }
            }
            70..=82 => {
                c.trace.push(format!("{:>7} heal links", c.now.0));
                c.faults.blocked.clear();
            }
            _ => {
                if up.len() > 1 {
                    c.crash(pick, r.below(2) == 0);
                    down_until[pick] = Some(c.now.plus(1_000 + r.below(7_000)));
                }
            }
        }
    }
    // Healing: the network is clean again, systemd stops failing, crashed members return.
    c.trace.push(format!("{:>7} heal all", c.now.0));
    c.faults = Faults {
        delay_min_ms: 1,
        delay_max_ms: faults.delay_max_ms,
        ..Faults::default()
    };
    for i in 0..n {
        if !c.is_up(i) {
            c.boot(i);
        }
    }
    let converged = c.run_until_ok(CONVERGE_BOUND_MS, 100, check::all);
    if std::env::var_os("SHOAL_SIM_DIGEST").is_some() {
        println!("seed {seed}: {converged:?} digest {:016x}", digest(&c));
    }
    converged.map_err(|e| {
        let tail: Vec<&String> = c.trace.iter().rev().take(40).collect();
        let tail: Vec<String> = tail.into_iter().rev().cloned().collect();
        format!("seed {seed} ({n} members, {faults:?}) did not converge within {CONVERGE_BOUND_MS} ms after healing: {e}\n  last events:\n    {}\n  {}", tail.join("\n    "), replay_hint(seed))
    })
}

/// A fingerprint of a whole run (its trace, every member's traffic counters, the time
/// and the datagrams delivered): a refactoring that must keep the simulation's
/// behaviour shows the same digests (`SHOAL_SIM_DIGEST=1`).
fn digest(c: &Cluster) -> u64 {
    use std::hash::{Hash, Hasher};
    // SipHash with fixed keys: the same run gives the same digest everywhere.
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new();
    c.trace.hash(&mut h);
    (c.now.0, c.delivered, c.total_bytes_sent()).hash(&mut h);
    for s in &c.slots {
        if let Some(n) = &s.node {
            let st = n.stats();
            (st.datagrams_sent, st.bytes_sent, st.datagrams_received).hash(&mut h);
            format!("{:?}", n.placement()).hash(&mut h);
        }
        format!("{:?}", s.remote).hash(&mut h);
        s.served.hash(&mut h);
    }
    h.finish()
}

fn run_seeds(first: u64, count: u64) {
    let mut failures = Vec::new();
    let mut worst = 0;
    for seed in first..first + count {
        match run_seed(seed) {
            Ok(ms) => worst = worst.max(ms),
            Err(e) => {
                eprintln!("{e}");
                failures.push(seed);
            }
        }
    }
    println!("simulation: {} seeds from {first}, {} failed, slowest convergence after healing {worst} ms", count, failures.len());
    assert!(failures.is_empty(), "failing seeds: {failures:?}");
}

/// A few dozen fixed seeds in every `cargo test`; `cargo xtask sim --seeds N
/// [--first-seed S]` runs the same test over other seeds (SHOAL_SIM_SEEDS,
/// SHOAL_SIM_FIRST_SEED).
#[test]
fn fixed_seeds_converge_after_faults() {
    let count = std::env::var("SHOAL_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24);
    let first = std::env::var("SHOAL_SIM_FIRST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    run_seeds(first, count);
}

fn settled(n: usize, seed: u64) -> Cluster {
    let mut c = Cluster::new(seed, n);
    for i in 0..n {
        c.boot(i);
    }
    c.run_until_ok(120_000, 100, check::membership)
        .expect("joins");
    c
}

#[test]
fn a_member_claiming_a_used_machine_id_from_another_address_is_refused_loudly() {
    let mut c = Cluster::new(7, 4);
    let dup = c.slots[0].cfg.machine_id.clone();
    c.slots[3].cfg.machine_id = dup;
    for i in 0..3 {
        c.boot(i);
    }
    c.run_for(10_000);
    c.boot(3);
    c.run_for(5_000);
    let clone = c.slots[3].node.as_ref().expect("up");
    assert!(
        clone.refused().is_some_and(|r| r.contains("already used")),
        "{:?}",
        clone.refused()
    );
    assert!(
        c.slots[0].node.as_ref().expect("up").refused().is_none(),
        "the incumbent stays"
    );
    assert!(
        c.trace.iter().any(|t| t.contains("DuplicateMachineId")),
        "reported"
    );
    check::membership(&c).expect("the clone is not a member");
}

#[test]
fn a_leaving_member_stops_its_units_and_they_move_at_once() {
    let mut c = settled(3, 11);
    c.command(
        0,
        submit("hello@1.service", &units::text_of("hello@1.service")),
    );
    c.command(0, start("hello@1.service"));
    c.run_until_ok(10_000, 50, check::all).expect("runs");
    let on = *c
        .running_on("hello@1.service")
        .first()
        .expect("runs somewhere");
    c.command(on, Command::Leave);
    let t = c
        .run_until_ok(10_000, 50, |c| {
            let now_on = c.running_on("hello@1.service");
            if now_on.len() == 1 && !now_on.contains(&on) {
                Ok(())
            } else {
                Err(format!("runs on {now_on:?}"))
            }
        })
        .expect("moves");
    assert!(t < 2_000, "moved after {t} ms");
    assert!(c.slots[on].node.as_ref().expect("up").has_left());
}

#[test]
fn datagrams_under_another_key_are_dropped_and_counted_by_the_node() {
    let mut c = settled(3, 5);
    let mut wrong = shoal::wire::NonceSource::from_seed([1; 32]);
    let ring =
        shoal::wire::KeyRing::new(shoal::wire::Key::from_bytes([9; 32]), vec![]).expect("ring");
    let forged = shoal::wire::encode(&ring, &mut wrong, &"submit evil.service").expect("seals");
    let now = c.now;
    let n = c.slots[0].node.as_mut().expect("up");
    n.handle_datagram(now, sim::addr(1), &forged);
    n.handle_datagram(now, sim::addr(1), &forged[..10]);
    assert_eq!(n.drops().unauthenticated, 1);
    assert_eq!(n.drops().too_short, 1);
    assert!(n.catalog().replica().units.is_empty());
}

#[test]
fn events_are_logged_for_members_coming_and_going() {
    let mut c = settled(3, 3);
    c.crash(2, true);
    c.run_for(5_000);
    let n = c.slots[0].node.as_mut().expect("up");
    let _ =
        std::iter::from_fn(|| n.poll_event()).any(|e| matches!(e, NodeEvent::MemberDown { .. }));
    check::membership(&c).expect("down member gone from views");
}

#[test]
fn remote_questions_over_a_lossy_network_are_retried_and_answered_once_each() {
    let mut c = settled(3, 21);
    c.faults = Faults {
        loss_permille: 200,
        dup_permille: 100,
        delay_min_ms: 5,
        delay_max_ms: 80,
        ..Faults::default()
    };
    let (mut answered, mut slow) = (0, 0);
    for k in 0..30 {
        let unit = format!("u{k}.service");
        let Ok(id) = c.ask_status(0, 1, &unit) else {
            // Member 1 taken for down for a moment: no question asked.
            c.run_for(1_000);
            continue;
        };
        let start = c.now;
        let done = |c: &Cluster| {
            if c.slots[0].remote.iter().any(|e| match e {
                RemoteEvent::Answered { id: a, .. } | RemoteEvent::TimedOut { id: a } => *a == id,
                _ => false,
            }) {
                Ok(())
            } else {
                Err(format!("question {id} still open"))
            }
        };
        c.run_until_ok(13_000, 20, done)
            .expect("answered or given up");
        let ends: Vec<&RemoteEvent> = c.slots[0]
            .remote
            .iter()
            .filter(|e| match e {
                RemoteEvent::Answered { id: a, .. } | RemoteEvent::TimedOut { id: a } => *a == id,
                _ => false,
            })
            .collect();
        assert_eq!(ends.len(), 1, "one end per question: {ends:?}");
        if let RemoteEvent::Answered { text, .. } = ends[0] {
            let want = format!("{id} on {}: Status {{ unit: {unit:?} }}\n", sim::machine(1));
            assert_eq!(text, &want);
            answered += 1;
            if c.now.since(start) > shoal::node::RESEND_MS {
                slow += 1;
            }
        }
        c.run_for(1_000);
        assert!(
            c.slots[0]
                .remote
                .iter()
                .filter(|e| matches!(e, RemoteEvent::Answered { id: a, .. } if *a == id))
                .count()
                <= 1,
            "late copies of an answer are not delivered again"
        );
    }
    eprintln!("{answered} answered, {slow} after a resend");
    let served = &c.slots[1].served;
    let unique: std::collections::BTreeSet<&u64> = served.iter().collect();
    assert_eq!(
        unique.len(),
        served.len(),
        "each query ran once: {served:?}"
    );
    assert!(answered >= 27, "only {answered} of 30 answered");
    // Without resending, about a third would have been lost (loss both ways).
    assert!(
        slow >= 1,
        "no question needed a resend: the loss did not bite"
    );
}

/// One row of the figures: simulated milliseconds and bytes.
struct Figures {
    join_ms: u64,
    start_ms: u64,
    failover_ms: u64,
    idle_bytes_per_member_s: u64,
    churn_bytes_per_member_s: u64,
    /// See [`digest`].
    digest: u64,
}

fn converged_on_one(c: &Cluster, unit: &str) -> Result<(), String> {
    check::catalog(c)?;
    check::placement(c)?;
    let on: Vec<usize> = (0..c.slots.len())
        .filter(|i| c.slots[*i].systemd.is_running(unit))
        .collect();
    let live = c.live();
    if on.len() == 1 && c.running_on(unit).len() == 1 && on.iter().all(|i| live.contains(i)) {
        Ok(())
    } else {
        Err(format!("{unit} runs on {on:?}"))
    }
}

fn measure(n: usize, seed: u64) -> Figures {
    let mut c = Cluster::new(seed, n);
    c.snapshots = false;
    c.faults.delay_max_ms = 2;
    for i in 0..n {
        c.boot(i);
    }
    let join_ms = c
        .run_until_ok(300_000, 250, check::membership)
        .expect("joins");
    c.run_for(5_000);

    let b0 = c.total_bytes_sent();
    c.run_for(10_000);
    let idle_bytes_per_member_s = (c.total_bytes_sent() - b0) / n as u64 / 10;

    let unit = "hello@1.service";
    c.command(0, submit(unit, &units::text_of(unit)));
    c.run_for(3_000);
    c.command(n / 2, start(unit));
    let start_ms = c
        .run_until_ok(60_000, 10, |c| converged_on_one(c, unit))
        .expect("starts");
    c.run_for(3_000);

    let on = *c.running_on(unit).first().expect("runs");
    c.crash(on, true);
    let moved_ms = c
        .run_until_ok(60_000, 10, |c| converged_on_one(c, unit))
        .expect("fails over");
    let failover_ms = moved_ms
        + c.run_until_ok(60_000, 10, check::membership)
            .expect("views agree");
    c.run_for(3_000);

    let churn: Vec<String> = (2..=21).map(|k| format!("hello@{k}.service")).collect();
    let live = c.live();
    for (k, u) in churn.iter().enumerate() {
        c.command(live[k % live.len()], submit(u, &units::text_of(u)));
    }
    c.run_for(3_000);
    let b0 = c.total_bytes_sent();
    for step in 0..100usize {
        let u = churn[step % churn.len()].clone();
        let cmd = if (step / churn.len()).is_multiple_of(2) {
            Command::Start { name: u }
        } else {
            Command::Stop { name: u }
        };
        c.command(live[step % live.len()], cmd);
        let t = c.now.plus(100);
        c.run_until(t);
    }
    let churn_bytes_per_member_s = (c.total_bytes_sent() - b0) / live.len() as u64 / 10;
    Figures {
        digest: digest(&c),
        join_ms,
        start_ms,
        failover_ms,
        idle_bytes_per_member_s,
        churn_bytes_per_member_s,
    }
}

/// `cargo xtask sim --figures`; SHOAL_SIM_SIZES (default 3,20,100,1000) picks the sizes.
///
/// Measured on main, seed 1 (simulated time; 1-2 ms links, no loss). Failure→moved
/// counts until every member's view agrees, not only until the unit runs again:
///
/// ```text
/// members | join ms | start→running ms | failure→moved ms | idle B/member/s | churn B/member/s
///       3 |     250 |              140 |             1300 |            1262 |             8526
///      20 |     250 |              250 |             1230 |            1611 |            24690
///     100 |    1250 |              760 |             1720 |            1753 |            20026
/// ```
///
/// Issue 8's idle work (compact SWIM identities, 12-byte nonces, digests riding on
/// probes), seed 1, with 500 ms probes and 400 ms suspicion per log10 n:
///
/// ```text
/// members | join ms | start→running ms | failure→moved ms | idle B/member/s | churn B/member/s
///       3 |     250 |              170 |             1180 |             340 |             6860
///      20 |     250 |              210 |             1260 |             340 |            21384
///     100 |    1250 |              810 |             2460 |             340 |            16920
/// ```
///
/// The defaults kept are 400 ms probes and 500 ms suspicion (500 ms probes moved units
/// half a second later on real hosts): 3 members 250 / 200 / 1710 / 421 / 6790.
/// (Idle here is datagram bytes; `idle_traffic_by_kind` counts Ethernet frames as the
/// idle bench does: 1,812 B/member/s before, 666 at 400 ms, 543 at 500 ms, 10 members.)
///
/// Before the 300 ms probe, the spread of deaths and the member-list fingerprints
/// (session 1): failure→moved 2410 / 2900 / 4000 ms, join at 100 members 2250 ms,
/// idle 800 / 1065 / 1143 B/member/s. The 1,000-member row (`SHOAL_SIM_SIZES=1000`)
/// takes about 35 CPU minutes at the test profile's opt-level 1 and was not re-run.
///
/// In every `cargo test` it measures 3 members and holds the figures to bounds
/// (the design's two-second failover plus detection slack, quiet idle traffic);
/// `cargo xtask sim --figures` measures 3, 20, 100 and 1,000 members.
#[test]
fn figures() {
    let sizes = std::env::var("SHOAL_SIM_SIZES").unwrap_or_else(|_| "3".into());
    let seed = std::env::var("SHOAL_SIM_FIRST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    println!("members | join ms | start→running ms | failure→moved ms | idle B/member/s | churn B/member/s");
    for n in sizes
        .split(',')
        .filter_map(|s| s.trim().parse::<usize>().ok())
    {
        let f = measure(n, seed);
        println!(
            "{n:>7} | {:>7} | {:>16} | {:>16} | {:>15} | {:>16}",
            f.join_ms,
            f.start_ms,
            f.failover_ms,
            f.idle_bytes_per_member_s,
            f.churn_bytes_per_member_s
        );
        if std::env::var_os("SHOAL_SIM_DIGEST").is_some() {
            println!("{n} members: digest {:016x}", f.digest);
        }
        if n <= 3 {
            assert!(
                f.start_ms <= 1_000,
                "{n} members: start took {} ms",
                f.start_ms
            );
            assert!(
                f.failover_ms <= 2_000,
                "{n} members: failover took {} ms",
                f.failover_ms
            );
            assert!(
                f.idle_bytes_per_member_s <= 4_000,
                "{n} members: {} idle bytes per member per second",
                f.idle_bytes_per_member_s
            );
        }
    }
}

/// What 10 idle members send, by kind (`cargo test --test simulation idle_traffic -- --nocapture`
/// prints the table): the simulated counterpart of `cargo xtask bench --idle --hosts 10`.
#[test]
fn idle_traffic_by_kind() {
    let n = 10;
    let mut c = settled(n, 1);
    c.snapshots = false;
    c.run_for(10_000);
    c.traffic = Some(Default::default());
    let secs = 30;
    c.run_for(secs * 1_000);
    let t = c.traffic.take().expect("counted");
    println!("{n} idle members, {secs} s:\n{}", t.table(n as u64, secs));
    assert!(!t.by_kind.contains_key("?"), "every datagram decodes");
    // Frames included; it was 1,812 with 300 ms probes of 190-byte frames, full
    // summaries each second and a member list every 5 s. Issue 8's goal is 600; 500 ms
    // probes reach 543 but detect a death later (see `Timing::probe_period_ms`).
    let per_member_s = t.total_bytes() / n as u64 / secs;
    assert!(per_member_s <= 700, "{per_member_s} B/member/s idle");
}
