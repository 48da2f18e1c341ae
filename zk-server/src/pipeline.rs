//! The single writer task (DESIGN.md "processing model").
//!
//! One task owns the [`Database`], the [`SessionTracker`] and the
//! [`TxnLog`]. Connection tasks send it [`Inbound`] messages; it answers
//! through each connection's outgoing channel, so everything a connection
//! receives is queued in one order:
//!
//! * a write is prepared at once with zxid = last + 1, appended to the log,
//!   and applied only when the log reports it durable; its reply follows
//!   the watch events the apply fired;
//! * a session's reads wait behind its pending writes (per-session FIFO);
//!   a read of a session with nothing pending is served at once;
//! * expired sessions get a closeSession txn; containers and TTL nodes the
//!   database reports get deleteContainer / delete txns;
//! * every `snap_count` txns (randomised as Apache does) a fuzzy snapshot
//!   starts: the log rolls, the tree is serialised a slice at a time
//!   between the other work and streamed to disk (pipeline/snapshots.rs);
//! * a durability error stops everything (pipeline/fail_stop.rs).

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};
use zk_proto::txn::ErrorTxn;
use zk_proto::{
    ConnectRequest, DeleteContainerRequest, ErrorCode, Id, Jute, OpCode, Request, RequestFrame,
    Response, SyncResponse, Txn, TxnEntry, TxnHeader, WatcherEvent,
};

use crate::admin::Latency;
use crate::config::ServerConfig;
use crate::db::{
    self, ConnId, Database, RequestContext, SessionId, SessionIdGenerator, SessionTracker,
};
use crate::ensemble::driver::Driver;
use crate::net::flow::ConnOutput;
use crate::net::frames::{self, OutFrame};
use crate::storage::{LogFailure, TxnLog};

mod admin_cmd;
mod admission;
mod enforce_auth;
mod ensemble_mode;
mod fail_stop;
mod messages;
mod metrics_hooks;
mod report;
mod sasl;
mod snapshots;

use snapshots::SnapSchedule;

pub(crate) use messages::{ConnRegistration, Inbound, Outbound};

/// Clock readings: wall time for txn headers, monotonic time for expiry.
#[derive(Debug, Clone, Copy)]
struct Clock {
    base: Instant,
}

impl Clock {
    /// Monotonic ms since the pipeline started (the tracker's time base).
    fn mono_ms(&self) -> u64 {
        self.base.elapsed().as_millis() as u64
    }

    fn wall_ms() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }

    /// The wall-clock time of a monotonic reading, for `dump`.
    fn wall_of(&self, mono_ms: u64) -> u64 {
        let now_mono = self.mono_ms();
        (Clock::wall_ms().max(0) as u64 + mono_ms).saturating_sub(now_mono)
    }
}

/// A txn appended to the log and not yet applied.
#[derive(Debug)]
struct InFlight {
    entry: TxnEntry,
    origin: Origin,
}

#[derive(Debug)]
enum Origin {
    /// A client request; its reply goes to `conn_id`.
    Client {
        conn_id: ConnId,
        session: SessionId,
        arrived: Instant,
    },
    /// A new session; the ConnectResponse goes to `conn_id`.
    CreateSession {
        conn_id: ConnId,
        read_only: Option<bool>,
    },
    /// Expiry, container cleanup: nobody to answer.
    Internal,
}

/// An entry of a session's FIFO.
#[derive(Debug)]
enum Queued {
    /// A write waiting to be applied.
    Write(i64),
    /// Ensemble learner: a write forwarded to the leader, by xid; done when
    /// the txn it made is applied here.
    Forwarded(i32),
    /// Ensemble: a sync, answered once we applied up to its target.
    Sync(SyncWait),
    /// A request to answer once the writes ahead of it are applied.
    Deferred(Deferred),
}

#[derive(Debug)]
struct SyncWait {
    token: u64,
    conn_id: ConnId,
    xid: i32,
    arrived: Instant,
    path: Option<String>,
    /// The leader's last proposal when it saw the sync; `None` until a
    /// learner hears back.
    target: Option<i64>,
}

#[derive(Debug)]
struct Deferred {
    conn_id: ConnId,
    xid: i32,
    arrived: Instant,
    action: Action,
}

#[derive(Debug)]
enum Action {
    Serve(Request),
    /// Answer with this error; close the connection afterwards if `close`.
    Fail {
        err: ErrorCode,
        zxid: Option<i64>,
        close: bool,
    },
}

/// Per-connection bookkeeping (for replies, auth, and cons/stat).
#[derive(Debug)]
struct Conn {
    remote: SocketAddr,
    out: ConnOutput,
    /// Resolved once a new session is created: the reader waits for it.
    established: Option<oneshot::Sender<bool>>,
    session: Option<SessionId>,
    timeout: i32,
    auth: Vec<Id>,
    established_wall_ms: u64,
    received: u64,
    sent: u64,
    last_op: &'static str,
    last_cxid: Option<i32>,
    last_zxid: i64,
    last_response_ms: u64,
    last_latency: u64,
    latency: Latency,
    /// The connection's SASL DIGEST-MD5 exchange (pipeline/sasl.rs).
    sasl: Option<crate::auth::digest_md5::DigestMd5Server>,
    /// On the secure client port.
    secure: bool,
}

impl Conn {
    /// Queues a frame that answers no request (event, handshake).
    fn send(&mut self, frame: Bytes) {
        self.sent += 1;
        self.out.frame(frame);
    }

    /// Queues the answer to one of this connection's requests.
    fn send_reply(&mut self, frame: impl Into<OutFrame>) {
        self.sent += 1;
        self.out.reply(frame);
    }

    fn close(&self) {
        self.out.close();
    }
}

/// Server-wide counters for srvr/mntr.
#[derive(Debug, Default)]
struct Stats {
    received: u64,
    sent: u64,
    latency: Latency,
    auth_failed: u64,
    commits: u64,
    snapshots: u64,
    last_response_size: Option<usize>,
    min_response_size: Option<usize>,
    max_response_size: Option<usize>,
}

impl Stats {
    fn response(&mut self, size: usize) {
        self.sent += 1;
        self.last_response_size = Some(size);
        self.min_response_size = Some(self.min_response_size.map_or(size, |m| m.min(size)));
        self.max_response_size = Some(self.max_response_size.map_or(size, |m| m.max(size)));
    }
}

/// The shared, read-only facts every part of the server needs.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: ServerConfig,
    pub started: Instant,
    /// The bound address (the config's port may be 0).
    pub local_addr: SocketAddr,
    /// Connections closed at accept by `maxClientCnxns` (mntr).
    pub connections_rejected: std::sync::atomic::AtomicU64,
    /// Set once a durability error stopped the member (fail_stop.rs).
    pub health: crate::fail_stop::Health,
    /// Apache's ServerMetrics (mntr, AdminServer, Prometheus).
    pub metrics: crate::metrics::Metrics,
    /// The bound secure client port (`secureClientPort`), if any.
    pub secure_addr: Option<SocketAddr>,
}

/// The pipeline task's state.
pub(crate) struct Pipeline {
    shared: Arc<Shared>,
    db: Database,
    tracker: SessionTracker,
    log: Option<TxnLog>,
    durable: watch::Receiver<i64>,
    log_failure: watch::Receiver<Option<LogFailure>>,
    /// Ensemble mode: the quorum core and its links; `None` standalone.
    quorum: Option<Box<Driver>>,
    last_zxid: i64,
    in_flight: VecDeque<InFlight>,
    conns: HashMap<ConnId, Conn>,
    session_conn: HashMap<SessionId, ConnId>,
    session_timeouts: HashMap<SessionId, i32>,
    queues: HashMap<SessionId, VecDeque<Queued>>,
    closing: HashSet<SessionId>,
    session_ids: SessionIdGenerator,
    /// When each session was last touched, for `dump`'s expiry buckets.
    last_touch: HashMap<SessionId, u64>,
    stats: Stats,
    snaps: SnapSchedule,
    clock: Clock,
    /// wchc / wchp listings copied a page per turn (report.rs).
    listings: report::Listings,
}

/// Standalone servers use server id 1 in session ids (SEMANTICS.md §5.1).
const STANDALONE_SERVER_ID: i64 = 1;

/// The OPS.md `lop` code of a request.
fn last_op_code(op: OpCode) -> &'static str {
    match op {
        OpCode::Ping => "PING",
        OpCode::CreateSession => "SESS",
        OpCode::Create | OpCode::Create2 | OpCode::CreateTtl | OpCode::CreateContainer => "CREA",
        OpCode::Delete | OpCode::DeleteContainer => "DELE",
        OpCode::SetData => "SETD",
        OpCode::GetData => "GETD",
        OpCode::Exists => "EXIS",
        OpCode::GetChildren | OpCode::GetChildren2 => "GETC",
        OpCode::GetAllChildrenNumber => "GETACN",
        OpCode::GetAcl => "GETA",
        OpCode::SetAcl => "SETA",
        OpCode::Sync => "SYNC",
        OpCode::Multi => "MULT",
        OpCode::MultiRead => "MLTR",
        OpCode::Check => "CHEC",
        OpCode::SetWatches => "SETW",
        OpCode::SetWatches2 => "STW2",
        OpCode::AddWatch => "ADDW",
        OpCode::CheckWatches => "CHKW",
        OpCode::RemoveWatches => "REMW",
        OpCode::WhoAmI => "HOMI",
        OpCode::GetEphemerals => "GETE",
        OpCode::Reconfig => "RECO",
        OpCode::CloseSession => "CLOS",
        _ => "NA",
    }
}

impl Pipeline {
    /// A pipeline over a recovered database and an open log.
    pub(crate) fn new(
        shared: Arc<Shared>,
        db: Database,
        log: TxnLog,
        quorum: Option<Box<Driver>>,
    ) -> Self {
        let config = &shared.config;
        let clock = Clock {
            base: Instant::now(),
        };
        let mut tracker = SessionTracker::new(u64::from(config.tick_time_ms));
        let mut session_timeouts = HashMap::new();
        let mut last_touch = HashMap::new();
        // Recovered sessions get a full timeout from now, as Apache's
        // loadData does, so their clients can reattach.
        for (id, timeout) in db.sessions() {
            tracker.add(id, timeout, clock.mono_ms());
            session_timeouts.insert(id, timeout);
            last_touch.insert(id, clock.mono_ms());
        }
        let last_zxid = db.last_processed_zxid();
        let snaps = SnapSchedule::new(config.snap_count);
        let durable = log.durable();
        let log_failure = log.failure();
        let server_id = quorum
            .as_ref()
            .map_or(STANDALONE_SERVER_ID, |q| q.peer.id() as i64);
        Pipeline {
            db,
            tracker,
            durable,
            log_failure,
            quorum,
            log: Some(log),
            last_zxid,
            in_flight: VecDeque::new(),
            conns: HashMap::new(),
            session_conn: HashMap::new(),
            session_timeouts,
            queues: HashMap::new(),
            closing: HashSet::new(),
            session_ids: SessionIdGenerator::new(server_id, Clock::wall_ms()),
            last_touch,
            stats: Stats::default(),
            snaps,
            clock,
            shared,
            listings: Default::default(),
        }
    }

    /// Runs until shutdown or until the inbound channel closes.
    pub(crate) async fn run(mut self, mut inbound: mpsc::UnboundedReceiver<Inbound>) {
        let config = &self.shared.config;
        let mut cleanup =
            tokio::time::interval(Duration::from_millis(config.container_check_interval_ms));
        cleanup.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let purge_every = u64::from(config.autopurge_purge_interval_hours) * 3600;
        let mut purge = tokio::time::interval(Duration::from_secs(purge_every.max(1)));
        purge.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        if self.log.is_none() {
            return;
        }
        let tick_ms = (u64::from(config.tick_time_ms) / 4).max(5);
        let mut quorum_tick = tokio::time::interval(Duration::from_millis(tick_ms));
        quorum_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let ensemble = self.quorum.is_some();
        if ensemble {
            self.run_quorum_outputs();
        }
        let mut health = self.shared.health.subscribe();
        loop {
            if self.shared.health.is_failed() {
                return self.stop_failed().await;
            }
            let expiry = self.next_expiry_sleep();
            let snapshots_ready = self.snapshots_ready();
            let disk_job_done = self.disk_job_done();
            tokio::select! {
                msg = inbound.recv() => match msg {
                    Some(Inbound::Shutdown { done }) => {
                        self.shutdown().await;
                        let _ = done.send(());
                        return;
                    }
                    Some(Inbound::Kill { done }) => {
                        self.wait_disk_job().await;
                        self.stop_snapshots().await;
                        self.close_log().await;
                        let _ = done.send(());
                        return;
                    }
                    Some(msg) => self.on_inbound(msg),
                    None => {
                        self.shutdown().await;
                        return;
                    }
                },
                changed = self.durable.changed() => {
                    if changed.is_err() {
                        self.txn_log_failed();
                        continue;
                    }
                    if ensemble {
                        self.quorum_durable();
                    } else {
                        self.apply_durable();
                    }
                }
                Some((from, msg)) = ensemble_mode::next_peer_msg(&mut self.quorum) => {
                    self.on_peer_msg(from, msg);
                }
                _ = quorum_tick.tick(), if ensemble => self.quorum_tick(),
                Some(slot) = snapshots::next_slot(self.snaps.slices()) => {
                    self.snapshot_slice(slot);
                }
                _ = snapshots_ready => self.pump_snapshots(),
                _ = disk_job_done => self.finish_disk_job(),
                _ = self.log_failure.changed() => {
                    if self.log_failure.borrow().is_some() {
                        self.txn_log_failed();
                    }
                }
                // Checked at the top of the loop.
                _ = health.changed() => {}
                _ = tokio::time::sleep(expiry) => self.expire_sessions(),
                _ = cleanup.tick() => self.cleanup_containers(),
                _ = purge.tick(), if purge_every > 0 => self.start_purge(),
                // One page per turn, yielding in between so the connection
                // tasks this one woke run before the next page.
                _ = tokio::task::yield_now(), if !self.listings.is_idle() => self.listing_step(),
            }
        }
    }

    /// Any packet of a session refreshes its expiry (SEMANTICS.md §5.2).
    fn touch(&mut self, session: SessionId, timeout: i32) {
        let now = self.clock.mono_ms();
        if self.tracker.touch(session, timeout, now) {
            self.last_touch.insert(session, now);
        }
        if let Some(q) = self.quorum.as_mut().filter(|q| q.leader().is_some()) {
            // The leader owns expiry: tell it on the next tick.
            q.touched.insert(session, timeout);
        }
    }

    fn next_expiry_sleep(&self) -> Duration {
        if self.quorum.as_ref().is_some_and(|q| !q.is_serving_leader()) {
            // Only a serving leader expires sessions.
            return Duration::from_secs(60);
        }
        // With no session tracked, wake up once a minute anyway.
        match self.tracker.next_expiry() {
            Some(at) => Duration::from_millis(at.saturating_sub(self.clock.mono_ms())),
            None => Duration::from_secs(60),
        }
    }

    fn on_inbound(&mut self, msg: Inbound) {
        match msg {
            Inbound::Connect { conn, request } => self.on_connect(conn, request),
            Inbound::Request {
                conn_id,
                frame,
                arrived,
            } => self.on_request(conn_id, frame, arrived),
            Inbound::Malformed {
                conn_id,
                xid,
                op,
                logs_txn,
                arrived,
            } => self.on_malformed(conn_id, xid, op, logs_txn, arrived),
            Inbound::Unimplemented {
                conn_id,
                xid,
                arrived,
            } => self.on_deferred(
                conn_id,
                xid,
                arrived,
                Action::Fail {
                    err: ErrorCode::Unimplemented,
                    zxid: Some(-1),
                    close: true,
                },
            ),
            Inbound::Closed { conn_id } => self.on_closed(conn_id),
            Inbound::FourLetter {
                word,
                remote,
                reply,
            } => self.answer_four_letter(word, remote, reply),
            Inbound::Admin {
                command,
                kwargs,
                reply,
            } => {
                let _ = reply.send(self.admin_command(&command, &kwargs));
            }
            Inbound::Gauges { reply } => {
                let _ = reply.send(self.gauges());
            }
            Inbound::Shutdown { .. } | Inbound::Kill { .. } => {}
        }
    }

    // ---- handshake -------------------------------------------------------

    fn on_connect(&mut self, reg: ConnRegistration, request: ConnectRequest) {
        self.metrics()
            .add(crate::metrics::Counter::ConnectionRequest, 1);
        if self.quorum.as_ref().is_some_and(|q| !q.serving) {
            // Apache: "ZooKeeperServer not running"; the client moves on.
            reg.out.close();
            let _ = reg.established.send(false);
            return;
        }
        let config = &self.shared.config;
        // A client that saw a newer state must find another server.
        if request.last_zxid_seen > self.db.last_processed_zxid() {
            tracing::info!(
                remote = %reg.remote,
                client_zxid = %format_args!("0x{:x}", request.last_zxid_seen),
                our_zxid = %format_args!("0x{:x}", self.db.last_processed_zxid()),
                "refusing a client ahead of us"
            );
            reg.out.close();
            let _ = reg.established.send(false);
            return;
        }
        let timeout = config.negotiate_timeout(request.timeout);
        let ConnRegistration {
            id,
            remote,
            out,
            established,
            secure,
        } = reg;
        let conn = Conn {
            remote,
            out,
            established: None,
            session: None,
            timeout,
            auth: vec![Id::new("ip", remote.ip().to_string())],
            established_wall_ms: Clock::wall_ms().max(0) as u64,
            received: 1,
            sent: 0,
            last_op: "NA",
            last_cxid: None,
            last_zxid: -1,
            last_response_ms: 0,
            last_latency: 0,
            latency: Latency::default(),
            sasl: None,
            secure,
        };
        self.stats.received += 1;
        self.conns.insert(id, conn);
        if request.session_id == 0 {
            // The reader resumes when the session exists (finish_create_session).
            if let Some(conn) = self.conns.get_mut(&id) {
                conn.established = Some(established);
            }
            self.create_session(id, timeout, request.read_only);
        } else {
            let ok = self.reattach(id, &request, timeout);
            let _ = established.send(ok);
        }
    }

    fn create_session(&mut self, conn_id: ConnId, timeout: i32, read_only: Option<bool>) {
        let mut session_id = self.session_ids.next_id();
        // Ids of a previous run may still be alive (recovered sessions).
        while self.db.session_exists(session_id) || self.session_timeouts.contains_key(&session_id)
        {
            session_id = self.session_ids.next_id();
        }
        if self.forward_create_session(conn_id, session_id, timeout, read_only) {
            return;
        }
        let zxid = self.next_zxid();
        let entry = self
            .db
            .prepare_create_session(session_id, timeout, zxid, Clock::wall_ms());
        self.log_txn(entry, Origin::CreateSession { conn_id, read_only });
    }

    /// Reconnect with id + password; answers at once. True if accepted.
    fn reattach(&mut self, conn_id: ConnId, request: &ConnectRequest, timeout: i32) -> bool {
        let session_id = request.session_id;
        // Apache closes the other connection before checking the password.
        if let Some(old) = self.session_conn.remove(&session_id) {
            if old != conn_id {
                if let Some(c) = self.conns.get_mut(&old) {
                    c.session = None;
                    c.close();
                }
            }
        }
        let valid = db::session::password_matches(session_id, &request.passwd)
            && self.db.session_exists(session_id)
            && !self.closing.contains(&session_id);
        if valid {
            let session_timeout = self
                .session_timeouts
                .get(&session_id)
                .copied()
                .unwrap_or(timeout);
            self.touch(session_id, session_timeout);
        }
        let Some(conn) = self.conns.get_mut(&conn_id) else {
            return false;
        };
        if !valid {
            conn.send(frames::connect_refused(request.read_only));
            conn.close();
            self.stats.sent += 1;
            return false;
        }
        let password = db::session::password(session_id);
        conn.session = Some(session_id);
        conn.last_op = "SESS";
        conn.send(frames::connect_response(
            timeout,
            session_id,
            &password,
            request.read_only.map(|_| false),
        ));
        self.stats.sent += 1;
        self.session_conn.insert(session_id, conn_id);
        true
    }

    // ---- requests --------------------------------------------------------

    fn on_request(&mut self, conn_id: ConnId, frame: RequestFrame, arrived: Instant) {
        let Some(conn) = self.conns.get_mut(&conn_id) else {
            return;
        };
        let Some(session) = conn.session else {
            // No longer bound to a session: Apache drops it.
            conn.out.dropped_request();
            return;
        };
        let op = frame.request.op_code();
        conn.received += 1;
        conn.last_op = last_op_code(op);
        if frame.xid >= 0 {
            conn.last_cxid = Some(frame.xid);
        }
        self.stats.received += 1;
        let conn_timeout = conn.timeout;
        if self.refuse_unauthenticated(conn_id, frame.xid, &frame.request) {
            return;
        }
        let timeout = self
            .session_timeouts
            .get(&session)
            .copied()
            .unwrap_or(conn_timeout);
        self.touch(session, timeout);

        if self.closing.contains(&session) {
            let action = Action::Fail {
                err: ErrorCode::SessionExpired,
                zxid: None,
                close: false,
            };
            return self.on_deferred(conn_id, frame.xid, arrived, action);
        }
        match frame.request {
            Request::Auth(packet) => self.on_auth(conn_id, &packet.scheme, packet.auth.as_deref()),
            // check only exists inside multi; 3.8.5+ refuse it and close.
            Request::Check(_) => self.on_deferred(
                conn_id,
                frame.xid,
                arrived,
                Action::Fail {
                    err: ErrorCode::Unimplemented,
                    zxid: Some(-1),
                    close: true,
                },
            ),
            // A null SASL token is a NullPointerException in Apache's
            // packet handler, which drops the connection without a reply.
            Request::Sasl(r) if r.token.is_none() => {
                if let Some(conn) = self.conns.get(&conn_id) {
                    conn.close();
                }
            }
            Request::Sync(r) if self.quorum.is_some() => {
                self.on_quorum_sync(conn_id, session, frame.xid, r.path, arrived)
            }
            request if op.is_write() && self.is_learner() => self.forward_write(
                conn_id,
                session,
                RequestFrame::new(frame.xid, request),
                arrived,
            ),
            request if op.is_write() => {
                self.on_write(conn_id, session, frame.xid, request, arrived)
            }
            request => self.on_deferred(conn_id, frame.xid, arrived, Action::Serve(request)),
        }
    }

    fn context(&self, conn_id: ConnId, session_id: SessionId, xid: i32) -> RequestContext {
        RequestContext {
            session_id,
            conn_id,
            xid,
            auth: self
                .conns
                .get(&conn_id)
                .map(|c| c.auth.clone())
                .unwrap_or_default(),
        }
    }

    fn on_write(
        &mut self,
        conn_id: ConnId,
        session: SessionId,
        xid: i32,
        request: Request,
        arrived: Instant,
    ) {
        let ctx = self.context(conn_id, session, xid);
        let zxid = self.next_zxid();
        let started = Instant::now();
        let entry = self.db.prepare(&ctx, &request, zxid, Clock::wall_ms());
        self.metrics()
            .observe_ms(crate::metrics::Summary::PrepProcessTime, started.elapsed());
        self.enqueue_write(conn_id, session, entry, arrived);
    }

    fn enqueue_write(
        &mut self,
        conn_id: ConnId,
        session: SessionId,
        entry: TxnEntry,
        arrived: Instant,
    ) {
        let zxid = entry.header.zxid;
        self.queues
            .entry(session)
            .or_default()
            .push_back(Queued::Write(zxid));
        self.log_txn(
            entry,
            Origin::Client {
                conn_id,
                session,
                arrived,
            },
        );
    }

    /// A body that did not parse: reads answer MarshallingError; writes
    /// log an error txn with that code first, as Apache does, unless Apache
    /// fails before it gives the request a txn (`logs_txn` false).
    fn on_malformed(
        &mut self,
        conn_id: ConnId,
        xid: i32,
        op: OpCode,
        logs_txn: bool,
        arrived: Instant,
    ) {
        let Some(session) = self.session_of_request(conn_id) else {
            return;
        };
        self.stats.received += 1;
        if logs_txn && op.is_write() && !self.is_learner() {
            let zxid = self.next_zxid();
            let entry = TxnEntry {
                header: TxnHeader {
                    client_id: session,
                    cxid: xid,
                    zxid,
                    time: Clock::wall_ms(),
                    txn_type: OpCode::Error.code(),
                },
                txn: Txn::Error(ErrorTxn {
                    err: ErrorCode::MarshallingError.code(),
                }),
                digest: None,
            };
            self.enqueue_write(conn_id, session, entry, arrived);
        } else {
            let action = Action::Fail {
                err: ErrorCode::MarshallingError,
                zxid: None,
                close: false,
            };
            self.on_deferred(conn_id, xid, arrived, action);
        }
    }

    /// Serves at once, or queues behind the session's pending writes.
    fn on_deferred(&mut self, conn_id: ConnId, xid: i32, arrived: Instant, action: Action) {
        let Some(session) = self.session_of_request(conn_id) else {
            return;
        };
        let deferred = Deferred {
            conn_id,
            xid,
            arrived,
            action,
        };
        match self.queues.get_mut(&session) {
            Some(queue) if !queue.is_empty() => queue.push_back(Queued::Deferred(deferred)),
            _ => self.serve(session, deferred),
        }
    }

    fn serve(&mut self, session: SessionId, d: Deferred) {
        let zxid = self.db.last_processed_zxid();
        let (result, close, reply_zxid) = match d.action {
            Action::Fail {
                err,
                zxid: z,
                close,
            } => (Err(err), close, z.unwrap_or(zxid)),
            Action::Serve(Request::Ping) => (Ok(Response::Empty), false, zxid),
            Action::Serve(Request::Sync(r)) => (
                Ok(Response::Sync(SyncResponse { path: r.path })),
                false,
                zxid,
            ),
            Action::Serve(Request::Sasl(r)) => {
                let (result, close) =
                    self.sasl_step(d.conn_id, r.token.as_deref().unwrap_or_default());
                (result, close, 0)
            }
            Action::Serve(request) => {
                let ctx = self.context(d.conn_id, session, d.xid);
                let started = Instant::now();
                let (result, events) = self.db.read(&ctx, &request);
                self.metrics().observe_ms(
                    crate::metrics::Summary::ReadFinalProcTime,
                    started.elapsed(),
                );
                self.deliver(events);
                (result, false, zxid)
            }
        };
        self.reply(d.conn_id, d.xid, reply_zxid, &result, d.arrived, false);
        if close {
            if let Some(conn) = self.conns.get(&d.conn_id) {
                conn.close();
            }
        }
    }

    fn on_auth(&mut self, conn_id: ConnId, scheme: &str, auth: Option<&[u8]>) {
        let Some(conn) = self.conns.get(&conn_id) else {
            return;
        };
        let ip = conn.remote.ip().to_string();
        let available = self.shared.config.security.available_schemes();
        if !available.contains(&scheme) {
            static UNKNOWN_SCHEME: crate::log_limit::RateLimit =
                crate::log_limit::RateLimit::new(std::time::Duration::from_secs(10));
            crate::warn_limited!(
                UNKNOWN_SCHEME,
                remote = %conn.remote,
                "no authentication provider for scheme '{scheme}' (available: {}); closing",
                available.join(", ")
            );
        }
        let result = self.db.authenticate(scheme, auth, &ip);
        let Some(conn) = self.conns.get_mut(&conn_id) else {
            return;
        };
        match result {
            Ok(ids) => {
                for id in ids {
                    if !conn.auth.contains(&id) {
                        conn.auth.push(id);
                    }
                }
                self.db.set_connection_auth(conn_id, &conn.auth);
                conn.send_reply(frames::reply(zk_proto::xid::AUTH, 0, &Ok(Response::Empty)));
            }
            Err(err) => {
                self.stats.auth_failed += 1;
                conn.send_reply(frames::reply(zk_proto::xid::AUTH, 0, &Err(err)));
                conn.close();
            }
        }
        self.stats.sent += 1;
    }

    fn on_closed(&mut self, conn_id: ConnId) {
        let Some(conn) = self.conns.remove(&conn_id) else {
            return;
        };
        self.db.remove_watches_of(conn_id);
        if let Some(session) = conn.session {
            if self.session_conn.get(&session) == Some(&conn_id) {
                self.session_conn.remove(&session);
            }
        }
    }

    // ---- the log and apply -----------------------------------------------

    fn next_zxid(&mut self) -> i64 {
        let proposal = self
            .quorum
            .as_ref()
            .and_then(|q| q.peer.next_proposal_zxid());
        self.last_zxid = proposal.unwrap_or(self.last_zxid + 1);
        self.last_zxid
    }

    fn log_txn(&mut self, entry: TxnEntry, origin: Origin) {
        if self.quorum.is_some() {
            return self.propose(entry, origin);
        }
        let zxid = entry.header.zxid;
        if let Some(log) = &self.log {
            log.append(zxid, entry.to_bytes());
        }
        self.in_flight.push_back(InFlight { entry, origin });
    }

    /// Applies, in zxid order, every logged txn the log reports durable.
    fn apply_durable(&mut self) {
        let durable = *self.durable.borrow_and_update();
        while self
            .in_flight
            .front()
            .is_some_and(|f| f.entry.header.zxid <= durable)
        {
            let Some(done) = self.in_flight.pop_front() else {
                break;
            };
            self.apply_one(done);
        }
    }

    fn apply_one(&mut self, done: InFlight) {
        let started = Instant::now();
        let applied = self.db.apply(&done.entry);
        self.metrics().observe_ms(
            crate::metrics::Summary::WriteFinalProcTime,
            started.elapsed(),
        );
        self.record_triggered_watches(&applied.notifications);
        self.stats.commits += 1;
        // Events first: a client must see them before the reply to this
        // txn and before any later reply.
        self.deliver(applied.notifications);
        if let Some((session, timeout)) = applied.session_created {
            self.tracker.add(session, timeout, self.clock.mono_ms());
            self.last_touch.insert(session, self.clock.mono_ms());
            self.session_timeouts.insert(session, timeout);
        }
        match done.origin {
            Origin::Client {
                conn_id,
                session,
                arrived,
            } => {
                let mut xid = done.entry.header.cxid;
                if let Some((_, reply_xid, result)) = &applied.reply {
                    self.reply(conn_id, *reply_xid, applied.zxid, result, arrived, true);
                    xid = *reply_xid;
                }
                self.advance_queue(session, applied.zxid, xid);
            }
            Origin::CreateSession { conn_id, read_only } => {
                self.finish_create_session(conn_id, &applied.session_created, read_only);
            }
            Origin::Internal => {}
        }
        if let Some(session) = applied.session_closed {
            self.end_session(session);
        }
        if self.snaps.count() {
            self.start_snapshot();
        }
    }

    fn finish_create_session(
        &mut self,
        conn_id: ConnId,
        created: &Option<(SessionId, i32)>,
        read_only: Option<bool>,
    ) {
        let Some(conn) = self.conns.get_mut(&conn_id) else {
            return; // the client left; the session will expire
        };
        let Some((session, _)) = *created else {
            conn.send(frames::connect_refused(read_only));
            conn.close();
            if let Some(established) = conn.established.take() {
                let _ = established.send(false);
            }
            return;
        };
        conn.session = Some(session);
        if let Some(tx) = conn.established.take() {
            let _ = tx.send(true);
        }
        conn.last_op = "SESS";
        let password = db::session::password(session);
        conn.send(frames::connect_response(
            conn.timeout,
            session,
            &password,
            read_only.map(|_| false),
        ));
        if let Some(established) = conn.established.take() {
            let _ = established.send(true);
        }
        self.stats.sent += 1;
        self.session_conn.insert(session, conn_id);
    }

    /// The write `zxid` of `session` is done: serve what waited behind it,
    /// up to the session's next pending write.
    fn advance_queue(&mut self, session: SessionId, zxid: i64, xid: i32) {
        if let Some(queue) = self.queues.get_mut(&session) {
            let done = match queue.front() {
                Some(Queued::Write(z)) => *z == zxid,
                Some(Queued::Forwarded(x)) => *x == xid,
                _ => false,
            };
            if done {
                queue.pop_front();
            }
        }
        self.drain_queue(session);
    }

    /// Serves the head of the session's FIFO while it is ready: a deferred
    /// request, or a sync whose target we applied.
    fn drain_queue(&mut self, session: SessionId) {
        loop {
            let applied = self.db.last_processed_zxid();
            let Some(queue) = self.queues.get_mut(&session) else {
                return;
            };
            let ready = match queue.front() {
                Some(Queued::Deferred(_)) => true,
                Some(Queued::Sync(w)) => w.target.is_some_and(|t| t <= applied),
                _ => false,
            };
            if !ready {
                break;
            }
            match queue.pop_front() {
                Some(Queued::Deferred(d)) => self.serve(session, d),
                Some(Queued::Sync(w)) => self.finish_sync(w),
                _ => break,
            }
        }
        if self.queues.get(&session).is_some_and(VecDeque::is_empty) {
            self.queues.remove(&session);
        }
    }

    /// A closeSession txn was applied: forget the session, close its
    /// connections (after the reply already queued).
    fn end_session(&mut self, session: SessionId) {
        self.tracker.remove(session);
        self.last_touch.remove(&session);
        self.closing.remove(&session);
        self.session_timeouts.remove(&session);
        self.queues.remove(&session);
        if let Some(conn_id) = self.session_conn.remove(&session) {
            if let Some(conn) = self.conns.get_mut(&conn_id) {
                conn.session = None;
                conn.close();
            }
        }
    }

    fn deliver(&mut self, events: Vec<(ConnId, WatcherEvent)>) {
        for (conn_id, event) in events {
            if let Some(conn) = self.conns.get_mut(&conn_id) {
                let frame = frames::notification(&event);
                self.shared
                    .metrics
                    .add(crate::metrics::Counter::ResponseBytes, frame.len() as u64);
                conn.send(frame);
                self.stats.sent += 1;
            }
        }
    }

    fn reply(
        &mut self,
        conn_id: ConnId,
        xid: i32,
        zxid: i64,
        result: &Result<Response, ErrorCode>,
        arrived: Instant,
        is_write: bool,
    ) {
        let frame = self.bounded_reply(conn_id, xid, zxid, result);
        self.record_reply(is_write, arrived, frame.len());
        let latency = arrived.elapsed().as_millis() as u64;
        self.stats.latency.record(latency);
        self.stats.response(frame.len());
        if let Some(conn) = self.conns.get_mut(&conn_id) {
            conn.last_zxid = zxid;
            conn.last_latency = latency;
            conn.latency.record(latency);
            conn.last_response_ms = self.clock.mono_ms();
            conn.send_reply(frame);
        }
    }

    fn close_all_connections(&mut self) {
        for conn in self.conns.values() {
            conn.close();
        }
    }

    // ---- timers ------------------------------------------------------------

    fn expire_sessions(&mut self) {
        if self.quorum.as_ref().is_some_and(|q| !q.is_serving_leader()) {
            return;
        }
        let now = self.clock.mono_ms();
        for session in self.tracker.expired(now) {
            if !self.closing.insert(session) {
                continue;
            }
            tracing::info!("expiring session 0x{session:x}");
            self.metrics()
                .add(crate::metrics::Counter::StaleSessionsExpired, 1);
            let zxid = self.next_zxid();
            let started = Instant::now();
            let entry = self
                .db
                .prepare_close_session(session, zxid, Clock::wall_ms());
            self.metrics().observe_ms(
                crate::metrics::Summary::CloseSessionPrepTime,
                started.elapsed(),
            );
            self.log_txn(entry, Origin::Internal);
        }
    }

    /// Deletes empty containers and expired TTL nodes the database reports.
    fn cleanup_containers(&mut self) {
        if self.quorum.as_ref().is_some_and(|q| !q.is_serving_leader()) {
            return; // the leader's ContainerManager does this
        }
        let now = Clock::wall_ms();
        // Apache's ContainerManager: a deleteContainer request as session 0
        // for empty containers and expired TTL nodes alike.
        let ctx = RequestContext::default();
        for path in self.db.expired_containers_and_ttls(now) {
            let zxid = self.next_zxid();
            let request = Request::DeleteContainer(DeleteContainerRequest { path });
            let entry = self.db.prepare(&ctx, &request, zxid, now);
            self.log_txn(entry, Origin::Internal);
        }
    }

    fn start_purge(&self) {
        let snap_dir = self.shared.config.data_dir.clone();
        let log_dir = self.shared.config.log_dir().to_path_buf();
        let retain = self.shared.config.autopurge_snap_retain_count;
        tokio::task::spawn_blocking(move || {
            match crate::storage::purge(&snap_dir, &log_dir, retain) {
                Ok(report) => tracing::info!(?report, "autopurge done"),
                Err(e) => tracing::warn!("autopurge failed: {e}"),
            }
        });
    }

    /// Clean stop: wait (bounded) for what is logged to become durable and
    /// applied, answer it, write a final snapshot, close the log.
    async fn shutdown(&mut self) {
        self.wait_disk_job().await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        if self.quorum.is_some() {
            // Proposals commit on a quorum, not on our fsync alone.
            self.in_flight.clear();
        }
        while !self.in_flight.is_empty() {
            match tokio::time::timeout_at(deadline, self.durable.changed()).await {
                Ok(Ok(())) => self.apply_durable(),
                _ => break,
            }
        }
        self.stop_snapshots().await;
        if self.in_flight.is_empty() && !self.shared.health.is_failed() {
            self.final_snapshot().await;
        }
        self.close_all_connections();
        self.close_log().await;
    }

    /// Stops the log writer thread (it writes what is queued first).
    async fn close_log(&mut self) {
        if let Some(log) = self.log.take() {
            match tokio::task::spawn_blocking(move || log.close()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!("closing the txn log failed: {e}"),
                Err(e) => tracing::warn!("closing the txn log panicked: {e}"),
            }
        }
    }
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("last_zxid", &self.last_zxid)
            .field("in_flight", &self.in_flight.len())
            .field("conns", &self.conns.len())
            .finish()
    }
}

/// Sum of the sizes of the files in a directory (conf's dataDirSize).
fn dir_size(dir: &PathBuf) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lop_codes_follow_ops_md() {
        assert_eq!(last_op_code(OpCode::Create2), "CREA");
        assert_eq!(last_op_code(OpCode::GetAllChildrenNumber), "GETACN");
        assert_eq!(last_op_code(OpCode::WhoAmI), "HOMI");
    }
}
