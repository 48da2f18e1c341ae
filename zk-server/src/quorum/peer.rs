//! The peer: one server's ZAB state machine. It owns the in-memory view of
//! the log and epochs and the state of its current role; the role logic
//! lives in `election`, `leader` and `learner`.

use bytes::Bytes;

use super::election::Election;
use super::history::LogHistory;
use super::leader::Leading;
use super::learner::Learning;
use super::sync::{find, DiskView};
use super::types::*;

/// The state of the current role.
#[derive(Debug)]
pub(super) enum RoleState {
    Looking(Election),
    Leading(Box<Leading>),
    Learning(Box<Learning>),
}

/// One server's ZAB core. Feed it [`Input`]s with [`Peer::step`]; collect
/// what it wants done with [`Peer::take_outputs`].
#[derive(Debug)]
pub struct Peer {
    pub(super) cfg: PeerConfig,
    pub(super) accepted_epoch: Epoch,
    pub(super) current_epoch: Epoch,
    /// Every txn after `base_zxid` handed to the driver for logging,
    /// durable or not: a window of the newest `commit_log_count` (up to
    /// twice that between trims) plus whatever is not applied and durable
    /// yet. Older txns are in the files only.
    pub(super) log: Vec<LogEntry>,
    /// The zxid the in-memory log continues.
    pub(super) base_zxid: Zxid,
    /// The files hold every txn after this zxid (the oldest snapshot).
    pub(super) disk_floor: Zxid,
    /// The shape of everything logged (see `history`).
    pub(super) history: LogHistory,
    /// The size of the state in bytes, as the driver last reported it.
    state_size: u64,
    /// As a learner: how each sync went.
    pub(super) sync_counts: SyncCounts,
    /// Highest zxid the driver reported durable.
    pub(super) durable_zxid: Zxid,
    /// Highest zxid delivered with `Apply` in this incarnation.
    pub(super) applied_zxid: Zxid,
    pub(super) now: u64,
    /// FLE's logical clock; starts at 0 in every incarnation.
    pub(super) logical_clock: u64,
    /// The vote this peer stands by while not looking.
    pub(super) current_vote: Notification,
    pub(super) role: RoleState,
    /// Source of learner session ids (seeded by the driver).
    session_seq: u64,
    outputs: Vec<Output>,
}

impl Peer {
    /// A peer starting (or restarting) from its durable state, at time
    /// `now_ms`. `seed` makes its connection ids unique per incarnation; the
    /// driver passes a fresh random value (a seeded one in simulation).
    /// The peer starts LOOKING; its first notifications are already queued.
    pub fn new(cfg: PeerConfig, durable: DurableState, now_ms: u64, seed: u64) -> Self {
        let last = durable.last_logged_zxid();
        let base = durable.base();
        let applied = durable.applied_zxid.clamp(base, last);
        let mut history = durable.history;
        if history == LogHistory::default() {
            if durable.snapshot_zxid > 0 {
                history.record(durable.snapshot_zxid, 0);
            }
            for e in &durable.log {
                history.record(e.zxid, e.payload.len());
            }
        }
        let mut peer = Peer {
            current_vote: Notification {
                state: ServerState::Looking,
                vote: Vote::NONE,
                election_epoch: 0,
            },
            cfg,
            accepted_epoch: durable.accepted_epoch,
            current_epoch: durable.current_epoch,
            log: durable.log,
            base_zxid: base,
            disk_floor: durable.snapshot_zxid,
            history,
            state_size: 0,
            sync_counts: SyncCounts::default(),
            durable_zxid: last,
            applied_zxid: applied,
            now: now_ms,
            logical_clock: 0,
            role: RoleState::Looking(Election::default()),
            session_seq: seed,
            outputs: Vec::new(),
        };
        peer.start_looking();
        peer
    }

    /// Feeds one input. Only [`Input::ClientWrite`] can fail.
    pub fn step(&mut self, input: Input) -> Result<(), StepError> {
        match input {
            Input::Tick { now_ms } => {
                self.now = self.now.max(now_ms);
                self.on_tick();
                Ok(())
            }
            Input::Message { from, msg } => {
                self.on_message(from, msg);
                Ok(())
            }
            Input::LogDurable { zxid } => {
                self.durable_zxid = self.durable_zxid.max(zxid.min(self.last_logged_zxid()));
                self.on_durable();
                self.trim_log();
                Ok(())
            }
            Input::ClientWrite { payload } => self.client_write(payload),
            Input::PeerDisconnected { peer } => {
                self.on_peer_disconnected(peer);
                Ok(())
            }
        }
    }

    /// Everything the peer asked for since the last call, in order.
    pub fn take_outputs(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.outputs)
    }

    pub fn id(&self) -> ServerId {
        self.cfg.my_id
    }

    pub fn config(&self) -> &PeerConfig {
        &self.cfg
    }

    /// The role this peer has now.
    pub fn role(&self) -> Role {
        match &self.role {
            RoleState::Looking(_) => Role::Looking,
            RoleState::Leading(_) => Role::Leading,
            RoleState::Learning(l) if l.observer => Role::Observing { leader: l.leader },
            RoleState::Learning(l) => Role::Following { leader: l.leader },
        }
    }

    /// True when this peer leads an established epoch and accepts writes.
    pub fn is_serving_leader(&self) -> bool {
        matches!(&self.role, RoleState::Leading(l) if l.is_broadcasting())
    }

    /// True when this peer may serve clients: a broadcasting leader, or a
    /// learner that got UPTODATE.
    pub fn is_serving(&self) -> bool {
        match &self.role {
            RoleState::Leading(l) => l.is_broadcasting(),
            RoleState::Learning(l) => l.is_broadcasting(),
            RoleState::Looking(_) => false,
        }
    }

    /// The zxid the next [`Input::ClientWrite`] will get (a serving leader
    /// only), so the driver can prepare the txn under it first.
    pub fn next_proposal_zxid(&self) -> Option<Zxid> {
        match &self.role {
            RoleState::Leading(l) => l.next_zxid(),
            _ => None,
        }
    }

    /// On a learner: the id of its current connection attempt to the
    /// leader (messages of other attempts are ignored).
    pub fn learner_session(&self) -> Option<u64> {
        match &self.role {
            RoleState::Learning(l) => Some(l.session()),
            _ => None,
        }
    }

    /// On a leader: (learners connected, learners synced).
    pub fn learner_counts(&self) -> Option<(usize, usize)> {
        match &self.role {
            RoleState::Leading(l) => Some(l.learner_counts()),
            _ => None,
        }
    }

    /// The epoch this peer leads or follows, once established.
    pub fn epoch(&self) -> Option<Epoch> {
        match &self.role {
            RoleState::Leading(l) => l.epoch,
            RoleState::Learning(l) => l.epoch,
            RoleState::Looking(_) => None,
        }
    }

    pub fn accepted_epoch(&self) -> Epoch {
        self.accepted_epoch
    }

    pub fn current_epoch(&self) -> Epoch {
        self.current_epoch
    }

    pub fn last_logged_zxid(&self) -> Zxid {
        self.log.last().map_or(self.base_zxid, |e| e.zxid)
    }

    /// The zxid the in-memory log continues.
    pub fn log_start(&self) -> Zxid {
        self.base_zxid
    }

    /// Txns held in memory.
    pub fn log_len(&self) -> usize {
        self.log.len()
    }

    /// The files hold every txn after this zxid.
    pub fn disk_floor(&self) -> Zxid {
        self.disk_floor
    }

    /// The size of the state (in bytes, about what a snapshot of it takes),
    /// for the DIFF-from-files rule. Until it is known (0), learners behind
    /// the in-memory log get SNAP.
    pub fn set_state_size(&mut self, bytes: u64) {
        self.state_size = bytes;
    }

    /// The files no longer hold what follows `zxid` (a DIFF from them
    /// failed, or older logs were purged): learners behind it get SNAP.
    pub fn raise_disk_floor(&mut self, zxid: Zxid) {
        self.disk_floor = self.disk_floor.max(zxid);
    }

    /// The log files as a DIFF source.
    pub(super) fn disk_view(&self) -> DiskView<'_> {
        DiskView {
            floor: self.disk_floor,
            history: &self.history,
            max_bytes: self.max_diff_bytes(),
        }
    }

    fn max_diff_bytes(&self) -> u64 {
        let factor = u128::from(self.cfg.snapshot_size_factor_permille);
        u64::try_from(u128::from(self.state_size) * factor / 1000).unwrap_or(u64::MAX)
    }

    /// How this peer, as a learner, was synchronised since it started.
    pub fn sync_counts(&self) -> SyncCounts {
        self.sync_counts
    }

    pub fn applied_zxid(&self) -> Zxid {
        self.applied_zxid
    }

    fn on_tick(&mut self) {
        match &self.role {
            RoleState::Looking(_) => self.election_tick(),
            RoleState::Leading(_) => self.leader_tick(),
            RoleState::Learning(_) => self.learner_tick(),
        }
    }

    fn on_message(&mut self, from: ServerId, msg: Message) {
        if from == self.cfg.my_id {
            return;
        }
        match msg {
            Message::Notification(n) => self.on_notification(from, n),
            Message::ToLeader { session, msg } => self.leader_on_message(from, session, msg),
            Message::ToLearner { session, msg } => self.learner_on_message(from, session, msg),
        }
    }

    fn on_durable(&mut self) {
        match &self.role {
            RoleState::Leading(_) => self.leader_on_durable(),
            RoleState::Learning(_) => self.learner_on_durable(),
            RoleState::Looking(_) => {}
        }
    }

    fn on_peer_disconnected(&mut self, peer: ServerId) {
        if peer == self.cfg.my_id {
            return;
        }
        match &self.role {
            RoleState::Leading(_) => self.leader_on_disconnected(peer),
            RoleState::Learning(_) => self.learner_on_disconnected(peer),
            // Elections resend notifications on their own schedule.
            RoleState::Looking(_) => {}
        }
    }

    fn client_write(&mut self, payload: Bytes) -> Result<(), StepError> {
        match &self.role {
            RoleState::Leading(_) => self.leader_propose(payload),
            RoleState::Learning(l) => Err(StepError::NotLeader {
                leader: Some(l.leader),
            }),
            RoleState::Looking(_) => Err(StepError::NotLeader { leader: None }),
        }
    }

    // ---- helpers shared by the roles ----

    pub(super) fn emit(&mut self, out: Output) {
        self.outputs.push(out);
    }

    pub(super) fn send(&mut self, to: ServerId, msg: Message) {
        self.emit(Output::Send { to, msg });
    }

    pub(super) fn next_session(&mut self) -> u64 {
        // splitmix64: distinct, well-spread ids from one seed.
        self.session_seq = self.session_seq.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.session_seq;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Appends a txn to the log and asks the driver to persist it.
    pub(super) fn append(&mut self, entry: LogEntry) {
        self.history.record(entry.zxid, entry.payload.len());
        self.log.push(entry.clone());
        self.emit(Output::Persist(entry));
    }

    /// True when the log holds `zxid` (0, the empty prefix, and the
    /// snapshot point always).
    pub(super) fn has_logged(&self, zxid: Zxid) -> bool {
        zxid == 0
            || zxid == self.base_zxid
            || find(&self.log, zxid).is_ok()
            || (zxid < self.base_zxid && self.history.holds(zxid))
    }

    /// Keeps the in-memory log to its window (commitLogCount): drops the
    /// oldest txns that are applied and durable (the files have them) once
    /// it holds twice the window, so trimming costs O(1) per txn.
    pub(super) fn trim_log(&mut self) {
        let window = self.cfg.commit_log_count.max(1);
        if self.log.len() <= window.saturating_mul(2) {
            return;
        }
        let done = self.applied_zxid.min(self.durable_zxid);
        let excess = self.log.len() - window;
        let cut = self.log[..excess]
            .iter()
            .take_while(|e| e.zxid <= done)
            .count();
        if cut > 0 {
            self.base_zxid = self.log[cut - 1].zxid;
            self.log.drain(..cut);
        }
        if self.state_size > 0 {
            let max = self.max_diff_bytes();
            self.history.prune(max, self.disk_floor);
        }
    }

    /// Delivers every logged txn up to `upto` not yet applied, in order.
    pub(super) fn apply_upto(&mut self, upto: Zxid) {
        let start = match find(&self.log, self.applied_zxid) {
            Ok(i) => i + 1,
            Err(i) => i,
        };
        let ready: Vec<LogEntry> = self.log[start..]
            .iter()
            .take_while(|e| e.zxid <= upto)
            .cloned()
            .collect();
        for entry in ready {
            self.applied_zxid = entry.zxid;
            self.emit(Output::Apply(entry));
        }
        self.trim_log();
    }

    pub(super) fn persist_epoch(&mut self, kind: EpochKind, epoch: Epoch) {
        match kind {
            EpochKind::Accepted => self.accepted_epoch = epoch,
            EpochKind::Current => self.current_epoch = epoch,
        }
        self.emit(Output::PersistEpoch { kind, epoch });
    }

    pub(super) fn set_role(&mut self, role: RoleState) {
        self.role = role;
        let role = self.role();
        self.emit(Output::RoleChanged { role });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn single_voter() -> Peer {
        let cfg = PeerConfig::new(1, BTreeSet::from([1]), BTreeSet::new());
        Peer::new(cfg, DurableState::default(), 0, 42)
    }

    #[test]
    fn votes_order_by_epoch_then_zxid_then_id() {
        let v = |peer_epoch, zxid, leader| Vote {
            peer_epoch,
            zxid,
            leader,
        };
        assert!(v(2, 0, 1) > v(1, 99, 9));
        assert!(v(1, 5, 1) > v(1, 4, 9));
        assert!(v(1, 5, 2) > v(1, 5, 1));
    }

    #[test]
    fn a_lone_voter_leads_epoch_one_and_commits_on_its_own_fsync() {
        let mut p = single_voter();
        p.step(Input::Tick { now_ms: 1_000 }).unwrap();
        assert!(p.is_serving_leader());
        assert_eq!(p.epoch(), Some(1));
        p.take_outputs();
        p.step(Input::ClientWrite {
            payload: Bytes::from_static(b"x"),
        })
        .unwrap();
        let out = p.take_outputs();
        let zxid = make_zxid(1, 1);
        assert!(out.contains(&Output::Proposed { zxid }));
        assert!(!out.iter().any(|o| matches!(o, Output::Apply(_))));
        p.step(Input::LogDurable { zxid }).unwrap();
        let out = p.take_outputs();
        assert!(out
            .iter()
            .any(|o| matches!(o, Output::Apply(e) if e.zxid == zxid)));
    }

    #[test]
    fn the_in_memory_log_stays_within_twice_the_window_however_many_txns_commit() {
        let mut cfg = PeerConfig::new(1, BTreeSet::from([1]), BTreeSet::new());
        cfg.commit_log_count = 50;
        let mut p = Peer::new(cfg, DurableState::default(), 0, 42);
        p.step(Input::Tick { now_ms: 1_000 }).unwrap();
        p.set_state_size(1_000_000);
        for _ in 0..10_000 {
            p.step(Input::ClientWrite {
                payload: Bytes::from_static(b"0123456789"),
            })
            .unwrap();
            let zxid = p.last_logged_zxid();
            p.step(Input::LogDurable { zxid }).unwrap();
            p.take_outputs();
        }
        assert_eq!(p.applied_zxid(), make_zxid(1, 10_000));
        assert!(p.log_len() <= 100, "{} txns in memory", p.log_len());
        assert!(p.log_start() >= make_zxid(1, 9_900));
        assert!(p.history.samples() <= 20, "{} samples", p.history.samples());
    }

    #[test]
    fn txns_not_yet_applied_stay_in_memory_beyond_the_window() {
        let cfg = |id| {
            let mut c = PeerConfig::new(id, BTreeSet::from([1, 2, 3]), BTreeSet::new());
            c.commit_log_count = 5;
            c
        };
        // A peer restarting with 30 logged txns it has not applied.
        let log: Vec<LogEntry> = (1..=30)
            .map(|c| LogEntry {
                zxid: make_zxid(1, c),
                payload: Bytes::new(),
            })
            .collect();
        let durable = DurableState {
            accepted_epoch: 1,
            current_epoch: 1,
            log,
            ..DurableState::default()
        };
        let mut p = Peer::new(cfg(2), durable, 0, 1);
        p.trim_log();
        assert_eq!(p.log_len(), 30);
    }

    #[test]
    fn writes_to_a_peer_that_is_not_leading_are_refused() {
        let cfg = PeerConfig::new(1, BTreeSet::from([1, 2, 3]), BTreeSet::new());
        let mut p = Peer::new(cfg, DurableState::default(), 0, 1);
        assert_eq!(p.role(), Role::Looking);
        let err = p
            .step(Input::ClientWrite {
                payload: Bytes::new(),
            })
            .unwrap_err();
        assert_eq!(err, StepError::NotLeader { leader: None });
    }

    #[test]
    fn a_new_peer_votes_for_itself_with_its_durable_credentials() {
        let cfg = PeerConfig::new(2, BTreeSet::from([1, 2, 3]), BTreeSet::new());
        let durable = DurableState {
            accepted_epoch: 3,
            current_epoch: 3,
            log: vec![LogEntry {
                zxid: make_zxid(3, 4),
                payload: Bytes::new(),
            }],
            ..DurableState::default()
        };
        let mut p = Peer::new(cfg, durable, 0, 1);
        let sent: Vec<Output> = p.take_outputs();
        let vote = Vote {
            peer_epoch: 3,
            zxid: make_zxid(3, 4),
            leader: 2,
        };
        for to in [1, 3] {
            assert!(sent.iter().any(|o| matches!(o,
                Output::Send { to: t, msg: Message::Notification(n) }
                    if *t == to && n.vote == vote && n.state == ServerState::Looking)));
        }
    }
}
