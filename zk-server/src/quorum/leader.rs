//! The leader: discovery (ZAB.md §5.2), synchronisation (§5.3) and
//! broadcast (§5.4).
//!
//! Phases: `Discovery` collects the accepted epochs of a quorum and proposes
//! one above all of them, then waits for a quorum of ACKEPOCHs; `Sync` sends
//! each learner what it lacks of our history and waits for a quorum of
//! NEWLEADER acks (our whole log is committed by that act); `Broadcast`
//! orders client writes, committing each once a quorum of voters (us
//! included) has it durable, strictly in zxid order.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::peer::{Peer, RoleState};
use super::sync::{find, plan_sync, SyncPlan};
use super::types::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Discovery,
    Sync,
    Broadcast,
}

/// Where one learner's connection stands (Apache's LearnerHandler).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HandlerPhase {
    AwaitAckEpoch,
    EpochAcked {
        last_zxid: Zxid,
    },
    /// History sent up to NEWLEADER; the learner is in the forwarding set.
    Syncing,
    /// Acked NEWLEADER.
    Synced,
}

#[derive(Debug, Clone)]
struct Handler {
    session: u64,
    observer: bool,
    phase: HandlerPhase,
    last_heard: u64,
}

impl Handler {
    /// Learners that get new proposals / commits.
    fn is_forwarding(&self) -> bool {
        matches!(self.phase, HandlerPhase::Syncing | HandlerPhase::Synced)
    }
}

#[derive(Debug)]
pub(crate) struct Leading {
    pub(super) epoch: Option<Epoch>,
    phase: Phase,
    /// When the current discovery or sync wait gives up.
    deadline: u64,
    /// Accepted epochs of the voters that reported (us included).
    epoch_reports: BTreeMap<ServerId, Epoch>,
    epoch_acks: BTreeSet<ServerId>,
    newleader_acks: BTreeSet<ServerId>,
    /// Our (currentEpoch, lastZxid) when elected: a learner more recent
    /// than this means the election went wrong, and we abdicate.
    start_summary: (Epoch, Zxid),
    /// Our last zxid when elected: everything up to it is our history.
    history_zxid: Zxid,
    committed_zxid: Zxid,
    next_counter: u32,
    /// Uncommitted proposals of this epoch and the voters that acked them.
    outstanding: BTreeMap<Zxid, BTreeSet<ServerId>>,
    learners: BTreeMap<ServerId, Handler>,
    next_ping_at: u64,
    next_check_at: u64,
}

impl Leading {
    pub(super) fn new(peer: &Peer) -> Self {
        let last = peer.last_logged_zxid();
        Leading {
            epoch: None,
            phase: Phase::Discovery,
            deadline: peer.now + peer.cfg.init_timeout_ms(),
            epoch_reports: BTreeMap::from([(peer.cfg.my_id, peer.accepted_epoch)]),
            epoch_acks: BTreeSet::new(),
            newleader_acks: BTreeSet::new(),
            start_summary: (peer.current_epoch, last),
            history_zxid: last,
            committed_zxid: 0,
            next_counter: 1,
            outstanding: BTreeMap::new(),
            learners: BTreeMap::new(),
            next_ping_at: peer.now,
            next_check_at: peer.now + peer.cfg.tick_ms,
        }
    }

    pub(super) fn is_broadcasting(&self) -> bool {
        self.phase == Phase::Broadcast
    }

    /// The zxid the next client write will get, once broadcasting.
    pub(super) fn next_zxid(&self) -> Option<Zxid> {
        match (self.phase, self.epoch) {
            (Phase::Broadcast, Some(epoch)) if self.next_counter < u32::MAX => {
                Some(make_zxid(epoch, self.next_counter))
            }
            _ => None,
        }
    }

    /// Voters and observers connected to us, and those synced (acked
    /// NEWLEADER), for `mntr`'s zk_followers / zk_synced_followers.
    pub(super) fn learner_counts(&self) -> (usize, usize) {
        let synced = self
            .learners
            .values()
            .filter(|h| h.phase == HandlerPhase::Synced)
            .count();
        (self.learners.len(), synced)
    }
}

impl Peer {
    fn leading(&mut self) -> Option<&mut Leading> {
        match &mut self.role {
            RoleState::Leading(l) => Some(l),
            _ => None,
        }
    }

    fn send_to_learner(&mut self, to: ServerId, session: u64, msg: LeaderMsg) {
        self.send(to, Message::ToLearner { session, msg });
    }

    pub(super) fn leader_started(&mut self) {
        self.leader_progress();
    }

    /// Gives up leadership and looks for a leader again.
    fn abdicate(&mut self) {
        self.start_looking();
    }

    pub(super) fn leader_on_message(&mut self, from: ServerId, session: u64, msg: LearnerMsg) {
        let now = self.now;
        let cfg = self.cfg.clone();
        let Some(l) = self.leading() else {
            return;
        };
        if let LearnerMsg::Info {
            accepted_epoch,
            observer,
        } = msg
        {
            let member = if observer {
                cfg.is_observer(from)
            } else {
                cfg.is_voter(from)
            };
            if !member {
                return;
            }
            let epoch = l.epoch;
            if let Some(h) = l.learners.get_mut(&from).filter(|h| h.session == session) {
                // A resend: LEADERINFO may have been lost.
                h.last_heard = now;
                if let (HandlerPhase::AwaitAckEpoch, Some(epoch)) = (h.phase, epoch) {
                    self.send_to_learner(from, session, LeaderMsg::LeaderInfo { epoch });
                }
                return;
            }
            l.learners.insert(
                from,
                Handler {
                    session,
                    observer,
                    phase: HandlerPhase::AwaitAckEpoch,
                    last_heard: now,
                },
            );
            if l.epoch.is_none() && !observer {
                l.epoch_reports.insert(from, accepted_epoch);
            }
            if let Some(epoch) = epoch {
                self.send_to_learner(from, session, LeaderMsg::LeaderInfo { epoch });
            }
            self.leader_progress();
            return;
        }
        let Some(h) = l.learners.get_mut(&from).filter(|h| h.session == session) else {
            return;
        };
        h.last_heard = now;
        let Some(epoch) = l.epoch else {
            return;
        };
        match msg {
            LearnerMsg::Info { .. } | LearnerMsg::Ping => {}
            LearnerMsg::AckEpoch {
                last_zxid,
                current_epoch,
            } => {
                if h.phase != HandlerPhase::AwaitAckEpoch {
                    return;
                }
                h.phase = HandlerPhase::EpochAcked { last_zxid };
                if let Some(current) = current_epoch {
                    if (current, last_zxid) > l.start_summary {
                        self.abdicate();
                        return;
                    }
                    if cfg.is_voter(from) {
                        l.epoch_acks.insert(from);
                    }
                }
                if l.phase != Phase::Discovery {
                    self.sync_learner(from);
                }
                self.leader_progress();
            }
            LearnerMsg::Ack { zxid } if zxid == make_zxid(epoch, 0) => {
                if h.phase == HandlerPhase::Syncing {
                    h.phase = HandlerPhase::Synced;
                    if cfg.is_voter(from) {
                        l.newleader_acks.insert(from);
                    }
                }
                // Also answers a resent NEWLEADER ack whose UPTODATE was lost.
                if h.phase == HandlerPhase::Synced && l.phase == Phase::Broadcast {
                    self.send_to_learner(from, session, LeaderMsg::UpToDate);
                }
                self.leader_progress();
            }
            LearnerMsg::Ack { zxid } => {
                let counts = zxid_epoch(zxid) == epoch
                    && l.phase == Phase::Broadcast
                    && cfg.is_voter(from)
                    && h.is_forwarding();
                if counts {
                    record_ack(l, from, zxid);
                    self.try_commit();
                }
            }
        }
    }

    /// Moves discovery and sync forward as far as the acks allow.
    fn leader_progress(&mut self) {
        let me = self.cfg.my_id;
        let cfg = self.cfg.clone();
        let now = self.now;
        let Some(l) = self.leading() else {
            return;
        };
        if l.phase == Phase::Discovery && l.epoch.is_none() && cfg.is_quorum(l.epoch_reports.keys())
        {
            // ZAB.md §5.2 step 1: one above every epoch a quorum accepted.
            let epoch = l.epoch_reports.values().max().copied().unwrap_or(0) + 1;
            l.epoch = Some(epoch);
            l.epoch_acks.insert(me);
            l.deadline = now + cfg.init_timeout_ms();
            let waiting: Vec<(ServerId, u64)> = l
                .learners
                .iter()
                .filter(|(_, h)| h.phase == HandlerPhase::AwaitAckEpoch)
                .map(|(id, h)| (*id, h.session))
                .collect();
            self.persist_epoch(EpochKind::Accepted, epoch);
            for (id, session) in waiting {
                self.send_to_learner(id, session, LeaderMsg::LeaderInfo { epoch });
            }
        }
        let durable = self.durable_zxid;
        let Some(l) = self.leading() else {
            return;
        };
        let Some(epoch) = l.epoch else {
            return;
        };
        if l.phase == Phase::Discovery && cfg.is_quorum(l.epoch_acks.iter()) {
            l.phase = Phase::Sync;
            l.deadline = now + cfg.init_timeout_ms();
            let acked: Vec<ServerId> = l
                .learners
                .iter()
                .filter(|(_, h)| matches!(h.phase, HandlerPhase::EpochAcked { .. }))
                .map(|(id, _)| *id)
                .collect();
            self.persist_epoch(EpochKind::Current, epoch);
            self.stand_for_epoch(epoch);
            self.emit(Output::LeaderEstablished { epoch });
            for id in acked {
                self.sync_learner(id);
            }
        }
        let Some(l) = self.leading() else {
            return;
        };
        if l.phase == Phase::Sync {
            // Our own NEWLEADER ack: our history is durable.
            if durable >= l.history_zxid {
                l.newleader_acks.insert(me);
            }
            if cfg.is_quorum(l.newleader_acks.iter()) {
                self.start_broadcast();
            }
        }
    }

    /// A quorum holds our history: it is committed; start serving.
    fn start_broadcast(&mut self) {
        let now = self.now;
        let tick = self.cfg.tick_ms;
        let Some(l) = self.leading() else {
            return;
        };
        l.phase = Phase::Broadcast;
        l.committed_zxid = l.history_zxid;
        l.next_check_at = now + tick;
        let history = l.history_zxid;
        let synced: Vec<(ServerId, u64)> = l
            .learners
            .iter()
            .filter(|(_, h)| h.phase == HandlerPhase::Synced)
            .map(|(id, h)| (*id, h.session))
            .collect();
        self.apply_upto(history);
        for (id, session) in synced {
            self.send_to_learner(id, session, LeaderMsg::UpToDate);
        }
    }

    /// Sends learner `id` what it lacks of our log, then NEWLEADER, and adds
    /// it to the forwarding set (ZAB.md §5.3).
    fn sync_learner(&mut self, id: ServerId) {
        let last_logged = self.last_logged_zxid();
        let Some(l) = self.leading() else {
            return;
        };
        let Some(epoch) = l.epoch else {
            return;
        };
        let broadcasting = l.phase == Phase::Broadcast;
        let commit_upto = if broadcasting {
            l.committed_zxid
        } else {
            l.history_zxid
        };
        let Some(h) = l.learners.get_mut(&id) else {
            return;
        };
        let HandlerPhase::EpochAcked { last_zxid } = h.phase else {
            return;
        };
        h.phase = HandlerPhase::Syncing;
        let session = h.session;
        // Observers only ever see committed txns.
        let limit = if h.observer { commit_upto } else { last_logged };
        let plan = plan_sync(&self.log, self.base_zxid, last_zxid, &self.disk_view());
        let (header, start, base) = match plan {
            SyncPlan::Diff { from_index } => (
                Output::Send {
                    to: id,
                    msg: Message::ToLearner {
                        session,
                        msg: LeaderMsg::Diff { commit_upto },
                    },
                },
                from_index,
                last_zxid,
            ),
            SyncPlan::Trunc { to, from_index } => (
                Output::Send {
                    to: id,
                    msg: Message::ToLearner {
                        session,
                        msg: LeaderMsg::Trunc { to, commit_upto },
                    },
                },
                from_index,
                to,
            ),
            SyncPlan::DiffFromDisk { upto, from_index } => (
                Output::SendLoggedDiff {
                    to: id,
                    session,
                    from: last_zxid,
                    upto,
                    commit_upto,
                    snap_zxid: self.applied_zxid,
                },
                from_index,
                upto,
            ),
            SyncPlan::Snap => {
                // Our state is at `applied_zxid` (committed, or our own
                // history about to be); the log supplies what follows.
                let zxid = self.applied_zxid;
                let start = match find(&self.log, zxid) {
                    Ok(i) => i + 1,
                    Err(i) => i,
                };
                let header = Output::SendSnapshot {
                    to: id,
                    session,
                    zxid,
                    commit_upto,
                };
                (header, start, zxid)
            }
        };
        let proposals: Vec<LogEntry> = self.log[start..]
            .iter()
            .take_while(|e| e.zxid <= limit)
            .cloned()
            .collect();
        let last_zxid = proposals.last().map_or(base, |e| e.zxid);
        self.emit(header);
        let mut prev = base;
        for entry in proposals {
            let zxid = entry.zxid;
            self.send_to_learner(
                id,
                session,
                LeaderMsg::Proposal {
                    entry,
                    prev: Some(prev),
                },
            );
            prev = zxid;
        }
        self.send_to_learner(
            id,
            session,
            LeaderMsg::NewLeader {
                epoch,
                last_zxid: Some(last_zxid),
            },
        );
    }

    pub(super) fn leader_propose(&mut self, payload: Bytes) -> Result<(), StepError> {
        let Some(l) = self.leading() else {
            return Err(StepError::NotLeader { leader: None });
        };
        let (Phase::Broadcast, Some(epoch)) = (l.phase, l.epoch) else {
            return Err(StepError::NotReady);
        };
        if l.next_counter == u32::MAX {
            // ZAB.md §2: a new epoch starts the counter over.
            self.abdicate();
            return Err(StepError::EpochExhausted);
        }
        let zxid = make_zxid(epoch, l.next_counter);
        l.next_counter += 1;
        l.outstanding.insert(zxid, BTreeSet::new());
        let followers: Vec<(ServerId, u64)> = l
            .learners
            .iter()
            .filter(|(_, h)| h.is_forwarding() && !h.observer)
            .map(|(id, h)| (*id, h.session))
            .collect();
        let entry = LogEntry { zxid, payload };
        let prev = self.last_logged_zxid();
        self.append(entry.clone());
        self.emit(Output::Proposed { zxid });
        for (id, session) in followers {
            let msg = LeaderMsg::Proposal {
                entry: entry.clone(),
                prev: Some(prev),
            };
            self.send_to_learner(id, session, msg);
        }
        Ok(())
    }

    pub(super) fn leader_on_durable(&mut self) {
        let me = self.cfg.my_id;
        let durable = self.durable_zxid;
        let Some(l) = self.leading() else {
            return;
        };
        match l.phase {
            Phase::Broadcast => {
                record_ack(l, me, durable);
                self.try_commit();
            }
            Phase::Sync => self.leader_progress(),
            Phase::Discovery => {}
        }
    }

    /// Commits outstanding proposals in zxid order while the oldest has a
    /// quorum (ZAB.md §5.4 `tryToCommit`).
    fn try_commit(&mut self) {
        let cfg = self.cfg.clone();
        loop {
            let Some(l) = self.leading() else {
                return;
            };
            let Some((&zxid, acks)) = l.outstanding.first_key_value() else {
                return;
            };
            if !cfg.is_quorum(acks.iter()) {
                return;
            }
            l.outstanding.remove(&zxid);
            let prev = std::mem::replace(&mut l.committed_zxid, zxid);
            let targets: Vec<(ServerId, u64, bool)> = l
                .learners
                .iter()
                .filter(|(_, h)| h.is_forwarding())
                .map(|(id, h)| (*id, h.session, h.observer))
                .collect();
            let entry = find(&self.log, zxid).ok().map(|i| self.log[i].clone());
            for (id, session, observer) in targets {
                let msg = match (&entry, observer) {
                    (_, false) => LeaderMsg::Commit { zxid },
                    (Some(e), true) => LeaderMsg::Inform {
                        entry: e.clone(),
                        prev: Some(prev),
                    },
                    (None, true) => continue,
                };
                self.send_to_learner(id, session, msg);
            }
            self.apply_upto(zxid);
        }
    }

    /// The link to learner `peer` broke: its session is over (it registers
    /// again on a new connection), so it leaves the forwarding and synced
    /// sets now rather than after syncLimit of silence. Whether we still
    /// lead is decided as before, by the quorum check on the next tick.
    pub(super) fn leader_on_disconnected(&mut self, peer: ServerId) {
        if let Some(l) = self.leading() {
            l.learners.remove(&peer);
        }
    }

    pub(super) fn leader_tick(&mut self) {
        let now = self.now;
        let cfg = self.cfg.clone();
        let me = cfg.my_id;
        let last_logged = self.last_logged_zxid();
        let Some(l) = self.leading() else {
            return;
        };
        if l.phase != Phase::Broadcast && now >= l.deadline {
            self.abdicate();
            return;
        }
        // Forget learners that went quiet; they will re-register.
        let broadcasting = l.phase == Phase::Broadcast;
        l.learners.retain(|_, h| {
            let limit = if broadcasting && h.phase == HandlerPhase::Synced {
                cfg.sync_timeout_ms()
            } else {
                cfg.init_timeout_ms()
            };
            now.saturating_sub(h.last_heard) <= limit
        });
        if broadcasting && now >= l.next_check_at {
            l.next_check_at = now + cfg.tick_ms;
            let synced = l
                .learners
                .iter()
                .filter(|(_, h)| h.phase == HandlerPhase::Synced)
                .map(|(id, _)| id)
                .chain(std::iter::once(&me));
            if !cfg.is_quorum(synced) {
                self.abdicate();
                return;
            }
        }
        let Some(l) = self.leading() else {
            return;
        };
        if now >= l.next_ping_at {
            l.next_ping_at = now + (cfg.tick_ms / 2).max(1);
            let committed = l.committed_zxid;
            let pings: Vec<(ServerId, u64, Zxid)> = l
                .learners
                .iter()
                .map(|(id, h)| {
                    // Observers never see uncommitted proposals.
                    let z = if h.observer { committed } else { last_logged };
                    (*id, h.session, z)
                })
                .collect();
            for (id, session, last_proposed) in pings {
                self.send_to_learner(id, session, LeaderMsg::Ping { last_proposed });
            }
        }
    }
}

/// Acks are cumulative: a voter that has `zxid` durable has every earlier
/// proposal of the epoch (it logs them in order).
fn record_ack(l: &mut Leading, from: ServerId, zxid: Zxid) {
    for (_, acks) in l.outstanding.range_mut(..=zxid) {
        acks.insert(from);
    }
}
