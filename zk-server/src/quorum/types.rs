//! The vocabulary of the quorum core: ids, votes, messages, inputs and
//! outputs. Everything here is plain data; the logic lives in `peer`,
//! `election`, `leader`, `learner` and `sync`.

use std::collections::BTreeSet;

use bytes::Bytes;

pub use super::history::LogHistory;

pub use zk_proto::quorum::{make_zxid, zxid_counter, zxid_epoch, ServerState};

/// A server id (`server.N` / `myid`).
pub type ServerId = u64;
/// `(epoch << 32) | counter`; 0 is "nothing logged".
pub type Zxid = i64;
/// The upper half of a zxid.
pub type Epoch = u32;

/// One txn as the core sees it: its zxid and opaque bytes (for the real
/// server, the txn entry bytes of ZAB.md §9.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub zxid: Zxid,
    pub payload: Bytes,
}

/// A vote: who should lead, and the credentials it was chosen for.
/// Ordered by (peer_epoch, zxid, leader), the total order of ZAB.md §4.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Vote {
    pub peer_epoch: Epoch,
    pub zxid: Zxid,
    pub leader: ServerId,
}

impl Vote {
    /// The vote of a non-voter (observer): Apache sends `Long.MIN_VALUE`
    /// everywhere; nobody counts it.
    pub const NONE: Vote = Vote {
        peer_epoch: 0,
        zxid: 0,
        leader: ServerId::MAX,
    };
}

/// An election notification (ZAB.md §4.1) in the core's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notification {
    pub state: ServerState,
    pub vote: Vote,
    /// The sender's logical clock.
    pub election_epoch: u64,
}

/// What a learner sends its leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LearnerMsg {
    /// FOLLOWERINFO / OBSERVERINFO.
    Info {
        accepted_epoch: Epoch,
        observer: bool,
    },
    /// ACKEPOCH: `current_epoch` is `None` (-1 on the wire) when the learner
    /// had already accepted the proposed epoch.
    AckEpoch {
        last_zxid: Zxid,
        current_epoch: Option<Epoch>,
    },
    /// ACK: of NEWLEADER (`zxid = epoch << 32`) or of every proposal of the
    /// current epoch up to `zxid` (the learner logs in order, so an ack is
    /// cumulative).
    Ack { zxid: Zxid },
    /// PING reply.
    Ping,
}

/// What a leader sends a learner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaderMsg {
    LeaderInfo {
        epoch: Epoch,
    },
    /// Keep your log; everything up to `commit_upto` is (or, before the
    /// NEWLEADER quorum, will be) committed.
    Diff {
        commit_upto: Zxid,
    },
    /// Drop every logged txn after `to`, then as DIFF.
    Trunc {
        to: Zxid,
        commit_upto: Zxid,
    },
    /// Replace your state with ours as of `zxid` (committed history only),
    /// then as DIFF. The state itself is not in the message: the drivers
    /// carry it beside the core (the real server streams its data tree on
    /// the link right after this packet and hands the learner's core this
    /// message once the stream is staged on disk; the simulator keeps the
    /// applied txns), so the core only ever sees the marker.
    Snap {
        zxid: Zxid,
        commit_upto: Zxid,
    },
    /// A txn to log. `prev` is the zxid the learner's log must end with
    /// before it (a gap across an epoch boundary is otherwise invisible);
    /// `None` when decoded from the wire, where TCP keeps order.
    Proposal {
        entry: LogEntry,
        prev: Option<Zxid>,
    },
    Commit {
        zxid: Zxid,
    },
    /// A committed txn for an observer; `prev` as for proposals.
    Inform {
        entry: LogEntry,
        prev: Option<Zxid>,
    },
    /// `last_zxid` is where the learner's log must end now. The core's
    /// leader always sets it and learners check it; the wire has no room
    /// for it (NEWLEADER's zxid is `epoch << 32`) and TCP loses nothing, so
    /// decoded packets carry `None`.
    NewLeader {
        epoch: Epoch,
        last_zxid: Option<Zxid>,
    },
    UpToDate,
    Ping {
        last_proposed: Zxid,
    },
}

/// A message between two peers. Leader/learner traffic carries the id of
/// the learner's connection attempt (`session`): on TCP the connection
/// itself plays that role; here it lets a peer discard what a previous
/// attempt left in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Notification(Notification),
    ToLeader { session: u64, msg: LearnerMsg },
    ToLearner { session: u64, msg: LeaderMsg },
}

/// Which epoch file a [`Output::PersistEpoch`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochKind {
    Accepted,
    Current,
}

/// The role a peer has taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Looking,
    /// Elected; the epoch is known once a quorum acked it.
    Leading,
    Following {
        leader: ServerId,
    },
    Observing {
        leader: ServerId,
    },
}

/// Everything the driver feeds the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Message {
        from: ServerId,
        msg: Message,
    },
    /// Virtual or wall time in milliseconds; never goes backwards.
    Tick {
        now_ms: u64,
    },
    /// Every txn handed out in a [`Output::Persist`] up to `zxid` is on disk.
    LogDurable {
        zxid: Zxid,
    },
    /// A client write to order (leader only).
    ClientWrite {
        payload: Bytes,
    },
    /// The link to `peer` is down: a connection to it closed, or an attempt
    /// to connect was refused. Whatever was in flight on it may be lost.
    /// A learner whose leader this is starts an election at once (Apache's
    /// followers react to the socket closing); a leader forgets the
    /// learner, which registers again over a new connection. Repeats are
    /// harmless, and acting on one is always safe: it only gives up a role.
    PeerDisconnected {
        peer: ServerId,
    },
}

/// Everything the core asks the driver to do, in order. `Persist` is
/// asynchronous (answer with [`Input::LogDurable`]); `PersistEpoch`,
/// `Truncate` and `InstallSnapshot` must be durable before the driver acts
/// on any later output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Send {
        to: ServerId,
        msg: Message,
    },
    /// Append to the txn log.
    Persist(LogEntry),
    PersistEpoch {
        kind: EpochKind,
        epoch: Epoch,
    },
    /// Drop every logged txn after `to` (and make the rest durable).
    Truncate {
        to: Zxid,
    },
    /// Leader: send learner `to` (connection `session`) a
    /// [`LeaderMsg::Snap`] and the state this driver holds at this point of
    /// the output stream, which is the state as of `zxid` (every `Apply`
    /// before this output, or what the driver restored, see
    /// [`DurableState::applied_zxid`]). Whatever the core sends `to` after
    /// this output must reach it after the state. The state may be fuzzy
    /// (taken while later txns apply): the learner replays the txns after
    /// `zxid` onto it, which the core sends next.
    SendSnapshot {
        to: ServerId,
        session: u64,
        zxid: Zxid,
        commit_upto: Zxid,
    },
    /// Leader: send learner `to` (connection `session`) a DIFF header
    /// (`commit_upto`) and our logged txns in `(from, upto]`, read from the
    /// log files, as proposals (the first one's `prev` is `from`). If the
    /// files turn out not to hold them, send a SNAP of the state instead,
    /// which at this point of the output stream is at `snap_zxid` (as for
    /// [`Output::SendSnapshot`]). Either way, what the core sends `to`
    /// after this output must follow it: the in-memory txns after `upto`
    /// (a learner on SNAP ignores those it already has).
    SendLoggedDiff {
        to: ServerId,
        session: u64,
        from: Zxid,
        upto: Zxid,
        commit_upto: Zxid,
        snap_zxid: Zxid,
    },
    /// Learner: replace log and state with the leader's state as of
    /// `zxid` (what the driver received with the [`LeaderMsg::Snap`] of
    /// this session) followed by `log` (the leader's txns after it, up to
    /// NEWLEADER), all durable before the next output runs. Applies
    /// continue after `zxid`. The learner's old files stay untouched until
    /// then, so a crash in the middle of a SNAP sync never leaves it with
    /// less than it had.
    InstallSnapshot {
        zxid: Zxid,
        log: Vec<LogEntry>,
    },
    /// A committed txn, delivered exactly once per incarnation and in zxid
    /// order (after a restart or snapshot install, from the start again).
    Apply(LogEntry),
    RoleChanged {
        role: Role,
    },
    /// The leader got a quorum of epoch acks: it leads `epoch`.
    LeaderEstablished {
        epoch: Epoch,
    },
    /// A client write got this zxid; its `Apply` on the leader is the moment
    /// it may be acknowledged.
    Proposed {
        zxid: Zxid,
    },
}

/// Why a [`Input::ClientWrite`] was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    #[error("not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<ServerId> },
    #[error("leader is not serving yet")]
    NotReady,
    #[error("zxid counter exhausted for this epoch; a new election is starting")]
    EpochExhausted,
}

/// Static configuration of one peer (ZAB.md §1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    pub my_id: ServerId,
    pub voters: BTreeSet<ServerId>,
    pub observers: BTreeSet<ServerId>,
    pub tick_ms: u64,
    pub init_limit: u64,
    pub sync_limit: u64,
    /// FLE's finalizeWait (200 ms in Apache).
    pub finalize_wait_ms: u64,
    /// First notification resend interval; doubles up to the max.
    pub min_notification_interval_ms: u64,
    pub max_notification_interval_ms: u64,
    /// How many of the newest txns the in-memory log keeps
    /// (commitLogCount); older learners get a DIFF from the log files or
    /// SNAP.
    pub commit_log_count: usize,
    /// `zookeeper.snapshotSizeFactor` in thousandths (Apache: 0.33): a DIFF
    /// from the log files is sent only while it is smaller than the state
    /// times this; 0 turns DIFFs from the files off.
    pub snapshot_size_factor_permille: u64,
}

impl PeerConfig {
    /// Apache's defaults for everything but the membership.
    pub fn new(my_id: ServerId, voters: BTreeSet<ServerId>, observers: BTreeSet<ServerId>) -> Self {
        PeerConfig {
            my_id,
            voters,
            observers,
            tick_ms: 2000,
            init_limit: 10,
            sync_limit: 5,
            finalize_wait_ms: 200,
            min_notification_interval_ms: 200,
            max_notification_interval_ms: 60_000,
            commit_log_count: 500,
            snapshot_size_factor_permille: 330,
        }
    }

    pub fn is_voter(&self, id: ServerId) -> bool {
        self.voters.contains(&id)
    }

    pub fn is_observer(&self, id: ServerId) -> bool {
        self.observers.contains(&id)
    }

    /// True when `ids` hold a majority of the voters (ZAB.md §1).
    pub fn is_quorum<'a>(&self, ids: impl IntoIterator<Item = &'a ServerId>) -> bool {
        let votes = ids.into_iter().filter(|id| self.is_voter(**id)).count();
        votes > self.voters.len() / 2
    }

    pub(crate) fn init_timeout_ms(&self) -> u64 {
        self.init_limit * self.tick_ms
    }

    pub(crate) fn sync_timeout_ms(&self) -> u64 {
        self.sync_limit * self.tick_ms
    }
}

/// What survives a crash: the epoch files, a snapshot and the durable txn
/// log after it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DurableState {
    pub accepted_epoch: Epoch,
    pub current_epoch: Epoch,
    /// The zxid of the snapshot the log continues: history up to here is
    /// only in the driver's state (older logs may be purged). 0 when the log
    /// holds the whole history.
    pub snapshot_zxid: Zxid,
    /// The newest part of the durable log, in zxid order: every txn after
    /// `log_start` (or after `snapshot_zxid` when that is later).
    pub log: Vec<LogEntry>,
    /// The zxid `log` continues; the files hold the txns between
    /// `snapshot_zxid` and it. 0: `log` is everything after the snapshot.
    pub log_start: Zxid,
    /// The shape of the whole logged history, `log` included; when empty,
    /// the peer builds it from `log`.
    pub history: LogHistory,
    /// The zxid the driver's state is at when the peer starts: at least
    /// `snapshot_zxid`, at most the last logged zxid (the real server
    /// replays its whole log at start, as Apache does; a txn a leader later
    /// truncates is undone by [`Output::Truncate`]). The core applies only
    /// what comes after it.
    pub applied_zxid: Zxid,
}

impl DurableState {
    pub fn last_logged_zxid(&self) -> Zxid {
        self.log.last().map_or(self.base(), |e| e.zxid)
    }

    /// The zxid the in-memory log continues.
    pub fn base(&self) -> Zxid {
        self.snapshot_zxid.max(self.log_start)
    }
}

/// How a leader synchronised a learner (ZAB.md §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncKind {
    Diff,
    Trunc,
    Snap,
}

/// How often this peer, as a learner, was synchronised each way since it
/// started (for tests and `mntr`-style reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncCounts {
    pub diff: u64,
    pub trunc: u64,
    pub snap: u64,
}

impl SyncCounts {
    pub fn record(&mut self, kind: SyncKind) {
        match kind {
            SyncKind::Diff => self.diff += 1,
            SyncKind::Trunc => self.trunc += 1,
            SyncKind::Snap => self.snap += 1,
        }
    }
}
