//! `cargo xtask demo`: three real hosts, the fleet chapter's units started through the client, one member killed, failover shown.
//!
//! Uses the cluster `$SHOAL_HOSTS_CLUSTER` (default `shoal`), so that with
//! `--keep` the same `cargo xtask hosts ...` commands drive it afterwards.
//! Without `--keep` the hosts are taken down at the end, on error, and on
//! Ctrl-C (by a watchdog process: std cannot catch SIGINT).

use crate::agents::{self, Shoal, Watchdog, UNIT_DIR};
use crate::hosts::{Cluster, Result};
use std::time::{Duration, Instant};

const USAGE: &str = "usage: cargo xtask demo [--keep]
  --keep   leave the hosts running at the end (cargo xtask hosts down removes them)";

pub fn main(args: &[String]) -> Result<()> {
    let keep = match args {
        [] => false,
        [k] if k == "--keep" => true,
        _ => return Err(USAGE.into()),
    };
    let cluster = Cluster::from_env()?;
    if !cluster.hosts().is_empty() {
        return Err(format!(
            "the cluster {} already has hosts {:?}; take them down first \
             (cargo xtask hosts down) or set SHOAL_HOSTS_CLUSTER to another name",
            cluster.name(),
            cluster.hosts()
        ));
    }
    let exe = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
    let exe = exe.to_string_lossy().into_owned();
    let watchdog = Watchdog::arm(
        &[&exe, "hosts", "down"],
        &[("SHOAL_HOSTS_CLUSTER", cluster.name())],
    )?;
    let result = run(&cluster);
    if let Err(e) = &result {
        eprintln!("demo failed: {e}");
    }
    if keep && result.is_ok() {
        watchdog.disarm();
        let env = if cluster.name() == "shoal" {
            String::new()
        } else {
            format!("SHOAL_HOSTS_CLUSTER={} ", cluster.name())
        };
        println!(
            "\nThe hosts are still up. Try:\n  \
             {env}cargo xtask hosts exec 1 shoal list-units\n  \
             {env}cargo xtask hosts exec 1 shoal list-machines\n  \
             {env}cargo xtask hosts exec 2 shoal why example_03.service\n  \
             {env}cargo xtask hosts start 3        # bring the killed member back\n  \
             {env}cargo xtask hosts exec 3 systemctl status example_03.service\n  \
             {env}cargo xtask hosts down           # remove everything\n\
             The units are in {UNIT_DIR} in every host."
        );
        return Ok(());
    }
    println!("\ntaking the hosts down ...");
    let down = cluster.down();
    watchdog.disarm();
    result.and(down)
}

fn step(title: &str) {
    println!("\n==> {title}");
}

/// Shows a client command as if typed in host `i`, then its output.
fn show(s: &Shoal, i: u32, args: &[&str]) -> Result<String> {
    println!("h{i}$ shoal {}", args.join(" "));
    let out = s.client(i, args)?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    print!("{text}");
    Ok(text)
}

fn run(cluster: &Cluster) -> Result<()> {
    let s = Shoal::new(cluster.clone(), 3);
    step("building the static binary");
    let bin = s.install_binary()?;
    let size = std::fs::metadata(&bin).map(|m| m.len()).unwrap_or(0);
    println!("{} ({:.0} KiB)", bin.display(), size as f64 / 1024.0);
    step("booting 3 hosts with real systemd (10.77.0.1-3)");
    let took = cluster.up(3)?;
    println!("booted in {:.1} s", took.as_secs_f64());
    step("writing /etc/shoal/shoal.conf, the cluster key and shoal.service; systemctl enable --now shoal");
    let key = s.keygen()?;
    let units = agents::chapter_units(&cluster.machine(2).machine_id())?;
    for i in 1..=3 {
        s.configure(i, &format!("host=service_0{i},disk=ssd"), &key)?;
        s.put_units(i, &units)?;
    }
    for i in 1..=3 {
        s.start_agent(i)?;
    }
    s.wait_members(&[1, 2, 3], Duration::from_secs(45))?;
    println!("{}", s.config(1, "host=service_01,disk=ssd").trim_end());
    show(&s, 1, &["list-machines"])?;

    step("the chapter's units (docker swapped for /bin/sleep), started as its users did");
    println!("h1$ cat {UNIT_DIR}/common@.service");
    print!(
        "{}",
        units
            .iter()
            .find(|u| u.0 == "common@.service")
            .map(|u| u.1.as_str())
            .unwrap_or("")
    );
    for f in [
        "example_01.service",
        "example_02.service",
        "example_03.service",
        "common@1.service",
        "common@2.service",
    ] {
        show(&s, 1, &["start", &format!("{UNIT_DIR}/{f}")])?;
    }
    settle(&s, 1, 5)?;
    show(&s, 1, &["list-units"])?;

    step("power loss of host 3 (SIGKILL to its systemd)");
    let t0 = Instant::now();
    cluster.kill(3)?;
    // Wait until the cluster has noticed (nothing is listed on host 3 any more) and
    // every unit that can run is active again on a live member.
    let moved = agents::wait(Duration::from_secs(30), || {
        s.list_units(1).is_ok_and(|rows| {
            rows.iter().all(|r| r.host != Some(3))
                && rows
                    .iter()
                    .filter(|r| r.unit != "example_03.service")
                    .all(|r| r.active == "active" && r.host.is_some())
        })
    });
    match moved {
        Ok(t) => println!(
            "failover done {:.1} s after the kill (seen by polling list-units every 100 ms; {:.1} s after the poll began)",
            t0.elapsed().as_secs_f64(),
            t.as_secs_f64()
        ),
        Err(t) => println!("units not all moved after {t:?}"),
    }
    show(&s, 1, &["list-units"])?;
    println!("example_03.service can only run on host=service_03, so it waits:");
    show(&s, 1, &["why", "example_03.service"])?;
    Ok(())
}

/// Waits until host `i` lists `n` units, all active (bounded).
fn settle(s: &Shoal, i: u32, n: usize) -> Result<()> {
    agents::wait(Duration::from_secs(30), || {
        s.list_units(i)
            .is_ok_and(|rows| rows.len() == n && rows.iter().all(|r| r.active == "active"))
    })
    .map(drop)
    .map_err(|t| format!("units not all active after {t:?}"))
}
