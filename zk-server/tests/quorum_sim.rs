//! Seeded simulation of the ZAB quorum core (ZAB.md §4-§7).
//!
//! Real [`Peer`]s run in virtual time over a simulated network that delays,
//! loses, duplicates and reorders messages, splits into partitions and
//! heals, while nodes crash (keeping only their durable state) and restart
//! and clients write to whoever leads. Link-down notices
//! ([`Input::PeerDisconnected`]) come as a TCP transport gives them: after a
//! delay, for some crashes and cut links but not all (a half-open
//! connection says nothing), again and again while a peer stays
//! unreachable (refused reconnects), and now and then for no reason at all
//! (a connection that flapped). Every output is checked as it happens:
//!
//! * at most one leader establishes each epoch;
//! * every node applies txns in zxid order, and the applied sequences of all
//!   nodes are prefixes of one global sequence (same zxid, same content);
//! * no truncation ever removes an applied txn;
//! * after all faults heal and the network is quiet, a leader exists, a
//!   final write commits everywhere, and every write the leader applied
//!   (the moment it could answer the client) is applied on every node.
//!
//! `ZK_SIM_SEEDS=n` sets how many seeds the random test runs (default
//! 1000); `ZK_SIM_SEED=s` replays one seed exactly; `ZK_SIM_TRACE=1` prints
//! roles, crashes and first commits, `ZK_SIM_TRACE=all` every output.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use zk_server::quorum::*;

type SimResult<T = ()> = Result<T, String>;

/// The ensemble and the fault mix of one run.
#[derive(Debug, Clone)]
struct SimOptions {
    voters: u64,
    observers: u64,
    loss: f64,
    duplicate: f64,
    reorder: f64,
    commit_log_count: usize,
    /// Chance that a crash or a cut link is noticed by the other end, and
    /// (halved) that a tick's reconnect attempt to an unreachable peer
    /// reports the link down again.
    notice: f64,
    /// Per tick and connected pair: chance the link breaks and reconnects
    /// (both ends get a link-down notice).
    flap: f64,
    /// The state size each node reports to its core, as a multiple of the
    /// bytes it applied (0: unknown, so learners behind the in-memory log
    /// always get SNAP; larger values let more of them DIFF from disk).
    state_size_factor: u64,
}

impl SimOptions {
    fn quiet(voters: u64, observers: u64) -> Self {
        SimOptions {
            voters,
            observers,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            commit_log_count: 500,
            notice: 1.0,
            flap: 0.0,
            state_size_factor: 0,
        }
    }
}

/// What a crash keeps: epoch files and the fsynced part of the log.
#[derive(Debug, Default)]
struct Disk {
    accepted_epoch: Epoch,
    current_epoch: Epoch,
    /// A snapshot installed by SNAP: its zxid and the txns its state holds.
    snapshot: Option<(Zxid, Vec<LogEntry>)>,
    /// The log after the snapshot.
    log: Vec<LogEntry>,
    durable_len: usize,
}

/// The simulator's "data tree": the applied txns, as SNAP state bytes.
fn encode_state(applied: &[LogEntry]) -> Bytes {
    let mut out = Vec::new();
    for e in applied {
        out.extend_from_slice(&e.zxid.to_be_bytes());
        out.extend_from_slice(&(e.payload.len() as u32).to_be_bytes());
        out.extend_from_slice(&e.payload);
    }
    Bytes::from(out)
}

fn decode_state(mut state: &[u8]) -> SimResult<Vec<LogEntry>> {
    let mut entries = Vec::new();
    while !state.is_empty() {
        if state.len() < 12 {
            return Err("truncated SNAP state".into());
        }
        let zxid = i64::from_be_bytes(state[..8].try_into().map_err(|_| "bad zxid")?);
        let len = u32::from_be_bytes(state[8..12].try_into().map_err(|_| "bad len")?) as usize;
        let payload = state
            .get(12..12 + len)
            .ok_or("truncated SNAP payload")?
            .to_vec();
        entries.push(LogEntry {
            zxid,
            payload: Bytes::from(payload),
        });
        state = &state[12 + len..];
    }
    Ok(entries)
}

#[derive(Debug)]
struct Node {
    id: ServerId,
    peer: Option<Peer>,
    disk: Disk,
    incarnation: u64,
    fsync_pending: bool,
    /// What this incarnation applied, in order.
    applied: Vec<LogEntry>,
    truncations: usize,
    snapshots: usize,
    /// DIFFs this node sent from its log files.
    disk_diffs: usize,
}

#[derive(Debug)]
enum Event {
    Deliver {
        from: ServerId,
        to: ServerId,
        msg: Message,
    },
    Tick {
        node: ServerId,
    },
    Fsync {
        node: ServerId,
        incarnation: u64,
    },
    /// `node`'s transport reports its link to `peer` down. Only the
    /// incarnation that had the link hears about it.
    LinkDown {
        node: ServerId,
        incarnation: u64,
        peer: ServerId,
    },
}

struct Sim {
    seed: u64,
    rng: StdRng,
    opts: SimOptions,
    now: u64,
    seq: u64,
    queue: BTreeMap<(u64, u64), Event>,
    nodes: BTreeMap<ServerId, Node>,
    /// Partition group of each node; nodes talk only within a group.
    group: BTreeMap<ServerId, u32>,
    /// Delivery time of the last message per link, to keep links FIFO
    /// except when a message is deliberately reordered.
    link_clock: BTreeMap<(ServerId, ServerId), u64>,
    /// The one sequence every node's applied txns must be a prefix of.
    global: Vec<LogEntry>,
    leader_of_epoch: BTreeMap<Epoch, ServerId>,
    /// Client writes by zxid: who proposed it and what.
    proposed: BTreeMap<Zxid, (ServerId, Bytes)>,
    /// Writes their leader applied: the client got (or could get) an answer.
    acked: BTreeMap<Zxid, Bytes>,
    writes: u64,
    /// SNAP states sent, by (learner, zxid).
    snap_states: BTreeMap<(ServerId, Zxid), Bytes>,
    trace: bool,
    trace_all: bool,
}

const TICK_MS: u64 = 100;
const TICK_EVERY_MS: u64 = 50;

fn config(id: ServerId, opts: &SimOptions) -> PeerConfig {
    let voters: BTreeSet<ServerId> = (1..=opts.voters).collect();
    let observers: BTreeSet<ServerId> = (opts.voters + 1..=opts.voters + opts.observers).collect();
    let mut cfg = PeerConfig::new(id, voters, observers);
    cfg.tick_ms = TICK_MS;
    cfg.init_limit = 10;
    cfg.sync_limit = 5;
    cfg.finalize_wait_ms = 50;
    cfg.min_notification_interval_ms = 50;
    cfg.max_notification_interval_ms = 400;
    cfg.commit_log_count = opts.commit_log_count;
    cfg
}

impl Sim {
    fn new(seed: u64, opts: SimOptions) -> Self {
        let mut sim = Sim {
            seed,
            rng: StdRng::seed_from_u64(seed),
            opts,
            now: 0,
            seq: 0,
            queue: BTreeMap::new(),
            nodes: BTreeMap::new(),
            group: BTreeMap::new(),
            link_clock: BTreeMap::new(),
            global: Vec::new(),
            leader_of_epoch: BTreeMap::new(),
            proposed: BTreeMap::new(),
            acked: BTreeMap::new(),
            writes: 0,
            snap_states: BTreeMap::new(),
            trace: std::env::var("ZK_SIM_TRACE").is_ok(),
            trace_all: std::env::var("ZK_SIM_TRACE").is_ok_and(|v| v == "all"),
        };
        let ids: Vec<ServerId> = (1..=sim.opts.voters + sim.opts.observers).collect();
        for id in ids {
            sim.nodes.insert(
                id,
                Node {
                    id,
                    peer: None,
                    disk: Disk::default(),
                    incarnation: 0,
                    fsync_pending: false,
                    applied: Vec::new(),
                    truncations: 0,
                    snapshots: 0,
                    disk_diffs: 0,
                },
            );
            sim.group.insert(id, 0);
            let first_tick = sim.rng.gen_range(1..=TICK_EVERY_MS);
            sim.schedule(first_tick, Event::Tick { node: id });
        }
        let ids: Vec<ServerId> = sim.nodes.keys().copied().collect();
        for id in ids {
            sim.start(id)
                .expect("a fresh node cannot break an invariant");
        }
        sim
    }

    fn log(&self, what: impl FnOnce() -> String) {
        if self.trace {
            println!("[{:>7}ms] {}", self.now, what());
        }
    }

    fn schedule(&mut self, delay: u64, event: Event) {
        self.seq += 1;
        self.queue.insert((self.now + delay, self.seq), event);
    }

    fn start(&mut self, id: ServerId) -> SimResult {
        let seed = self.rng.gen();
        let now = self.now;
        let cfg = config(id, &self.opts);
        let node = self.node(id)?;
        // The state restarts from the snapshot, if any; the log follows it.
        let (snapshot_zxid, state) = node.disk.snapshot.clone().unwrap_or_default();
        node.applied = state;
        let durable = DurableState {
            accepted_epoch: node.disk.accepted_epoch,
            current_epoch: node.disk.current_epoch,
            snapshot_zxid,
            log: node.disk.log[..node.disk.durable_len].to_vec(),
            applied_zxid: snapshot_zxid,
            ..DurableState::default()
        };
        node.peer = Some(Peer::new(cfg, durable, now, seed));
        self.log(|| format!("node {id} starts"));
        self.drain(id)
    }

    fn node(&mut self, id: ServerId) -> SimResult<&mut Node> {
        self.nodes
            .get_mut(&id)
            .ok_or_else(|| format!("no node {id}"))
    }

    fn is_up(&self, id: ServerId) -> bool {
        self.nodes.get(&id).is_some_and(|n| n.peer.is_some())
    }

    fn connected(&self, a: ServerId, b: ServerId) -> bool {
        self.group.get(&a) == self.group.get(&b)
    }

    // ---- faults ----

    fn crash(&mut self, id: ServerId) -> SimResult {
        let node = self.node(id)?;
        if node.peer.take().is_none() {
            return Ok(());
        }
        // Memory is lost, and with it whatever was not fsynced.
        let keep = node.disk.durable_len;
        node.disk.log.truncate(keep);
        node.incarnation += 1;
        node.fsync_pending = false;
        node.applied.clear();
        let last = node.disk.log.last().map_or(0, |e| e.zxid);
        self.log(|| format!("node {id} crashes, durable log ends at {last:#x}"));
        // The kernel closes the dead process's sockets: its peers see their
        // connections to it close (unless the close got lost).
        let others: Vec<ServerId> = self.nodes.keys().copied().filter(|&n| n != id).collect();
        for other in others {
            if self.rng.gen_bool(self.opts.notice) {
                self.notice_link_down(other, id);
            }
        }
        Ok(())
    }

    fn restart(&mut self, id: ServerId) -> SimResult {
        if self.is_up(id) {
            return Ok(());
        }
        self.start(id)
    }

    fn partition(&mut self, groups: &[&[ServerId]]) {
        let before = self.group.clone();
        for (g, members) in groups.iter().enumerate() {
            for id in members.iter() {
                self.group.insert(*id, g as u32 + 1);
            }
        }
        self.log(|| format!("partition {groups:?}"));
        self.notice_cut_links(&before);
    }

    /// Schedules the link-down notice `node`'s transport gives about
    /// `peer`, a little later (TCP takes a moment to notice).
    fn notice_link_down(&mut self, node: ServerId, peer: ServerId) {
        let Some(incarnation) = self
            .nodes
            .get(&node)
            .filter(|n| n.peer.is_some())
            .map(|n| n.incarnation)
        else {
            return;
        };
        let delay = self.rng.gen_range(1..=30);
        self.schedule(
            delay,
            Event::LinkDown {
                node,
                incarnation,
                peer,
            },
        );
    }

    /// After a partition: each end of a link it cut may notice.
    fn notice_cut_links(&mut self, before: &BTreeMap<ServerId, u32>) {
        let ids: Vec<ServerId> = self.nodes.keys().copied().collect();
        for &a in &ids {
            for &b in &ids {
                let was = a != b && before.get(&a) == before.get(&b);
                if was && !self.connected(a, b) && self.rng.gen_bool(self.opts.notice) {
                    self.notice_link_down(a, b);
                }
            }
        }
    }

    /// On each tick of `node`: its transport retries links to peers it
    /// cannot reach (refused or timed out: down again), and a link that
    /// works may flap.
    fn tick_links(&mut self, node: ServerId) {
        if !self.is_up(node) {
            return;
        }
        let others: Vec<ServerId> = self.nodes.keys().copied().filter(|&n| n != node).collect();
        for peer in others {
            let reachable = self.is_up(peer) && self.connected(node, peer);
            if !reachable {
                if self.rng.gen_bool(self.opts.notice / 2.0) {
                    self.notice_link_down(node, peer);
                }
            } else if self.rng.gen_bool(self.opts.flap) {
                self.log(|| format!("link {node}-{peer} flaps"));
                self.notice_link_down(node, peer);
                self.notice_link_down(peer, node);
            }
        }
    }

    fn heal(&mut self) {
        for g in self.group.values_mut() {
            *g = 0;
        }
        self.log(|| "heal".to_string());
    }

    fn quiet_network(&mut self) {
        self.opts.loss = 0.0;
        self.opts.duplicate = 0.0;
        self.opts.reorder = 0.0;
        self.opts.flap = 0.0;
    }

    /// A client write to node `id`; the zxid if it was accepted.
    fn write(&mut self, id: ServerId) -> SimResult<Option<Zxid>> {
        self.writes += 1;
        let payload = Bytes::from(format!("seed{}-write{}", self.seed, self.writes));
        let Some(peer) = self.node(id)?.peer.as_mut() else {
            return Ok(None);
        };
        if peer
            .step(Input::ClientWrite {
                payload: payload.clone(),
            })
            .is_err()
        {
            return Ok(None);
        }
        let outputs = peer.take_outputs();
        let zxid = outputs.iter().find_map(|o| match o {
            Output::Proposed { zxid } => Some(*zxid),
            _ => None,
        });
        if let Some(z) = zxid {
            self.proposed.insert(z, (id, payload));
        }
        self.handle_outputs(id, outputs)?;
        Ok(zxid)
    }

    // ---- the event loop ----

    fn run_for(&mut self, ms: u64) -> SimResult {
        let end = self.now + ms;
        while let Some((&(at, seq), _)) = self.queue.first_key_value() {
            if at > end {
                break;
            }
            let event = self.queue.remove(&(at, seq)).ok_or("queue race")?;
            self.now = at;
            self.dispatch(event)?;
        }
        self.now = end;
        Ok(())
    }

    /// Runs until `done` holds, for at most `max_ms`; true if it did.
    fn run_until(&mut self, max_ms: u64, done: impl Fn(&Sim) -> bool) -> SimResult<bool> {
        let end = self.now + max_ms;
        while self.now < end {
            if done(self) {
                return Ok(true);
            }
            self.run_for(10)?;
        }
        Ok(done(self))
    }

    fn dispatch(&mut self, event: Event) -> SimResult {
        match event {
            Event::Tick { node } => {
                self.schedule(TICK_EVERY_MS, Event::Tick { node });
                self.tick_links(node);
                let factor = self.opts.state_size_factor;
                let n = self.node(node)?;
                let applied: usize = n.applied.iter().map(|e| e.payload.len()).sum();
                if let Some(peer) = n.peer.as_mut() {
                    peer.set_state_size(applied as u64 * factor);
                }
                let now = self.now;
                self.step(node, Input::Tick { now_ms: now })
            }
            Event::LinkDown {
                node,
                incarnation,
                peer,
            } => {
                if self.node(node)?.incarnation != incarnation {
                    return Ok(());
                }
                self.step(node, Input::PeerDisconnected { peer })
            }
            Event::Deliver { from, to, msg } => {
                if !self.connected(from, to) {
                    return Ok(());
                }
                self.step(to, Input::Message { from, msg })
            }
            Event::Fsync { node, incarnation } => {
                let n = self.node(node)?;
                if n.incarnation != incarnation || n.peer.is_none() {
                    return Ok(());
                }
                n.fsync_pending = false;
                n.disk.durable_len = n.disk.log.len();
                let Some(last) = n.disk.log.last().map(|e| e.zxid) else {
                    return Ok(());
                };
                self.step(node, Input::LogDurable { zxid: last })
            }
        }
    }

    fn step(&mut self, id: ServerId, input: Input) -> SimResult {
        let Some(peer) = self.node(id)?.peer.as_mut() else {
            return Ok(());
        };
        // Only client writes can be refused, and those go through `write`.
        peer.step(input).map_err(|e| format!("node {id}: {e}"))?;
        self.drain(id)
    }

    fn drain(&mut self, id: ServerId) -> SimResult {
        let outputs = match self.node(id)?.peer.as_mut() {
            Some(peer) => peer.take_outputs(),
            None => return Ok(()),
        };
        self.handle_outputs(id, outputs)
    }

    fn handle_outputs(&mut self, id: ServerId, outputs: Vec<Output>) -> SimResult {
        for out in outputs {
            self.handle_output(id, out)
                .map_err(|e| format!("seed {} at {}ms, node {id}: {e}", self.seed, self.now))?;
        }
        Ok(())
    }

    fn handle_output(&mut self, id: ServerId, out: Output) -> SimResult {
        if self.trace_all {
            println!("[{:>7}ms] node {id} -> {out:?}", self.now);
        }
        match out {
            Output::Send { to, msg } => self.transmit(id, to, msg),
            Output::Persist(entry) => {
                let node = self.node(id)?;
                node.disk.log.push(entry);
                if !node.fsync_pending {
                    node.fsync_pending = true;
                    let incarnation = node.incarnation;
                    let delay = self.rng.gen_range(1..=8);
                    self.schedule(
                        delay,
                        Event::Fsync {
                            node: id,
                            incarnation,
                        },
                    );
                }
            }
            Output::PersistEpoch { kind, epoch } => {
                let disk = &mut self.node(id)?.disk;
                match kind {
                    EpochKind::Accepted => disk.accepted_epoch = epoch,
                    EpochKind::Current => disk.current_epoch = epoch,
                }
                if disk.accepted_epoch < disk.current_epoch {
                    return Err(format!(
                        "acceptedEpoch {} < currentEpoch {}",
                        disk.accepted_epoch, disk.current_epoch
                    ));
                }
            }
            Output::Truncate { to } => {
                let node = self.node(id)?;
                if let Some(applied) = node.applied.last().filter(|e| e.zxid > to) {
                    return Err(format!(
                        "truncate to {to:#x} drops applied txn {:#x}",
                        applied.zxid
                    ));
                }
                node.disk.log.retain(|e| e.zxid <= to);
                node.disk.durable_len = node.disk.log.len();
                node.truncations += 1;
                self.log(|| format!("node {id} truncates to {to:#x}"));
            }
            Output::SendSnapshot {
                to,
                session,
                zxid,
                commit_upto,
            } => {
                let node = self.node(id)?;
                let at = node.applied.last().map_or(0, |e| e.zxid);
                if at != zxid {
                    return Err(format!(
                        "SNAP announced at {zxid:#x} but the state is at {at:#x}"
                    ));
                }
                // The state travels beside the core (the real server
                // streams it after the SNAP packet): the learner's install
                // finds it by zxid. States at one zxid are one committed
                // prefix, so whichever copy it finds is the same.
                let state = encode_state(&node.applied);
                self.snap_states.insert((to, zxid), state);
                let msg = Message::ToLearner {
                    session,
                    msg: LeaderMsg::Snap { zxid, commit_upto },
                };
                self.transmit(id, to, msg);
            }
            Output::SendLoggedDiff {
                to,
                session,
                from,
                upto,
                commit_upto,
                snap_zxid,
            } => {
                // The files: the snapshot point and the log after it.
                let node = self.node(id)?;
                let floor = node.disk.snapshot.as_ref().map_or(0, |(z, _)| *z);
                let log = &node.disk.log[..node.disk.durable_len];
                let held = from == floor || log.iter().any(|e| e.zxid == from);
                let txns: Vec<LogEntry> = log
                    .iter()
                    .filter(|e| e.zxid > from && e.zxid <= upto)
                    .cloned()
                    .collect();
                if !held || txns.last().map(|e| e.zxid) != Some(upto) {
                    return Err(format!(
                        "DIFF from disk (0x{from:x}, 0x{upto:x}] asked of a log it is not in"
                    ));
                }
                let _ = snap_zxid;
                self.node(id)?.disk_diffs += 1;
                let header = LeaderMsg::Diff { commit_upto };
                self.transmit(
                    id,
                    to,
                    Message::ToLearner {
                        session,
                        msg: header,
                    },
                );
                let mut prev = from;
                for entry in txns {
                    let zxid = entry.zxid;
                    let msg = LeaderMsg::Proposal {
                        entry,
                        prev: Some(prev),
                    };
                    self.transmit(id, to, Message::ToLearner { session, msg });
                    prev = zxid;
                }
            }
            Output::InstallSnapshot { zxid, log } => {
                let state = self
                    .snap_states
                    .get(&(id, zxid))
                    .ok_or_else(|| format!("no SNAP state at {zxid:#x} was sent to {id}"))?;
                let entries = decode_state(state)?;
                if entries.last().map_or(0, |e| e.zxid) != zxid {
                    return Err(format!("SNAP state does not end at {zxid:#x}"));
                }
                // The leader's state holds only txns it applied: a prefix of
                // the one global sequence.
                for (i, e) in entries.iter().enumerate() {
                    if self.global.get(i) != Some(e) {
                        return Err(format!("SNAP state differs from the global order at {i}"));
                    }
                }
                let node = self.node(id)?;
                node.disk.snapshot = Some((zxid, entries.clone()));
                node.disk.log = log;
                node.disk.durable_len = node.disk.log.len();
                node.applied = entries;
                node.snapshots += 1;
                self.log(|| format!("node {id} installs a snapshot at {zxid:#x}"));
            }
            Output::Apply(entry) => self.check_apply(id, entry)?,
            Output::RoleChanged { role } => self.log(|| format!("node {id} is {role:?}")),
            Output::LeaderEstablished { epoch } => {
                self.log(|| format!("node {id} leads epoch {epoch}"));
                if let Some(other) = self.leader_of_epoch.insert(epoch, id) {
                    if other != id {
                        return Err(format!("epoch {epoch} has two leaders: {other} and {id}"));
                    }
                }
            }
            Output::Proposed { .. } => {}
        }
        Ok(())
    }

    /// The safety check on every applied txn.
    fn check_apply(&mut self, id: ServerId, entry: LogEntry) -> SimResult {
        let node = self.nodes.get_mut(&id).ok_or("no node")?;
        if let Some(prev) = node.applied.last() {
            if entry.zxid <= prev.zxid {
                return Err(format!(
                    "applied {:#x} after {:#x}: out of order",
                    entry.zxid, prev.zxid
                ));
            }
        }
        let i = node.applied.len();
        node.applied.push(entry.clone());
        match self.global.get(i) {
            Some(g) if *g == entry => {}
            Some(g) => {
                return Err(format!(
                    "applied {:#x} {:?} at position {i}, where others applied {:#x} {:?}",
                    entry.zxid, entry.payload, g.zxid, g.payload
                ))
            }
            None => {
                self.global.push(entry.clone());
                self.log(|| format!("node {id} commits {:#x} first", entry.zxid));
            }
        }
        if let Some((proposer, payload)) = self.proposed.get(&entry.zxid) {
            if *payload != entry.payload {
                return Err(format!("zxid {:#x} applied with other content", entry.zxid));
            }
            if *proposer == id {
                self.acked.insert(entry.zxid, entry.payload);
            }
        }
        Ok(())
    }

    fn transmit(&mut self, from: ServerId, to: ServerId, msg: Message) {
        if !self.connected(from, to) || self.rng.gen_bool(self.opts.loss) {
            return;
        }
        let copies = if self.rng.gen_bool(self.opts.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut at = self.now + self.rng.gen_range(1..=10);
            if self.rng.gen_bool(self.opts.reorder) {
                at += self.rng.gen_range(10..=60);
            } else {
                let last = self.link_clock.entry((from, to)).or_insert(0);
                at = at.max(*last);
                *last = at;
            }
            let delay = at - self.now;
            self.schedule(
                delay,
                Event::Deliver {
                    from,
                    to,
                    msg: msg.clone(),
                },
            );
        }
    }

    // ---- observations ----

    fn serving_leaders(&self) -> Vec<ServerId> {
        self.nodes
            .values()
            .filter(|n| n.peer.as_ref().is_some_and(|p| p.is_serving_leader()))
            .map(|n| n.id)
            .collect()
    }

    fn applied_on(&self, id: ServerId, zxid: Zxid) -> bool {
        self.nodes
            .get(&id)
            .is_some_and(|n| n.applied.iter().any(|e| e.zxid == zxid))
    }

    fn applied_everywhere(&self, zxid: Zxid) -> bool {
        self.nodes
            .values()
            .all(|n| n.peer.is_some() && n.applied.iter().any(|e| e.zxid == zxid))
    }

    /// Heals everything, waits for a leader, commits one more write on
    /// every node and checks no acknowledged write got lost.
    fn check_recovers(&mut self) -> SimResult {
        self.heal();
        self.quiet_network();
        let ids: Vec<ServerId> = self.nodes.keys().copied().collect();
        for id in ids {
            self.restart(id)?;
        }
        let mut final_zxid = None;
        for _ in 0..40 {
            if !self.run_until(5_000, |s| !s.serving_leaders().is_empty())? {
                break;
            }
            let leaders = self.serving_leaders();
            if let Some(z) = self.write(leaders[0])? {
                if self.run_until(3_000, |s| s.applied_everywhere(z))? {
                    final_zxid = Some(z);
                    break;
                }
            }
            self.run_for(200)?;
        }
        let Some(final_zxid) = final_zxid else {
            return Err(format!(
                "seed {}: no write commits everywhere after healing (leaders: {:?})",
                self.seed,
                self.serving_leaders()
            ));
        };
        for node in self.nodes.values() {
            for (zxid, payload) in &self.acked {
                let found = node.applied.iter().find(|e| e.zxid == *zxid);
                if found.map(|e| &e.payload) != Some(payload) {
                    return Err(format!(
                        "seed {}: acknowledged write {zxid:#x} missing on node {}",
                        self.seed, node.id
                    ));
                }
            }
            if !node.applied.iter().any(|e| e.zxid == final_zxid) {
                return Err(format!(
                    "seed {}: final write missing on {}",
                    self.seed, node.id
                ));
            }
        }
        Ok(())
    }
}

// ---- the randomized run ----

fn random_options(rng: &mut StdRng) -> SimOptions {
    let (voters, observers) = match rng.gen_range(0..4) {
        0 | 1 => (3, 0),
        2 => (5, 0),
        _ => (3, 1),
    };
    SimOptions {
        voters,
        observers,
        loss: rng.gen_range(0.0..0.05),
        duplicate: rng.gen_range(0.0..0.03),
        reorder: rng.gen_range(0.0..0.03),
        commit_log_count: rng.gen_range(3..30),
        notice: rng.gen_range(0.3..=1.0),
        flap: rng.gen_range(0.0..0.003),
        state_size_factor: [0, 1, 4, 20][rng.gen_range(0..4)],
    }
}

fn random_partition(sim: &mut Sim) {
    let before = sim.group.clone();
    let ids: Vec<ServerId> = sim.nodes.keys().copied().collect();
    for id in ids {
        let g = sim.rng.gen_range(1..=2);
        sim.group.insert(id, g);
    }
    let groups = sim.group.clone();
    sim.log(|| format!("partition {groups:?}"));
    sim.notice_cut_links(&before);
}

/// What one run went through, to show the faults really bit.
#[derive(Debug, Default, Clone, Copy)]
struct RunStats {
    acked: usize,
    epochs: usize,
    truncations: usize,
    snapshots: usize,
    disk_diffs: usize,
}

impl RunStats {
    fn add(mut self, o: RunStats) -> RunStats {
        self.acked += o.acked;
        self.epochs += o.epochs;
        self.truncations += o.truncations;
        self.snapshots += o.snapshots;
        self.disk_diffs += o.disk_diffs;
        self
    }
}

/// One seeded run: a few hundred random faults and writes, then recovery.
fn run_seed(seed: u64, steps: usize) -> SimResult<RunStats> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    let opts = random_options(&mut rng);
    let mut sim = Sim::new(seed, opts);
    let n = sim.nodes.len() as u64;
    for _ in 0..steps {
        let pause = sim.rng.gen_range(5..80);
        sim.run_for(pause)?;
        let id = sim.rng.gen_range(1..=n);
        match sim.rng.gen_range(0..100) {
            0..=59 => {
                // Clients mostly find the leader; sometimes they hit a follower.
                let leaders = sim.serving_leaders();
                let target = if leaders.is_empty() || sim.rng.gen_bool(0.2) {
                    id
                } else {
                    leaders[sim.rng.gen_range(0..leaders.len())]
                };
                sim.write(target)?;
            }
            60..=66 => sim.crash(id)?,
            67..=79 => sim.restart(id)?,
            80..=84 => random_partition(&mut sim),
            85..=94 => sim.heal(),
            _ => {}
        }
    }
    sim.check_recovers()?;
    Ok(RunStats {
        acked: sim.acked.len(),
        epochs: sim.leader_of_epoch.len(),
        truncations: sim.nodes.values().map(|n| n.truncations).sum(),
        snapshots: sim.nodes.values().map(|n| n.snapshots).sum(),
        disk_diffs: sim.nodes.values().map(|n| n.disk_diffs).sum(),
    })
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn random_faults_never_break_safety_and_the_ensemble_recovers() {
    const STEPS: usize = 250;
    if let Some(seed) = env_u64("ZK_SIM_SEED") {
        match run_seed(seed, STEPS) {
            Ok(stats) => eprintln!("seed {seed}: {stats:?}"),
            Err(e) => panic!("ZK_SIM_SEED={seed}: {e}"),
        }
        return;
    }
    let seeds = env_u64("ZK_SIM_SEEDS").unwrap_or(1000);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4)) as u64;
    let results: Vec<Result<RunStats, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                scope.spawn(move || {
                    (0..seeds)
                        .filter(|s| s % workers == w)
                        .map(|seed| {
                            run_seed(seed, STEPS).map_err(|e| format!("ZK_SIM_SEED={seed}: {e}"))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|_| vec![Err("a worker panicked".into())])
            })
            .collect()
    });
    let mut total = RunStats::default();
    let mut failures = Vec::new();
    for r in results {
        match r {
            Ok(stats) => total = total.add(stats),
            Err(e) => failures.push(e),
        }
    }
    eprintln!("{seeds} seeds: {total:?}");
    assert!(
        failures.is_empty(),
        "{} of {seeds} seeds failed; replay with the seed shown:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---- directed scenarios ----

const SCENARIO_SEED: u64 = 7;

/// A quiet ensemble with an elected, serving leader.
fn settled(opts: SimOptions) -> (Sim, ServerId) {
    let mut sim = Sim::new(SCENARIO_SEED, opts);
    let elected = sim
        .run_until(5_000, |s| s.serving_leaders().len() == 1)
        .expect("no invariant breaks while electing");
    assert!(elected, "no leader within 5 s on a quiet network");
    let leader = sim.serving_leaders()[0];
    (sim, leader)
}

impl Sim {
    fn commit_everywhere(&mut self, leader: ServerId) -> Zxid {
        let z = self
            .write(leader)
            .unwrap()
            .expect("the leader accepts writes");
        let done = self
            .run_until(3_000, |s| {
                s.nodes
                    .values()
                    .filter(|n| n.peer.is_some())
                    .all(|n| n.applied.iter().any(|e| e.zxid == z))
            })
            .unwrap();
        assert!(done, "write {z:#x} did not reach every live node");
        z
    }

    fn in_global(&self, zxid: Zxid) -> bool {
        self.global.iter().any(|e| e.zxid == zxid)
    }

    fn role_of(&self, id: ServerId) -> Option<Role> {
        self.nodes[&id].peer.as_ref().map(|p| p.role())
    }
}

#[test]
fn leader_crash_mid_broadcast_loses_no_acknowledged_write() {
    let (mut sim, leader) = settled(SimOptions::quiet(3, 0));
    for _ in 0..5 {
        sim.commit_everywhere(leader);
    }
    for _ in 0..3 {
        sim.write(leader).unwrap();
    }
    sim.run_for(3).unwrap();
    sim.crash(leader).unwrap();
    let reelected = sim
        .run_until(5_000, |s| s.serving_leaders().iter().any(|&l| l != leader))
        .unwrap();
    assert!(reelected, "the two survivors elect a new leader");
    let epochs: Vec<&ServerId> = sim.leader_of_epoch.values().collect();
    assert!(epochs.len() >= 2, "the new leader runs a new epoch");
    sim.check_recovers().unwrap();
}

impl Sim {
    /// Feeds `input` to node `id` and returns what it asked for (after the
    /// simulator carried it out).
    fn step_and_watch(&mut self, id: ServerId, input: Input) -> Vec<Output> {
        let peer = self.nodes.get_mut(&id).unwrap().peer.as_mut().unwrap();
        peer.step(input).unwrap();
        let outputs = peer.take_outputs();
        self.handle_outputs(id, outputs.clone()).unwrap();
        outputs
    }

    fn synced_learners(&self, leader: ServerId) -> usize {
        let peer = self.nodes[&leader].peer.as_ref().unwrap();
        peer.learner_counts().map_or(0, |(_, synced)| synced)
    }
}

#[test]
fn a_follower_whose_leader_link_closes_starts_an_election_within_one_tick() {
    let (mut sim, leader) = settled(SimOptions::quiet(3, 0));
    let follower = (1..=3).find(|&i| i != leader).unwrap();
    // No tick in between: the notice alone starts the election.
    let out = sim.step_and_watch(follower, Input::PeerDisconnected { peer: leader });
    assert_eq!(sim.role_of(follower), Some(Role::Looking));
    let looking_votes = out
        .iter()
        .filter(|o| {
            matches!(o, Output::Send { msg: Message::Notification(n), .. }
                if n.state == ServerState::Looking)
        })
        .count();
    assert_eq!(
        looking_votes, 2,
        "a LOOKING notification to each other voter"
    );
}

#[test]
fn a_follower_ignores_a_closed_link_to_a_peer_that_is_not_its_leader() {
    let (mut sim, leader) = settled(SimOptions::quiet(3, 0));
    let others: Vec<ServerId> = (1..=3).filter(|&i| i != leader).collect();
    sim.step_and_watch(others[0], Input::PeerDisconnected { peer: others[1] });
    assert_eq!(
        sim.role_of(others[0]),
        Some(Role::Following { leader }),
        "only the leader link matters to a follower"
    );
}

#[test]
fn survivors_elect_a_new_leader_before_sync_limit_would_notice_the_crash() {
    let (mut sim, leader) = settled(SimOptions::quiet(3, 0));
    sim.commit_everywhere(leader);
    sim.crash(leader).unwrap();
    let sync_limit_ms = config(leader, &sim.opts).sync_limit * TICK_MS;
    let reelected = sim
        .run_until(sync_limit_ms, |s| {
            s.serving_leaders().iter().any(|&l| l != leader)
        })
        .unwrap();
    assert!(
        reelected,
        "the closed links start the election at once, not after {sync_limit_ms} ms of silence"
    );
    sim.check_recovers().unwrap();
}

#[test]
fn a_leader_drops_a_learner_whose_link_closes_and_keeps_leading_with_a_quorum() {
    let (mut sim, leader) = settled(SimOptions::quiet(3, 0));
    sim.commit_everywhere(leader);
    assert_eq!(sim.synced_learners(leader), 2);
    let follower = (1..=3).find(|&i| i != leader).unwrap();
    sim.step_and_watch(leader, Input::PeerDisconnected { peer: follower });
    assert_eq!(
        sim.synced_learners(leader),
        1,
        "out of the synced set at once"
    );
    sim.run_for(3 * TICK_MS).unwrap();
    assert_eq!(
        sim.serving_leaders(),
        vec![leader],
        "itself and one follower are still a quorum"
    );
    let back = sim
        .run_until(5_000, |s| s.synced_learners(leader) == 2)
        .unwrap();
    assert!(back, "the dropped follower registers again");
    sim.commit_everywhere(leader);
}

#[test]
fn a_leader_whose_quorum_links_close_steps_down_on_its_next_quorum_check() {
    let (mut sim, leader) = settled(SimOptions::quiet(3, 0));
    sim.commit_everywhere(leader);
    assert_eq!(sim.synced_learners(leader), 2);
    for follower in (1..=3).filter(|&i| i != leader) {
        sim.step_and_watch(leader, Input::PeerDisconnected { peer: follower });
    }
    // The syncLimit rule still decides, on its tick-paced check.
    let stepped_down = sim
        .run_until(2 * TICK_MS, |s| s.role_of(leader) != Some(Role::Leading))
        .unwrap();
    assert!(stepped_down, "alone, the leader has no quorum");
}

#[test]
fn follower_with_an_uncommitted_proposal_is_truncated_on_rejoin() {
    let (mut sim, old_leader) = settled(SimOptions::quiet(3, 0));
    sim.commit_everywhere(old_leader);
    let others: Vec<ServerId> = (1..=3).filter(|&i| i != old_leader).collect();
    sim.partition(&[&[old_leader], &others]);
    let orphan = sim
        .write(old_leader)
        .unwrap()
        .expect("a cut-off leader still takes writes until it notices");
    let new_leader = sim
        .run_until(5_000, |s| {
            s.serving_leaders().iter().any(|l| others.contains(l))
        })
        .unwrap();
    assert!(new_leader, "the majority side elects a leader");
    let leader = *sim
        .serving_leaders()
        .iter()
        .find(|l| others.contains(l))
        .unwrap();
    let z = sim.write(leader).unwrap().expect("the new leader serves");
    let committed = sim
        .run_until(2_000, |s| others.iter().all(|&o| s.applied_on(o, z)))
        .unwrap();
    assert!(
        committed,
        "the majority side commits without the old leader"
    );
    sim.heal();
    let latest = sim.commit_everywhere(leader);
    assert!(sim.applied_on(old_leader, latest));
    assert!(
        sim.nodes[&old_leader].truncations >= 1,
        "the old leader's uncommitted tail is TRUNCated"
    );
    assert!(
        !sim.in_global(orphan),
        "the uncommitted proposal is never applied"
    );
}

#[test]
fn follower_down_for_long_gets_a_snapshot() {
    let mut opts = SimOptions::quiet(3, 0);
    opts.commit_log_count = 5;
    let (mut sim, leader) = settled(opts);
    sim.commit_everywhere(leader);
    let follower = (1..=3).find(|&i| i != leader).unwrap();
    sim.crash(follower).unwrap();
    for _ in 0..12 {
        sim.commit_everywhere(leader);
    }
    sim.restart(follower).unwrap();
    let latest = sim.commit_everywhere(leader);
    assert!(sim.applied_on(follower, latest));
    assert!(
        sim.nodes[&follower].snapshots >= 1,
        "12 txns behind with a DIFF window of 5 means SNAP"
    );
}

#[test]
fn follower_behind_the_in_memory_log_gets_a_diff_from_the_log_files_while_they_are_small() {
    let mut opts = SimOptions::quiet(3, 0);
    opts.commit_log_count = 5;
    // The state is reported far larger than the 12 txns it missed.
    opts.state_size_factor = 20;
    let (mut sim, leader) = settled(opts);
    sim.commit_everywhere(leader);
    let follower = (1..=3).find(|&i| i != leader).unwrap();
    sim.crash(follower).unwrap();
    for _ in 0..12 {
        sim.commit_everywhere(leader);
    }
    sim.run_for(2 * TICK_EVERY_MS).unwrap();
    sim.restart(follower).unwrap();
    let latest = sim.commit_everywhere(leader);
    assert!(sim.applied_on(follower, latest));
    assert_eq!(sim.nodes[&follower].snapshots, 0, "no SNAP");
    assert!(
        sim.nodes[&leader].disk_diffs >= 1,
        "12 txns behind a window of 5 come from the leader's log files"
    );
    let peer = sim.nodes[&leader].peer.as_ref().unwrap();
    assert!(
        peer.log_len() <= 10,
        "the leader keeps at most twice the window in memory"
    );
}

#[test]
fn partitioned_minority_cannot_commit() {
    let (mut sim, old_leader) = settled(SimOptions::quiet(5, 0));
    sim.commit_everywhere(old_leader);
    let buddy = (1..=5).find(|&i| i != old_leader).unwrap();
    let majority: Vec<ServerId> = (1..=5).filter(|&i| i != old_leader && i != buddy).collect();
    sim.partition(&[&[old_leader, buddy], &majority]);
    let stranded = sim.write(old_leader).unwrap();
    sim.run_for(3_000).unwrap();
    if let Some(z) = stranded {
        assert!(!sim.in_global(z), "two of five acks are no quorum");
    }
    assert!(
        sim.serving_leaders().iter().all(|l| majority.contains(l)),
        "the minority leader stepped down"
    );
    let leader = sim.serving_leaders()[0];
    let z = sim.write(leader).unwrap().expect("majority leader serves");
    let committed = sim
        .run_until(2_000, |s| majority.iter().all(|&m| s.applied_on(m, z)))
        .unwrap();
    assert!(committed, "the majority keeps committing");
    sim.check_recovers().unwrap();
    if let Some(z) = stranded {
        assert!(!sim.in_global(z), "the stranded write is discarded on heal");
    }
}

#[test]
fn observer_applies_commits_but_never_votes() {
    let (mut sim, leader) = settled(SimOptions::quiet(3, 1));
    let observer = 4;
    let observing = sim
        .run_until(2_000, |s| {
            matches!(s.role_of(observer), Some(Role::Observing { .. }))
        })
        .unwrap();
    assert!(observing, "the observer finds the leader");
    let z = sim.commit_everywhere(leader);
    assert!(sim.applied_on(observer, z));
    // One voter and the observer are no quorum.
    let down: Vec<ServerId> = (1..=3).filter(|&i| i != leader).collect();
    for &id in &down {
        sim.crash(id).unwrap();
    }
    sim.run_for(3_000).unwrap();
    assert!(
        sim.serving_leaders().is_empty(),
        "the observer's presence must not keep a leader up"
    );
    assert!(sim.write(leader).unwrap().is_none());
    assert!(!sim.leader_of_epoch.values().any(|&l| l == observer));
    sim.restart(down[0]).unwrap();
    let back = sim
        .run_until(5_000, |s| !s.serving_leaders().is_empty())
        .unwrap();
    assert!(back, "two voters of three elect a leader again");
    assert_ne!(sim.serving_leaders()[0], observer);
}
