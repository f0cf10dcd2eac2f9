//! Pure helpers of the scale bench: parsing `/proc` files and command output, and the statistics the report prints.

use super::median;

/// utime + stime (fields 14 and 15, in clock ticks) of a `/proc/PID/stat` line.
/// The command name in field 2 may hold spaces and parentheses, so fields are
/// counted after its last `)`.
pub fn stat_ticks(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut f = rest.split_whitespace().skip(11);
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some(utime + stime)
}

/// `VmRSS` in KiB from `/proc/PID/status`.
pub fn status_rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// What one interface sent and received, from `/proc/net/dev`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetCounters {
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
}

impl NetCounters {
    /// The counts between `earlier` and `self` (counters only grow).
    pub fn since(&self, earlier: &NetCounters) -> NetCounters {
        NetCounters {
            rx_bytes: self.rx_bytes.saturating_sub(earlier.rx_bytes),
            tx_bytes: self.tx_bytes.saturating_sub(earlier.tx_bytes),
            tx_packets: self.tx_packets.saturating_sub(earlier.tx_packets),
        }
    }
}

/// `iface`'s counters from `/proc/net/dev`: `iface: rx_bytes rx_packets
/// errs drop fifo frame compressed multicast tx_bytes tx_packets ...`.
pub fn net_dev(text: &str, iface: &str) -> Option<NetCounters> {
    let fields: Vec<u64> = text.lines().find_map(|l| {
        let (name, rest) = l.split_once(':')?;
        (name.trim() == iface).then(|| {
            rest.split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect()
        })
    })?;
    if fields.len() < 10 {
        return None;
    }
    Some(NetCounters {
        rx_bytes: fields[0],
        tx_bytes: fields[8],
        tx_packets: fields[9],
    })
}

/// `Udp: OutDatagrams` from `/proc/net/snmp` (a header line, then a value line).
pub fn snmp_udp_out(text: &str) -> Option<u64> {
    let mut udp = text.lines().filter(|l| l.starts_with("Udp:"));
    let header = udp.next()?;
    let values = udp.next()?;
    let at = header
        .split_whitespace()
        .position(|w| w == "OutDatagrams")?;
    values.split_whitespace().nth(at)?.parse().ok()
}

/// Bytes of Ethernet (14), IPv4 (20) and UDP (8) headers in each datagram
/// on the hosts' veth links: what a frame count adds to the payload.
pub const FRAME_OVERHEAD_BYTES: u64 = 42;

/// A number printed alone (`grep -c`, `systemctl show --value`), or `None`.
pub fn count(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// The `q` quantile (0..=1) of `v` by nearest rank; `None` when empty.
pub fn quantile(v: &[f64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = (q.clamp(0.0, 1.0) * s.len() as f64).ceil() as usize;
    Some(s[rank.saturating_sub(1).min(s.len() - 1)])
}

/// Median and largest of `v`, as `median (max M)`, with `digits` decimals.
pub fn med_max(v: &[f64], digits: usize) -> String {
    let max = v.iter().copied().fold(f64::NAN, f64::max);
    format!("{:.digits$} (max {max:.digits$})", median(v))
}

/// `x` against `base` as `×R`, or `-` when either is missing.
pub fn ratio(x: Option<f64>, base: Option<f64>) -> String {
    match (x, base) {
        (Some(x), Some(b)) if b > 0.0 => format!("×{:.1}", x / b),
        _ => "-".into(),
    }
}

/// The median of the values present, `None` when there is none.
pub fn median_some(v: &[Option<f64>]) -> Option<f64> {
    let present: Vec<f64> = v.iter().flatten().copied().collect();
    (!present.is_empty()).then(|| median(&present))
}

/// The times in a stamp file: one `date +%s%N` line per start of the unit
/// on that host (a line still being written, without its newline, is left out).
pub fn stamp_lines(text: &str) -> Vec<u128> {
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// The starts of the bench's units, gathered from every host's stamp files.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Starts {
    /// Per instance, its first start anywhere, in s after `t0`.
    pub first_s: Vec<f64>,
    /// Every start, on every host.
    pub total: usize,
    /// Instances started on more than one host (moved, or run twice).
    pub on_several_hosts: usize,
    /// The last start of any instance anywhere, in s after `t0`.
    pub last_s: Option<f64>,
}

/// Sums up `(host, instance, start times)` of every stamp file.
pub fn starts(files: &[(u32, String, Vec<u128>)], t0_ns: u128) -> Starts {
    use std::collections::BTreeMap;
    let secs = |t: u128| t.saturating_sub(t0_ns) as f64 / 1e9;
    let mut by: BTreeMap<&str, (u128, usize)> = BTreeMap::new();
    let mut s = Starts::default();
    for (_, name, times) in files {
        let Some(&first) = times.iter().min() else {
            continue;
        };
        s.total += times.len();
        let e = by.entry(name).or_insert((first, 0));
        e.0 = e.0.min(first);
        e.1 += 1;
        if let Some(&t) = times.iter().max() {
            s.last_s = Some(s.last_s.map_or(secs(t), |l: f64| l.max(secs(t))));
        }
    }
    s.first_s = by.values().map(|&(t, _)| secs(t)).collect();
    s.on_several_hosts = by.values().filter(|&&(_, hosts)| hosts > 1).count();
    s
}

/// The first field of each `journalctl -o short-unix` line, as seconds.
pub fn journal_times(text: &str) -> Vec<f64> {
    text.lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

/// A `systemctl` command line summed up for a tally: its verb, and for
/// verbs that name units, whether it names one or several
/// (`start 1`, `show many`, `daemon-reload`).
pub fn systemctl_verb(argv: &[String]) -> String {
    let mut args = argv.iter().skip(1).filter(|a| !a.starts_with('-'));
    let Some(verb) = args.next() else {
        return "?".into();
    };
    match args.count() {
        0 => verb.clone(),
        1 => format!("{verb} 1"),
        _ => format!("{verb} many"),
    }
}

/// Parses `--units 100,500`: sizes of 1..=`max`, comma separated.
pub fn unit_counts(arg: &str, max: u32) -> Option<Vec<u32>> {
    let v: Option<Vec<u32>> = arg
        .split(',')
        .map(|n| n.trim().parse().ok().filter(|n| (1..=max).contains(n)))
        .collect();
    v.filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_read_after_a_command_name_with_spaces() {
        let stat = "4242 (shoal (x) y) S 1 4242 4242 0 -1 4194560 900 0 0 0 \
                    120 35 0 0 20 0 3 0 12345 1234567 512 18446744073709551615";
        assert_eq!(stat_ticks(stat), Some(155));
        assert_eq!(stat_ticks("garbage"), None);
    }

    #[test]
    fn rss_comes_from_the_vmrss_line() {
        let status = "Name:\tshoal\nVmPeak:\t   9000 kB\nVmRSS:\t    3412 kB\nThreads:\t3\n";
        assert_eq!(status_rss_kib(status), Some(3412));
        assert_eq!(status_rss_kib("Name:\tx\n"), None);
    }

    #[test]
    fn net_dev_gives_the_named_interface_only() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
             face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
             lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0\n  \
             eth0: 5000000   40000    0    0    0     0          0         0  6000000   51000    0    0    0     0       0          0\n";
        let c = net_dev(text, "eth0").unwrap();
        assert_eq!(
            c,
            NetCounters {
                rx_bytes: 5_000_000,
                tx_bytes: 6_000_000,
                tx_packets: 51_000
            }
        );
        let later = NetCounters {
            tx_bytes: 6_000_420,
            ..c
        };
        assert_eq!(later.since(&c).tx_bytes, 420);
        assert_eq!(net_dev(text, "eth1"), None);
    }

    #[test]
    fn udp_out_datagrams_are_found_by_column_name() {
        let text = "Ip: Forwarding DefaultTTL\nIp: 2 64\n\
                    Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors\n\
                    Udp: 900 3 0 1234 0\nUdpLite: InDatagrams OutDatagrams\nUdpLite: 0 0\n";
        assert_eq!(snmp_udp_out(text), Some(1234));
    }

    #[test]
    fn counts_quantiles_and_ratios() {
        assert_eq!(count("17\n"), Some(17));
        assert_eq!(count(""), None);
        let v = [5.0, 1.0, 4.0, 2.0, 3.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        assert_eq!(quantile(&v, 0.1), Some(1.0));
        assert_eq!(quantile(&v, 0.5), Some(5.0));
        assert_eq!(quantile(&v, 1.0), Some(10.0));
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(ratio(Some(30.0), Some(12.0)), "×2.5");
        assert_eq!(ratio(None, Some(12.0)), "-");
        assert_eq!(median_some(&[None, Some(3.0), Some(1.0)]), Some(2.0));
        assert_eq!(median_some(&[None]), None);
        assert_eq!(med_max(&[1.0, 3.0, 2.0], 1), "2.0 (max 3.0)");
    }

    #[test]
    fn starts_count_instances_once_and_moves_apart() {
        assert_eq!(stamp_lines("1000\n2000\n30"), vec![1000, 2000]);
        assert!(stamp_lines("30").is_empty());
        let t0 = 1_000_000_000;
        let files = vec![
            (1, "1".to_string(), vec![t0 + 2_000_000_000]),
            (
                2,
                "1".to_string(),
                vec![t0 + 500_000_000, t0 + 9_000_000_000],
            ),
            (2, "2".to_string(), vec![t0 + 1_000_000_000]),
            (3, "3".to_string(), vec![]),
        ];
        let s = starts(&files, t0);
        assert_eq!(s.first_s, vec![0.5, 1.0]);
        assert_eq!((s.total, s.on_several_hosts), (4, 1));
        assert_eq!(s.last_s, Some(9.0));
    }

    #[test]
    fn journal_lines_give_their_unix_times() {
        let text = "1764475200.123456 h2 shoal[81]: member down: 00050005 at 10.77.0.5:4774\n\
                    -- No entries --\n";
        assert_eq!(journal_times(text), vec![1764475200.123456]);
    }

    #[test]
    fn systemctl_lines_are_told_apart_by_verb_and_unit_count() {
        let v = |s: &str| systemctl_verb(&s.split(' ').map(String::from).collect::<Vec<_>>());
        assert_eq!(v("systemctl --no-pager daemon-reload"), "daemon-reload");
        assert_eq!(
            v("systemctl --no-pager start --no-block -- a.service"),
            "start 1"
        );
        assert_eq!(
            v("/bin/systemctl --no-pager show --property=Id,SubState -- a.service b.service"),
            "show many"
        );
        assert_eq!(v("systemctl"), "?");
    }

    #[test]
    fn unit_counts_are_bounded() {
        assert_eq!(unit_counts("100,500", 10_000), Some(vec![100, 500]));
        assert_eq!(unit_counts("0", 10_000), None);
        assert_eq!(unit_counts("100,x", 10_000), None);
        assert_eq!(unit_counts("20000", 10_000), None);
    }
}
