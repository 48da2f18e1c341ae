//! Fast Leader Election (ZAB.md §4).
//!
//! A LOOKING peer proposes the best vote it has seen, ordered by
//! (peerEpoch, zxid, id), and decides once a quorum of its round's votes
//! equals its proposal and nothing better arrived within `finalize_wait`.
//! Peers that already decided answer LOOKING peers with the vote they stand
//! by, which is how a late joiner finds the established leader.

use std::collections::BTreeMap;

use super::leader::Leading;
use super::learner::Learning;
use super::peer::{Peer, RoleState};
use super::types::*;

/// The state of one LOOKING spell.
#[derive(Debug, Default)]
pub(crate) struct Election {
    proposal: Option<Vote>,
    /// Votes of this round (same logical clock), by sender.
    recv: BTreeMap<ServerId, Notification>,
    /// Votes of peers that have already decided, by sender.
    out_of_election: BTreeMap<ServerId, Notification>,
    interval_ms: u64,
    next_resend_at: u64,
    finalize_at: Option<u64>,
}

/// True when the voters among `votes` that satisfy `same` form a quorum.
fn quorum_agrees(
    cfg: &PeerConfig,
    votes: &BTreeMap<ServerId, Notification>,
    same: impl Fn(&Notification) -> bool,
) -> bool {
    cfg.is_quorum(votes.iter().filter(|(_, n)| same(n)).map(|(id, _)| id))
}

impl Peer {
    /// Enters LOOKING: a new round, voting for ourselves (ZAB.md §4.3 step 1).
    pub(super) fn start_looking(&mut self) {
        self.logical_clock += 1;
        let proposal = self.initial_vote();
        let election = Election {
            proposal: Some(proposal),
            interval_ms: self.cfg.min_notification_interval_ms,
            next_resend_at: self.now + self.cfg.min_notification_interval_ms,
            ..Election::default()
        };
        self.set_role(RoleState::Looking(election));
        self.adopt_proposal(proposal);
    }

    /// Our own candidacy: voters propose themselves, others propose nobody.
    fn initial_vote(&self) -> Vote {
        if self.cfg.is_voter(self.cfg.my_id) {
            Vote {
                peer_epoch: self.current_epoch,
                zxid: self.last_logged_zxid(),
                leader: self.cfg.my_id,
            }
        } else {
            Vote::NONE
        }
    }

    fn my_looking_notification(&self, vote: Vote) -> Notification {
        Notification {
            state: ServerState::Looking,
            vote,
            election_epoch: self.logical_clock,
        }
    }

    /// Makes `vote` our proposal, records it as our own vote of the round
    /// and tells every voter.
    fn adopt_proposal(&mut self, vote: Vote) {
        let mine = self.my_looking_notification(vote);
        self.current_vote = mine;
        let me = self.cfg.my_id;
        let is_voter = self.cfg.is_voter(me);
        if let RoleState::Looking(el) = &mut self.role {
            el.proposal = Some(vote);
            el.finalize_at = None;
            if is_voter {
                el.recv.insert(me, mine);
            }
        }
        self.broadcast_notification(mine);
        // A lone voter is its own quorum.
        self.arm_finalize();
    }

    fn broadcast_notification(&mut self, n: Notification) {
        let targets: Vec<ServerId> = self
            .cfg
            .voters
            .iter()
            .copied()
            .filter(|&id| id != self.cfg.my_id)
            .collect();
        for to in targets {
            self.send(to, Message::Notification(n));
        }
    }

    pub(super) fn on_notification(&mut self, from: ServerId, n: Notification) {
        let looking = matches!(self.role, RoleState::Looking(_));
        // Non-voters get our current vote and are otherwise ignored; a
        // decided peer answers anyone still looking (ZAB.md §4.3 steps 3, 7).
        if !self.cfg.is_voter(from) || !looking {
            if n.state == ServerState::Looking {
                let reply = self.current_vote;
                self.send(from, Message::Notification(reply));
            }
            return;
        }
        match n.state {
            ServerState::Looking if self.cfg.is_voter(self.cfg.my_id) => {
                self.on_looking_notification(from, n)
            }
            ServerState::Looking | ServerState::Observing => {}
            ServerState::Following | ServerState::Leading => self.on_decided_notification(from, n),
        }
    }

    /// ZAB.md §4.3 step 4.
    fn on_looking_notification(&mut self, from: ServerId, n: Notification) {
        if !self.cfg.is_voter(n.vote.leader) {
            return;
        }
        let initial = self.initial_vote();
        let proposal = match &self.role {
            RoleState::Looking(el) => el.proposal.unwrap_or(initial),
            _ => return,
        };
        if n.election_epoch > self.logical_clock {
            // A newer round: join it, starting over from the better of its
            // vote and our own candidacy.
            self.logical_clock = n.election_epoch;
            if let RoleState::Looking(el) = &mut self.role {
                el.recv.clear();
            }
            self.adopt_proposal(n.vote.max(initial));
        } else if n.election_epoch < self.logical_clock {
            let reply = self.my_looking_notification(proposal);
            self.send(from, Message::Notification(reply));
            return;
        } else if n.vote > proposal {
            self.adopt_proposal(n.vote);
        }
        if let RoleState::Looking(el) = &mut self.role {
            el.recv.insert(from, n);
        }
        self.arm_finalize();
    }

    /// Once a quorum of this round's votes equals our proposal, wait
    /// `finalize_wait` for anything better before deciding.
    fn arm_finalize(&mut self) {
        let cfg = &self.cfg;
        let now = self.now;
        let RoleState::Looking(el) = &mut self.role else {
            return;
        };
        let Some(proposal) = el.proposal else {
            return;
        };
        if el.finalize_at.is_none() && quorum_agrees(cfg, &el.recv, |v| v.vote == proposal) {
            el.finalize_at = Some(now + cfg.finalize_wait_ms);
        }
    }

    /// ZAB.md §4.3 step 5: a FOLLOWING or LEADING sender.
    fn on_decided_notification(&mut self, from: ServerId, n: Notification) {
        let me = self.cfg.my_id;
        let clock = self.logical_clock;
        let cfg = self.cfg.clone();
        let RoleState::Looking(el) = &mut self.role else {
            return;
        };
        // The established leader must vouch for itself with a LEADING vote;
        // if the vote names us, the round must be ours.
        let check_leader = |votes: &BTreeMap<ServerId, Notification>| {
            if n.vote.leader == me {
                clock == n.election_epoch
            } else {
                votes
                    .get(&n.vote.leader)
                    .is_some_and(|v| v.state == ServerState::Leading)
            }
        };
        let mut decided = false;
        if n.election_epoch == clock {
            el.recv.insert(from, n);
            decided = quorum_agrees(&cfg, &el.recv, |v| v.vote == n.vote) && check_leader(&el.recv);
        }
        el.out_of_election.insert(from, n);
        if !decided {
            decided = quorum_agrees(&cfg, &el.out_of_election, |v| {
                v.vote.leader == n.vote.leader && v.vote.peer_epoch == n.vote.peer_epoch
            }) && check_leader(&el.out_of_election);
            if decided {
                self.logical_clock = n.election_epoch;
            }
        }
        if decided {
            self.decide(n.vote, n.election_epoch);
        }
    }

    pub(super) fn election_tick(&mut self) {
        let now = self.now;
        let cfg = self.cfg.clone();
        let RoleState::Looking(el) = &mut self.role else {
            return;
        };
        if let (Some(at), Some(proposal)) = (el.finalize_at, el.proposal) {
            if now >= at {
                if quorum_agrees(&cfg, &el.recv, |v| v.vote == proposal) {
                    let clock = self.logical_clock;
                    self.decide(proposal, clock);
                    return;
                }
                el.finalize_at = None;
            }
        }
        if now >= el.next_resend_at {
            el.interval_ms = (el.interval_ms * 2).min(cfg.max_notification_interval_ms);
            el.next_resend_at = now + el.interval_ms;
            let mine = self.current_vote;
            self.broadcast_notification(mine);
        }
    }

    /// Once a peer belongs to epoch `epoch`, the vote it shows LOOKING peers
    /// names that epoch. Members that reached the same leader by different
    /// routes (a LOOKING round, or joining late) then show the same
    /// (leader, peerEpoch), which is what a joiner needs a quorum of.
    pub(super) fn stand_for_epoch(&mut self, epoch: Epoch) {
        self.current_vote.vote.peer_epoch = epoch;
    }

    /// Ends the election for `vote` (ZAB.md §4.3: LEADING, FOLLOWING or
    /// OBSERVING).
    fn decide(&mut self, vote: Vote, election_epoch: u64) {
        let me = self.cfg.my_id;
        let state = if vote.leader == me {
            ServerState::Leading
        } else if self.cfg.is_voter(me) {
            ServerState::Following
        } else {
            ServerState::Observing
        };
        self.current_vote = Notification {
            state,
            vote,
            election_epoch,
        };
        match state {
            ServerState::Leading => {
                let leading = Leading::new(self);
                self.set_role(RoleState::Leading(Box::new(leading)));
                self.leader_started();
            }
            _ => {
                let session = self.next_session();
                let learning = Learning::new(
                    vote.leader,
                    state == ServerState::Observing,
                    session,
                    self.now,
                );
                self.set_role(RoleState::Learning(Box::new(learning)));
                self.learner_started();
            }
        }
    }
}
