//! Snapshot plus log on disk: restore equals the node, torn tails, damage, compaction, cost.

use super::*;
use crate::node::testing::{self, running, submit, TEXT};
use crate::node::Command;
use crate::store::log::LOG_HEADER_LEN;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("shoal-plog-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn cfg() -> NodeConfig {
    let mut cfg = testing::config("m1", 1, &[], 1);
    cfg.tombstone_ttl_ms = 60_000;
    cfg
}

fn start(name: &str) -> Command {
    Command::Start { name: name.into() }
}

/// Runs `commands` at `t` ms, drains the actions, and saves (waiting for the disk).
fn step(n: &mut Node, p: &Persister, t: u64, commands: Vec<Command>) {
    n.handle_timeout(Millis(t));
    for c in commands {
        n.handle_command(Millis(t), c).unwrap();
    }
    while n.poll_action().is_some() {}
    assert!(p.flush(n));
}

/// What restoring from `d` would hand to `Node::restore_with`.
fn replayed(d: &Path) -> Vec<u8> {
    let snapshot = store::read_snapshot(&snapshot_path(d)).unwrap().unwrap();
    replay(snapshot, &log_path(d)).0
}

fn log_len(d: &Path) -> u64 {
    std::fs::metadata(log_path(d)).unwrap().len()
}

#[test]
fn restore_after_a_sequence_of_commands_equals_the_node_state() {
    let d = dir("sequence");
    let mut n = Node::new(cfg(), Millis(0));
    let p = Persister::start(&mut n, &d);
    step(
        &mut n,
        &p,
        0,
        vec![submit("a.service", TEXT), start("a.service")],
    );
    step(
        &mut n,
        &p,
        10,
        vec![submit("b.service", "[Service]\nExecStart=/bin/b\n")],
    );
    n.handle_systemd_report(Millis(20), "a.service", Some(running()));
    step(&mut n, &p, 30, vec![start("b.service")]);
    step(
        &mut n,
        &p,
        40,
        vec![Command::Destroy {
            name: "b.service".into(),
        }],
    );
    assert!(p.stats().appends >= 4, "{:?}", p.stats());
    assert_eq!(replayed(&d), n.snapshot());
    drop(p);
    let back = restore(cfg(), Millis(0), &d, &Default::default());
    assert_eq!(back.catalog().replica(), n.catalog().replica());
    assert_eq!(back.identity().boot, n.identity().boot + 1);
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn a_torn_last_record_is_dropped_at_every_byte_and_the_state_before_it_restored() {
    let d = dir("torn");
    let mut n = Node::new(cfg(), Millis(0));
    let p = Persister::start(&mut n, &d);
    step(&mut n, &p, 0, vec![submit("a.service", TEXT)]);
    let before = n.snapshot();
    let whole = log_len(&d);
    step(&mut n, &p, 10, vec![start("a.service")]);
    drop(p);
    let full = std::fs::read(log_path(&d)).unwrap();
    assert!(full.len() as u64 > whole);
    for cut in whole..full.len() as u64 {
        std::fs::write(log_path(&d), &full[..cut as usize]).unwrap();
        assert_eq!(replayed(&d), before, "cut at {cut}");
        assert_eq!(
            log_len(&d),
            whole,
            "the torn tail is cut off (cut at {cut})"
        );
    }
    std::fs::write(log_path(&d), &full).unwrap();
    assert_eq!(replayed(&d), n.snapshot());
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn damage_before_the_last_record_keeps_the_state_up_to_it_and_sets_the_log_aside() {
    let d = dir("middle");
    let mut n = Node::new(cfg(), Millis(0));
    let p = Persister::start(&mut n, &d);
    step(&mut n, &p, 0, vec![submit("a.service", TEXT)]);
    let after_first = n.snapshot();
    let second_at = log_len(&d) as usize;
    step(&mut n, &p, 10, vec![submit("b.service", TEXT)]);
    step(&mut n, &p, 20, vec![submit("c.service", TEXT)]);
    drop(p);
    let mut bytes = std::fs::read(log_path(&d)).unwrap();
    bytes[second_at + 6] ^= 0x40;
    std::fs::write(log_path(&d), &bytes).unwrap();
    let got = Node::restore(cfg(), Millis(0), &replayed(&d)).unwrap();
    let want = Node::restore(cfg(), Millis(0), &after_first).unwrap();
    assert_eq!(got.catalog().replica(), want.catalog().replica());
    assert!(d.join("state.log.corrupt").exists());
    // The intact records after the damage still raise the counters (never reused).
    assert_eq!(got.catalog().snapshot(Millis(0)).lamport, 3);
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn a_corrupt_snapshot_is_set_aside_and_its_log_not_replayed() {
    let d = dir("corrupt");
    let mut n = Node::new(cfg(), Millis(0));
    let p = Persister::start(&mut n, &d);
    step(&mut n, &p, 0, vec![submit("a.service", TEXT)]);
    drop(p);
    let mut bytes = std::fs::read(snapshot_path(&d)).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(snapshot_path(&d), &bytes).unwrap();
    let back = restore(cfg(), Millis(0), &d, &Default::default());
    assert!(back.catalog().replica().units.is_empty());
    assert!(d.join("state.snapshot.corrupt").exists());
    assert!(!snapshot_path(&d).exists());
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn a_log_from_before_the_last_snapshot_is_ignored() {
    let d = dir("stale");
    let mut n = Node::new(cfg(), Millis(0));
    let p = Persister::start(&mut n, &d);
    step(&mut n, &p, 0, vec![submit("a.service", TEXT)]);
    drop(p);
    // A compaction renamed its snapshot in; the crash came before its new log.
    let mut other = Node::new(cfg(), Millis(0));
    other
        .handle_command(Millis(0), submit("z.service", TEXT))
        .unwrap();
    let newer = other.snapshot();
    store::write_snapshot(&snapshot_path(&d), &newer).unwrap();
    assert_eq!(replayed(&d), newer);
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn compaction_writes_a_new_snapshot_and_keeps_the_state() {
    let d = dir("compact");
    let mut n = Node::new(cfg(), Millis(0));
    let p = Persister::start(&mut n, &d);
    // 48 distinct texts of 30 KiB: about 1.4 MiB of log, over COMPACT_MIN_BYTES.
    for i in 0..48u64 {
        let text = format!("[Service]\nExecStart=/bin/{i}\n# {}\n", "x".repeat(30_000));
        step(&mut n, &p, i, vec![submit(&format!("u{i}.service"), &text)]);
    }
    let s = p.stats();
    assert!(s.compactions >= 1, "{s:?}");
    assert!(
        log_len(&d) < writer::COMPACT_MIN_BYTES,
        "the log starts again"
    );
    drop(p);
    assert_eq!(replayed(&d), n.snapshot());
    let back = restore(cfg(), Millis(0), &d, &Default::default());
    assert_eq!(back.catalog().replica(), n.catalog().replica());
    let _ = std::fs::remove_dir_all(d);
}

/// A node with `units` submitted units, each with its own text, half of them started.
fn big_node(units: usize) -> Node {
    let mut n = Node::new(cfg(), Millis(0));
    let cmds = (0..units).flat_map(|i| {
        let name = format!("web-{i:05}.service");
        let text = format!("[Service]\nExecStart=/usr/bin/web --port {i}\n");
        let mut v = vec![submit(&name, &text)];
        if i % 2 == 0 {
            v.push(start(&name));
        }
        v
    });
    let (_, r) = n.handle_commands(Millis(0), cmds.collect());
    r.unwrap();
    // Settled: the started half placed and installed here.
    n.handle_timeout(Millis(50));
    while n.poll_action().is_some() {}
    n
}

#[test]
fn one_command_on_a_2000_unit_catalog_appends_a_few_hundred_bytes() {
    let d = dir("ochange");
    let mut n = big_node(2_000);
    let p = Persister::start(&mut n, &d);
    let snapshot = p.stats().snapshot_bytes;
    let before = log_len(&d);
    let t = std::time::Instant::now();
    step(&mut n, &p, 100, vec![start("web-00001.service")]);
    let took = t.elapsed();
    let appended = log_len(&d) - before;
    eprintln!(
        "2000 units: snapshot {snapshot} bytes; one command appended {appended} bytes in {took:?}"
    );
    assert!(snapshot > 100_000, "{snapshot}");
    assert!(appended < 4096, "one command appended {appended} bytes");
    assert_eq!(p.stats().appended_bytes, appended);
    assert!(before == LOG_HEADER_LEN as u64);
    drop(p);
    assert_eq!(replayed(&d), n.snapshot());
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn a_submit_over_the_text_budget_is_refused_naming_the_unit_and_the_limit() {
    let mut n = Node::new(cfg(), Millis(0));
    let filler = "x".repeat(crate::catalog::MAX_TEXT_BYTES - 100);
    let mut refused = None;
    for i in 0..=crate::catalog::MAX_TEXT_TOTAL_BYTES / filler.len() {
        let text = format!("[Service]\nExecStart=/bin/{i}\n#{filler}\n");
        if let Err(e) = n.handle_command(Millis(0), submit(&format!("big{i}.service"), &text)) {
            refused = Some((i, e.to_string()));
            break;
        }
    }
    let (i, e) = refused.expect("the budget is reached");
    assert!(e.contains(&format!("big{i}.service")), "{e}");
    assert!(e.contains("MAX_TEXT_TOTAL_BYTES"), "{e}");
    assert!(
        e.contains(&crate::catalog::MAX_TEXT_TOTAL_BYTES.to_string()),
        "{e}"
    );
    assert!(n.catalog().text_bytes() <= crate::catalog::MAX_TEXT_TOTAL_BYTES);
    assert!(n.catalog().unit(&format!("big{i}.service")).is_none());
}
