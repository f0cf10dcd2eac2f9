//! `cargo xtask bench --scale` / `--idle`: the command line, the runs (each on a cluster booted from scratch and taken down after), and the report.

use super::{idle, report, scale};
use crate::agents::{Shoal, Watchdog};
use crate::hosts::{Cluster, Result};
use std::time::Duration;

pub const USAGE: &str =
    "usage: cargo xtask bench --scale [--hosts 5] [--units 100,500] [--runs 1] [--cap 360]
       cargo xtask bench --idle [--hosts 10] [--runs 3] [--window 30]
  --scale        one `shoal start --no-block` of N instances of scale@.service
                 (MachineMetadata=disk=ssd) in host 1, timed to all active in list-units;
                 each N on freshly booted hosts; ratios against the first N
  --idle         members with no units: eth0 bytes sent and agent CPU over --window s
  --hosts H      hosts per cluster (default 5 with --scale, 10 with --idle)
  --units LIST   unit counts, comma separated, 1..=10000 (default 100,500)
  --runs R       runs per N (default 1) / idle windows (default 3); medians reported
  --cap S        longest wait for all active, per run (default 360 s)
  --window S     idle window after a scale run and per idle run (default 30 s)
both may be given (scale first). The cluster is `shoalscale` under SHOAL_HOSTS_DIR,
taken down at the end, on error and on Ctrl-C; SHOAL_BIN names a prebuilt static binary.";

/// The cluster's name: apart from `shoal` (developers) and `shoalbench`.
const CLUSTER: &str = "shoalscale";
const UNITS_MAX: u32 = 10_000;

#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    pub scale: bool,
    pub idle: bool,
    pub hosts: Option<u32>,
    pub units: Vec<u32>,
    pub runs: Option<usize>,
    pub cap_s: u64,
    pub window_s: u64,
}

/// Parses the command line (pure).
pub fn options(args: &[String]) -> Result<Options> {
    let mut o = Options {
        scale: false,
        idle: false,
        hosts: None,
        units: vec![100, 500],
        runs: None,
        cap_s: 360,
        window_s: 30,
    };
    let mut it = args.iter();
    let bounded = |v: Option<&String>, lo: u64, hi: u64, what: &str| -> Result<u64> {
        v.and_then(|x| x.parse().ok())
            .filter(|x| (lo..=hi).contains(x))
            .ok_or_else(|| format!("{what}: {lo}..={hi}\n{USAGE}"))
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--scale" => o.scale = true,
            "--idle" => o.idle = true,
            "--hosts" => o.hosts = Some(bounded(it.next(), 2, 50, "--hosts")? as u32),
            "--runs" => o.runs = Some(bounded(it.next(), 1, 21, "--runs")? as usize),
            "--cap" => o.cap_s = bounded(it.next(), 10, 3600, "--cap")?,
            "--window" => o.window_s = bounded(it.next(), 1, 600, "--window")?,
            "--units" => {
                o.units = it
                    .next()
                    .and_then(|v| super::stats::unit_counts(v, UNITS_MAX))
                    .ok_or_else(|| format!("--units: counts of 1..={UNITS_MAX}\n{USAGE}"))?;
            }
            _ => return Err(USAGE.into()),
        }
    }
    if !o.scale && !o.idle {
        return Err(USAGE.into());
    }
    Ok(o)
}

pub fn main(args: &[String]) -> Result<()> {
    let o = options(args)?;
    let rerun = format!("cargo xtask bench {}", args.join(" "));
    let cluster = Cluster::new(&crate::hosts::base_dir(), CLUSTER)?;
    let exe = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
    // Ctrl-C in the middle of a run must not leave hosts behind.
    let watchdog = Watchdog::arm(
        &[&exe.to_string_lossy(), "hosts", "down"],
        &[("SHOAL_HOSTS_CLUSTER", cluster.name())],
    )?;
    Shoal::new(cluster.clone(), 1).install_binary()?;
    let result = measure(&cluster, &o);
    let down = cluster.down();
    watchdog.disarm();
    let (runs, idle) = result?;
    down?;
    let note = "one machine, 2 cores shared by every host and whatever else runs on it";
    if o.scale {
        report::scale(&runs, &o.units, o.hosts.unwrap_or(5), o.window_s);
    }
    if let Some(f) = &idle {
        report::idle(f);
    }
    println!("\n({note}; rerun: {rerun})");
    Ok(())
}

/// The scale runs (runs × sizes, each on a fresh cluster), then the idle runs.
fn measure(
    cluster: &Cluster,
    o: &Options,
) -> Result<(Vec<scale::ScaleRun>, Option<idle::IdleFigures>)> {
    let mut runs = Vec::new();
    if o.scale {
        let hosts = o.hosts.unwrap_or(5);
        for _ in 0..o.runs.unwrap_or(1) {
            for &n in &o.units {
                let _ = cluster.down();
                let cap = Duration::from_secs(o.cap_s);
                runs.push(scale::run(cluster, hosts, n, cap, o.window_s)?);
                cluster.down()?;
            }
        }
    }
    let mut idle = None;
    if o.idle {
        let _ = cluster.down();
        let hosts = o.hosts.filter(|_| !o.scale).unwrap_or(10);
        idle = Some(idle::run(cluster, hosts, o.runs.unwrap_or(3), o.window_s)?);
    }
    Ok((runs, idle))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn scale_options_have_the_issues_defaults() {
        let o = options(&args("--scale")).unwrap();
        assert_eq!(
            (o.units.clone(), o.cap_s, o.window_s),
            (vec![100, 500], 360, 30)
        );
        assert_eq!((o.hosts, o.runs), (None, None));
        let o = options(&args("--scale --hosts 5 --units 100,2000 --runs 3")).unwrap();
        assert_eq!(
            (o.hosts, o.units, o.runs),
            (Some(5), vec![100, 2000], Some(3))
        );
    }

    #[test]
    fn bad_or_missing_modes_are_refused() {
        assert!(options(&args("")).is_err());
        assert!(options(&args("--idle --hosts 1")).is_err());
        assert!(options(&args("--scale --units 100,0")).is_err());
        assert!(options(&args("--scale --runs")).is_err());
        assert!(options(&args("--idle --window 30")).unwrap().idle);
    }
}
