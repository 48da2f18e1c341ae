//! Followers and observers (ZAB.md §5.2-§5.4, §5.6).
//!
//! A learner registers with the leader it elected, accepts the new epoch,
//! takes the DIFF / TRUNC / SNAP sync, makes the leader's history durable
//! before acking NEWLEADER (and only then persists currentEpoch), and from
//! UPTODATE on logs proposals, acks them once durable, and applies commits
//! in order. It applies nothing before UPTODATE: only then is the leader's
//! history known to be on a quorum.
//!
//! The stream from the leader must be gap-free. When a proposal does not
//! directly follow the last logged txn, or the leader's pings show we fell
//! behind, the learner starts a fresh connection attempt (a new session) and
//! syncs again; on TCP that is a reconnect.

use super::peer::{Peer, RoleState};
use super::sync::follows;
use super::types::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    AwaitLeaderInfo,
    AwaitSync,
    Syncing,
    /// NEWLEADER received; waiting for the history to be durable.
    AwaitDurable {
        upto: Zxid,
    },
    AwaitUpToDate,
    Broadcast,
}

#[derive(Debug)]
pub(crate) struct Learning {
    pub(super) leader: ServerId,
    pub(super) observer: bool,
    session: u64,
    phase: Phase,
    session_started: u64,
    last_heard: u64,
    pub(super) epoch: Option<Epoch>,
    /// What we told the leader in ACKEPOCH (resent if it got lost).
    ack_epoch: Option<LearnerMsg>,
    /// Everything up to here is committed (from the sync header and
    /// COMMIT/INFORM packets).
    commit_mark: Zxid,
    /// The leader's last proposal as of the previous ping, if we lacked it.
    behind_since: Option<Zxid>,
    /// A SNAP sync in progress: the point of the leader's state (which the
    /// driver holds) and the txns after it, held until NEWLEADER and then
    /// installed at once.
    pending_snap: Option<PendingSnap>,
}

#[derive(Debug)]
struct PendingSnap {
    zxid: Zxid,
    log: Vec<LogEntry>,
}

impl PendingSnap {
    fn last_zxid(&self) -> Zxid {
        self.log.last().map_or(self.zxid, |e| e.zxid)
    }
}

impl Learning {
    pub(super) fn new(leader: ServerId, observer: bool, session: u64, now: u64) -> Self {
        Learning {
            leader,
            observer,
            session,
            phase: Phase::AwaitLeaderInfo,
            session_started: now,
            last_heard: now,
            epoch: None,
            ack_epoch: None,
            commit_mark: 0,
            behind_since: None,
            pending_snap: None,
        }
    }

    /// UPTODATE received: the learner serves clients.
    pub(super) fn is_broadcasting(&self) -> bool {
        self.phase == Phase::Broadcast
    }

    /// The current connection attempt.
    pub(super) fn session(&self) -> u64 {
        self.session
    }

    fn has_acked_newleader(&self) -> bool {
        matches!(self.phase, Phase::AwaitUpToDate | Phase::Broadcast)
    }
}

impl Peer {
    fn learning(&mut self) -> Option<&mut Learning> {
        match &mut self.role {
            RoleState::Learning(l) => Some(l),
            _ => None,
        }
    }

    fn send_to_leader(&mut self, msg: LearnerMsg) {
        let Some(l) = self.learning() else {
            return;
        };
        let (to, session) = (l.leader, l.session);
        self.send(to, Message::ToLeader { session, msg });
    }

    fn send_learner_info(&mut self) {
        let accepted_epoch = self.accepted_epoch;
        let Some(l) = self.learning() else {
            return;
        };
        let observer = l.observer;
        self.send_to_leader(LearnerMsg::Info {
            accepted_epoch,
            observer,
        });
    }

    pub(super) fn learner_started(&mut self) {
        self.send_learner_info();
    }

    /// Drops the current connection attempt and registers again.
    fn restart_session(&mut self) {
        let session = self.next_session();
        let now = self.now;
        let Some(l) = self.learning() else {
            return;
        };
        let (leader, observer) = (l.leader, l.observer);
        *l = Learning::new(leader, observer, session, now);
        self.send_learner_info();
    }

    pub(super) fn learner_on_message(&mut self, from: ServerId, session: u64, msg: LeaderMsg) {
        let now = self.now;
        let Some(l) = self.learning() else {
            return;
        };
        if from != l.leader || session != l.session {
            return;
        }
        l.last_heard = now;
        let phase = l.phase;
        match (phase, msg) {
            (_, LeaderMsg::Ping { last_proposed }) => self.learner_on_ping(last_proposed),
            (Phase::AwaitLeaderInfo, LeaderMsg::LeaderInfo { epoch }) => self.on_leader_info(epoch),
            (_, LeaderMsg::LeaderInfo { .. }) => {}
            (Phase::AwaitSync, LeaderMsg::Diff { commit_upto }) => {
                self.begin_sync(SyncKind::Diff, commit_upto);
            }
            (Phase::AwaitSync, LeaderMsg::Trunc { to, commit_upto }) => {
                self.truncate_log(to);
                self.begin_sync(SyncKind::Trunc, commit_upto);
            }
            (Phase::AwaitSync, LeaderMsg::Snap { zxid, commit_upto }) => {
                if let Some(l) = self.learning() {
                    l.pending_snap = Some(PendingSnap {
                        zxid,
                        log: Vec::new(),
                    });
                }
                self.begin_sync(SyncKind::Snap, commit_upto);
            }
            // A duplicate header of this session.
            (_, LeaderMsg::Diff { .. } | LeaderMsg::Trunc { .. } | LeaderMsg::Snap { .. }) => {}
            // The header of this session was lost: the stream is broken.
            (Phase::AwaitLeaderInfo | Phase::AwaitSync, _) => self.restart_session(),
            (_, LeaderMsg::Proposal { entry, prev }) => self.learner_log(entry, prev),
            (_, LeaderMsg::Inform { entry, prev }) => {
                let zxid = entry.zxid;
                self.learner_log(entry, prev);
                self.learner_commit(zxid);
            }
            (_, LeaderMsg::Commit { zxid }) => self.learner_commit(zxid),
            (Phase::Syncing, LeaderMsg::NewLeader { epoch, last_zxid }) => {
                self.install_pending_snapshot();
                let upto = self.last_logged_zxid();
                let Some(l) = self.learning() else {
                    return;
                };
                if l.epoch != Some(epoch) || last_zxid.is_some_and(|z| z != upto) {
                    // Part of the history went missing on the way.
                    self.restart_session();
                    return;
                }
                l.phase = Phase::AwaitDurable { upto };
                self.learner_on_durable();
            }
            (_, LeaderMsg::NewLeader { .. }) => {}
            (Phase::AwaitUpToDate, LeaderMsg::UpToDate) => {
                let Some(l) = self.learning() else {
                    return;
                };
                l.phase = Phase::Broadcast;
                let mark = l.commit_mark;
                self.apply_upto(mark);
                self.send_ack();
            }
            (_, LeaderMsg::UpToDate) => {}
        }
    }

    /// ZAB.md §5.2 step 4.
    fn on_leader_info(&mut self, epoch: Epoch) {
        if epoch < self.accepted_epoch {
            // A leader behind what we promised: not ours to follow.
            self.start_looking();
            return;
        }
        let current_epoch = if epoch > self.accepted_epoch {
            self.persist_epoch(EpochKind::Accepted, epoch);
            Some(self.current_epoch)
        } else {
            None
        };
        let ack = LearnerMsg::AckEpoch {
            last_zxid: self.last_logged_zxid(),
            current_epoch,
        };
        let Some(l) = self.learning() else {
            return;
        };
        l.epoch = Some(epoch);
        l.phase = Phase::AwaitSync;
        l.ack_epoch = Some(ack.clone());
        self.stand_for_epoch(epoch);
        self.send_to_leader(ack);
    }

    fn begin_sync(&mut self, kind: SyncKind, commit_upto: Zxid) {
        self.sync_counts.record(kind);
        let Some(l) = self.learning() else {
            return;
        };
        l.phase = Phase::Syncing;
        l.commit_mark = commit_upto;
    }

    fn truncate_log(&mut self, to: Zxid) {
        self.log.retain(|e| e.zxid <= to);
        self.history.truncate(to);
        // Only uncommitted txns are ever truncated, and a snapshot holds
        // committed ones, so `to` is not below the base in practice; if it
        // were, the driver rebuilds its state from disk up to `to`.
        self.base_zxid = self.base_zxid.min(to);
        self.durable_zxid = self.last_logged_zxid();
        self.applied_zxid = self.applied_zxid.min(to);
        self.emit(Output::Truncate { to });
    }

    /// SNAP, at NEWLEADER: the leader's state and the txns after it
    /// replace our log and state, durably, in one step. The state counts as
    /// applied (it holds only committed txns, or the new leader's history);
    /// clients see it only after UPTODATE.
    fn install_pending_snapshot(&mut self) {
        let Some(snap) = self.learning().and_then(|l| l.pending_snap.take()) else {
            return;
        };
        self.log = snap.log.clone();
        self.base_zxid = snap.zxid;
        // The files now start with the snapshot, followed by the log.
        self.disk_floor = snap.zxid;
        self.history = super::history::LogHistory::default();
        self.history.record(snap.zxid, 0);
        for e in &snap.log {
            self.history.record(e.zxid, e.payload.len());
        }
        self.durable_zxid = self.last_logged_zxid();
        self.applied_zxid = snap.zxid;
        self.emit(Output::InstallSnapshot {
            zxid: snap.zxid,
            log: snap.log,
        });
    }

    /// Logs a txn from the leader's stream, which must directly follow our
    /// last one; a repeat is ignored, a gap breaks the session. During a
    /// SNAP sync the txns gather in memory behind the snapshot.
    fn learner_log(&mut self, entry: LogEntry, prev: Option<Zxid>) {
        if let Some(snap) = self.learning().and_then(|l| l.pending_snap.as_mut()) {
            let last = snap.last_zxid();
            if entry.zxid <= last {
                return; // a repeat within this session
            }
            if prev.is_some_and(|p| p != last) || !follows(last, entry.zxid) {
                self.restart_session();
                return;
            }
            snap.log.push(entry);
            return;
        }
        let last = self.last_logged_zxid();
        if entry.zxid <= last {
            if !self.has_logged(entry.zxid) {
                self.restart_session();
            }
            return;
        }
        if prev.is_some_and(|p| p != last) || !follows(last, entry.zxid) {
            self.restart_session();
            return;
        }
        self.append(entry);
    }

    /// Everything up to `zxid` is committed (commits come in order).
    fn learner_commit(&mut self, zxid: Zxid) {
        let last = self.last_logged_zxid();
        let Some(l) = self.learning() else {
            return;
        };
        l.commit_mark = l.commit_mark.max(zxid);
        if l.phase == Phase::Broadcast {
            let upto = l.commit_mark.min(last);
            self.apply_upto(upto);
        }
    }

    fn learner_on_ping(&mut self, last_proposed: Zxid) {
        let last = self.last_logged_zxid();
        self.send_to_leader(LearnerMsg::Ping);
        let Some(l) = self.learning() else {
            return;
        };
        if l.phase != Phase::Broadcast {
            return;
        }
        if last_proposed > last {
            // Still missing what the previous ping announced: a proposal was
            // lost, and only a fresh sync brings it back.
            if l.behind_since.is_some_and(|prev| last < prev) {
                self.restart_session();
                return;
            }
            l.behind_since = Some(last_proposed);
        } else {
            l.behind_since = None;
        }
        self.send_ack();
    }

    /// Acks (cumulatively) what is durable of the current epoch; followers
    /// only, and only once the leader's history is ours (NEWLEADER acked).
    fn send_ack(&mut self) {
        let durable = self.durable_zxid;
        let Some(l) = self.learning() else {
            return;
        };
        let acks = !l.observer
            && l.has_acked_newleader()
            && l.epoch == Some(zxid_epoch(durable))
            && zxid_counter(durable) > 0;
        if acks {
            self.send_to_leader(LearnerMsg::Ack { zxid: durable });
        }
    }

    pub(super) fn learner_on_durable(&mut self) {
        let durable = self.durable_zxid;
        let Some(l) = self.learning() else {
            return;
        };
        match (l.phase, l.epoch) {
            (Phase::AwaitDurable { upto }, Some(epoch)) if durable >= upto => {
                // ZAB.md §5.3: history durable, then currentEpoch, then ack.
                l.phase = Phase::AwaitUpToDate;
                if self.current_epoch != epoch {
                    self.persist_epoch(EpochKind::Current, epoch);
                }
                self.send_to_leader(LearnerMsg::Ack {
                    zxid: make_zxid(epoch, 0),
                });
                self.send_ack();
            }
            (Phase::AwaitUpToDate | Phase::Broadcast, _) => self.send_ack(),
            _ => {}
        }
    }

    /// The link to our leader broke: nothing more comes from this session,
    /// so waiting for syncLimit of silence would only delay the election
    /// that must follow. Links to other peers do not concern a learner.
    pub(super) fn learner_on_disconnected(&mut self, peer: ServerId) {
        if self.learning().is_some_and(|l| l.leader == peer) {
            self.start_looking();
        }
    }

    pub(super) fn learner_tick(&mut self) {
        let now = self.now;
        let init = self.cfg.init_timeout_ms();
        let sync = self.cfg.sync_timeout_ms();
        let Some(l) = self.learning() else {
            return;
        };
        let lost = match l.phase {
            Phase::Broadcast => now.saturating_sub(l.last_heard) > sync,
            _ => now.saturating_sub(l.session_started) > init,
        };
        if lost {
            self.start_looking();
            return;
        }
        // Resend the step we are waiting on; the network may have lost it.
        match l.phase {
            Phase::AwaitLeaderInfo => self.send_learner_info(),
            Phase::AwaitSync => {
                if let Some(ack) = l.ack_epoch.clone() {
                    self.send_to_leader(ack);
                }
            }
            Phase::AwaitUpToDate => {
                if let Some(epoch) = l.epoch {
                    self.send_to_leader(LearnerMsg::Ack {
                        zxid: make_zxid(epoch, 0),
                    });
                }
            }
            Phase::Syncing | Phase::AwaitDurable { .. } | Phase::Broadcast => {}
        }
    }
}
