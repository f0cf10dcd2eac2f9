//! Merge laws, anti-entropy convergence, tombstone lifetime and chunked texts.

use super::*;
use proptest::prelude::*;

fn live(counter: u64, machine: &str, target: Target, text: &str) -> UnitEntry {
    UnitEntry {
        version: Version {
            counter,
            machine: machine.into(),
        },
        state: Desired::Live {
            target,
            seq: counter,
            digest: text_digest(text),
            len: text.len() as u32,
        },
    }
}

fn unit_strategy() -> impl Strategy<Value = UnitEntry> {
    (0u64..4, prop::sample::select(vec!["a", "b"]), 0u8..4).prop_map(|(c, m, t)| match t {
        0 => UnitEntry {
            version: Version {
                counter: c,
                machine: m.into(),
            },
            state: Desired::Destroyed,
        },
        1 => live(c, m, Target::Inactive, "x"),
        2 => live(c, m, Target::Loaded, "y"),
        _ => live(c, m, Target::Launched, "x"),
    })
}

fn replica_strategy() -> impl Strategy<Value = Replica> {
    let units = prop::collection::btree_map(
        prop::sample::select(vec!["u1", "u2", "u3"]),
        unit_strategy(),
        0..3,
    );
    let reports = prop::collection::btree_map(
        (
            prop::sample::select(vec!["a", "b"]),
            prop::sample::select(vec!["u1", "u2"]),
        ),
        (
            0u64..3,
            0u64..3,
            prop::option::of(prop::sample::select(vec!["active", "inactive"])),
        ),
        0..4,
    );
    (units, reports).prop_map(|(u, r)| Replica {
        units: u.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        reports: r
            .into_iter()
            .map(|((m, u), (b, c, s))| {
                let status = s.map(|a| Status {
                    active: a.into(),
                    sub: "x".into(),
                });
                (
                    (m.to_string(), u.to_string()),
                    ReportEntry {
                        version: ReportVersion {
                            boot: b,
                            counter: c,
                        },
                        status,
                    },
                )
            })
            .collect(),
    })
}

proptest! {
    #[test]
    fn merge_is_commutative(a in replica_strategy(), b in replica_strategy()) {
        prop_assert_eq!(merge(&a, &b), merge(&b, &a));
    }

    #[test]
    fn merge_is_associative(a in replica_strategy(), b in replica_strategy(), c in replica_strategy()) {
        prop_assert_eq!(merge(&merge(&a, &b), &c), merge(&a, &merge(&b, &c)));
    }

    #[test]
    fn merge_is_idempotent(a in replica_strategy(), b in replica_strategy()) {
        prop_assert_eq!(merge(&a, &a), a.clone());
        let ab = merge(&a, &b);
        prop_assert_eq!(merge(&ab, &b), ab);
    }

    #[test]
    fn applying_records_one_by_one_equals_merging(a in replica_strategy(), b in replica_strategy()) {
        let mut c = Catalog::new(TOMBSTONE_TTL_MS);
        for (name, e) in a.units.iter().chain(b.units.iter()) {
            let w = WireEntry::Unit { name: name.clone(), entry: e.clone(), ttl_left_ms: 1000, text: None };
            c.apply(Millis(0), w).unwrap();
        }
        for ((m, u), e) in a.reports.iter().chain(b.reports.iter()) {
            c.apply(Millis(0), WireEntry::Report { member: m.clone(), unit: u.clone(), entry: e.clone() }).unwrap();
        }
        prop_assert_eq!(c.replica(), &merge(&a, &b));
        prop_assert_eq!(c.summary(), c.summary_from_scratch());
    }

    #[test]
    fn the_kept_summary_equals_one_from_scratch_through_merges_expiry_and_restore(
        a in replica_strategy(),
        b in replica_strategy(),
        ttl in 0u64..3,
    ) {
        let mut c = Catalog::new(TOMBSTONE_TTL_MS);
        for (name, e) in a.units.iter().chain(b.units.iter()) {
            let w = WireEntry::Unit { name: name.clone(), entry: e.clone(), ttl_left_ms: ttl * 500, text: None };
            let _ = c.apply(Millis(0), w);
            prop_assert_eq!(c.summary(), c.summary_from_scratch());
        }
        for ((m, u), e) in b.reports.iter().chain(a.reports.iter()) {
            c.apply(Millis(0), WireEntry::Report { member: m.clone(), unit: u.clone(), entry: e.clone() }).unwrap();
            prop_assert_eq!(c.summary(), c.summary_from_scratch());
        }
        // Tombstones expire (records leave the summary), then a restore rebuilds it.
        c.expire(Millis(600));
        prop_assert_eq!(c.summary(), c.summary_from_scratch());
        c.expire(Millis(TOMBSTONE_TTL_MS + 1));
        prop_assert_eq!(c.summary(), c.summary_from_scratch());
        let back = Catalog::restore(Millis(0), TOMBSTONE_TTL_MS, c.snapshot(Millis(0)));
        prop_assert_eq!(back.summary(), c.summary());
    }

    #[test]
    fn two_catalogs_agree_after_one_push_pull(a in replica_strategy(), b in replica_strategy()) {
        let (mut x, mut y) = (Catalog::new(TOMBSTONE_TTL_MS), Catalog::new(TOMBSTONE_TTL_MS));
        let load = |c: &mut Catalog, r: &Replica| {
            for (name, e) in &r.units {
                c.apply(Millis(0), WireEntry::Unit { name: name.clone(), entry: e.clone(), ttl_left_ms: 1000, text: None }).unwrap();
            }
            for ((m, u), e) in &r.reports {
                c.apply(Millis(0), WireEntry::Report { member: m.clone(), unit: u.clone(), entry: e.clone() }).unwrap();
            }
        };
        load(&mut x, &a);
        load(&mut y, &b);
        // x sends its summary; y pushes what differs and replies with its summary; x pushes back.
        let to_x = y.differing(Millis(0), &x.summary());
        let y_summary = y.summary();
        for e in to_x { x.apply(Millis(0), e).unwrap(); }
        let to_y = x.differing(Millis(0), &y_summary);
        for e in to_y { y.apply(Millis(0), e).unwrap(); }
        prop_assert_eq!(x.replica(), y.replica());
        prop_assert_eq!(x.summary(), y.summary());
    }

    #[test]
    fn any_text_up_to_64_kib_survives_chunking_in_any_order(len in 0usize..=MAX_TEXT_BYTES, seed in any::<u64>()) {
        let text: String = (0..len).map(|i| (b'a' + ((i as u64 ^ seed) % 26) as u8) as char).collect();
        let d = text_digest(&text);
        let mut chunks = chunk::split(d, &text);
        prop_assert!(chunks.len() <= chunk::MAX_CHUNKS);
        chunks.reverse();
        let mut a = Assembly::default();
        let mut got = None;
        for c in chunks.clone().into_iter().chain(chunks.into_iter().take(1)) {
            prop_assert!(crate::wire::body_len(&Msg::Chunk(c.clone())) < crate::wire::MAX_BODY_BYTES - 16);
            if let Some(t) = a.accept(Millis(0), c) { got = Some(t); }
        }
        prop_assert_eq!(got, Some(text));
        prop_assert!(a.len() <= 1);
    }
}

#[test]
fn a_newer_edit_wins_and_an_older_one_changes_nothing() {
    let mut c = Catalog::new(TOMBSTONE_TTL_MS);
    let new = live(5, "b", Target::Launched, "t");
    let old = live(4, "z", Target::Inactive, "t");
    let w = |e: &UnitEntry| WireEntry::Unit {
        name: "a.service".into(),
        entry: e.clone(),
        ttl_left_ms: 0,
        text: Some("t".into()),
    };
    assert!(c.apply(Millis(0), w(&new)).unwrap().changed);
    assert!(!c.apply(Millis(0), w(&old)).unwrap().changed);
    assert_eq!(c.unit("a.service"), Some(&new));
    assert_eq!(
        c.next_version("m").counter,
        6,
        "the Lamport counter passes every version seen"
    );
}

#[test]
fn a_tombstone_beats_stale_copies_and_then_expires_everywhere_on_time() {
    let mut c = Catalog::new(10_000);
    let stale = live(1, "a", Target::Launched, "t");
    c.apply(
        Millis(0),
        WireEntry::Unit {
            name: "u".into(),
            entry: stale.clone(),
            ttl_left_ms: 0,
            text: Some("t".into()),
        },
    )
    .unwrap();
    let tomb = UnitEntry {
        version: Version {
            counter: 2,
            machine: "a".into(),
        },
        state: Desired::Destroyed,
    };
    c.apply(
        Millis(0),
        WireEntry::Unit {
            name: "u".into(),
            entry: tomb.clone(),
            ttl_left_ms: 4_000,
            text: None,
        },
    )
    .unwrap();
    assert!(
        !c.apply(
            Millis(100),
            WireEntry::Unit {
                name: "u".into(),
                entry: stale,
                ttl_left_ms: 0,
                text: None
            }
        )
        .unwrap()
        .changed
    );
    c.expire(Millis(3_999));
    assert_eq!(c.unit("u"), Some(&tomb));
    match c.wire_unit(Millis(3_000), "u") {
        Some(WireEntry::Unit { ttl_left_ms, .. }) => {
            assert_eq!(ttl_left_ms, 1_000, "the lifetime left travels")
        }
        other => panic!("{other:?}"),
    }
    c.expire(Millis(4_000));
    assert_eq!(c.unit("u"), None);
    assert_eq!(c.text(&text_digest("t")), None, "unreferenced texts go too");
    // A tombstone whose lifetime is spent is not taken back from a slower member.
    c.apply(
        Millis(5_000),
        WireEntry::Unit {
            name: "u".into(),
            entry: tomb,
            ttl_left_ms: 0,
            text: None,
        },
    )
    .unwrap();
    assert_eq!(c.unit("u"), None);
}

#[test]
fn a_large_text_travels_by_chunks_only_to_a_catalog_that_wants_it() {
    let text = "x".repeat(50_000);
    let mut a = Catalog::new(TOMBSTONE_TTL_MS);
    let e = live(1, "a", Target::Launched, &text);
    let w = a
        .write_unit(Millis(0), "big.service", e, Some(text.clone()))
        .unwrap();
    let WireEntry::Unit { text: inline, .. } = &w else {
        panic!()
    };
    assert_eq!(inline, &None, "64 KiB texts are not inlined");
    let mut b = Catalog::new(TOMBSTONE_TTL_MS);
    let stranger = chunk::split(text_digest("other"), "other");
    assert!(
        !b.accept_chunk(Millis(0), stranger[0].clone()),
        "unwanted chunks are ignored"
    );
    let applied = b.apply(Millis(0), w).unwrap();
    let d = applied.missing_text.unwrap();
    let chunks = a.chunks_of(&d);
    assert_eq!(chunks.len(), 42);
    let done: Vec<bool> = chunks
        .into_iter()
        .map(|c| b.accept_chunk(Millis(1), c))
        .collect();
    assert_eq!(done.iter().filter(|x| **x).count(), 1);
    assert_eq!(b.text(&d), Some(text.as_str()));
    assert!(b.missing_texts().is_empty());
}

#[test]
fn oversized_or_inconsistent_records_are_refused() {
    let mut c = Catalog::new(TOMBSTONE_TTL_MS);
    let e = live(1, "a", Target::Launched, "t");
    let long = WireEntry::Unit {
        name: "n".repeat(300),
        entry: e.clone(),
        ttl_left_ms: 0,
        text: None,
    };
    assert_eq!(c.apply(Millis(0), long), Err(Refused::TooLarge("name")));
    let lying = WireEntry::Unit {
        name: "n".into(),
        entry: e,
        ttl_left_ms: 0,
        text: Some("not t".into()),
    };
    assert_eq!(c.apply(Millis(0), lying), Err(Refused::BadText));
    assert!(c.replica().units.is_empty());
}

#[test]
fn entries_pack_into_datagram_sized_bodies() {
    let entries: Vec<WireEntry> = (0..200)
        .map(|i| WireEntry::Unit {
            name: format!("unit-{i}.service"),
            entry: live(i, "0123456789abcdef0123456789abcdef", Target::Launched, "t"),
            ttl_left_ms: 0,
            text: Some("t".into()),
        })
        .collect();
    let msgs = pack(entries);
    assert!(msgs.len() > 1);
    let mut n = 0;
    for m in &msgs {
        assert!(crate::wire::body_len(m) <= crate::wire::MAX_BODY_BYTES - 8);
        if let Msg::Entries(v) = m {
            n += v.len();
        }
    }
    assert_eq!(n, 200);
}

/// `Status` as it was before its `active` field was typed: two strings.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
struct OldStatus {
    active: String,
    sub: String,
}

#[test]
fn a_status_gossips_and_persists_as_the_same_bytes_as_before_it_was_typed() {
    let words = [
        "active",
        "reloading",
        "inactive",
        "failed",
        "activating",
        "deactivating",
        "maintenance",
        "refreshing",
        "from-a-newer-systemd",
        "",
    ];
    for a in words {
        let old = OldStatus {
            active: a.into(),
            sub: "running".into(),
        };
        let new = Status {
            active: a.into(),
            sub: "running".into(),
        };
        let bytes = postcard::to_allocvec(&old).unwrap();
        assert_eq!(postcard::to_allocvec(&new).unwrap(), bytes, "{a}");
        assert_eq!(postcard::from_bytes::<Status>(&bytes).unwrap(), new, "{a}");
        let report = |status| ReportEntry {
            version: ReportVersion {
                boot: 3,
                counter: 7,
            },
            status,
        };
        let old_report = (
            ReportVersion {
                boot: 3,
                counter: 7,
            },
            Some(old.clone()),
        );
        assert_eq!(
            postcard::to_allocvec(&report(Some(new.clone()))).unwrap(),
            postcard::to_allocvec(&old_report).unwrap(),
            "{a}"
        );
        for b in words {
            let (old_b, new_b) = (
                OldStatus {
                    active: b.into(),
                    sub: "dead".into(),
                },
                Status {
                    active: b.into(),
                    sub: "dead".into(),
                },
            );
            assert_eq!(new.cmp(&new_b), old.cmp(&old_b), "merge order {a} vs {b}");
        }
    }
}

#[test]
fn a_target_reads_back_from_its_word_and_can_travel_as_it() {
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Typed {
        #[serde(with = "crate::states::word")]
        dstate: Target,
    }
    for t in [Target::Inactive, Target::Loaded, Target::Launched] {
        assert_eq!(Target::parse(t.as_str()), Some(t));
        assert_eq!(String::from(t), t.to_string());
        let bytes = postcard::to_allocvec(&t.as_str().to_string()).unwrap();
        assert_eq!(postcard::to_allocvec(&Typed { dstate: t }).unwrap(), bytes);
        assert_eq!(
            postcard::from_bytes::<Typed>(&bytes).unwrap(),
            Typed { dstate: t }
        );
    }
    assert_eq!(Target::parse("running"), None);
}
