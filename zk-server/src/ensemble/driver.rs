//! The ensemble state the pipeline task keeps next to its database: the
//! quorum core, the peer links, and the learner's bookkeeping of requests
//! it forwarded to the leader.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;

use super::codec::PeerMsg;
use super::epochs::EpochFiles;
use super::snapsync::{OutgoingSnap, StagedSnapshot};
use super::transport::{Links, Received};
use super::QuorumStatus;
use crate::db::{ConnId, Database, SessionId};
use crate::quorum::{Output, Peer, Role, ServerId};
use crate::storage::{LogFailure, LogOptions, TxnLog};

/// A client request a learner forwarded and answers once the txn it made
/// is applied here.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Forwarded {
    pub conn_id: ConnId,
    pub arrived: Instant,
    /// The leader link's loss count when it was sent ([`Links::losses`]).
    pub losses: u64,
}

/// A session a learner asked the leader to create.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Creating {
    pub conn_id: ConnId,
    pub read_only: Option<bool>,
    /// As for [`Forwarded::losses`].
    pub losses: u64,
}

/// A sync a learner asked the leader about.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PendingSync {
    pub session: SessionId,
    pub conn_id: ConnId,
    /// As for [`Forwarded::losses`].
    pub losses: u64,
}

/// The pipeline's ensemble-mode state.
#[derive(Debug)]
pub(crate) struct Driver {
    pub peer: Peer,
    pub links: Links,
    pub inbound: mpsc::UnboundedReceiver<Received>,
    pub epochs: EpochFiles,
    pub status: watch::Sender<QuorumStatus>,
    pub log_opts: LogOptions,
    /// Whether clients are served (see [`Peer::is_serving`]).
    pub serving: bool,
    /// Learner: forwarded writes by (session, xid).
    pub forwarded: HashMap<(SessionId, i32), Forwarded>,
    /// Learner: forwarded createSessions by session id.
    pub creating: HashMap<SessionId, Creating>,
    /// Learner: sessions touched since the last report to the leader.
    pub touched: HashMap<SessionId, i32>,
    /// Learner: outstanding syncs by token.
    pub syncs: HashMap<u64, PendingSync>,
    /// Leader: SNAPs being streamed, by learner.
    pub snap_out: BTreeMap<ServerId, OutgoingSnap>,
    /// Learner: the snapshot of the current SNAP sync, staged until the
    /// core installs it at NEWLEADER.
    pub staged: Option<Box<StagedSnapshot>>,
    /// Outputs of the core waiting for a [`DiskJob`] to finish (the core's
    /// outputs run strictly in order).
    pub deferred: VecDeque<Output>,
    /// A TRUNC or SNAP install running on a blocking task.
    pub disk_job: Option<DiskJob>,
    next_token: u64,
}

/// What a [`DiskJob`] hands back: the reopened log, and the database the
/// files now hold (a TRUNC reloads it; an install brings its own).
pub(crate) struct JobDone {
    pub log: TxnLog,
    pub db: Option<Database>,
}

/// A change to the files (TRUNC, SNAP install) that must be complete
/// before the core's next output runs, done on a blocking task so the
/// writer task keeps answering pings and reading the links meanwhile.
pub(crate) struct DiskJob {
    pub what: &'static str,
    /// Set once the task is done, with `done` notified.
    pub result: Arc<Mutex<Option<Result<JobDone, crate::fail_stop::FailStop>>>>,
    pub done: Arc<Notify>,
    pub handle: JoinHandle<()>,
    /// A staged SNAP whose database replaces ours when the files are done.
    pub staged: Option<Box<StagedSnapshot>>,
    /// Stand-ins for the closed log's notices, kept open so the pipeline
    /// does not take the closed log for a failed one.
    pub _durable: watch::Sender<i64>,
    pub _failure: watch::Sender<Option<LogFailure>>,
}

impl std::fmt::Debug for DiskJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskJob")
            .field("what", &self.what)
            .finish_non_exhaustive()
    }
}

impl Driver {
    pub fn new(
        peer: Peer,
        links: Links,
        inbound: mpsc::UnboundedReceiver<Received>,
        epochs: EpochFiles,
        status: watch::Sender<QuorumStatus>,
        log_opts: LogOptions,
    ) -> Self {
        Driver {
            peer,
            links,
            inbound,
            epochs,
            status,
            log_opts,
            serving: false,
            forwarded: HashMap::new(),
            creating: HashMap::new(),
            touched: HashMap::new(),
            syncs: HashMap::new(),
            snap_out: BTreeMap::new(),
            staged: None,
            deferred: VecDeque::new(),
            disk_job: None,
            next_token: 1,
        }
    }

    /// Sends `msg` to `to`, after the snapshot being streamed to it if
    /// there is one (the core's messages must follow the state they build
    /// on).
    pub fn send(&mut self, to: ServerId, msg: PeerMsg) {
        let election = matches!(msg, PeerMsg::Core(crate::quorum::Message::Notification(_)));
        match self.snap_out.get_mut(&to) {
            Some(out) if !election => out.defer(msg),
            _ => self.links.send(to, &msg),
        }
    }

    /// The leader we learn from, if we are a learner.
    pub fn leader(&self) -> Option<ServerId> {
        match self.peer.role() {
            Role::Following { leader } | Role::Observing { leader } => Some(leader),
            Role::Leading | Role::Looking => None,
        }
    }

    /// True when we lead and serve.
    pub fn is_serving_leader(&self) -> bool {
        self.serving && self.peer.role() == Role::Leading
    }

    /// True when we serve as a follower or observer.
    pub fn is_serving_learner(&self) -> bool {
        self.serving && self.leader().is_some()
    }

    pub fn next_token(&mut self) -> u64 {
        self.next_token += 1;
        self.next_token
    }

    /// The leader link's loss count now (0 when not a learner).
    pub fn leader_link_losses(&self) -> u64 {
        self.leader().map_or(0, |leader| self.links.losses(leader))
    }

    /// Learner: forgets the forwarded requests the leader link may have
    /// lost (sent before its loss count moved) and returns the connections
    /// waiting on them. A lost request cannot be resent blindly: the leader
    /// may have proposed it already, and a second copy would apply twice.
    pub fn take_lost_requests(&mut self) -> Vec<ConnId> {
        let now = self.leader_link_losses();
        let mut conns = Vec::new();
        self.forwarded.retain(|_, f| {
            let keep = f.losses >= now;
            if !keep {
                conns.push(f.conn_id);
            }
            keep
        });
        self.creating.retain(|_, c| {
            let keep = c.losses >= now;
            if !keep {
                conns.push(c.conn_id);
            }
            keep
        });
        self.syncs.retain(|_, s| {
            let keep = s.losses >= now;
            if !keep {
                conns.push(s.conn_id);
            }
            keep
        });
        conns.sort_unstable();
        conns.dedup();
        conns
    }

    /// Forgets every forwarded request (the clients are being disconnected).
    pub fn forget_requests(&mut self) {
        self.forwarded.clear();
        self.creating.clear();
        self.touched.clear();
        self.syncs.clear();
    }

    /// What this member reports about itself now.
    pub fn status(&self) -> QuorumStatus {
        let (learners, synced_learners) = self.peer.learner_counts().unwrap_or((0, 0));
        QuorumStatus {
            my_id: self.peer.id(),
            role: self.peer.role(),
            serving: self.serving,
            epoch: self.peer.epoch(),
            learners,
            synced_learners,
            syncs: self.peer.sync_counts(),
        }
    }

    /// Publishes the current role for srvr/mntr and `Server::quorum_status`.
    pub fn publish_status(&self) {
        let status = self.status();
        self.status.send_if_modified(|s| {
            let changed = *s != status;
            *s = status;
            changed
        });
    }
}
