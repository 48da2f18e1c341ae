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

use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::BytesMut;
use futures::future::BoxFuture;
use tokio::sync::{watch, Notify};
use zk_proto::{ErrorCode, Jute, OpCode, Reader, RequestFrame, Response, SyncResponse, TxnEntry};

use super::{Clock, InFlight, Origin, Pipeline, Queued, SyncWait};
use crate::admin::Metric;
use crate::db::{ConnId, Database, RequestContext, SessionId};
use crate::ensemble::codec::PeerMsg;
use crate::ensemble::disk;
use crate::ensemble::driver::{Creating, DiskJob, Driver, Forwarded, JobDone, PendingSync};
use crate::ensemble::epochs::EpochFiles;
use crate::ensemble::snapsync::{OutgoingSnap, StagedSnapshot, Step, LINK_BUDGET, SLICE};
use crate::ensemble::transport::{PeerEvent, Received};
use crate::fail_stop::FailStop;
use crate::quorum::{Input, LeaderMsg, LogEntry, Message, Output, Role, ServerId};
use crate::storage::TxnLog;

/// A DIFF from the log files the core asked for (`Output::SendLoggedDiff`).
#[derive(Debug, Clone, Copy)]
struct LoggedDiff {
    session: u64,
    from: i64,
    upto: i64,
    commit_upto: i64,
    snap_zxid: i64,
}

/// Ends the stream running to `to`, if any (a new connection attempt of
/// the same learner): the learner's reader drops an unfinished SNAP on the
/// abandon marker; what the old stream held back follows, for the old
/// attempt (the learner ignores it).
fn abandon_stream(q: &mut Driver, to: ServerId) {
    if let Some(old) = q.snap_out.remove(&to) {
        q.links.send(to, &PeerMsg::SnapEnd { complete: false });
        for msg in old.into_backlog() {
            q.links.send(to, &msg);
        }
    }
}

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
        if self.shared.health.is_failed() {
            return; // fail-stopped: the core hears nothing more
        }
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
        if let Some(q) = self.quorum.as_mut() {
            // About what a snapshot of the tree takes: paths and data, plus
            // each node's stat, ACL reference and length prefixes.
            let tree = self.db.tree();
            let size = tree.approximate_data_size().max(0) as u64 + tree.len() as u64 * 90;
            q.peer.set_state_size(size);
        }
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
            PeerEvent::Snapshot { msg, staged } => self.on_snapshot_received(from, msg, staged),
            PeerEvent::LinkDown => self.on_link_down(from),
        }
    }

    /// Learner: a SNAP whose snapshot is staged. It is kept for the
    /// install at NEWLEADER if it belongs to the current connection attempt
    /// (the core ignores it otherwise, and dropping it removes the file).
    fn on_snapshot_received(&mut self, from: ServerId, msg: Message, staged: Box<StagedSnapshot>) {
        let Some(q) = self.quorum.as_mut() else {
            return;
        };
        if q.peer.learner_session() == Some(staged.session) {
            q.staged = Some(staged);
        }
        self.step(Input::Message { from, msg });
    }

    /// The quorum link to `peer` is down (or could not be set up).
    fn on_link_down(&mut self, peer: ServerId) {
        let Some(q) = self.quorum.as_ref() else {
            return;
        };
        let leader_link = q.leader() == Some(peer);
        tracing::debug!(peer, "peer link down");
        if let Some(q) = self.quorum.as_mut() {
            // Part of the stream is lost with the link: the learner syncs
            // again over a new connection.
            if q.snap_out.remove(&peer).is_some() {
                tracing::info!(peer, "SNAP stream abandoned: the link went down");
            }
        }
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
                if let Some(q) = self.quorum.as_mut() {
                    let zxid = q.peer.last_logged_zxid();
                    q.send(from, PeerMsg::SyncReply { token, zxid });
                }
            }
            PeerMsg::SyncReply { token, zxid } => self.on_sync_reply(token, zxid),
            // Only inside a SNAP stream, which the link reader handles.
            PeerMsg::SnapChunk(_) | PeerMsg::SnapEnd { .. } => {}
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
    /// nothing more or a disk job must finish first (the rest waits in
    /// `deferred`); then publishes whether we serve.
    ///
    /// A durability error stops the member (fail_stop.rs) at the output
    /// that failed: the ones after it (an ACKEPOCH after its epoch file, an
    /// ACK after its txn) are dropped, never sent.
    pub(super) fn run_quorum_outputs(&mut self) {
        loop {
            if self.shared.health.is_failed() {
                return;
            }
            let Some(q) = self.quorum.as_mut() else {
                return;
            };
            let fresh = q.peer.take_outputs();
            q.deferred.extend(fresh);
            if q.disk_job.is_some() {
                break;
            }
            let Some(next) = q.deferred.pop_front() else {
                break;
            };
            if let Err(why) = self.execute(next) {
                return self.fail(why);
            }
        }
        if let Err(why) = self.update_serving() {
            self.fail(why);
        }
    }

    /// Resolves when the running disk job is done; never without one.
    pub(super) fn disk_job_done(&self) -> BoxFuture<'static, ()> {
        match self.quorum.as_ref().and_then(|q| q.disk_job.as_ref()) {
            Some(job) => {
                let (done, result) = (Arc::clone(&job.done), Arc::clone(&job.result));
                Box::pin(async move {
                    loop {
                        let notified = done.notified();
                        if result.lock().is_ok_and(|r| r.is_some()) {
                            return;
                        }
                        notified.await;
                    }
                })
            }
            None => Box::pin(std::future::pending()),
        }
    }

    /// Takes the finished disk job's log and database, then runs the
    /// outputs that waited for it.
    pub(super) fn finish_disk_job(&mut self) {
        let Some(q) = self.quorum.as_mut() else {
            return;
        };
        let finished = q
            .disk_job
            .as_ref()
            .is_some_and(|j| j.result.lock().is_ok_and(|r| r.is_some()));
        if !finished {
            return;
        }
        let Some(mut job) = q.disk_job.take() else {
            return;
        };
        let result = job.result.lock().ok().and_then(|mut r| r.take());
        match result {
            Some(Ok(JobDone { log, db })) => {
                self.durable = log.durable();
                self.log_failure = log.failure();
                self.log = Some(log);
                if let Some(db) = db {
                    self.db = db;
                }
                if let Some(mut staged) = job.staged.take() {
                    let empty = Database::new(self.db.config().clone());
                    self.db = std::mem::replace(&mut staged.db, empty);
                }
                tracing::info!(
                    what = job.what,
                    zxid = format_args!("0x{:x}", self.db.last_processed_zxid()),
                    "files changed"
                );
            }
            // The files are in a state we cannot vouch for: stop.
            Some(Err(why)) => return self.fail(why),
            None => {
                return self.fail(FailStop::ReopenLog(format!(
                    "{}: the disk job ended without a result",
                    job.what
                )))
            }
        }
        self.last_zxid = self.db.last_processed_zxid();
        self.run_quorum_outputs();
    }

    /// Kill / shutdown: lets a running disk job finish, so nothing touches
    /// the files after the pipeline stops.
    pub(super) async fn wait_disk_job(&mut self) {
        let job = self.quorum.as_mut().and_then(|q| q.disk_job.take());
        if let Some(job) = job {
            let _ = job.handle.await;
            if let Some(Ok(done)) = job.result.lock().ok().and_then(|mut r| r.take()) {
                self.log = Some(done.log);
            }
        }
    }

    fn execute(&mut self, output: Output) -> Result<(), FailStop> {
        match output {
            Output::Send { to, msg } => {
                if let Some(q) = self.quorum.as_mut() {
                    q.send(to, PeerMsg::Core(msg));
                }
            }
            Output::Persist(entry) => match &self.log {
                Some(log) => log.append(entry.zxid, entry.payload),
                None => return Err(FailStop::LogGone { zxid: entry.zxid }),
            },
            Output::PersistEpoch { kind, epoch } => {
                if let Some(q) = self.quorum.as_ref() {
                    q.epochs
                        .write(kind, epoch)
                        .map_err(|e| FailStop::EpochFile {
                            file: EpochFiles::file_name(kind),
                            epoch,
                            error: e.to_string(),
                        })?;
                }
            }
            Output::Truncate { to } => self.truncate_log(to)?,
            Output::SendSnapshot {
                to,
                session,
                zxid,
                commit_upto,
            } => self.send_snapshot(to, session, zxid, commit_upto),
            Output::SendLoggedDiff {
                to,
                session,
                from,
                upto,
                commit_upto,
                snap_zxid,
            } => self.send_logged_diff(
                to,
                LoggedDiff {
                    session,
                    from,
                    upto,
                    commit_upto,
                    snap_zxid,
                },
            ),
            Output::InstallSnapshot { zxid, log } => self.install_snapshot(zxid, &log)?,
            Output::Apply(entry) => self.apply_committed(entry)?,
            Output::RoleChanged { role } => {
                tracing::info!(?role, "quorum role changed");
                if let Some(q) = self.quorum.as_mut() {
                    // Streams belong to leading, a staged SNAP to a sync
                    // that an election ends.
                    if role != Role::Leading {
                        q.snap_out.clear();
                    }
                    if role == Role::Looking {
                        q.staged = None;
                    }
                }
            }
            Output::LeaderEstablished { epoch } => tracing::info!(epoch, "leading"),
            Output::Proposed { zxid } => {
                if self.in_flight.back().map(|f| f.entry.header.zxid) != Some(zxid) {
                    tracing::error!("proposal zxid 0x{zxid:x} differs from the prepared one");
                }
            }
        }
        Ok(())
    }

    /// A committed txn. The database may hold it already: after a restart
    /// the core applies from the first logged txn, while recovery replayed
    /// the whole log.
    fn apply_committed(&mut self, entry: LogEntry) -> Result<(), FailStop> {
        if entry.zxid <= self.db.last_processed_zxid() {
            return Ok(());
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
                    return Err(FailStop::UndecodableTxn {
                        zxid: entry.zxid,
                        error: e.to_string(),
                    })
                }
            },
        };
        self.apply_one(done);
        self.release_syncs();
        Ok(())
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
    fn truncate_log(&mut self, to: i64) -> Result<(), FailStop> {
        tracing::info!("truncating the txn log to 0x{to:x}");
        self.start_disk_job("TRUNC", None, move |config, _| {
            disk::truncate(&config.data_dir, config.log_dir(), to).map_err(|e| {
                FailStop::Truncate {
                    zxid: to,
                    error: e.to_string(),
                }
            })?;
            crate::server::load_database(config)
                .map(Some)
                .map_err(|e| FailStop::Reload(e.to_string()))
        });
        Ok(())
    }

    /// Leader: SNAP streams our data tree. The single writer task applies
    /// in order, so the tree is exactly at the core's applied zxid here,
    /// which is where the learner's replay starts; the walk then goes on in
    /// slices between other work ([`Pipeline::pump_snapshots`]).
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
        let Some(q) = self.quorum.as_mut() else {
            return;
        };
        abandon_stream(q, to);
        let msg = Message::ToLearner {
            session,
            msg: LeaderMsg::Snap { zxid, commit_upto },
        };
        q.links.send(to, &PeerMsg::Core(msg));
        tracing::info!(
            to,
            nodes = self.db.tree().len(),
            "streaming SNAP at 0x{zxid:x}"
        );
        q.snap_out
            .insert(to, OutgoingSnap::tree(to, session, &self.db));
        self.pump_snapshots();
    }

    /// Leader: DIFF with the txns in `(from, upto]` read from the log files
    /// on a blocking thread, or SNAP if the files cannot hold them (the
    /// first file the reader would open starts after the txn that follows
    /// `from`: purged).
    fn send_logged_diff(&mut self, to: ServerId, d: LoggedDiff) {
        let log_dir = self.shared.config.log_dir().to_path_buf();
        let first = crate::storage::TxnLogReader::first_file_zxid(&log_dir, d.from);
        let held = match first {
            Ok(Some(start)) => start <= d.from || crate::quorum::sync::follows(d.from, start),
            Ok(None) => false,
            Err(e) => {
                tracing::warn!("listing the txn logs failed: {e}");
                false
            }
        };
        if !held {
            tracing::info!(
                to,
                "the logs no longer reach back to 0x{:x}: SNAP instead",
                d.from
            );
            if let Some(q) = self.quorum.as_mut() {
                q.peer.raise_disk_floor(d.from);
            }
            self.send_snapshot(to, d.session, d.snap_zxid, d.commit_upto);
            return;
        }
        let Some(q) = self.quorum.as_mut() else {
            return;
        };
        abandon_stream(q, to);
        let msg = Message::ToLearner {
            session: d.session,
            msg: LeaderMsg::Diff {
                commit_upto: d.commit_upto,
            },
        };
        q.links.send(to, &PeerMsg::Core(msg));
        tracing::info!(
            to,
            "DIFF from the txn logs: 0x{:x} to 0x{:x}",
            d.from,
            d.upto
        );
        let out = OutgoingSnap::logged(to, d.session, log_dir, d.from, d.upto);
        q.snap_out.insert(to, out);
        self.pump_snapshots();
    }

    /// Resolves when a stream may go on (its link drained below the budget
    /// and, for a DIFF from the files, its reader has txns ready); never
    /// while none runs. Owns what it waits on, so the pipeline's select can
    /// hold it next to its other branches.
    pub(super) fn snapshots_ready(&mut self) -> BoxFuture<'static, ()> {
        let Some(q) = self.quorum.as_mut().filter(|q| !q.snap_out.is_empty()) else {
            return Box::pin(std::future::pending());
        };
        let mut waits: Vec<BoxFuture<'static, ()>> = Vec::new();
        for (id, out) in q.snap_out.iter_mut() {
            let load = q.links.load(*id);
            if let Some(load) = load.filter(|l| l.queued() >= LINK_BUDGET) {
                waits.push(Box::pin(async move { load.below(LINK_BUDGET).await }));
            } else if out.has_work() {
                return Box::pin(std::future::ready(()));
            } else if let Some(ready) = out.reader_ready() {
                waits.push(Box::pin(async move { ready.notified().await }));
            }
        }
        if waits.is_empty() {
            return Box::pin(std::future::ready(()));
        }
        Box::pin(async move {
            futures::future::select_all(waits).await;
        })
    }

    /// One slice of every stream whose link has room: pieces until the
    /// link holds [`LINK_BUDGET`] bytes, [`SLICE`] bytes were written or
    /// the log reader is behind, then back to clients. A finished stream is
    /// followed by its closing message and the messages held back
    /// meanwhile; a failed one (the log files did not hold the txns) makes
    /// the leader forget the learner, which syncs again (by SNAP: the
    /// failed range is no longer offered from the files).
    pub(super) fn pump_snapshots(&mut self) {
        let Some(q) = self.quorum.as_mut() else {
            return;
        };
        let ids: Vec<ServerId> = q.snap_out.keys().copied().collect();
        let mut failed = Vec::new();
        for id in ids {
            let load = q.links.load(id);
            let mut written = 0;
            while written < SLICE && load.as_ref().is_none_or(|l| l.queued() < LINK_BUDGET) {
                let Some(out) = q.snap_out.get_mut(&id) else {
                    break;
                };
                match out.step(&self.db) {
                    Step::Send(msg) => {
                        if let PeerMsg::SnapChunk(chunk) = &msg {
                            written += chunk.len();
                        } else {
                            written += 128;
                        }
                        q.links.send(id, &msg);
                    }
                    Step::Wait => break,
                    Step::Finished(closing) => {
                        if let Some(msg) = closing {
                            q.links.send(id, &msg);
                        }
                        if let Some(out) = q.snap_out.remove(&id) {
                            tracing::info!(to = id, "sync stream sent");
                            for msg in out.into_backlog() {
                                q.links.send(id, &msg);
                            }
                        }
                        break;
                    }
                    Step::Failed(why) => {
                        tracing::warn!(to = id, "DIFF from the txn logs failed: {why}");
                        q.snap_out.remove(&id);
                        failed.push(id);
                        break;
                    }
                }
            }
        }
        for peer in failed {
            if let Some(q) = self.quorum.as_mut() {
                let floor = q.peer.log_start();
                q.peer.raise_disk_floor(floor);
            }
            self.step(Input::PeerDisconnected { peer });
        }
    }

    /// SNAP: the leader's snapshot as of `zxid` (staged, and decoded piece
    /// by piece, as it arrived) and its txns after it replace ours and every
    /// file. No staged snapshot at that zxid (it did not decode, or never
    /// came whole) stops this member with its files as they were.
    fn install_snapshot(&mut self, zxid: i64, log: &[LogEntry]) -> Result<(), FailStop> {
        let staged = self.quorum.as_mut().and_then(|q| q.staged.take());
        let Some(mut staged) = staged.filter(|s| s.zxid == zxid) else {
            return Err(FailStop::UndecodableSnapshot {
                zxid,
                error: "no complete staged snapshot at that zxid".into(),
            });
        };
        tracing::info!(
            txns = log.len(),
            "installing the leader's snapshot at 0x{zxid:x}"
        );
        let Some(path) = staged.take_path() else {
            return Err(FailStop::InstallSnapshot {
                zxid,
                error: "the staged snapshot has no file".into(),
            });
        };
        let log = log.to_vec();
        self.start_disk_job("SNAP install", Some(staged), move |config, opts| {
            disk::install(&config.data_dir, config.log_dir(), zxid, &path, &log, opts)
                .map(|()| None)
                .map_err(|e| FailStop::InstallSnapshot {
                    zxid,
                    error: e.to_string(),
                })
        });
        Ok(())
    }

    /// On a blocking task: closes the log (everything queued becomes
    /// durable), runs `change` on the files (which may reload the
    /// database), and opens the log again. The core's later outputs wait
    /// for it ([`Pipeline::finish_disk_job`]); everything else (pings, the
    /// links, ticks) goes on meanwhile. Only a learner that is syncing gets
    /// here, so no client is being served. Any failure stops the member
    /// (fail_stop.rs): a log that did not close cleanly may have lost
    /// queued txns the core counts as logged, and files half changed are
    /// not a state to serve from.
    fn start_disk_job(
        &mut self,
        what: &'static str,
        staged: Option<Box<StagedSnapshot>>,
        change: impl FnOnce(
                &crate::config::ServerConfig,
                crate::storage::LogOptions,
            ) -> Result<Option<Database>, FailStop>
            + Send
            + 'static,
    ) {
        let Some(opts) = self.quorum.as_ref().map(|q| q.log_opts) else {
            return;
        };
        // A snapshot of the history about to change must not land after.
        self.abandon_snapshot();
        let old_log = self.log.take();
        self.in_flight.clear();
        let (durable_tx, durable_rx) = watch::channel(*self.durable.borrow());
        let (failure_tx, failure_rx) = watch::channel(None);
        self.durable = durable_rx;
        self.log_failure = failure_rx;
        let config = self.shared.config.clone();
        let result = Arc::new(Mutex::new(None));
        let done = Arc::new(Notify::new());
        let (result_in, done_in) = (Arc::clone(&result), Arc::clone(&done));
        let handle = tokio::task::spawn_blocking(move || {
            let outcome = (|| {
                if let Some(log) = old_log {
                    log.close().map_err(|e| FailStop::TxnLog(e.to_string()))?;
                }
                let db = change(&config, opts)?;
                let log = TxnLog::open(config.log_dir(), opts)
                    .map_err(|e| FailStop::ReopenLog(e.to_string()))?;
                Ok(JobDone { log, db })
            })();
            if let Ok(mut slot) = result_in.lock() {
                *slot = Some(outcome);
            }
            done_in.notify_one();
        });
        if let Some(q) = self.quorum.as_mut() {
            q.disk_job = Some(DiskJob {
                what,
                result,
                done,
                handle,
                staged,
                _durable: durable_tx,
                _failure: failure_tx,
            });
        }
    }

    /// Starts or stops serving clients as the core's role allows.
    fn update_serving(&mut self) -> Result<(), FailStop> {
        let Some(q) = self.quorum.as_mut() else {
            return Ok(());
        };
        // Not while outputs wait for the files: the tree may be behind.
        let serving = q.peer.is_serving() && q.disk_job.is_none() && q.deferred.is_empty();
        let was = q.serving;
        q.serving = serving;
        q.publish_status();
        if serving == was {
            return Ok(());
        }
        if serving {
            tracing::info!(role = ?q.peer.role(), "serving clients");
            if q.is_serving_leader() {
                self.start_session_ownership();
            }
            return Ok(());
        }
        tracing::info!(role = ?q.peer.role(), "not serving: closing client connections");
        q.forget_requests();
        self.close_all_connections();
        self.queues.clear();
        self.closing.clear();
        if !self.in_flight.is_empty() {
            self.in_flight.clear();
            self.forget_prepared()?;
        }
        Ok(())
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
    fn forget_prepared(&mut self) -> Result<(), FailStop> {
        let mut body = BytesMut::new();
        self.db.serialize_snapshot(&mut body);
        let zxid = self.db.last_processed_zxid();
        let mut r = Reader::new(body.freeze());
        self.db = Database::deserialize_snapshot(self.db.config().clone(), &mut r, zxid)
            .map_err(|e| FailStop::Reload(format!("resetting the database: {e}")))?;
        Ok(())
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
        path: Option<String>,
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
