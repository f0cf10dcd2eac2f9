//! The event loop: feeds the node datagrams, time, systemd reports and control
//! requests, and carries out what it polls (datagrams, systemd actions, events).
//!
//! The loop owns the [`Node`]; everything else (the UDP receiver, control
//! connections, the systemd executor thread, signals, local commands) talks to it
//! through one inbox of [`Input`]s, so the node is never shared.

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use super::rt;
use super::rt::channel::{Receiver, Sender};
use super::rt::Async;

use super::executor::Order;
use super::{persist, tools, views};
use crate::catalog::{Desired, Status};
use crate::control::protocol::PROTOCOL_VERSION;
use crate::control::protocol::{PlacementView, ViewUnit};
use crate::control::{Request, Response, Verb};
use crate::node::{Action, Command, Node, NodeEvent, Query, RemoteEvent};
use crate::time::Millis;
use crate::wire::MAX_DATAGRAM_BYTES;

/// What changed is handed to the persistence writer at most this often (and at
/// once after a command, whose reply waits until it is on disk).
pub const SAVE_PERIOD: Duration = Duration::from_secs(2);

/// Most inputs taken from the inbox in one turn of the loop: a bound on one turn's
/// work, so timers (and the next turn's probes) are never starved for long.
const MAX_INPUTS_PER_TURN: usize = 512;

/// A turn of the loop busy for longer than this is logged: probes waited that long
/// for an answer (foca's direct-ack timeout is 150 ms).
const STALL_WARNING: Duration = Duration::from_millis(100);

/// The inputs of one turn of the loop, sorted by how urgently they are handled.
#[derive(Default)]
struct Turn {
    len: usize,
    datagrams: Vec<(SocketAddr, Vec<u8>)>,
    reports: Vec<(String, Option<Status>)>,
    others: Vec<Input>,
}

impl Turn {
    fn push(&mut self, input: Input) {
        self.len += 1;
        match input {
            Input::Datagram(from, bytes) => self.datagrams.push((from, bytes)),
            Input::Reports(r) => self.reports.extend(r),
            other => self.others.push(other),
        }
    }

    /// What the turn held, for the stall warning.
    fn summary(&self) -> String {
        format!(
            "{} datagrams, {} unit states, {} other inputs",
            self.datagrams.len(),
            self.reports.len(),
            self.others.len()
        )
    }
}

/// Everything that reaches the event loop.
pub enum Input {
    Datagram(SocketAddr, Vec<u8>),
    Control(Request, Sender<Response>),
    Reports(Vec<(String, Option<Status>)>),
    /// A local `status`/`journal` run for another member finished.
    Answer {
        to: SocketAddr,
        id: u64,
        code: i32,
        text: String,
    },
    /// SIGTERM/SIGINT: leave gracefully, then exit.
    Leave,
    /// Stop at once, as a crash would (tests).
    Kill,
}

pub struct Driver {
    pub node: Node,
    pub origin: Instant,
    pub socket: Arc<Async<UdpSocket>>,
    pub inbox: Receiver<Input>,
    pub tx: Sender<Input>,
    pub orders: mpsc::Sender<Order>,
    pub tools: tools::Tools,
    pub asks: BTreeMap<u64, (String, Sender<Response>)>,
    pub persist: persist::Persister,
    pub next_save: Instant,
}

impl Driver {
    fn now(&self) -> Millis {
        Millis(self.origin.elapsed().as_millis() as u64)
    }

    fn instant(&self, m: Millis) -> Instant {
        self.origin + Duration::from_millis(m.0)
    }

    /// Runs until the node has left (after `Leave`) or a `Kill`.
    pub async fn run(mut self) -> Result<(), String> {
        loop {
            self.drain().await;
            if self.node.has_left() {
                self.persist.flush(&mut self.node);
                log::info!("left the cluster; exiting");
                return Ok(());
            }
            let now = Instant::now();
            if now >= self.next_save {
                self.next_save = now + SAVE_PERIOD;
                log::debug!(
                    "stats {:?} drops {:?}",
                    self.node.stats(),
                    self.node.drops()
                );
                self.persist.save(&mut self.node, None);
            }
            let mut deadline = self.next_save;
            if let Some(t) = self.node.poll_timeout() {
                deadline = deadline.min(self.instant(t));
            }
            let inbox = self.inbox.clone();
            let first = rt::future::or(async { inbox.recv().await.ok() }, async {
                rt::Timer::at(deadline).await;
                None
            })
            .await;
            let started = Instant::now();
            let mut turn = Turn::default();
            if let Some(input) = first {
                turn.push(input);
            }
            while turn.len < MAX_INPUTS_PER_TURN {
                match self.inbox.try_recv() {
                    Ok(input) => turn.push(input),
                    Err(_) => break,
                }
            }
            self.read_socket(&mut turn);
            let summary = turn.summary();
            if self.handle_turn(turn).await.is_break() {
                return Ok(());
            }
            let now = self.now();
            if self.node.poll_timeout().is_some_and(|t| t <= now) {
                // What the turn queued (acks first) leaves before a placement runs.
                self.drain().await;
                self.node.handle_timeout(now);
            }
            let busy = started.elapsed();
            if busy >= STALL_WARNING {
                log::warn!(
                    "event loop busy for {} ms on {summary}: probes wait that long",
                    busy.as_millis()
                );
            }
        }
    }

    /// Takes the datagrams already waiting in the socket into this turn, without
    /// waiting: an ack that arrived before a probe's deadline is then handled before
    /// the timer that would suspect its sender, however late the receiving task runs
    /// on a loaded machine.
    fn read_socket(&self, turn: &mut Turn) {
        let mut buf = [0u8; MAX_DATAGRAM_BYTES + 1];
        while turn.len < MAX_INPUTS_PER_TURN {
            match self.socket.get_ref().recv_from(&mut buf) {
                Ok((n, from)) if n <= MAX_DATAGRAM_BYTES => {
                    turn.push(Input::Datagram(from, buf[..n].to_vec()))
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    }

    /// Handles one turn's inputs: datagrams first (membership's before the rest,
    /// see `Node::handle_datagrams`; what they cause is sent at once, and the
    /// placement they make due waits for the timer), then systemd's reports, then
    /// the others in arrival order. Breaks when the agent must stop at once.
    async fn handle_turn(&mut self, turn: Turn) -> std::ops::ControlFlow<()> {
        let now = self.now();
        if !turn.datagrams.is_empty() {
            let datagrams = turn.datagrams.iter().map(|(f, b)| (*f, b.as_slice()));
            self.node.handle_datagrams(now, datagrams);
            // The acks go out now, before systemd's states or a command can make
            // this turn run a placement.
            self.drain().await;
        }
        if !turn.reports.is_empty() {
            let reports = turn.reports.iter().map(|(u, s)| (u.as_str(), s.clone()));
            self.node.handle_systemd_reports(now, reports);
        }
        for input in turn.others {
            let now = self.now();
            match input {
                Input::Datagram(..) | Input::Reports(_) => {}
                Input::Control(req, reply) => {
                    let answer = self.control(req, reply.clone());
                    if let Some(a) = answer {
                        let _ = reply.try_send(a);
                    }
                }
                Input::Answer { to, id, code, text } => {
                    self.node.answer_remote(now, to, id, code, &text)
                }
                Input::Leave => {
                    log::info!(
                        "leaving the cluster: stopping this member's units so they move at once"
                    );
                    if self.node.handle_command(now, Command::Leave).is_err() {
                        return std::ops::ControlFlow::Break(());
                    }
                    self.persist.save(&mut self.node, None);
                }
                Input::Kill => return std::ops::ControlFlow::Break(()),
            }
        }
        std::ops::ControlFlow::Continue(())
    }

    /// Carries out everything the node has queued.
    async fn drain(&mut self) {
        while let Some(action) = self.node.poll_action() {
            match &action {
                Action::Install { unit, .. } => log::info!("installing {unit}"),
                Action::Remove { unit } => log::info!("removing {unit}"),
                Action::Start { unit } => log::info!("starting {unit}"),
                Action::Stop { unit } => log::info!("stopping {unit}"),
            }
            let _ = self.orders.send(Order::Act(action));
        }
        while let Some(e) = self.node.poll_event() {
            match e {
                NodeEvent::MemberUp { machine, addr } => {
                    log::info!("member up: {machine} at {addr}")
                }
                NodeEvent::MemberDown { machine, addr } => {
                    log::info!("member down: {machine} at {addr}")
                }
                NodeEvent::DuplicateMachineId { machine, addrs } => {
                    log::warn!("machine id {machine} is used at several addresses: {addrs:?}")
                }
                NodeEvent::Refused { reason } => log::error!("refusing to take part: {reason}"),
                NodeEvent::Left => log::info!("left the cluster"),
                NodeEvent::StartsReleased { by: Some(addr) } => {
                    log::info!("in sync with settled member at {addr}: starts no longer held")
                }
                NodeEvent::StartsReleased { by: None } => {
                    log::info!("join grace over: starts no longer held")
                }
            }
        }
        while let Some(e) = self.node.poll_remote() {
            match e {
                RemoteEvent::Asked { from, id, query } => {
                    let tx = self.tx.clone();
                    run_tool_then(&self.tools, query, tx, move |code, text| Input::Answer {
                        to: from,
                        id,
                        code,
                        text,
                    });
                }
                RemoteEvent::Answered { id, code, text } => {
                    if let Some((machine, reply)) = self.asks.remove(&id) {
                        let _ = reply.try_send(Response::Output {
                            machine,
                            text,
                            code,
                        });
                    }
                }
                RemoteEvent::TimedOut { id } => {
                    if let Some((machine, reply)) = self.asks.remove(&id) {
                        let _ = reply.try_send(Response::Error(format!(
                            "member {machine} did not answer in time"
                        )));
                    }
                }
            }
        }
        while let Some((to, bytes)) = self.node.poll_transmit() {
            if let Err(e) = self.socket.send_to(&bytes, to).await {
                log::debug!("send to {to}: {e}");
            }
        }
    }

    /// Answers a control request, or returns `None` when the answer comes later
    /// through `reply`.
    fn control(&mut self, req: Request, reply: Sender<Response>) -> Option<Response> {
        let now = self.now();
        let command = match req {
            Request::Hello { .. } => {
                return Some(Response::Hello {
                    version: PROTOCOL_VERSION,
                    machine: self.node.machine_id().to_string(),
                })
            }
            Request::ListUnits => return Some(Response::Units(views::units(&self.node))),
            Request::PlacementView => return Some(Response::View(placement_view(&self.node))),
            Request::ListMachines => return Some(Response::Machines(views::machines(&self.node))),
            Request::Cat { name } => return Some(self.cat(&name)),
            Request::Status { name } => return self.query(Query::Status { unit: name }, reply),
            Request::Journal { name, lines } => {
                return self.query(Query::Journal { unit: name, lines }, reply)
            }
            Request::Follow { name, from } => {
                return self.query(Query::Follow { unit: name, from }, reply)
            }
            Request::Submit { name, text } => {
                if let Err(e) = crate::unit::parse_unit(&name, &name, &text) {
                    return Some(Response::Error(e.to_string()));
                }
                Command::Submit { name, text }
            }
            Request::Load { name } => Command::Load { name },
            Request::Start { name } => Command::Start { name },
            Request::Stop { name } => Command::Stop { name },
            Request::Unload { name } => Command::Unload { name },
            Request::Destroy { name } => Command::Destroy { name },
            Request::Batch {
                submit,
                verb,
                names,
            } => {
                let answer = self.batch(submit, verb, names);
                return self.reply_when_saved(answer, reply);
            }
        };
        log::info!("command: {command:?}", command = CommandLog(&command));
        let answer = match self.node.handle_command(now, command) {
            Ok(()) => Response::Ok,
            Err(e) => Response::Error(e.to_string()),
        };
        self.reply_when_saved(answer, reply)
    }

    /// Saves what the command changed off the loop and answers once it is on disk
    /// (a reply means the change survives a crash); `None`: the answer comes later.
    fn reply_when_saved(&mut self, answer: Response, reply: Sender<Response>) -> Option<Response> {
        let done: persist::Done = Box::new(move |_| {
            let _ = reply.try_send(answer);
        });
        self.persist.save(&mut self.node, Some(done));
        None
    }

    /// A multi-unit command: its submits then its verb on every name, as one node
    /// input (one reconcile, one rumour flush) and one save (by the caller). A text that does not
    /// parse is refused like the node's refusals: the steps before it are applied, the
    /// ones from it on are not.
    fn batch(
        &mut self,
        submit: Vec<(String, String)>,
        verb: Option<Verb>,
        names: Vec<String>,
    ) -> Response {
        if verb.is_none() && !names.is_empty() {
            return Response::Error("a batch names units but no verb for them".into());
        }
        let mut cmds = Vec::with_capacity(submit.len() + names.len());
        let mut bad = None;
        for (name, text) in submit {
            if let Err(e) = crate::unit::parse_unit(&name, &name, &text) {
                bad = Some(e.to_string());
                break;
            }
            cmds.push(Command::Submit { name, text });
        }
        if bad.is_none() {
            cmds.extend(names.into_iter().map(|name| match verb {
                None | Some(Verb::Load) => Command::Load { name },
                Some(Verb::Start) => Command::Start { name },
                Some(Verb::Stop) => Command::Stop { name },
                Some(Verb::Unload) => Command::Unload { name },
                Some(Verb::Destroy) => Command::Destroy { name },
            }));
        }
        log::info!("command: batch of {} ({verb:?})", cmds.len());
        for c in &cmds {
            log::debug!("command: {:?}", CommandLog(c));
        }
        let (applied, result) = self.node.handle_commands(self.now(), cmds);
        let error = match result {
            Err(e) => Some(e.to_string()),
            Ok(()) => bad,
        };
        Response::Batch {
            applied: applied as u32,
            error,
        }
    }

    fn cat(&self, name: &str) -> Response {
        match self.node.catalog().unit(name).map(|e| &e.state) {
            Some(Desired::Live { digest, .. }) => match self.node.catalog().text(digest) {
                Some(t) => Response::Text(t.to_string()),
                None => Response::Error(format!(
                    "{name}: the unit file has not reached this member yet"
                )),
            },
            _ => Response::Error(format!("unit {name} is not known")),
        }
    }

    fn query(&mut self, query: Query, reply: Sender<Response>) -> Option<Response> {
        let unit = query.unit().to_string();
        let Some(holder) = self.node.answerer(&unit) else {
            return Some(Response::Error(format!(
                "unit {unit} runs nowhere (is it known and loaded? see `shoal list-units`)"
            )));
        };
        if holder == self.node.machine_id() {
            run_tool_then(&self.tools, query, reply, move |code, text| {
                Response::Output {
                    machine: holder,
                    text,
                    code,
                }
            });
            return None;
        }
        match self.node.ask_remote(self.now(), &holder, query) {
            Ok(id) => {
                self.asks.insert(id, (holder, reply));
                None
            }
            Err(e) => Some(Response::Error(e)),
        }
    }
}

/// Runs `query`'s tool (`systemctl status`, `journalctl`) off the event loop, which
/// it would block for as long as the tool takes, and sends `wrap(code, output)` to `to`.
fn run_tool_then<T: Send + 'static>(
    tools: &tools::Tools,
    query: Query,
    to: Sender<T>,
    wrap: impl FnOnce(i32, String) -> T + Send + 'static,
) {
    let tools = tools.clone();
    rt::spawn(async move {
        let (code, text) = rt::unblock(move || tools.run(&query)).await;
        let _ = to.send(wrap(code, text)).await;
    })
    .detach();
}

/// The node's placement view in the control protocol's terms.
fn placement_view(node: &Node) -> PlacementView {
    let view = node.placement_view();
    PlacementView {
        members: view
            .members
            .into_iter()
            .map(|m| (m.id.0, m.metadata.to_string()))
            .collect(),
        running: view
            .running
            .into_iter()
            .map(|(unit, on)| (unit, on.into_iter().map(|m| m.0).collect()))
            .collect(),
        units: view
            .units
            .into_iter()
            .map(|u| ViewUnit {
                name: u.name,
                seq: u.seq,
                text: u.text,
            })
            .collect(),
    }
}

/// A command for the log, without the unit's text.
struct CommandLog<'a>(&'a Command);

impl std::fmt::Debug for CommandLog<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Command::Submit { name, text } => write!(f, "submit {name} ({} bytes)", text.len()),
            other => write!(f, "{other:?}"),
        }
    }
}
