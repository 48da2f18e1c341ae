//! The pipeline in ensemble mode: the quorum core's outputs executed in the
//! single writer task, and client requests routed through the leader.
//!
//! * The leader prepares writes under the zxid the core will give them
//!   (`Peer::next_proposal_zxid`), proposes them (`ClientWrite`) and
//!   answers on `Apply`, exactly as standalone answers on fsync.
//! * Learners forward writes, createSession and sync to the leader and
//!   answer when the txn is applied here (matched by session and xid, or
//!   session id for createSession); reads are served locally; session
//!   touches go to the leader, which alone expires sessions.
//! * Whenever the member stops serving (election, resync) every client
//!   connection is closed, as Apache does: clients reconnect elsewhere and
//!   nothing half-done is left waiting.
//! * A peer link that goes down is the core's `PeerDisconnected`: a
//!   learner that loses its leader starts an election at once, so its
//!   clients are closed once, not again and again while it waits for
//!   syncLimit to expire.

use std::time::Instant;

use bytes::BytesMut;
use zk_proto::{ErrorCode, Jute, OpCode, Reader, RequestFrame, Response, SyncResponse, TxnEntry};

use super::{Clock, InFlight, Origin, Pipeline, Queued, SyncWait};
use crate::admin::Metric;
use crate::db::{ConnId, Database, RequestContext, SessionId};
use crate::ensemble::codec::PeerMsg;
use crate::ensemble::disk;
use crate::ensemble::driver::{Creating, Driver, Forwarded, PendingSync};
use crate::ensemble::transport::{PeerEvent, Received};
use crate::quorum::{Input, LogEntry, Output, ServerId};
use crate::storage::TxnLog;

/// The next message from a peer; pending forever in standalone mode.
pub(super) async fn next_peer_msg(quorum: &mut Option<Box<Driver>>) -> Option<Received> {
    match quorum {
        Some(q) => q.inbound.recv().await,
        None => std::future::pending().await,
    }
}

impl Pipeline {
    /// True for a follower or observer (requests go to the leader).
    pub(super) fn is_learner(&self) -> bool {
        self.quorum.as_ref().is_some_and(|q| q.leader().is_some())
    }

    fn send_to_leader(&self, msg: PeerMsg) -> bool {
        let Some(q) = self.quorum.as_ref() else {
            return false;
        };
        let Some(leader) = q.leader() else {
            return false;
        };
        q.links.send(leader, &msg);
        true
    }

    /// `Mode:` of srvr/stat and `zk_server_state` of mntr.
    pub(super) fn mode(&self) -> &'static str {
        match &self.quorum {
            None => "standalone",
            Some(q) => q.status().mode(),
        }
    }

    /// The ensemble's mntr lines, with Apache 3.8's names (a running 3.8.0
    /// ensemble prints these): every member its `peer_state` and the
    /// `quorum_size` (voting members); the leader also `learners`
    /// connected, `synced_followers` and `pending_syncs`. (Apache's
    /// leader_uptime, synced_observers and *_proposal_size are not yet
    /// tracked by the core.)
    pub(super) fn quorum_metrics(&self) -> Vec<(&'static str, Metric)> {
        let Some(q) = self.quorum.as_ref() else {
            return Vec::new();
        };
        let voters = self
            .shared
            .config
            .peers
            .iter()
            .filter(|p| p.role == crate::config::PeerRole::Participant)
            .count();
        // Apache: "<state>" while looking, else "<state> - <zab phase>";
        // a member answering mntr serves, so its phase is broadcast.
        let peer_state = match (q.status().mode(), q.serving) {
            ("leader", true) => "leading - broadcast",
            ("follower", true) => "following - broadcast",
            ("observer", true) => "observing - broadcast",
            ("leader", false) => "leading - synchronization",
            ("follower", false) => "following - synchronization",
            ("observer", false) => "observing - synchronization",
            _ => "looking",
        };
        let mut metrics = vec![
            ("peer_state", Metric::Text(peer_state.to_string())),
            ("quorum_size", Metric::Int(voters as i64)),
        ];
        if !q.is_serving_leader() {
            return metrics;
        }
        let (learners, synced) = q.peer.learner_counts().unwrap_or((0, 0));
        let pending_syncs = self
            .queues
            .values()
            .flat_map(|queue| queue.iter())
            .filter(|item| matches!(item, Queued::Sync(_)))
            .count();
        metrics.extend([
            ("learners", Metric::Int(learners as i64)),
            ("synced_followers", Metric::Int(synced as i64)),
            ("pending_syncs", Metric::Int(pending_syncs as i64)),
        ]);
        metrics
    }

    // ---- inputs to the core ----------------------------------------------

    fn step(&mut self, input: Input) {
        let Some(q) = self.quorum.as_mut() else {
            return;
        };
        if let Err(e) = q.peer.step(input) {
            tracing::debug!("quorum core refused an input: {e}");
        }
        self.run_quorum_outputs();
    }

    pub(super) fn quorum_durable(&mut self) {
        let zxid = *self.durable.borrow_and_update();
        self.step(Input::LogDurable { zxid });
    }

    pub(super) fn quorum_tick(&mut self) {
        let now_ms = self.clock.mono_ms();
        self.step(Input::Tick { now_ms });
        let Some(q) = self.quorum.as_mut() else {
            return;
        };
        if q.is_serving_learner() && !q.touched.is_empty() {
            let touched: Vec<(SessionId, i32)> = q.touched.drain().collect();
            self.send_to_leader(PeerMsg::Touch(touched));
        }
        self.fail_lost_requests();
    }

    /// Learner: a client whose forwarded request the leader link may have
    /// lost would wait forever; close its connection, as Apache closes its
    /// clients when a learner loses its leader. The client sees
    /// ConnectionLoss, reconnects and finds out what happened.
    fn fail_lost_requests(&mut self) {
        let Some(q) = self.quorum.as_mut() else {
            return;
        };
        let conns = q.take_lost_requests();
        if conns.is_empty() {
            return;
        }
        tracing::warn!(
            clients = conns.len(),
            "the link to the leader lost forwarded requests: closing their connections"
        );
        for conn_id in conns {
            if let Some(c) = self.conns.get(&conn_id) {
                c.close();
            }
            self.drop_session_queue_of(conn_id);
        }
    }

    /// Forgets what a connection's session had queued behind a lost request
    /// (its client is gone; a new connection starts a fresh queue).
    fn drop_session_queue_of(&mut self, conn_id: ConnId) {
        let session = self.conns.get(&conn_id).and_then(|c| c.session);
        if let Some(session) = session {
            self.queues.remove(&session);
        }
    }

    /// Something the peer links report about `from`.
    pub(super) fn on_peer_msg(&mut self, from: ServerId, event: PeerEvent) {
        match event {
            PeerEvent::Message(msg) => self.on_peer_message(from, msg),
            PeerEvent::LinkDown => self.on_link_down(from),
        }
    }

    /// The quorum link to `peer` is down (or could not be set up).
    fn on_link_down(&mut self, peer: ServerId) {
        let Some(q) = self.quorum.as_ref() else {
            return;
        };
        let leader_link = q.leader() == Some(peer);
        tracing::debug!(peer, "peer link down");
        self.step(Input::PeerDisconnected { peer });
        if leader_link {
            tracing::info!(peer, "the link to the leader closed: looking for a leader");
        }
        // What we forwarded over that link may be lost: answer its clients
        // now (if we still learn from someone), not on the next tick.
        self.fail_lost_requests();
    }

    fn on_peer_message(&mut self, from: ServerId, msg: PeerMsg) {
        let leader = self.quorum.as_ref().is_some_and(|q| q.is_serving_leader());
        match msg {
            PeerMsg::Core(msg) => self.step(Input::Message { from, msg }),
            PeerMsg::Forward {
                session,
                auth,
                frame,
            } if leader => {
                if !frame.request.op_code().is_write() {
                    return;
                }
                self.touch_forwarded(session);
                let ctx = RequestContext {
                    session_id: session,
                    conn_id: 0,
                    xid: frame.xid,
                    auth,
                };
                let zxid = self.next_zxid();
                let entry = self
                    .db
                    .prepare(&ctx, &frame.request, zxid, Clock::wall_ms());
                self.log_txn(entry, Origin::Internal);
            }
            PeerMsg::CreateSession { session, timeout } if leader => {
                if self.db.session_exists(session) {
                    return; // a resend; the first one is in the log
                }
                let zxid = self.next_zxid();
                let entry =
                    self.db
                        .prepare_create_session(session, timeout, zxid, Clock::wall_ms());
                self.log_txn(entry, Origin::Internal);
            }
            PeerMsg::Touch(sessions) if leader => {
                for (session, timeout) in sessions {
                    self.touch(session, timeout);
                }
            }
            PeerMsg::SyncRequest { token } if leader => {
                if let Some(q) = self.quorum.as_ref() {
                    let zxid = q.peer.last_logged_zxid();
                    q.links.send(from, &PeerMsg::SyncReply { token, zxid });
                }
            }
            PeerMsg::SyncReply { token, zxid } => self.on_sync_reply(token, zxid),
            // Leader traffic reaching a member that does not lead (any more).
            PeerMsg::Forward { .. }
            | PeerMsg::CreateSession { .. }
            | PeerMsg::Touch(_)
            | PeerMsg::SyncRequest { .. } => {}
        }
    }

    fn touch_forwarded(&mut self, session: SessionId) {
        if let Some(timeout) = self.session_timeouts.get(&session).copied() {
            self.touch(session, timeout);
        }
    }

    // ---- the core's outputs ----------------------------------------------

    /// Executes everything the core asked for, in order, until it asks for
    /// nothing more; then publishes whether we serve.
    pub(super) fn run_quorum_outputs(&mut self) {
        loop {
            let outputs = match self.quorum.as_mut() {
                Some(q) => q.peer.take_outputs(),
                None => return,
            };
            if outputs.is_empty() {
                break;
            }
            for output in outputs {
                self.execute(output);
            }
        }
        self.update_serving();
    }

    fn execute(&mut self, output: Output) {
        match output {
            Output::Send { to, msg } => {
                if let Some(q) = self.quorum.as_ref() {
                    q.links.send(to, &PeerMsg::Core(msg));
                }
            }
            Output::Persist(entry) => {
                if let Some(log) = &self.log {
                    log.append(entry.zxid, entry.payload);
                }
            }
            Output::PersistEpoch { kind, epoch } => {
                if let Some(q) = self.quorum.as_ref() {
                    if let Err(e) = q.epochs.write(kind, epoch) {
                        tracing::error!(?kind, epoch, "writing the epoch file failed: {e}");
                    }
                }
            }
            Output::Truncate { to } => self.truncate_log(to),
            Output::SendSnapshot {
                to,
                session,
                zxid,
                commit_upto,
            } => self.send_snapshot(to, session, zxid, commit_upto),
            Output::InstallSnapshot { zxid, state, log } => {
                self.install_snapshot(zxid, state, &log)
            }
            Output::Apply(entry) => self.apply_committed(entry),
            Output::RoleChanged { role } => tracing::info!(?role, "quorum role changed"),
            Output::LeaderEstablished { epoch } => tracing::info!(epoch, "leading"),
            Output::Proposed { zxid } => {
                if self.in_flight.back().map(|f| f.entry.header.zxid) != Some(zxid) {
                    tracing::error!("proposal zxid 0x{zxid:x} differs from the prepared one");
                }
            }
        }
    }

    /// A committed txn. The database may hold it already: after a restart
    /// the core applies from the first logged txn, while recovery replayed
    /// the whole log.
    fn apply_committed(&mut self, entry: LogEntry) {
        if entry.zxid <= self.db.last_processed_zxid() {
            return;
        }
        let done = match self.in_flight.front() {
            Some(f) if f.entry.header.zxid == entry.zxid => self.in_flight.pop_front(),
            _ => None,
        };
        let done = match done {
            Some(done) => done,
            None => match TxnEntry::from_bytes(entry.payload) {
                Ok(txn) => {
                    let origin = self.origin_of(&txn);
                    InFlight { entry: txn, origin }
                }
                Err(e) => {
                    tracing::error!("undecodable committed txn 0x{:x}: {e}", entry.zxid);
                    return;
                }
            },
        };
        self.apply_one(done);
        self.release_syncs();
    }

    /// Who waits for a txn applied on a learner.
    fn origin_of(&mut self, txn: &TxnEntry) -> Origin {
        let Some(q) = self.quorum.as_mut() else {
            return Origin::Internal;
        };
        let session = txn.header.client_id;
        if txn.header.txn_type == OpCode::CreateSession.code() {
            if let Some(Creating {
                conn_id, read_only, ..
            }) = q.creating.remove(&session)
            {
                return Origin::CreateSession { conn_id, read_only };
            }
        }
        match q.forwarded.remove(&(session, txn.header.cxid)) {
            Some(Forwarded {
                conn_id, arrived, ..
            }) => Origin::Client {
                conn_id,
                session,
                arrived,
            },
            None => Origin::Internal,
        }
    }

    /// Leader: proposes a prepared txn; it is answered on `Apply`.
    pub(super) fn propose(&mut self, entry: TxnEntry, origin: Origin) {
        let payload = entry.to_bytes();
        let conn = match &origin {
            Origin::Client { conn_id, .. } | Origin::CreateSession { conn_id, .. } => {
                Some(*conn_id)
            }
            Origin::Internal => None,
        };
        self.in_flight.push_back(InFlight { entry, origin });
        let refused = match self.quorum.as_mut() {
            Some(q) => q.peer.step(Input::ClientWrite { payload }).err(),
            None => return,
        };
        if let Some(e) = refused {
            // Only a serving leader prepares, so this means leadership is
            // being lost right now: the client reconnects and retries.
            tracing::warn!("proposal refused: {e}");
            self.in_flight.pop_back();
            if let Some(c) = conn.and_then(|c| self.conns.get(&c)) {
                c.close();
            }
        }
        self.run_quorum_outputs();
    }

    /// TRUNC: cut the log, then rebuild the database from what is left.
    fn truncate_log(&mut self, to: i64) {
        tracing::info!("truncating the txn log to 0x{to:x}");
        self.reopen_log(|config, _| {
            disk::truncate(&config.data_dir, config.log_dir(), to).map_err(|e| e.to_string())
        });
        match crate::server::load_database(&self.shared.config) {
            Ok(db) => self.db = db,
            Err(e) => tracing::error!("reloading the database after TRUNC failed: {e}"),
        }
        self.last_zxid = self.db.last_processed_zxid();
    }

    /// Leader: SNAP carries our data tree. The single writer task applies
    /// in order, so the tree is exactly at the core's applied zxid here.
    fn send_snapshot(&mut self, to: ServerId, session: u64, zxid: i64, commit_upto: i64) {
        let at = self.db.last_processed_zxid();
        if at != zxid {
            // Sending it would hand the learner a state that does not match
            // the proposals that follow; it resyncs after its timeout.
            tracing::error!(
                "SNAP for server {to} skipped: the tree is at 0x{at:x}, the core expects 0x{zxid:x}"
            );
            return;
        }
        let mut body = BytesMut::new();
        self.db.serialize_snapshot(&mut body);
        tracing::info!(to, bytes = body.len(), "sending SNAP at 0x{zxid:x}");
        let msg = crate::quorum::Message::ToLearner {
            session,
            msg: crate::quorum::LeaderMsg::Snap {
                zxid,
                state: body.freeze(),
                commit_upto,
            },
        };
        if let Some(q) = self.quorum.as_ref() {
            q.links.send(to, &PeerMsg::Core(msg));
        }
    }

    /// SNAP: the leader's data tree as of `zxid` and its txns after it
    /// replace ours and every file.
    fn install_snapshot(&mut self, zxid: i64, state: bytes::Bytes, log: &[LogEntry]) {
        tracing::info!(
            bytes = state.len(),
            txns = log.len(),
            "installing the leader's snapshot at 0x{zxid:x}"
        );
        let body = state.clone();
        self.reopen_log(move |config, opts| {
            disk::install(&config.data_dir, config.log_dir(), zxid, &body, log, opts)
                .map_err(|e| e.to_string())
        });
        let mut r = Reader::new(state);
        match Database::deserialize_snapshot(self.db.config().clone(), &mut r, zxid) {
            Ok(db) => self.db = db,
            Err(e) => {
                // Only a leader bug gets here (its own serializer wrote the
                // bytes and TCP kept them). The files hold the bytes as
                // received, so a restart fails loudly at recovery instead of
                // serving a wrong tree; until then we hold an empty one.
                tracing::error!("the leader's snapshot does not decode: {e}");
                self.db = Database::new(self.db.config().clone());
            }
        }
        self.last_zxid = self.db.last_processed_zxid();
    }

    /// Closes the log (everything queued becomes durable), runs `change` on
    /// the files, and opens the log again. Both outputs must be durable
    /// before the core's next output runs, hence the blocking close.
    fn reopen_log(
        &mut self,
        change: impl FnOnce(
            &crate::config::ServerConfig,
            crate::storage::LogOptions,
        ) -> Result<(), String>,
    ) {
        let Some(opts) = self.quorum.as_ref().map(|q| q.log_opts) else {
            return;
        };
        if let Some(log) = self.log.take() {
            if let Err(e) = log.close() {
                tracing::error!("closing the txn log failed: {e}");
            }
        }
        self.in_flight.clear();
        if let Err(e) = change(&self.shared.config, opts) {
            tracing::error!("changing the txn log failed: {e}");
        }
        match TxnLog::open(self.shared.config.log_dir(), opts) {
            Ok(log) => {
                self.durable = log.durable();
                self.log_failure = log.failure();
                self.log = Some(log);
            }
            Err(e) => tracing::error!("reopening the txn log failed: {e}"),
        }
    }

    /// Starts or stops serving clients as the core's role allows.
    fn update_serving(&mut self) {
        let Some(q) = self.quorum.as_mut() else {
            return;
        };
        let serving = q.peer.is_serving();
        let was = q.serving;
        q.serving = serving;
        q.publish_status();
        if serving == was {
            return;
        }
        if serving {
            tracing::info!(role = ?q.peer.role(), "serving clients");
            if q.is_serving_leader() {
                self.start_session_ownership();
            }
            return;
        }
        tracing::info!(role = ?q.peer.role(), "not serving: closing client connections");
        q.forget_requests();
        self.close_all_connections();
        self.queues.clear();
        self.closing.clear();
        if !self.in_flight.is_empty() {
            self.in_flight.clear();
            self.forget_prepared();
        }
    }

    /// A new leader owns expiry: every session gets a full timeout from now.
    fn start_session_ownership(&mut self) {
        let now = self.clock.mono_ms();
        let sessions: Vec<(SessionId, i32)> = self.db.sessions().collect();
        for (session, timeout) in sessions {
            self.tracker.add(session, timeout, now);
            self.last_touch.insert(session, now);
            self.session_timeouts.insert(session, timeout);
        }
    }

    /// Drops the prepare-time view of proposals that were never applied
    /// (the database keeps it for later prepares): a copy of the applied
    /// tree through its snapshot form has none of it.
    fn forget_prepared(&mut self) {
        let mut body = BytesMut::new();
        self.db.serialize_snapshot(&mut body);
        let zxid = self.db.last_processed_zxid();
        let mut r = Reader::new(body.freeze());
        match Database::deserialize_snapshot(self.db.config().clone(), &mut r, zxid) {
            Ok(db) => self.db = db,
            Err(e) => tracing::error!("resetting the database failed: {e}"),
        }
    }

    // ---- learners: forwarding ---------------------------------------------

    /// Learner: asks the leader to create the session. False when we are
    /// not a learner (the caller creates it itself).
    pub(super) fn forward_create_session(
        &mut self,
        conn_id: ConnId,
        session: SessionId,
        timeout: i32,
        read_only: Option<bool>,
    ) -> bool {
        if !self.is_learner() {
            return false;
        }
        if let Some(q) = self.quorum.as_mut() {
            let losses = q.leader_link_losses();
            q.creating.insert(
                session,
                Creating {
                    conn_id,
                    read_only,
                    losses,
                },
            );
        }
        self.send_to_leader(PeerMsg::CreateSession { session, timeout });
        true
    }

    /// Learner: a write goes to the leader; its reply waits for the txn.
    pub(super) fn forward_write(
        &mut self,
        conn_id: ConnId,
        session: SessionId,
        frame: RequestFrame,
        arrived: Instant,
    ) {
        let auth = self
            .conns
            .get(&conn_id)
            .map(|c| c.auth.clone())
            .unwrap_or_default();
        if let Some(q) = self.quorum.as_mut() {
            let losses = q.leader_link_losses();
            q.forwarded.insert(
                (session, frame.xid),
                Forwarded {
                    conn_id,
                    arrived,
                    losses,
                },
            );
        }
        self.queues
            .entry(session)
            .or_default()
            .push_back(Queued::Forwarded(frame.xid));
        self.send_to_leader(PeerMsg::Forward {
            session,
            auth,
            frame,
        });
    }

    // ---- sync ------------------------------------------------------------

    /// `sync`: answered once this member applied everything the leader had
    /// proposed when it saw the sync (SEMANTICS.md: sync flushes the
    /// channel between the leader and this server).
    pub(super) fn on_quorum_sync(
        &mut self,
        conn_id: ConnId,
        session: SessionId,
        xid: i32,
        path: String,
        arrived: Instant,
    ) {
        let Some(q) = self.quorum.as_mut() else {
            return;
        };
        let token = q.next_token();
        let target = if q.leader().is_some() {
            let losses = q.leader_link_losses();
            q.syncs.insert(
                token,
                PendingSync {
                    session,
                    conn_id,
                    losses,
                },
            );
            None
        } else {
            Some(q.peer.last_logged_zxid())
        };
        self.queues
            .entry(session)
            .or_default()
            .push_back(Queued::Sync(SyncWait {
                token,
                conn_id,
                xid,
                arrived,
                path,
                target,
            }));
        if target.is_none() {
            self.send_to_leader(PeerMsg::SyncRequest { token });
        }
        self.drain_queue(session);
    }

    fn on_sync_reply(&mut self, token: u64, zxid: i64) {
        let Some(PendingSync { session, .. }) =
            self.quorum.as_mut().and_then(|q| q.syncs.remove(&token))
        else {
            return;
        };
        if let Some(queue) = self.queues.get_mut(&session) {
            for item in queue.iter_mut() {
                if let Queued::Sync(w) = item {
                    if w.token == token {
                        w.target = Some(zxid);
                    }
                }
            }
        }
        self.drain_queue(session);
    }

    /// Serves the syncs that waited for the txns just applied.
    fn release_syncs(&mut self) {
        let applied = self.db.last_processed_zxid();
        let ready: Vec<SessionId> = self
            .queues
            .iter()
            .filter(|(_, q)| {
                matches!(q.front(), Some(Queued::Sync(w)) if w.target.is_some_and(|t| t <= applied))
            })
            .map(|(s, _)| *s)
            .collect();
        for session in ready {
            self.drain_queue(session);
        }
    }

    pub(super) fn finish_sync(&mut self, w: SyncWait) {
        let zxid = self.db.last_processed_zxid();
        let result: Result<Response, ErrorCode> = Ok(Response::Sync(SyncResponse { path: w.path }));
        self.reply(w.conn_id, w.xid, zxid, &result, w.arrived, false);
    }
}
