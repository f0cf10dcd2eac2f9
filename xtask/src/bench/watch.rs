//! Watching a scale run from outside the hosts, every 500 ms: units started (their own stamp files), the agents' `systemctl` children, snapshot rewrites, and a progress line every 10 s.

use super::probe::{self, Host};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Where each bench unit records when its main process started, inside a host.
pub const STAMP_DIR: &str = "/var/tmp/shoal-scale";
/// How often the watcher looks: the bench must not load what it measures.
pub const SAMPLE: Duration = Duration::from_millis(500);
/// How often the progress line is printed.
const PROGRESS: Duration = Duration::from_secs(10);

/// What the watcher keeps per host.
struct PerHost {
    host: Host,
    stamps: PathBuf,
    snapshot: Option<(u64, i64, u64)>,
    snapshot_rewrites: u32,
    systemctl_max: usize,
    /// Sum over samples of `systemctl` children: divided by the number of
    /// samples, the mean number running.
    systemctl_sum: usize,
    ticks_at_progress: Option<u64>,
}

/// The watcher of one run.
pub struct Watch {
    hosts: Vec<PerHost>,
    /// `systemctl` children seen, by [`super::stats::systemctl_verb`], all hosts.
    verbs: BTreeMap<String, usize>,
    samples: usize,
    last_progress: Instant,
    started: Instant,
    clk_tck: f64,
}

/// What the watcher saw over the run, per host (in host order).
#[derive(Clone, Debug, Default)]
pub struct Seen {
    pub snapshot_rewrites: Vec<u32>,
    pub systemctl_max: Vec<usize>,
    pub systemctl_mean: Vec<f64>,
    /// (verb, samples in which an agent ran it), summed over hosts: each
    /// verb's share of the executor's time, roughly.
    pub systemctl_verbs: Vec<(String, usize)>,
    /// Samples taken (per host).
    pub samples: usize,
}

impl Watch {
    pub fn new(hosts: &[Host], started: Instant, clk_tck: f64) -> Watch {
        let hosts = hosts
            .iter()
            .map(|h| PerHost {
                stamps: stamp_dir(h),
                snapshot: h.snapshot_id(),
                snapshot_rewrites: 0,
                systemctl_max: 0,
                systemctl_sum: 0,
                ticks_at_progress: h.agent_ticks(),
                host: h.clone(),
            })
            .collect();
        Watch {
            hosts,
            verbs: BTreeMap::new(),
            samples: 0,
            last_progress: started,
            started,
            clk_tck,
        }
    }

    /// One look at every host; returns how many units have started
    /// somewhere so far (each instance once, wherever it ran).
    pub fn sample(&mut self) -> usize {
        self.samples += 1;
        let mut started = std::collections::BTreeSet::new();
        for h in &mut self.hosts {
            started.extend(probe::file_names(&h.stamps));
            let id = h.host.snapshot_id();
            if id.is_some() && id != h.snapshot {
                h.snapshot_rewrites += 1;
                h.snapshot = id;
            }
            let verbs = h.host.systemctl_children();
            h.systemctl_max = h.systemctl_max.max(verbs.len());
            h.systemctl_sum += verbs.len();
            for v in verbs {
                *self.verbs.entry(v).or_default() += 1;
            }
        }
        started.len()
    }

    /// Prints a progress line when [`PROGRESS`] has passed since the last one.
    pub fn progress(&mut self, stamped: usize, listed: Option<usize>, n: u32) {
        let now = Instant::now();
        let dt = now.duration_since(self.last_progress).as_secs_f64();
        if dt < PROGRESS.as_secs_f64() {
            return;
        }
        self.last_progress = now;
        let mut cpu = Vec::new();
        let mut ctl = Vec::new();
        let mut snap = Vec::new();
        for h in &mut self.hosts {
            let t = h.host.agent_ticks();
            cpu.push(match (t, h.ticks_at_progress) {
                (Some(b), Some(a)) => format!("{:.0}", pct(b - a.min(b), dt, self.clk_tck)),
                _ => "?".into(),
            });
            h.ticks_at_progress = t;
            ctl.push(h.host.systemctl_children().len().to_string());
            snap.push(h.snapshot_rewrites.to_string());
        }
        let listed = listed.map_or("-".into(), |l| l.to_string());
        println!(
            "  t={:>4.0}s started {stamped}/{n} listed-active {listed}/{n} | agent CPU% {} | \
             systemctl now {} | snapshot rewrites {} | load {}",
            now.duration_since(self.started).as_secs_f64(),
            cpu.join(" "),
            ctl.join(" "),
            snap.join(" "),
            probe::loadavg()
        );
    }

    pub fn seen(&self) -> Seen {
        let samples = self.samples.max(1) as f64;
        Seen {
            snapshot_rewrites: self.hosts.iter().map(|h| h.snapshot_rewrites).collect(),
            systemctl_max: self.hosts.iter().map(|h| h.systemctl_max).collect(),
            systemctl_mean: self
                .hosts
                .iter()
                .map(|h| h.systemctl_sum as f64 / samples)
                .collect(),
            systemctl_verbs: self.verbs.iter().map(|(v, &c)| (v.clone(), c)).collect(),
            samples: self.samples,
        }
    }
}

/// The stamp directory of host `h`, on this machine.
pub fn stamp_dir(h: &Host) -> PathBuf {
    h.root.join(STAMP_DIR.trim_start_matches('/'))
}

/// CPU % of one core from `ticks` over `secs`.
pub fn pct(ticks: u64, secs: f64, clk_tck: f64) -> f64 {
    if secs <= 0.0 {
        return f64::NAN;
    }
    ticks as f64 / clk_tck / secs * 100.0
}
