//! `shoal agent`: the runtime, the only place with sockets, files, clocks, processes and signals.
//!
//! Start-up: settings ([`config`]), the node from its snapshot ([`persist`]), the
//! states of the units shoal already owns fed to the node before it acts (a restarted
//! agent adopts its running units), then the UDP socket, the control socket
//! ([`server`]), the systemd executor thread ([`executor`]) and the event loop
//! ([`driver`]). SIGTERM/SIGINT make the member leave gracefully (its units move at
//! once), then the agent exits 0; a second signal exits at once.
//!
//! Architecture invariant: decisions stay in `Node`; this module only moves bytes,
//! time and systemd's answers in and out.

pub mod base64;
pub mod config;
mod driver;
pub mod executor;
pub mod logger;
pub mod persist;
mod rt;
mod server;
pub mod tools;
mod views;

use std::collections::BTreeMap;
use std::io::Read;
use std::net::UdpSocket;
use std::sync::{mpsc, Arc};
use std::time::Instant;

use rt::channel::Sender;
use rt::Async;

pub use config::Settings;
use driver::Driver;
pub use driver::Input;

use crate::node::NodeConfig;
use crate::systemd::Systemd;
use crate::wire::{KeyRing, MAX_DATAGRAM_BYTES};

/// Everything an agent runs with.
pub struct Agent {
    pub settings: Settings,
    pub machine_id: String,
    pub keys: KeyRing,
    pub systemd: Box<dyn Systemd + Send>,
    pub tools: tools::Tools,
}

/// 32 bytes from the operating system's random source.
pub fn random_seed() -> Result<[u8; 32], String> {
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .map_err(|e| format!("/dev/urandom: {e}"))?;
    Ok(seed)
}

/// A running agent on its own thread (tests, embedding).
pub struct Handle {
    tx: Sender<Input>,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl Handle {
    /// Leave gracefully (as SIGTERM does).
    pub fn leave(&self) {
        let _ = self.tx.send_blocking(Input::Leave);
    }

    /// Stop at once, as a crash would: no leave message, no final save.
    pub fn kill(mut self) {
        let _ = self.tx.send_blocking(Input::Kill);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Waits for the agent to exit.
    pub fn join(mut self) -> Result<(), String> {
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err("agent thread panicked".into())),
            None => Ok(()),
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = self.tx.send_blocking(Input::Kill);
            let _ = t.join();
        }
    }
}

/// Sets everything up (errors come back here), then runs the loop on a new thread.
pub fn spawn(agent: Agent) -> Result<Handle, String> {
    let (tx, rx) = rt::channel::unbounded();
    let (driver, tasks) = setup(agent, tx.clone(), rx)?;
    let thread = std::thread::Builder::new()
        .name("shoal-agent".into())
        .spawn(move || {
            let r = rt::block_on(driver.run());
            drop(tasks);
            r
        })
        .map_err(|e| e.to_string())?;
    Ok(Handle {
        tx,
        thread: Some(thread),
    })
}

/// Runs in this thread until the member has left (SIGTERM/SIGINT) or fails to start.
pub fn run(agent: Agent) -> Result<(), String> {
    let (tx, rx) = rt::channel::unbounded();
    let socket = agent.settings.socket.clone();
    let (driver, mut tasks) = setup(agent, tx.clone(), rx)?;
    let signals =
        async_signal::Signals::new([async_signal::Signal::Term, async_signal::Signal::Int])
            .map_err(|e| format!("signal handling: {e}"))?;
    tasks.push(rt::spawn(async move {
        use rt::stream::StreamExt;
        let mut signals = signals;
        let mut first = true;
        while let Some(s) = signals.next().await {
            log::info!("got {s:?}");
            let input = if first { Input::Leave } else { Input::Kill };
            first = false;
            if tx.send(input).await.is_err() {
                return;
            }
        }
    }));
    let r = rt::block_on(driver.run());
    drop(tasks);
    let _ = std::fs::remove_file(&socket);
    r
}

/// The node's settings from the agent's.
fn node_config(s: &Settings, machine_id: &str, keys: KeyRing) -> Result<NodeConfig, String> {
    let mut cfg = NodeConfig::new(machine_id, s.advertise, keys, random_seed()?);
    cfg.metadata = s.metadata.clone();
    cfg.peers = s.peers.clone();
    let mut members: Vec<_> = s.peers.iter().chain([&s.advertise]).collect();
    crate::sort::sort(&mut members);
    members.dedup();
    cfg.cluster_size = members.len().max(1) as u32;
    Ok(cfg)
}

/// Feeds every datagram that fits to the loop, until the loop's inbox closes.
async fn receive_datagrams(udp: Arc<Async<UdpSocket>>, tx: Sender<Input>) {
    let mut buf = vec![0u8; MAX_DATAGRAM_BYTES + 1];
    loop {
        match udp.recv_from(&mut buf).await {
            Ok((n, from)) if n <= MAX_DATAGRAM_BYTES => {
                if tx
                    .send(Input::Datagram(from, buf[..n].to_vec()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Ok(_) => {}
            Err(e) => {
                log::debug!("udp receive: {e}");
                rt::Timer::after(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

/// Tells the node what already runs before it acts (a restarted agent adopts its
/// units) and what it had and no longer has; returns the adopted units to watch.
fn adopt(
    node: &mut crate::node::Node,
    systemd: &mut dyn Systemd,
    owned: &std::collections::BTreeSet<String>,
    now: crate::time::Millis,
) -> Vec<String> {
    // Adopt what already runs before acting: the node learns the states first.
    let adopted = executor::initial_reports(systemd, owned);
    for (unit, status) in &adopted {
        log::info!(
            "adopting {unit} ({})",
            status
                .as_ref()
                .map_or("gone".to_string(), |s| format!("{}/{}", s.active, s.sub))
        );
    }
    node.handle_systemd_reports(now, adopted.iter().map(|(u, s)| (u.as_str(), s.clone())));
    // What this member installed or reported before it went down (a reboot empties
    // /run) and no longer has: say so at once, or the others would wait on a copy
    // that is gone.
    let stale: Vec<String> = node
        .managed_units()
        .into_iter()
        .filter(|u| !owned.contains(u))
        .collect();
    for unit in &stale {
        log::info!("{unit}: no longer on this member since it went down");
    }
    node.handle_systemd_reports(now, stale.iter().map(|u| (u.as_str(), None)));
    adopted.into_iter().map(|(u, _)| u).collect()
}

/// Starts the systemd executor on a thread of its own (`systemctl` blocks), watching
/// the adopted units from the start; its reports come back through the inbox.
fn spawn_executor(
    systemd: Box<dyn Systemd + Send>,
    adopted: Vec<String>,
    tx: Sender<Input>,
) -> Result<mpsc::Sender<executor::Order>, String> {
    let (orders, orders_rx) = mpsc::channel();
    let _ = orders.send(executor::Order::Watch(adopted));
    std::thread::Builder::new()
        .name("shoal-systemd".into())
        .spawn(move || {
            executor::run(systemd, orders_rx, |batch| {
                tx.send_blocking(Input::Reports(batch)).is_ok()
            })
        })
        .map_err(|e| e.to_string())?;
    Ok(orders)
}

fn setup(
    agent: Agent,
    tx: Sender<Input>,
    rx: rt::channel::Receiver<Input>,
) -> Result<(Driver, Vec<rt::Task<()>>), String> {
    let Agent {
        settings: s,
        machine_id,
        keys,
        mut systemd,
        tools,
    } = agent;
    std::fs::create_dir_all(&s.data_dir).map_err(|e| format!("{}: {e}", s.data_dir.display()))?;
    let origin = Instant::now();
    let cfg = node_config(&s, &machine_id, keys)?;
    let udp = UdpSocket::bind(s.bind).map_err(|e| format!("bind {}: {e}", s.bind))?;
    let socket = Arc::new(Async::new(udp).map_err(|e| format!("bind {}: {e}", s.bind))?);
    let listener = server::bind(&s.socket)?;

    let owned = executor::owned(systemd.as_ref());
    let mut node = persist::restore(cfg, crate::time::Millis(0), &s.data_dir, &owned);
    let now = crate::time::Millis(origin.elapsed().as_millis() as u64);
    let adopted = adopt(&mut node, systemd.as_mut(), &owned, now);
    // Saved before anything is sent: the restored boot number is now used up, so a
    // crash a moment from now cannot make the next start reuse it (and with it
    // report versions the others already hold, which they would then ignore).
    let persister = persist::Persister::start(&mut node, &s.data_dir);
    let orders = spawn_executor(systemd, adopted, tx.clone())?;

    let tasks = vec![
        rt::spawn(receive_datagrams(socket.clone(), tx.clone())),
        rt::spawn(server::serve(listener, tx.clone())),
    ];

    log::info!(
        "shoal {} member {machine_id} at {} (bind {}), peers {:?}, metadata {:?}",
        env!("CARGO_PKG_VERSION"),
        s.advertise,
        s.bind,
        s.peers,
        s.metadata
    );
    if node.holding_starts() {
        log::info!(
            "starts held until a settled member has synced with us (at most {} ms)",
            crate::node::JOIN_GRACE_MS
        );
    }
    let driver = Driver {
        node,
        origin,
        socket,
        inbox: rx,
        tx,
        orders,
        tools,
        asks: BTreeMap::new(),
        persist: persister,
        next_save: Instant::now() + driver::SAVE_PERIOD,
    };
    Ok((driver, tasks))
}
