//! Mapping between the core's messages and the bytes of ZAB.md §4.1 / §5.1
//! (`zk_proto::quorum`). The driver uses it at the socket edge.
//!
//! What the wire does not carry: the learner session (the TCP connection
//! is the session), `prev` / `last_zxid` gap checks (TCP keeps order; they
//! decode as `None`), TRUNC's commit point (decoded as the truncation point;
//! later COMMITs cover the rest), and SNAP's state (the driver streams its
//! data tree after the packet and fills `entries` on the other side).

use bytes::Bytes;
use zk_proto::quorum::{
    self as wire, ack_epoch_data, leader_info_data, read_int_data, LearnerInfo, PacketType,
    QuorumPacket, LEARNER_PROTOCOL_VERSION,
};
use zk_proto::DecodeError;

use super::types::*;

/// Why a packet or notification does not map to a core message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("packet type {0} is not expected in this direction")]
    UnexpectedPacket(i32),
    #[error("field {0} is out of range")]
    OutOfRange(&'static str),
}

/// The election notification for `n`, with our config text.
pub fn notification_to_wire(n: &Notification, config: Bytes) -> wire::Notification {
    // A non-voter's vote is Long.MIN_VALUE everywhere (ZAB.md §4.2).
    let none = n.vote == Vote::NONE;
    let or_min = |v: i64| if none { i64::MIN } else { v };
    wire::Notification {
        state: n.state.code(),
        leader: or_min(n.vote.leader as i64),
        zxid: or_min(n.vote.zxid),
        election_epoch: n.election_epoch as i64,
        peer_epoch: or_min(i64::from(n.vote.peer_epoch)),
        version: wire::NOTIFICATION_VERSION,
        config,
    }
}

/// The core notification for a received one.
pub fn notification_from_wire(w: &wire::Notification) -> Result<Notification, WireError> {
    let state = ServerState::try_from(w.state)?;
    let vote = if w.leader < 0 {
        Vote::NONE
    } else {
        Vote {
            peer_epoch: Epoch::try_from(w.peer_epoch)
                .map_err(|_| WireError::OutOfRange("peerEpoch"))?,
            zxid: w.zxid,
            leader: w.leader as ServerId,
        }
    };
    let election_epoch =
        u64::try_from(w.election_epoch).map_err(|_| WireError::OutOfRange("electionEpoch"))?;
    Ok(Notification {
        state,
        vote,
        election_epoch,
    })
}

/// The packet a learner with id `my_id` sends for `msg`.
pub fn learner_msg_to_packet(my_id: ServerId, msg: &LearnerMsg) -> QuorumPacket {
    match msg {
        LearnerMsg::Info {
            accepted_epoch,
            observer,
        } => {
            let kind = if *observer {
                PacketType::ObserverInfo
            } else {
                PacketType::FollowerInfo
            };
            let info = LearnerInfo {
                server_id: my_id as i64,
                protocol_version: LEARNER_PROTOCOL_VERSION,
                config_version: 0,
            };
            QuorumPacket::new(kind, make_zxid(*accepted_epoch, 0))
                .with_data(zk_proto::Jute::to_bytes(&info))
        }
        LearnerMsg::AckEpoch {
            last_zxid,
            current_epoch,
        } => QuorumPacket::new(PacketType::AckEpoch, *last_zxid)
            .with_data(ack_epoch_data(*current_epoch)),
        LearnerMsg::Ack { zxid } => QuorumPacket::new(PacketType::Ack, *zxid),
        LearnerMsg::Ping => QuorumPacket::new(PacketType::Ping, 0),
    }
}

/// The core message for a packet a leader received, and the sender id a
/// FOLLOWERINFO / OBSERVERINFO announces.
pub fn learner_msg_from_packet(
    p: &QuorumPacket,
) -> Result<(LearnerMsg, Option<ServerId>), WireError> {
    let kind = p.kind().ok_or(WireError::UnexpectedPacket(p.packet_type))?;
    Ok(match kind {
        PacketType::FollowerInfo | PacketType::ObserverInfo => {
            let data = p.data.clone().ok_or(DecodeError::UnexpectedNull {
                what: "LearnerInfo",
            })?;
            let info = LearnerInfo::decode_lenient(data)?;
            let id =
                ServerId::try_from(info.server_id).map_err(|_| WireError::OutOfRange("sid"))?;
            let msg = LearnerMsg::Info {
                accepted_epoch: zxid_epoch(p.zxid),
                observer: kind == PacketType::ObserverInfo,
            };
            (msg, Some(id))
        }
        PacketType::AckEpoch => {
            let epoch = read_int_data(p.data.as_ref())?;
            let current_epoch = if epoch < 0 {
                None
            } else {
                Some(epoch as Epoch)
            };
            let msg = LearnerMsg::AckEpoch {
                last_zxid: p.zxid,
                current_epoch,
            };
            (msg, None)
        }
        PacketType::Ack => (LearnerMsg::Ack { zxid: p.zxid }, None),
        PacketType::Ping => (LearnerMsg::Ping, None),
        _ => return Err(WireError::UnexpectedPacket(p.packet_type)),
    })
}

/// The packet a leader sends for `msg`. For SNAP the driver writes its
/// serialized state right after it.
pub fn leader_msg_to_packet(msg: &LeaderMsg) -> QuorumPacket {
    match msg {
        LeaderMsg::LeaderInfo { epoch } => {
            QuorumPacket::new(PacketType::LeaderInfo, make_zxid(*epoch, 0))
                .with_data(leader_info_data(LEARNER_PROTOCOL_VERSION))
        }
        LeaderMsg::Diff { commit_upto } => QuorumPacket::new(PacketType::Diff, *commit_upto),
        LeaderMsg::Trunc { to, .. } => QuorumPacket::new(PacketType::Trunc, *to),
        // As Apache: SNAP's zxid is the zxid of the state that follows it.
        LeaderMsg::Snap { zxid, .. } => QuorumPacket::new(PacketType::Snap, *zxid),
        LeaderMsg::Proposal { entry, .. } => {
            QuorumPacket::new(PacketType::Proposal, entry.zxid).with_data(entry.payload.clone())
        }
        LeaderMsg::Commit { zxid } => QuorumPacket::new(PacketType::Commit, *zxid),
        LeaderMsg::Inform { entry, .. } => {
            QuorumPacket::new(PacketType::Inform, entry.zxid).with_data(entry.payload.clone())
        }
        LeaderMsg::NewLeader { epoch, .. } => {
            QuorumPacket::new(PacketType::NewLeader, make_zxid(*epoch, 0)).with_data(Bytes::new())
        }
        LeaderMsg::UpToDate => QuorumPacket::new(PacketType::UpToDate, -1),
        LeaderMsg::Ping { last_proposed } => QuorumPacket::new(PacketType::Ping, *last_proposed),
    }
}

/// The core message for a packet a learner received. SNAP comes back with
/// an empty state, committed up to its own zxid: the driver reads the state
/// (and our envelope the commit point) that follow it.
pub fn leader_msg_from_packet(p: &QuorumPacket) -> Result<LeaderMsg, WireError> {
    let kind = p.kind().ok_or(WireError::UnexpectedPacket(p.packet_type))?;
    let entry = || LogEntry {
        zxid: p.zxid,
        payload: p.data.clone().unwrap_or_default(),
    };
    Ok(match kind {
        PacketType::LeaderInfo => LeaderMsg::LeaderInfo {
            epoch: zxid_epoch(p.zxid),
        },
        PacketType::Diff => LeaderMsg::Diff {
            commit_upto: p.zxid,
        },
        PacketType::Trunc => LeaderMsg::Trunc {
            to: p.zxid,
            commit_upto: p.zxid,
        },
        PacketType::Snap => LeaderMsg::Snap {
            zxid: p.zxid,
            commit_upto: p.zxid,
        },
        PacketType::Proposal => LeaderMsg::Proposal {
            entry: entry(),
            prev: None,
        },
        PacketType::Commit => LeaderMsg::Commit { zxid: p.zxid },
        PacketType::Inform => LeaderMsg::Inform {
            entry: entry(),
            prev: None,
        },
        PacketType::NewLeader => LeaderMsg::NewLeader {
            epoch: zxid_epoch(p.zxid),
            last_zxid: None,
        },
        PacketType::UpToDate => LeaderMsg::UpToDate,
        PacketType::Ping => LeaderMsg::Ping {
            last_proposed: p.zxid,
        },
        _ => return Err(WireError::UnexpectedPacket(p.packet_type)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use zk_proto::Jute;

    fn through_bytes(p: QuorumPacket) -> QuorumPacket {
        QuorumPacket::from_bytes(p.to_bytes()).unwrap()
    }

    #[test]
    fn learner_messages_survive_the_wire() {
        let msgs = [
            LearnerMsg::Info {
                accepted_epoch: 3,
                observer: false,
            },
            LearnerMsg::Info {
                accepted_epoch: 0,
                observer: true,
            },
            LearnerMsg::AckEpoch {
                last_zxid: make_zxid(2, 9),
                current_epoch: Some(2),
            },
            LearnerMsg::AckEpoch {
                last_zxid: 0,
                current_epoch: None,
            },
            LearnerMsg::Ack {
                zxid: make_zxid(4, 1),
            },
            LearnerMsg::Ping,
        ];
        for msg in msgs {
            let p = through_bytes(learner_msg_to_packet(7, &msg));
            let (back, id) = learner_msg_from_packet(&p).unwrap();
            assert_eq!(back, msg);
            if matches!(msg, LearnerMsg::Info { .. }) {
                assert_eq!(id, Some(7));
            }
        }
    }

    #[test]
    fn followerinfo_carries_the_accepted_epoch_in_its_zxid() {
        let p = learner_msg_to_packet(
            2,
            &LearnerMsg::Info {
                accepted_epoch: 5,
                observer: false,
            },
        );
        assert_eq!(p.kind(), Some(PacketType::FollowerInfo));
        assert_eq!(p.zxid, make_zxid(5, 0));
        assert_eq!(p.data.unwrap().len(), 20);
    }

    #[test]
    fn leader_messages_survive_the_wire_minus_the_gap_checks() {
        let entry = LogEntry {
            zxid: make_zxid(3, 4),
            payload: Bytes::from_static(b"txn"),
        };
        let cases = [
            (LeaderMsg::LeaderInfo { epoch: 3 }, None),
            (
                LeaderMsg::Diff {
                    commit_upto: make_zxid(2, 2),
                },
                None,
            ),
            (
                LeaderMsg::Proposal {
                    entry: entry.clone(),
                    prev: Some(make_zxid(3, 3)),
                },
                Some(LeaderMsg::Proposal {
                    entry: entry.clone(),
                    prev: None,
                }),
            ),
            (
                LeaderMsg::Commit {
                    zxid: make_zxid(3, 4),
                },
                None,
            ),
            (
                LeaderMsg::NewLeader {
                    epoch: 3,
                    last_zxid: Some(make_zxid(3, 4)),
                },
                Some(LeaderMsg::NewLeader {
                    epoch: 3,
                    last_zxid: None,
                }),
            ),
            (LeaderMsg::UpToDate, None),
            (
                LeaderMsg::Ping {
                    last_proposed: make_zxid(3, 4),
                },
                None,
            ),
        ];
        for (msg, expected) in cases {
            let p = through_bytes(leader_msg_to_packet(&msg));
            let back = leader_msg_from_packet(&p).unwrap();
            assert_eq!(back, expected.unwrap_or(msg));
        }
    }

    #[test]
    fn uptodate_has_zxid_minus_one_and_trunc_its_target() {
        assert_eq!(leader_msg_to_packet(&LeaderMsg::UpToDate).zxid, -1);
        let p = leader_msg_to_packet(&LeaderMsg::Trunc {
            to: make_zxid(1, 2),
            commit_upto: make_zxid(1, 9),
        });
        assert_eq!(p.kind(), Some(PacketType::Trunc));
        assert_eq!(p.zxid, make_zxid(1, 2));
    }

    #[test]
    fn packets_of_the_other_direction_are_rejected() {
        let p = QuorumPacket::new(PacketType::Proposal, 1);
        assert_eq!(
            learner_msg_from_packet(&p),
            Err(WireError::UnexpectedPacket(2))
        );
        let p = QuorumPacket::new(PacketType::FollowerInfo, 1);
        assert!(leader_msg_from_packet(&p).is_err());
    }

    #[test]
    fn notifications_round_trip_and_observer_votes_are_min_value() {
        let n = Notification {
            state: ServerState::Following,
            vote: Vote {
                peer_epoch: 2,
                zxid: make_zxid(2, 7),
                leader: 3,
            },
            election_epoch: 5,
        };
        let w = notification_to_wire(&n, Bytes::new());
        let w = wire::Notification::decode_message(w.to_bytes()).unwrap();
        assert_eq!(notification_from_wire(&w).unwrap(), n);

        let obs = Notification {
            state: ServerState::Looking,
            vote: Vote::NONE,
            election_epoch: 1,
        };
        let w = notification_to_wire(&obs, Bytes::new());
        assert_eq!(
            (w.leader, w.zxid, w.peer_epoch),
            (i64::MIN, i64::MIN, i64::MIN)
        );
        assert_eq!(notification_from_wire(&w).unwrap().vote, Vote::NONE);
    }
}
