//! Three real agents (event loop, UDP gossip, control socket, executor thread) on
//! loopback, with an in-memory systemd: a unit started through the control socket
//! is launched, and when its member is killed it comes back on another one.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shoal::agent::{self, config::Settings, Agent};
use shoal::control::{Client, Endpoint, Request, Response, UnitInfo};
use shoal::systemd::{FakeSystemd, Observed, Systemd, SystemdError};
use shoal::wire::{Key, KeyRing};

/// A FakeSystemd whose starts and stops complete by the next state poll, as a quick
/// real systemd's do; shared so the test can look inside.
#[derive(Clone)]
struct Quick(Arc<Mutex<FakeSystemd>>);

impl Quick {
    fn lock(&self) -> std::sync::MutexGuard<'_, FakeSystemd> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Systemd for Quick {
    fn install(&mut self, unit: &str, text: &str) -> Result<(), SystemdError> {
        self.lock().install(unit, text)
    }
    fn remove(&mut self, unit: &str) -> Result<(), SystemdError> {
        self.lock().remove(unit)
    }
    fn daemon_reload(&mut self) -> Result<(), SystemdError> {
        self.lock().daemon_reload()
    }
    fn start(&mut self, unit: &str) -> Result<(), SystemdError> {
        self.lock().start(unit)
    }
    fn stop(&mut self, unit: &str) -> Result<(), SystemdError> {
        self.lock().stop(unit)
    }
    fn states(&mut self, units: &[&str]) -> Result<BTreeMap<String, Observed>, SystemdError> {
        let mut sd = self.lock();
        sd.finish_all();
        sd.states(units)
    }
    fn list_owned(&self) -> Result<std::collections::BTreeSet<String>, SystemdError> {
        self.lock().list_owned()
    }
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn machine_id(i: usize) -> String {
    format!("{i:x}{}", "0".repeat(31))
}

struct Member {
    dir: PathBuf,
    sd: Quick,
    handle: Option<agent::Handle>,
}

impl Member {
    fn endpoint(&self) -> Endpoint {
        Endpoint(self.dir.join("shoal.sock"))
    }
}

fn start_member(
    dir: &Path,
    i: usize,
    addr: SocketAddr,
    peers: &[SocketAddr],
    sd: Quick,
    tools: agent::tools::Tools,
) -> agent::Handle {
    let raw_peers: Vec<String> = peers.iter().map(|p| p.to_string()).collect();
    let args: Vec<OsString> = [
        "--bind",
        &addr.to_string(),
        "--peers",
        &raw_peers.join(","),
        "--metadata",
        &format!("n={i}"),
        "--data-dir",
        &dir.join("data").display().to_string(),
        "--socket",
        &dir.join("shoal.sock").display().to_string(),
    ]
    .iter()
    .map(OsString::from)
    .collect();
    let flags = agent::config::parse_flags(args).expect("flags");
    let settings = Settings::from_raw(&flags.raw).expect("settings");
    let keys = KeyRing::new(Key::from_bytes([42; 32]), vec![]).expect("key");
    agent::spawn(Agent {
        settings,
        machine_id: machine_id(i),
        keys,
        systemd: Box::new(sd),
        tools,
    })
    .expect("agent starts")
}

/// Three agents on loopback in a fresh directory named after `tag`, each with a
/// quick fake systemd and the tools `tools(dir, i)` gives; returns once all
/// three see each other: (directory, addresses, members).
fn three_members(
    tag: &str,
    tools: impl Fn(&Path, usize) -> agent::tools::Tools,
) -> (PathBuf, Vec<SocketAddr>, Vec<Member>) {
    let base = std::env::temp_dir().join(format!("shoal-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let addrs: Vec<SocketAddr> = (0..3)
        .map(|_| SocketAddr::from(([127, 0, 0, 1], free_port())))
        .collect();
    let members: Vec<Member> = (0..3)
        .map(|i| {
            let dir = base.join(format!("m{i}"));
            std::fs::create_dir_all(&dir).expect("dir");
            let sd = Quick(Arc::new(Mutex::new(FakeSystemd::new())));
            let handle = start_member(
                &dir,
                i + 1,
                addrs[i],
                &addrs,
                sd.clone(),
                tools(&dir, i + 1),
            );
            Member {
                dir,
                sd,
                handle: Some(handle),
            }
        })
        .collect();
    wait_for("the three members meet", Duration::from_secs(10), || {
        members.iter().all(|m| {
            Client::connect(&m.endpoint())
                .and_then(|mut c| c.call(&Request::ListMachines))
                .is_ok_and(|r| matches!(r, Response::Machines(ms) if ms.len() == 3))
        })
    });
    (base, addrs, members)
}

fn units(m: &Member) -> Vec<UnitInfo> {
    let Ok(mut c) = Client::connect(&m.endpoint()) else {
        return Vec::new();
    };
    match c.call(&Request::ListUnits) {
        Ok(Response::Units(u)) => u,
        _ => Vec::new(),
    }
}

/// Which machine reports `unit` active, as `m` sees it.
fn active_on(m: &Member, unit: &str) -> Vec<String> {
    units(m)
        .into_iter()
        .filter(|u| u.name == unit)
        .flat_map(|u| u.runs)
        .filter(|r| r.active == "active")
        .map(|r| r.machine)
        .collect()
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return t.elapsed();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what}: not within {limit:?}");
}

fn run_cli(args: &[&str]) -> (i32, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = shoal::cli::run(
        args.iter().map(OsString::from).collect(),
        &mut out,
        &mut err,
    );
    (
        code,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

#[test]
fn three_agents_launch_a_unit_and_fail_it_over_when_its_member_dies() {
    // Everyone sees everyone.
    let (base, addrs, mut members) = three_members("loopback", |_, _| Default::default());

    // The control socket is root's only, and garbage on it is refused, not fatal.
    {
        use std::io::{Read, Write};
        use std::os::unix::fs::PermissionsExt;
        let sock = members[0].endpoint().0;
        let mode = |p: &Path| std::fs::metadata(p).expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode(&sock), 0o600);
        let mut raw = std::os::unix::net::UnixStream::connect(&sock).expect("connect");
        raw.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        raw.write_all(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3])
            .expect("write");
        let mut answer = Vec::new();
        let _ = raw.read_to_end(&mut answer);
        let mut r = &answer[..];
        let reply: Response = shoal::control::protocol::read_frame(&mut r).expect("an answer");
        assert!(
            matches!(reply, Response::Error(ref e) if e.contains("exceeds")),
            "{reply:?}"
        );
        let mut c = Client::connect(&members[0].endpoint()).expect("still serving");
        assert!(matches!(
            c.call(&Request::Hello {
                version: shoal::control::protocol::PROTOCOL_VERSION
            }),
            Ok(Response::Hello { .. })
        ));
    }

    // A bad unit file is refused on the client side; the cluster is unchanged.
    let unit_dir = base.join("units");
    std::fs::create_dir_all(&unit_dir).expect("dir");
    let bad = unit_dir.join("bad.service");
    std::fs::write(&bad, "[Service]\nExecStart=/bin/true\n[X-Fleet]\nNope=1\n").expect("write");
    let endpoint = format!("unix://{}", members[0].endpoint().0.display());
    let (code, _, err) = run_cli(&["--endpoint", &endpoint, "start", &bad.display().to_string()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("bad.service:4"), "{err}");
    assert!(units(&members[0]).is_empty());

    // Start a unit through the control socket, as `shoal start FILE` does.
    let file = unit_dir.join("web.service");
    std::fs::write(&file, "[Service]\nExecStart=/bin/sleep 1000\n").expect("write");
    let t = Instant::now();
    let (code, out, err) = run_cli(&[
        "--endpoint",
        &endpoint,
        "start",
        &file.display().to_string(),
    ]);
    assert_eq!(code, 0, "stdout {out} stderr {err}");
    assert!(out.starts_with("Unit web.service launched on "), "{out}");
    eprintln!("start to active: {:?}", t.elapsed());
    let on = active_on(&members[0], "web.service");
    assert_eq!(on.len(), 1, "{on:?}");
    let holder = (1..=3)
        .position(|i| machine_id(i) == on[0])
        .expect("holder is one of ours");
    assert_eq!(
        members[holder].sd.lock().states(&["web.service"]).unwrap()["web.service"].active_state,
        "active"
    );

    // list-units and list-unit-files show it, fleet's way.
    let (code, out, _) = run_cli(&["--endpoint", &endpoint, "list-units", "--no-legend"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("web.service  "), "{out}");
    assert!(out.contains("active  running"), "{out}");
    let (_, out, _) = run_cli(&["--endpoint", &endpoint, "cat", "web.service"]);
    assert_eq!(out, "[Service]\nExecStart=/bin/sleep 1000\n");

    // Kill the holder (no goodbye): another member takes the unit over.
    let dead = members[holder].handle.take().expect("running");
    let t = Instant::now();
    dead.kill();
    let watcher = (holder + 1) % 3;
    let failover = wait_for("the unit runs elsewhere", Duration::from_secs(15), || {
        let on = active_on(&members[watcher], "web.service");
        on.len() == 1 && on[0] != machine_id(holder + 1)
    });
    eprintln!("kill to active elsewhere: {failover:?} ({:?})", t.elapsed());

    // A graceful leave moves it at once, and the leaver stops its copy first.
    let now_on = active_on(&members[watcher], "web.service")[0].clone();
    let leaver = (1..=3)
        .position(|i| machine_id(i) == now_on)
        .expect("one of ours");
    let other = (0..3)
        .find(|i| *i != holder && *i != leaver)
        .expect("a third");
    let t = Instant::now();
    if let Some(h) = members[leaver].handle.take() {
        h.leave();
        h.join().expect("clean exit");
    }
    assert_eq!(
        members[leaver].sd.lock().states(&["web.service"]).unwrap()["web.service"].active_state,
        "inactive",
        "the leaver stopped its copy"
    );
    wait_for(
        "the unit moves after a leave",
        Duration::from_secs(10),
        || active_on(&members[other], "web.service") == vec![machine_id(other + 1)],
    );
    eprintln!("leave to active elsewhere: {:?}", t.elapsed());

    // Whole-cluster power cut: every agent dies and every systemd forgets its runtime
    // units (a reboot empties /run). On boot, from their snapshots, the unit comes back,
    // exactly once.
    if let Some(h) = members[other].handle.take() {
        h.kill();
    }
    let t = Instant::now();
    for (i, m) in members.iter_mut().enumerate() {
        m.sd = Quick(Arc::new(Mutex::new(FakeSystemd::new())));
        m.handle = Some(start_member(
            &m.dir,
            i + 1,
            addrs[i],
            &addrs,
            m.sd.clone(),
            Default::default(),
        ));
    }
    wait_for(
        "the unit is back after a power cut",
        Duration::from_secs(15),
        || {
            members.iter().any(|m| {
                let st = m.sd.lock().states(&["web.service"]).unwrap();
                st["web.service"].active_state == "active"
            })
        },
    );
    eprintln!("power-on to active: {:?}", t.elapsed());
    std::thread::sleep(Duration::from_secs(2));
    let running: Vec<usize> = (0..3)
        .filter(|&i| {
            let st = members[i].sd.lock().states(&["web.service"]).unwrap();
            st["web.service"].active_state == "active"
        })
        .collect();
    assert_eq!(running.len(), 1, "runs on exactly one member: {running:?}");
    drop(members);
    let _ = std::fs::remove_dir_all(&base);
}

/// Where each unit is active, as member `m` sees it.
fn placement_seen(m: &Member) -> BTreeMap<String, Vec<String>> {
    units(m)
        .into_iter()
        .map(|u| {
            let on = u
                .runs
                .into_iter()
                .filter(|r| r.active == "active")
                .map(|r| r.machine)
                .collect();
            (u.name, on)
        })
        .collect()
}

/// A member that reboots while its units run elsewhere must take nothing back: its
/// previous boot's reports ("w2 active") no longer count for placement once it is back
/// under a new boot, so the members now running its units keep them.
#[test]
fn a_member_that_reboots_while_its_units_run_elsewhere_takes_nothing_back() {
    if std::env::var_os("SHOAL_LOG").is_some() {
        agent::logger::init();
    }
    let (base, addrs, mut members) = three_members("reboot", |_, _| Default::default());
    let names: Vec<String> = (1..=6).map(|n| format!("w{n}.service")).collect();
    let mut c = Client::connect(&members[0].endpoint()).expect("connect");
    for n in &names {
        let text = "[Service]\nExecStart=/bin/sleep 1000\n".to_string();
        assert_eq!(
            c.call(&Request::Submit {
                name: n.clone(),
                text
            }),
            Ok(Response::Ok)
        );
        assert_eq!(
            c.call(&Request::Start { name: n.clone() }),
            Ok(Response::Ok)
        );
    }
    wait_for("all six run", Duration::from_secs(15), || {
        placement_seen(&members[0]).values().all(|on| on.len() == 1)
    });
    // Member 3 dies; its units move.
    let victim = 2;
    members[victim].handle.take().expect("running").kill();
    wait_for("failover", Duration::from_secs(15), || {
        let seen = placement_seen(&members[0]);
        seen.values()
            .all(|on| on.len() == 1 && on[0] != machine_id(victim + 1))
    });
    let before = placement_seen(&members[0]);
    // It reboots (systemd forgets its runtime units) and rejoins.
    members[victim].sd = Quick(Arc::new(Mutex::new(FakeSystemd::new())));
    members[victim].handle = Some(start_member(
        &members[victim].dir,
        victim + 1,
        addrs[victim],
        &addrs,
        members[victim].sd.clone(),
        Default::default(),
    ));
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(placement_seen(&members[0]), before, "units moved back");
    assert!(
        !members[victim]
            .sd
            .lock()
            .log
            .iter()
            .any(|l| l.starts_with("start ")),
        "the rebooted member started something: {:?}",
        members[victim].sd.lock().log
    );
    drop(members);
    let _ = std::fs::remove_dir_all(&base);
}

/// A stand-in for journalctl reading `journal` (lines `SEQ USEC TEXT`): `--lines`,
/// `--after-cursor` and `--since` as journalctl 252 does them, `--show-cursor` always.
fn fake_journalctl(dir: &Path, member: usize) -> PathBuf {
    let script = format!(
        r#"#!/bin/sh
after=; since=; n=10
for a in "$@"; do
  case "$a" in
    --after-cursor=*) after=${{a#*;i=}}; after=${{after%%;*}} ;;
    --since=@*) since=${{a#--since=@}}; since=${{since%%.*}} ;;
    --lines=*) n=${{a#--lines=}} ;;
  esac
done
exec awk -v after="$after" -v since="$since" -v n="$n" '
  {{ seq[NR] = $1; t[NR] = $2; msg[NR] = $3 " " $4 }}
  END {{
    from = NR - n + 1; if (from < 1) from = 1; to = NR
    if (after != "" || since != "") {{
      from = NR + 1
      for (i = NR; i >= 1; i--) if ((after != "" && seq[i] > after + 0) || (since != "" && t[i] >= since * 1000000)) from = i
      to = from + n - 1; if (to > NR) to = NR
    }}
    for (i = from; i <= to; i++) print "Jan 01 m{member} sh[1]: " msg[i]
    if (to >= from) printf "-- cursor: s=m{member};i=%d;t=%x\n", seq[to], t[to]
  }}' {journal}
"#,
        journal = dir.join("journal").display()
    );
    let path = dir.join("journalctl");
    std::fs::write(&path, script).expect("write");
    std::fs::write(dir.join("journal"), "").expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// An output stream the test can read while the command still runs.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

#[test]
fn journal_follow_goes_on_where_the_unit_moves_and_ends_when_it_is_destroyed() {
    let (base, _, mut members) = three_members("follow", |dir, i| agent::tools::Tools {
        journalctl: fake_journalctl(dir, i),
        ..Default::default()
    });
    let file = base.join("web.service");
    std::fs::write(&file, "[Service]\nExecStart=/bin/sleep 1000\n").expect("write");
    let ep = |m: &Member| format!("unix://{}", m.endpoint().0.display());
    let (code, out, err) = run_cli(&[
        "--endpoint",
        &ep(&members[0]),
        "start",
        &file.display().to_string(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let holder_of = |members: &[Member], watcher: usize| -> Option<usize> {
        let on = active_on(&members[watcher], "web.service");
        (1..=3).position(|i| on == vec![machine_id(i)])
    };
    let holder = holder_of(&members, 0).expect("runs");
    let log = |m: &Member, seq: u64, secs: u64, text: &str| {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(m.dir.join("journal"))
            .expect("journal");
        writeln!(f, "{seq} {} {text}", secs * 1_000_000).expect("append");
    };
    for k in 1..=3 {
        log(&members[holder], k, k, &format!("tick {k}"));
    }

    // Followed from a member that does not run it.
    let watcher = (holder + 1) % 3;
    let (out, err) = (Shared::default(), Shared::default());
    let follower = {
        let (mut out, mut err) = (out.clone(), err.clone());
        let args: Vec<OsString> = [
            "--endpoint",
            &ep(&members[watcher]),
            "journal",
            "-f",
            "--lines",
            "2",
            "web.service",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        std::thread::spawn(move || shoal::cli::run(args, &mut out, &mut err))
    };
    wait_for("the last two lines", Duration::from_secs(5), || {
        out.text().contains("tick 3")
    });
    for k in 4..=6 {
        log(&members[holder], k, k, &format!("tick {k}"));
        std::thread::sleep(Duration::from_millis(150));
    }
    wait_for("new lines", Duration::from_secs(5), || {
        out.text().contains("tick 6")
    });

    // Its member dies; it runs on another, whose journal is followed from the time of
    // the last line shown (an older entry there is not shown).
    if let Some(h) = members[holder].handle.take() {
        h.kill();
    }
    let alive = (holder + 2) % 3;
    wait_for("the unit runs elsewhere", Duration::from_secs(15), || {
        holder_of(&members, watcher).is_some_and(|h| h != holder)
    });
    let moved_to = holder_of(&members, watcher).expect("runs");
    assert!(moved_to == watcher || moved_to == alive);
    log(&members[moved_to], 1, 2, "old entry");
    for k in 7..=9 {
        log(&members[moved_to], 10 + k, 100 + k, &format!("tick {k}"));
    }
    wait_for("lines from the new member", Duration::from_secs(10), || {
        out.text().contains("tick 9")
    });

    let (code, _, e) = run_cli(&[
        "--endpoint",
        &ep(&members[watcher]),
        "destroy",
        "web.service",
    ]);
    assert_eq!(code, 0, "{e}");
    let t = Instant::now();
    while !follower.is_finished() && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(follower.is_finished(), "still following a destroyed unit");
    let code = follower.join().expect("no panic");
    let (out, err) = (out.text(), err.text());
    let lines: Vec<&str> = out
        .lines()
        .map(|l| l.rsplit(": ").next().unwrap_or(l))
        .collect();
    let want: Vec<String> = (2..=9).map(|k| format!("tick {k}")).collect();
    assert_eq!(
        lines, want,
        "each line once, in order\nstdout:\n{out}\nstderr:\n{err}"
    );
    eprintln!("journal -f said on stderr:\n{err}");
    assert_eq!(code, 1, "{err}");
    let short = format!("{:x}", moved_to + 1);
    assert!(
        err.contains(&format!("-- web.service is now on {short}")),
        "{err}"
    );
    assert!(err.contains("-- web.service was destroyed"), "{err}");
    drop(members);
    let _ = std::fs::remove_dir_all(&base);
}

/// One agent alone, in a fresh directory named after `tag`.
fn one_member(tag: &str) -> (PathBuf, Member) {
    let base = std::env::temp_dir().join(format!("shoal-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let dir = base.join("m0");
    std::fs::create_dir_all(&dir).expect("dir");
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let sd = Quick(Arc::new(Mutex::new(FakeSystemd::new())));
    let handle = start_member(&dir, 1, addr, &[addr], sd.clone(), Default::default());
    let member = Member {
        dir,
        sd,
        handle: Some(handle),
    };
    wait_for("the agent listens", Duration::from_secs(10), || {
        Client::connect(&member.endpoint()).is_ok()
    });
    (base, member)
}

/// Sends `frames` on a fresh connection and reads every answer until the agent closes.
fn raw_exchange(endpoint: &Endpoint, frames: &[Request]) -> Vec<Response> {
    use std::io::{Read, Write};
    let mut raw = std::os::unix::net::UnixStream::connect(&endpoint.0).expect("connect");
    raw.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    for f in frames {
        raw.write_all(&shoal::control::protocol::encode(f).expect("encodes"))
            .expect("write");
    }
    let mut bytes = Vec::new();
    let _ = raw.read_to_end(&mut bytes);
    let mut r = &bytes[..];
    let mut answers = Vec::new();
    while let Ok(a) = shoal::control::protocol::read_frame::<Response>(&mut r) {
        answers.push(a);
    }
    answers
}

#[test]
fn the_control_socket_wants_hello_first_and_says_when_versions_differ() {
    use shoal::control::protocol::PROTOCOL_VERSION;
    let (base, member) = one_member("hello");
    let endpoint = member.endpoint();

    // A client from before `Hello { version }` asks straight away: one line says why not.
    let answers = raw_exchange(&endpoint, &[Request::ListUnits, Request::ListMachines]);
    assert_eq!(answers.len(), 1, "closed after the refusal: {answers:?}");
    let Response::Error(e) = &answers[0] else {
        panic!("{answers:?}");
    };
    assert!(!e.contains('\n'), "{e}");
    assert!(
        e.contains("older control protocol") && e.contains(&PROTOCOL_VERSION.to_string()),
        "{e}"
    );

    // A client of another version hears ours, and the connection ends there.
    let answers = raw_exchange(
        &endpoint,
        &[
            Request::Hello {
                version: PROTOCOL_VERSION + 1,
            },
            Request::ListUnits,
        ],
    );
    assert!(
        matches!(
            answers.as_slice(),
            [Response::Hello { version, .. }] if *version == PROTOCOL_VERSION
        ),
        "{answers:?}"
    );

    // The same version goes on as usual.
    let answers = raw_exchange(
        &endpoint,
        &[
            Request::Hello {
                version: PROTOCOL_VERSION,
            },
            Request::ListMachines,
        ],
    );
    assert!(
        matches!(answers.as_slice(), [Response::Hello { .. }, Response::Machines(ms)] if ms.len() == 1),
        "{answers:?}"
    );
    drop(member);
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn live_why_explains_from_the_agents_own_placement_view() {
    let (base, member) = one_member("view");
    let endpoint = format!("unix://{}", member.endpoint().0.display());
    let file = base.join("web.service");
    std::fs::write(&file, "[Service]\nExecStart=/bin/sleep 1000\n").expect("write");
    let (code, out, err) = run_cli(&[
        "--endpoint",
        &endpoint,
        "start",
        &file.display().to_string(),
    ]);
    assert_eq!(code, 0, "stdout {out} stderr {err}");

    // The view is the node's: its members with metadata, what runs, the units and texts.
    let mut c = Client::connect(&member.endpoint()).expect("connect");
    let Ok(Response::View(view)) = c.call(&Request::PlacementView) else {
        panic!("no view");
    };
    assert_eq!(view.members, vec![(machine_id(1), "n=1".to_string())]);
    assert_eq!(
        view.running,
        vec![("web.service".to_string(), vec![machine_id(1)])]
    );
    assert_eq!(view.units.len(), 1);
    assert_eq!(view.units[0].name, "web.service");
    assert_eq!(
        view.units[0].text.as_deref(),
        Some("[Service]\nExecStart=/bin/sleep 1000\n")
    );

    // `why` and `plan` against the live cluster read that view.
    let (code, out, err) = run_cli(&["--endpoint", &endpoint, "why", "-l", "web.service"]);
    assert_eq!(code, 0, "stdout {out} stderr {err}");
    assert_eq!(
        out,
        format!(
            "web.service: placed on {id}\nMACHINE{pad}  METADATA  VERDICT\n{id}  n=1       chosen\n",
            id = machine_id(1),
            pad = " ".repeat(32 - "MACHINE".len())
        )
    );
    let other = base.join("db.service");
    std::fs::write(
        &other,
        "[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineMetadata=n=2\n",
    )
    .expect("write");
    let (code, out, _) = run_cli(&[
        "--endpoint",
        &endpoint,
        "plan",
        &other.display().to_string(),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("web.service  10000000..."), "{out}");
    assert!(out.contains("db.service   -"), "{out}");
    drop(member);
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn fifty_units_start_in_one_command_and_a_batch_stops_at_its_first_refusal() {
    let (base, member) = one_member("batch");
    let endpoint = format!("unix://{}", member.endpoint().0.display());
    let files: Vec<String> = (0..50)
        .map(|i| {
            let f = base.join(format!("u{i}.service"));
            std::fs::write(&f, "[Service]\nExecStart=/bin/sleep 1000\n").expect("write");
            f.display().to_string()
        })
        .collect();
    let mut args = vec!["--endpoint", &endpoint, "start", "--no-block"];
    args.extend(files.iter().map(String::as_str));
    let (code, out, err) = run_cli(&args);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    wait_for("all fifty run", Duration::from_secs(20), || {
        let u = units(&member);
        u.len() == 50
            && u.iter()
                .all(|u| u.runs.iter().any(|r| r.active == "active"))
    });

    // One request stops units up to the first unknown one, and says which it was.
    let mut c = Client::connect(&member.endpoint()).expect("connect");
    let answer = c.call(&Request::Batch {
        submit: vec![],
        verb: Some(shoal::control::Verb::Stop),
        names: vec![
            "u0.service".into(),
            "nope.service".into(),
            "u1.service".into(),
        ],
    });
    let Ok(Response::Batch { applied, error }) = answer else {
        panic!("{answer:?}");
    };
    assert_eq!(applied, 1);
    assert!(error.is_some_and(|e| e.contains("nope.service")));

    // The client prints what it did up to the refusal, then the refusal.
    let (code, out, err) = run_cli(&[
        "--endpoint",
        &endpoint,
        "destroy",
        "u2.service",
        "nope.service",
        "u3.service",
    ]);
    assert_eq!(code, 1, "{out} {err}");
    assert_eq!(out, "Destroyed u2.service\n");
    assert!(err.contains("unit nope.service is not known"), "{err}");
    assert_eq!(units(&member).len(), 49, "u3 was not tried");
    drop(member);
    let _ = std::fs::remove_dir_all(&base);
}
