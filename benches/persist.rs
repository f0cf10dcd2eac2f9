//! Persistence benchmark: what one command costs to save, before (the whole
//! snapshot encoded, written and fsynced on the event loop) and after (the delta
//! taken on the loop, appended and fsynced by the writer thread), at 2,000 and
//! 10,000 units; and the snapshot and log sizes and load time at agent start.
//!
//! Run: `cargo bench --bench persist` (`-- --quick` for fewer runs). Writes under
//! the system temp directory (fsync costs depend on its file system). Prints
//! medians: bytes written per command, time the event loop spends, time until
//! the change is on disk.
//!
//! Measured on a shared, loaded 2-core machine (`-- --quick`, two runs; figures
//! vary with the load): before, 232,703 bytes and 24–67 ms on the event loop per
//! command at 2,000 units, 1,172,703 bytes and 91–247 ms at 10,000; after, 64
//! bytes and 11–19 µs on the loop at both sizes, on disk 4–7 ms later. At start
//! with 10,000 units: a 1.17 MB snapshot plus the log, restored in 357 ms, of
//! which reading and CRC 16 ms, log replay 35 ms, and the node's rebuild with its
//! first reconcile 216 ms.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use shoal::agent::persist::{self, Persister};
use shoal::node::{Command, Node, NodeConfig, SnapshotModel};
use shoal::store;
use shoal::time::Millis;
use shoal::wire::{Key, KeyRing};

fn cfg() -> NodeConfig {
    let keys = KeyRing::new(Key::from_bytes([1; 32]), vec![]).expect("one key");
    NodeConfig::new("m1", "10.0.0.1:4700".parse().expect("addr"), keys, [2; 32])
}

/// `units` units, each with its own ~100-byte text, every other one started.
fn node(units: usize) -> Node {
    let mut n = Node::new(cfg(), Millis(0));
    let mut cmds = Vec::new();
    for i in 0..units {
        let name = format!("web-{i:05}.service");
        let text =
            format!("[Unit]\nDescription=web {i}\n[Service]\nExecStart=/usr/bin/web --port {i}\n");
        cmds.push(Command::Submit {
            name: name.clone(),
            text,
        });
        if i % 2 == 0 {
            cmds.push(Command::Start { name });
        }
    }
    let (_, r) = n.handle_commands(Millis(0), cmds);
    r.expect("commands");
    n.handle_timeout(Millis(1));
    while n.poll_action().is_some() {}
    n
}

/// The next command: start a unit that is not started yet.
fn command(n: &mut Node, k: usize, t: u64) {
    let name = format!("web-{:05}.service", 2 * k + 1);
    n.handle_command(Millis(t), Command::Start { name })
        .expect("start");
    while n.poll_action().is_some() {}
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("shoal-bench-persist-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn before(units: usize, runs: usize) {
    let d = dir("before");
    let mut n = node(units);
    let (mut on_loop, mut bytes) = (Vec::new(), 0);
    for k in 0..runs {
        command(&mut n, k, 10 + k as u64);
        let t = Instant::now();
        let snapshot = n.snapshot();
        store::write_snapshot(&persist::snapshot_path(&d), &snapshot).expect("write");
        on_loop.push(t.elapsed());
        bytes = snapshot.len() + store::format::HEADER_LEN;
    }
    let m = median(on_loop);
    println!("{units:>6} units  before: {bytes:>8} bytes/command, event loop {m:>12.3?} (encode + write + fsync), on disk {m:>12.3?}");
    let _ = std::fs::remove_dir_all(d);
}

fn after(units: usize, runs: usize) {
    let d = dir("after");
    let mut n = node(units);
    let p = Persister::start(&mut n, &d);
    let (mut on_loop, mut durable) = (Vec::new(), Vec::new());
    let appended_before = p.stats().appended_bytes;
    for k in 0..runs {
        command(&mut n, k, 10 + k as u64);
        let (tx, rx) = std::sync::mpsc::channel();
        let t = Instant::now();
        p.save(
            &mut n,
            Some(Box::new(move |_| {
                let _ = tx.send(Instant::now());
            })),
        );
        on_loop.push(t.elapsed());
        let done = rx.recv().expect("saved");
        durable.push(done - t);
    }
    let bytes = (p.stats().appended_bytes - appended_before) / runs as u64;
    let (l, dd) = (median(on_loop), median(durable));
    println!("{units:>6} units  after:  {bytes:>8} bytes/command, event loop {l:>12.3?} (take delta + send), on disk {dd:>12.3?}");
    drop(p);
    let t = Instant::now();
    let back = persist::restore(cfg(), Millis(0), &d, &Default::default());
    let load = t.elapsed();
    assert_eq!(back.catalog().replica().units.len(), units);
    println!(
        "{units:>6} units  at start: snapshot {} bytes + log {} bytes ({runs} records), restored in {load:.3?}",
        size(&persist::snapshot_path(&d)),
        size(&persist::log_path(&d)),
    );
    load_parts(&d);
    let _ = std::fs::remove_dir_all(d);
}

/// Where restoring's time goes: reading and checking the files, replaying the
/// log onto the snapshot, and rebuilding the node (its first reconcile included).
fn load_parts(d: &Path) {
    let t = Instant::now();
    let snapshot = store::read_snapshot(&persist::snapshot_path(d))
        .expect("read")
        .expect("a snapshot");
    let log = store::read_log(&persist::log_path(d))
        .expect("read")
        .expect("a log");
    let read = t.elapsed();
    let t = Instant::now();
    let mut model = SnapshotModel::decode(&snapshot, Millis(log.base.at)).expect("decode");
    for r in &log.records {
        model.apply(r).expect("apply");
    }
    let bytes = model.encode();
    let replay = t.elapsed();
    let t = Instant::now();
    let _node = Node::restore(cfg(), Millis(0), &bytes).expect("restore");
    let rebuild = t.elapsed();
    println!("              of which: read + CRC {read:.3?}, replay {replay:.3?}, node rebuilt (first reconcile included) {rebuild:.3?}");
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let runs = if quick { 5 } else { 21 };
    println!("persist: median of {runs} commands (wall time; fsync included)");
    for units in [2_000, 10_000] {
        before(units, runs);
        after(units, runs);
    }
    let _ = common::thread_cpu_time;
}
