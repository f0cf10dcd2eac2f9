//! fleetctl's commands against a running agent, over its control socket.
//!
//! Architecture invariant: unit files are read and checked here, on the client side,
//! as fleetctl does: a bad file is refused (file, line, reason; exit 2) before the
//! cluster hears of it. Every call has a timeout and every wait a bound.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::time::{Duration, Instant};

use super::input::load_units;
use super::output::{json_string, Table};
use super::{EXIT_BAD_INPUT, EXIT_OK, EXIT_UNMET};
use crate::control::{Client, Endpoint, MachineInfo, Request, Response, UnitInfo};
use crate::journal::Follower;
use crate::unit::Unit;

/// How long `start`/`load`/`stop` wait by default for the units to get there.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);
/// A unit placement keeps waiting this long is reported as unplaceable (placement
/// may lag a moment behind a join or a text still on its way).
const UNPLACED_GRACE: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(100);
/// `journal -f` asks for new lines this often while there are none.
const FOLLOW_POLL: Duration = Duration::from_millis(400);

/// The options every command may take.
#[derive(Default)]
struct Opts {
    full: bool,
    no_legend: bool,
    json: bool,
    fields: Option<Vec<String>>,
    no_block: bool,
    wait: Option<Duration>,
    lines: u32,
    follow: bool,
    positional: Vec<String>,
}

fn parse(args: Vec<OsString>) -> Result<Opts, String> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args);
    let mut o = Opts {
        lines: 10,
        ..Opts::default()
    };
    let value = |p: &mut lexopt::Parser| -> Result<String, String> {
        p.value()
            .map_err(|e| e.to_string())?
            .into_string()
            .map_err(|_| "not UTF-8".to_string())
    };
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        match arg {
            Short('l') | Long("full") => o.full = true,
            Long("no-legend") => o.no_legend = true,
            Long("json") => o.json = true,
            Long("no-block") => o.no_block = true,
            Short('f') | Long("follow") => o.follow = true,
            Long("fields") => {
                let v = value(&mut p)?;
                o.fields = Some(v.split(',').map(|f| f.trim().to_lowercase()).collect());
            }
            Long("block-attempts") => {
                let v = value(&mut p)?;
                let n: u64 = v
                    .parse()
                    .map_err(|_| format!("--block-attempts {v:?}: expected a number"))?;
                o.wait = Some(Duration::from_secs(n.max(1)));
            }
            Short('n') | Long("lines") => {
                let v = value(&mut p)?;
                o.lines = v
                    .parse()
                    .ok()
                    .filter(|n| *n <= crate::node::MAX_JOURNAL_LINES)
                    .ok_or(format!("--lines {v:?}: expected a number up to 10000"))?;
            }
            Value(v) => o.positional.push(v.to_string_lossy().into_owned()),
            other => return Err(other.unexpected().to_string()),
        }
    }
    Ok(o)
}

/// A failed command: what to print and the exit status.
struct Fail(i32, String);

impl From<String> for Fail {
    fn from(s: String) -> Fail {
        Fail(EXIT_UNMET, s)
    }
}

struct Session {
    client: Client,
}

impl Session {
    fn open(endpoint: &Endpoint) -> Result<Session, Fail> {
        Ok(Session {
            client: Client::connect(endpoint)?,
        })
    }

    fn call(&mut self, req: &Request) -> Result<Response, Fail> {
        match self.client.call(req)? {
            Response::Error(e) => Err(Fail(EXIT_UNMET, e)),
            r => Ok(r),
        }
    }

    fn units(&mut self) -> Result<Vec<UnitInfo>, Fail> {
        match self.call(&Request::ListUnits)? {
            Response::Units(u) => Ok(u),
            other => Err(unexpected(&other)),
        }
    }

    fn machines(&mut self) -> Result<Vec<MachineInfo>, Fail> {
        match self.call(&Request::ListMachines)? {
            Response::Machines(m) => Ok(m),
            other => Err(unexpected(&other)),
        }
    }
}

fn unexpected(r: &Response) -> Fail {
    Fail(
        EXIT_UNMET,
        format!("unexpected answer from the agent: {r:?}"),
    )
}

/// `ID.../IP` (or `ID/IP` with -l), fleetctl's MACHINE column.
pub fn machine_label(id: &str, machines: &[MachineInfo], full: bool) -> String {
    let shown = if full {
        id.to_string()
    } else {
        crate::schedule::MachineId(id.to_string()).short()
    };
    match machines.iter().find(|m| m.id == id) {
        Some(m) => format!("{shown}/{}", m.ip),
        None => shown,
    }
}

/// Prints rows under `columns`, honouring --fields, --no-legend and --json.
fn print_table(
    out: &mut dyn Write,
    columns: &[&str],
    rows: &[Vec<String>],
    o: &Opts,
) -> Result<(), Fail> {
    let lower: Vec<String> = columns.iter().map(|c| c.to_lowercase()).collect();
    let pick: Vec<usize> = match &o.fields {
        None => (0..columns.len()).collect(),
        Some(fields) => fields
            .iter()
            .map(|f| {
                lower.iter().position(|c| c == f).ok_or_else(|| {
                    Fail(
                        EXIT_BAD_INPUT,
                        format!("unknown field {f:?}; fields: {}", lower.join(",")),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
    };
    if o.json {
        let objs: Vec<String> = rows
            .iter()
            .map(|r| {
                let kv: Vec<String> = pick
                    .iter()
                    .map(|&i| format!("{}:{}", json_string(&lower[i]), json_string(&r[i])))
                    .collect();
                format!("{{{}}}", kv.join(","))
            })
            .collect();
        let _ = writeln!(out, "[{}]", objs.join(","));
        return Ok(());
    }
    let picked: Vec<Vec<String>> = rows
        .iter()
        .map(|r| pick.iter().map(|&i| r[i].clone()).collect())
        .collect();
    // Without the legend, the header must not widen the columns either.
    let header: Vec<String> = match (o.no_legend, picked.first()) {
        (false, _) => pick.iter().map(|&i| columns[i].to_string()).collect(),
        (true, Some(first)) => first.clone(),
        (true, None) => return Ok(()),
    };
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut t = Table::new(&header);
    let skip = usize::from(o.no_legend);
    for r in picked.into_iter().skip(skip) {
        t.row(r);
    }
    let _ = write!(out, "{}", t.render());
    Ok(())
}

/// list-units rows: one per (unit, member) that runs or is given the unit.
pub fn unit_rows(units: &[UnitInfo], machines: &[MachineInfo], full: bool) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for u in units.iter().filter(|u| u.dstate != "inactive") {
        // A stopped copy on a member placement no longer gives the unit is about to be
        // removed: noise. Anything that may still run is shown wherever it is.
        let mut shown: Vec<(String, String, String)> = u
            .runs
            .iter()
            .filter(|r| u.machines.contains(&r.machine) || !matches!(r.active.as_str(), "inactive"))
            .map(|r| (r.machine.clone(), r.active.clone(), r.sub.clone()))
            .collect();
        for m in &u.machines {
            if !shown.iter().any(|(id, ..)| id == m) {
                shown.push((m.clone(), "-".into(), "-".into()));
            }
        }
        if shown.is_empty() {
            rows.push(vec![
                u.name.clone(),
                "-".into(),
                "inactive".into(),
                "-".into(),
            ]);
        }
        for (id, active, sub) in shown {
            rows.push(vec![
                u.name.clone(),
                machine_label(&id, machines, full),
                active,
                sub,
            ]);
        }
    }
    rows
}

/// list-unit-files rows: UNIT HASH DSTATE STATE TARGET.
pub fn unit_file_rows(
    units: &[UnitInfo],
    machines: &[MachineInfo],
    full: bool,
) -> Vec<Vec<String>> {
    units
        .iter()
        .map(|u| {
            let on_target = |r: &&crate::control::UnitRun| u.machines.contains(&r.machine);
            let state = if u
                .runs
                .iter()
                .filter(on_target)
                .any(|r| r.active == "active")
            {
                "launched"
            } else if u.runs.iter().any(|r| on_target(&r)) {
                "loaded"
            } else {
                "inactive"
            };
            let target = match u.machines.as_slice() {
                [one] => machine_label(one, machines, full),
                _ => "-".to_string(),
            };
            let hash = if full {
                u.hash.clone()
            } else {
                u.hash.chars().take(7).collect()
            };
            vec![
                u.name.clone(),
                hash,
                u.dstate.clone(),
                state.to_string(),
                target,
            ]
        })
        .collect()
}

pub fn machine_rows(machines: &[MachineInfo], full: bool) -> Vec<Vec<String>> {
    machines
        .iter()
        .map(|m| {
            let id = if full {
                m.id.clone()
            } else {
                crate::schedule::MachineId(m.id.clone()).short()
            };
            let meta = if m.metadata.is_empty() {
                "-".to_string()
            } else {
                m.metadata.clone()
            };
            vec![id, m.ip.clone(), meta]
        })
        .collect()
}

/// Runs one client command; `None` when `command` is not one.
pub fn run(
    command: &str,
    args: Vec<OsString>,
    endpoint: &Endpoint,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Option<i32> {
    let help = help_of(command)?;
    let o = match parse(args) {
        Ok(o) => o,
        Err(e) => {
            let _ = writeln!(err, "shoal {command}: {e}\n\n{help}");
            return Some(EXIT_BAD_INPUT);
        }
    };
    let needs_units = !matches!(command, "list-units" | "list-unit-files" | "list-machines");
    if needs_units && o.positional.is_empty() {
        let _ = writeln!(err, "shoal {command}: which unit?\n\n{help}");
        return Some(EXIT_BAD_INPUT);
    }
    let result = dispatch(command, &o, endpoint, out, err);
    Some(match result {
        Ok(code) => code,
        Err(Fail(code, msg)) => {
            let _ = writeln!(err, "shoal {command}: {msg}");
            code
        }
    })
}

pub fn help_of(command: &str) -> Option<&'static str> {
    match command {
        "plan" | "why" | "agent" | "keygen" | "demo" => None,
        c => super::help::of(c),
    }
}

fn dispatch(
    command: &str,
    o: &Opts,
    endpoint: &Endpoint,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32, Fail> {
    // Files are read and checked before connecting: a bad file changes nothing.
    if command == "submit" {
        let units = load_units(&o.positional).map_err(|e| Fail(EXIT_BAD_INPUT, e.to_string()))?;
        let mut s = Session::open(endpoint)?;
        submit_units(&mut s, units, err)?;
        return Ok(EXIT_OK);
    }
    match command {
        "load" | "start" => {
            let mut s = Session::open(endpoint)?;
            let names = submit_missing(&mut s, &o.positional, err)?;
            for n in &names {
                let req = if command == "load" {
                    Request::Load { name: n.clone() }
                } else {
                    Request::Start { name: n.clone() }
                };
                s.call(&req)?;
            }
            if o.no_block {
                return Ok(EXIT_OK);
            }
            wait(&mut s, &names, command == "start", o, out, err)
        }
        "stop" | "unload" | "destroy" => {
            let mut s = Session::open(endpoint)?;
            let names: Vec<String> = o.positional.iter().map(|a| unit_name(a)).collect();
            for n in &names {
                let req = match command {
                    "stop" => Request::Stop { name: n.clone() },
                    "unload" => Request::Unload { name: n.clone() },
                    _ => Request::Destroy { name: n.clone() },
                };
                s.call(&req)?;
                match command {
                    "unload" => {
                        let _ = writeln!(out, "Unit {n} inactive");
                    }
                    "destroy" => {
                        let _ = writeln!(out, "Destroyed {n}");
                    }
                    _ => {}
                }
            }
            if command == "stop" && !o.no_block {
                return wait(&mut s, &names, false, o, out, err);
            }
            Ok(EXIT_OK)
        }
        "list-units" => {
            let mut s = Session::open(endpoint)?;
            let (units, machines) = (s.units()?, s.machines()?);
            print_table(
                out,
                &["UNIT", "MACHINE", "ACTIVE", "SUB"],
                &unit_rows(&units, &machines, o.full),
                o,
            )?;
            for u in units.iter().filter(|u| u.dstate != "inactive") {
                if let Some(r) = &u.reason {
                    let _ = writeln!(err, "shoal: {} is not placed: {r}", u.name);
                }
            }
            Ok(EXIT_OK)
        }
        "list-unit-files" => {
            let mut s = Session::open(endpoint)?;
            let (units, machines) = (s.units()?, s.machines()?);
            print_table(
                out,
                &["UNIT", "HASH", "DSTATE", "STATE", "TARGET"],
                &unit_file_rows(&units, &machines, o.full),
                o,
            )?;
            Ok(EXIT_OK)
        }
        "list-machines" => {
            let mut s = Session::open(endpoint)?;
            let machines = s.machines()?;
            print_table(
                out,
                &["MACHINE", "IP", "METADATA"],
                &machine_rows(&machines, o.full),
                o,
            )?;
            Ok(EXIT_OK)
        }
        "cat" => {
            let mut s = Session::open(endpoint)?;
            let name = unit_name(&o.positional[0]);
            match s.call(&Request::Cat { name })? {
                Response::Text(t) => {
                    let _ = write!(out, "{t}");
                    Ok(EXIT_OK)
                }
                other => Err(unexpected(&other)),
            }
        }
        "journal" if o.follow => {
            let [unit] = o.positional.as_slice() else {
                return Err(Fail(EXIT_BAD_INPUT, "--follow takes one unit".into()));
            };
            let mut s = Session::open(endpoint)?;
            follow(&mut s, &unit_name(unit), o.lines, out, err)
        }
        "status" | "journal" => {
            let mut s = Session::open(endpoint)?;
            let mut code = EXIT_OK;
            for (i, a) in o.positional.iter().enumerate() {
                let name = unit_name(a);
                let req = if command == "status" {
                    Request::Status { name }
                } else {
                    Request::Journal {
                        name,
                        lines: o.lines,
                    }
                };
                match s.call(&req)? {
                    Response::Output { text, code: c, .. } => {
                        if i > 0 {
                            let _ = writeln!(out);
                        }
                        let _ = write!(out, "{text}");
                        // systemctl status exits 3 for a stopped unit: fleetctl passes it on.
                        if c != 0 {
                            code = c;
                        }
                    }
                    other => return Err(unexpected(&other)),
                }
            }
            Ok(code)
        }
        _ => Err(Fail(EXIT_BAD_INPUT, "unknown command".into())),
    }
}

/// `journal -f`: pages from the member that holds the unit, until interrupted (or the
/// reader of our output goes away, or the unit is destroyed).
fn follow(
    s: &mut Session,
    name: &str,
    lines: u32,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32, Fail> {
    let mut f = Follower::new(name, lines);
    loop {
        let req = Request::Follow {
            name: name.to_string(),
            from: f.position(),
        };
        let step = match s.client.call(&req)? {
            Response::Output { machine, text, .. } => f.page(&machine, &text),
            Response::Error(e) if !f.started() => return Err(Fail(EXIT_UNMET, e)),
            Response::Error(e) => {
                let known = s.units()?.iter().any(|u| u.name == name);
                f.failed(&e, known)
            }
            other => return Err(unexpected(&other)),
        };
        if !step.print.is_empty()
            && out
                .write_all(step.print.as_bytes())
                .and_then(|()| out.flush())
                .is_err()
        {
            // Whoever reads our output is gone (`| head`): done.
            return Ok(EXIT_OK);
        }
        for n in &step.notes {
            let _ = writeln!(err, "{n}");
        }
        if let Some(code) = step.exit {
            return Ok(code);
        }
        if !step.at_once {
            std::thread::sleep(FOLLOW_POLL);
        }
    }
}

/// A unit's name from a name or a path.
fn unit_name(arg: &str) -> String {
    std::path::Path::new(arg)
        .file_name()
        .map_or(arg.to_string(), |n| n.to_string_lossy().into_owned())
}

/// Submits the units the cluster does not know yet, reading their files here (a known
/// unit is used as the cluster has it, as fleetctl does). Returns the names in order.
fn submit_missing(
    s: &mut Session,
    args: &[String],
    err: &mut dyn Write,
) -> Result<Vec<String>, Fail> {
    let known: Vec<String> = s.units()?.into_iter().map(|u| u.name).collect();
    let mut missing = Vec::new();
    let mut names = Vec::new();
    for a in args {
        let n = unit_name(a);
        if !known.contains(&n) {
            missing.push(a.clone());
        }
        if !names.contains(&n) {
            names.push(n);
        }
    }
    let units = load_units(&missing).map_err(|e| Fail(EXIT_BAD_INPUT, e.to_string()))?;
    submit_units(s, units, err)?;
    Ok(names)
}

/// Submits parsed units, printing each one's parser warnings first.
fn submit_units(s: &mut Session, units: Vec<Unit>, err: &mut dyn Write) -> Result<(), Fail> {
    for u in units {
        for w in &u.warnings {
            let _ = writeln!(err, "shoal: warning: {w}");
        }
        s.call(&Request::Submit {
            name: u.name.to_string(),
            text: u.text,
        })?;
    }
    Ok(())
}

/// Waits until every unit is launched (`start`), installed (`load`/`stop`), or placement
/// says it cannot be placed, within the wait bound.
fn wait(
    s: &mut Session,
    names: &[String],
    launched: bool,
    o: &Opts,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32, Fail> {
    let began = Instant::now();
    let deadline = began + o.wait.unwrap_or(DEFAULT_WAIT);
    let mut pending: Vec<String> = names.to_vec();
    let mut unplaced_since: BTreeMap<String, Instant> = BTreeMap::new();
    let mut code = EXIT_OK;
    loop {
        let units = s.units()?;
        let machines = s.machines()?;
        let mut still = Vec::new();
        for n in pending {
            let Some(u) = units.iter().find(|u| u.name == n) else {
                let _ = writeln!(err, "Unit {n} is not known");
                code = EXIT_UNMET;
                continue;
            };
            if let Some(reason) = &u.reason {
                let since = *unplaced_since.entry(n.clone()).or_insert_with(Instant::now);
                if since.elapsed() >= UNPLACED_GRACE || Instant::now() >= deadline {
                    let _ = writeln!(err, "Unit {n} cannot be placed: {reason}");
                    code = EXIT_UNMET;
                } else {
                    still.push(n);
                }
                continue;
            }
            unplaced_since.remove(&n);
            let here: Vec<&crate::control::UnitRun> = u
                .runs
                .iter()
                .filter(|r| u.machines.contains(&r.machine))
                .collect();
            if let Some(f) = here.iter().find(|r| r.active == "failed") {
                if launched {
                    let _ = writeln!(
                        err,
                        "Unit {n} failed on {} (see `shoal status {n}`)",
                        machine_label(&f.machine, &machines, o.full)
                    );
                    code = EXIT_UNMET;
                    continue;
                }
            }
            let done = !u.machines.is_empty()
                && u.machines.iter().all(|m| {
                    here.iter().any(|r| {
                        &r.machine == m
                            && if launched {
                                r.active == "active"
                            } else {
                                !matches!(
                                    r.active.as_str(),
                                    "active" | "activating" | "deactivating" | "reloading"
                                )
                            }
                    })
                });
            if done {
                let on: Vec<String> = u
                    .machines
                    .iter()
                    .map(|m| machine_label(m, &machines, o.full))
                    .collect();
                let word = if launched { "launched" } else { "loaded" };
                let _ = writeln!(out, "Unit {n} {word} on {}", on.join(", "));
            } else {
                still.push(n);
            }
        }
        pending = still;
        if pending.is_empty() {
            return Ok(code);
        }
        if Instant::now() >= deadline {
            for n in &pending {
                let what = if launched { "active" } else { "loaded" };
                let _ = writeln!(
                    err,
                    "Unit {n} is not {what} after {:.0?}; see `shoal list-units` and `shoal status {n}`",
                    began.elapsed()
                );
            }
            return Ok(EXIT_UNMET);
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::UnitRun;

    fn machines() -> Vec<MachineInfo> {
        vec![
            MachineInfo {
                id: "41b7574b33b0462c8e311ded39302a19".into(),
                ip: "10.77.0.1".into(),
                metadata: "disk=ssd".into(),
            },
            MachineInfo {
                id: "9a0ffe43c2d244e5b9a2d7a9a0e5a2f1".into(),
                ip: "10.77.0.2".into(),
                metadata: String::new(),
            },
        ]
    }

    fn units() -> Vec<UnitInfo> {
        vec![
            UnitInfo {
                name: "web.service".into(),
                hash: "0123456789abcdef".into(),
                dstate: "launched".into(),
                seq: 1,
                machines: vec!["41b7574b33b0462c8e311ded39302a19".into()],
                reason: None,
                runs: vec![UnitRun {
                    machine: "41b7574b33b0462c8e311ded39302a19".into(),
                    active: "active".into(),
                    sub: "running".into(),
                }],
            },
            UnitInfo {
                name: "db.service".into(),
                hash: "fedcba9876543210".into(),
                dstate: "launched".into(),
                seq: 2,
                machines: vec![],
                reason: Some("no member has metadata disk=nvme".into()),
                runs: vec![],
            },
            UnitInfo {
                name: "idle.service".into(),
                hash: "aaaaaaaaaaaaaaaa".into(),
                dstate: "inactive".into(),
                seq: 0,
                machines: vec![],
                reason: None,
                runs: vec![],
            },
        ]
    }

    fn render(columns: &[&str], rows: &[Vec<String>], args: &[&str]) -> String {
        let o = parse(args.iter().map(OsString::from).collect()).unwrap();
        let mut out = Vec::new();
        print_table(&mut out, columns, rows, &o)
            .map_err(|f| f.1)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    const UNITS: [&str; 4] = ["UNIT", "MACHINE", "ACTIVE", "SUB"];

    #[test]
    fn list_units_shows_fleetctls_columns_and_short_machines() {
        let rows = unit_rows(&units(), &machines(), false);
        assert_eq!(
            render(&UNITS, &rows, &[]),
            "UNIT         MACHINE                ACTIVE    SUB\n\
             web.service  41b7574b.../10.77.0.1  active    running\n\
             db.service   -                      inactive  -\n"
        );
        let rows = unit_rows(&units(), &machines(), true);
        assert!(render(&UNITS, &rows, &["--no-legend"])
            .starts_with("web.service  41b7574b33b0462c8e311ded39302a19/10.77.0.1  active"));
    }

    #[test]
    fn fields_pick_and_order_columns_and_json_uses_lowercase_keys() {
        let rows = unit_rows(&units(), &machines(), false);
        assert_eq!(
            render(&UNITS, &rows, &["--no-legend", "--fields", "sub,unit"]),
            "running  web.service\n-        db.service\n"
        );
        assert_eq!(
            render(&UNITS, &rows[..1], &["--json", "--fields=unit,active"]),
            "[{\"unit\":\"web.service\",\"active\":\"active\"}]\n"
        );
        let o = parse(vec!["--fields".into(), "nope".into()]).unwrap();
        let e = print_table(&mut Vec::new(), &UNITS, &rows, &o)
            .err()
            .unwrap();
        assert_eq!(e.0, EXIT_BAD_INPUT);
        assert!(e.1.contains("unit,machine,active,sub"), "{}", e.1);
    }

    #[test]
    fn every_command_has_help_with_an_example() {
        let commands = [
            "submit",
            "load",
            "start",
            "stop",
            "unload",
            "destroy",
            "list-units",
            "list-unit-files",
            "list-machines",
            "cat",
            "status",
            "journal",
            "plan",
            "why",
            "agent",
            "keygen",
        ];
        for c in commands {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let args = vec![OsString::from(c), OsString::from("--help")];
            assert_eq!(crate::cli::run(args, &mut out, &mut err), EXIT_OK, "{c}");
            let text = String::from_utf8(out).unwrap();
            assert!(text.starts_with(&format!("shoal {c}: ")), "{c}: {text}");
            assert!(text.contains("EXAMPLE"), "{c} has no example");
        }
    }

    #[test]
    fn an_unreachable_agent_is_an_error_not_a_hang() {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let args = ["--endpoint", "unix:///nonexistent/shoal.sock", "list-units"];
        let code = crate::cli::run(
            args.iter().map(OsString::from).collect(),
            &mut out,
            &mut err,
        );
        assert_eq!(code, EXIT_UNMET);
        assert!(String::from_utf8(err)
            .unwrap()
            .contains("cannot reach the shoal agent"));
    }

    #[test]
    fn list_unit_files_and_list_machines_match_fleet() {
        let rows = unit_file_rows(&units(), &machines(), false);
        assert_eq!(
            render(&["UNIT", "HASH", "DSTATE", "STATE", "TARGET"], &rows, &[]),
            "UNIT          HASH     DSTATE    STATE     TARGET\n\
             web.service   0123456  launched  launched  41b7574b.../10.77.0.1\n\
             db.service    fedcba9  launched  inactive  -\n\
             idle.service  aaaaaaa  inactive  inactive  -\n"
        );
        let rows = machine_rows(&machines(), false);
        assert_eq!(
            render(&["MACHINE", "IP", "METADATA"], &rows, &[]),
            "MACHINE      IP         METADATA\n\
             41b7574b...  10.77.0.1  disk=ssd\n\
             9a0ffe43...  10.77.0.2  -\n"
        );
    }
}
