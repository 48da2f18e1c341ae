//! The bytes of one peer-link message.
//!
//! Core traffic uses Apache's records (`quorum::wire`: QuorumPacket and the
//! election Notification); around them sits our own small envelope, one
//! tag byte and the fields the Apache stream leaves implicit: the learner
//! session (Apache: the TCP connection), the core's gap checks (`prev`,
//! NEWLEADER's `last_zxid`) and the commit point of TRUNC and SNAP. The
//! driver's own traffic (forwarded requests, session touches, sync) has
//! tags of its own.
//!
//! SNAP travels as Apache 3.8 sends it on the quorum stream: the SNAP
//! packet, then the snapshot body (sessions, ACL cache, nodes, `"/"`, the
//! bytes of `db::snapshot`) in pieces ([`PeerMsg::SnapChunk`]), then the
//! signature string `"BenWasHere"` ([`PeerMsg::SnapEnd`]). Each piece is a
//! message of its own, so no message grows with the tree.

use bytes::{BufMut, Bytes, BytesMut};
use zk_proto::quorum::{self as wire_rec, QuorumPacket};
use zk_proto::{DecodeError, Id, Jute, Reader, RequestFrame};

use crate::db::SessionId;
use crate::quorum::wire::{self, WireError};
use crate::quorum::{LeaderMsg, Message, ServerId, Zxid};

/// Everything that travels between two servers' pipelines.
#[derive(Debug, Clone, PartialEq)]
pub enum PeerMsg {
    /// Quorum core traffic.
    Core(Message),
    /// Learner → leader: a client write to prepare and propose (REQUEST).
    Forward {
        session: SessionId,
        auth: Vec<Id>,
        frame: RequestFrame,
    },
    /// Learner → leader: a new session to propose (createSession REQUEST).
    CreateSession { session: SessionId, timeout: i32 },
    /// Learner → leader: sessions its clients kept alive (PING payload).
    Touch(Vec<(SessionId, i32)>),
    /// Learner → leader: where is the end of your proposals? (SYNC)
    SyncRequest { token: u64 },
    /// Leader → learner: the answer; the learner answers its client once it
    /// applied up to `zxid`.
    SyncReply { token: u64, zxid: Zxid },
    /// Leader → learner, after a SNAP packet: the next piece of the body.
    SnapChunk(Bytes),
    /// Leader → learner: the body is complete (`complete`, with Apache's
    /// signature), or abandoned (the leader started over, e.g. for a new
    /// connection attempt of the learner).
    SnapEnd { complete: bool },
}

/// What Apache writes after a streamed snapshot (`Leader` / `Learner`).
pub const SNAP_SIGNATURE: &str = "BenWasHere";
/// What we write instead when a stream is abandoned.
const SNAP_ABANDONED: &str = "abandoned";

/// Why a received message did not decode.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("unknown message tag {0}")]
    UnknownTag(u8),
}

const TAG_NOTIFICATION: u8 = 0;
const TAG_TO_LEADER: u8 = 1;
const TAG_TO_LEARNER: u8 = 2;
const TAG_FORWARD: u8 = 3;
const TAG_CREATE_SESSION: u8 = 4;
const TAG_TOUCH: u8 = 5;
const TAG_SYNC_REQUEST: u8 = 6;
const TAG_SYNC_REPLY: u8 = 7;
const TAG_SNAP_CHUNK: u8 = 8;
const TAG_SNAP_END: u8 = 9;

/// `None` travels as `i64::MIN` (no zxid is negative).
const NO_ZXID: i64 = i64::MIN;

fn opt_zxid(z: Option<Zxid>) -> i64 {
    z.unwrap_or(NO_ZXID)
}

fn zxid_opt(v: i64) -> Option<Zxid> {
    (v != NO_ZXID).then_some(v)
}

/// Encodes `msg`, sent by server `my_id`.
pub fn encode(my_id: ServerId, msg: &PeerMsg) -> Bytes {
    let mut buf = BytesMut::new();
    match msg {
        PeerMsg::Core(Message::Notification(n)) => {
            buf.put_u8(TAG_NOTIFICATION);
            wire::notification_to_wire(n, Bytes::new()).encode(&mut buf);
        }
        PeerMsg::Core(Message::ToLeader { session, msg }) => {
            buf.put_u8(TAG_TO_LEADER);
            buf.put_u64(*session);
            wire::learner_msg_to_packet(my_id, msg).encode(&mut buf);
        }
        PeerMsg::Core(Message::ToLearner { session, msg }) => {
            buf.put_u8(TAG_TO_LEARNER);
            buf.put_u64(*session);
            encode_leader_extras(msg, &mut buf);
            wire::leader_msg_to_packet(msg).encode(&mut buf);
        }
        PeerMsg::SnapChunk(bytes) => {
            buf.reserve(1 + bytes.len());
            buf.put_u8(TAG_SNAP_CHUNK);
            buf.extend_from_slice(bytes);
        }
        PeerMsg::SnapEnd { complete } => {
            buf.put_u8(TAG_SNAP_END);
            let signature = if *complete {
                SNAP_SIGNATURE
            } else {
                SNAP_ABANDONED
            };
            signature.to_string().encode(&mut buf);
        }
        PeerMsg::Forward {
            session,
            auth,
            frame,
        } => {
            buf.put_u8(TAG_FORWARD);
            buf.put_i64(*session);
            auth.encode(&mut buf);
            frame.encode(&mut buf);
        }
        PeerMsg::CreateSession { session, timeout } => {
            buf.put_u8(TAG_CREATE_SESSION);
            buf.put_i64(*session);
            buf.put_i32(*timeout);
        }
        PeerMsg::Touch(sessions) => {
            buf.put_u8(TAG_TOUCH);
            buf.put_i32(i32::try_from(sessions.len()).unwrap_or(i32::MAX));
            for (id, timeout) in sessions {
                buf.put_i64(*id);
                buf.put_i32(*timeout);
            }
        }
        PeerMsg::SyncRequest { token } => {
            buf.put_u8(TAG_SYNC_REQUEST);
            buf.put_u64(*token);
        }
        PeerMsg::SyncReply { token, zxid } => {
            buf.put_u8(TAG_SYNC_REPLY);
            buf.put_u64(*token);
            buf.put_i64(*zxid);
        }
    }
    buf.freeze()
}

/// The fields the Apache packet has no room for: prev, NEWLEADER's last
/// zxid, TRUNC's commit point.
fn encode_leader_extras(msg: &LeaderMsg, buf: &mut BytesMut) {
    let (prev, last, commit) = match msg {
        LeaderMsg::Proposal { prev, .. } | LeaderMsg::Inform { prev, .. } => (*prev, None, None),
        LeaderMsg::NewLeader { last_zxid, .. } => (None, *last_zxid, None),
        LeaderMsg::Trunc { commit_upto, .. } | LeaderMsg::Snap { commit_upto, .. } => {
            (None, None, Some(*commit_upto))
        }
        _ => (None, None, None),
    };
    buf.put_i64(opt_zxid(prev));
    buf.put_i64(opt_zxid(last));
    buf.put_i64(opt_zxid(commit));
}

/// Decodes one message. Never panics on any input.
pub fn decode(bytes: Bytes) -> Result<PeerMsg, CodecError> {
    let mut r = Reader::new(bytes);
    let tag = r.read_u8()?;
    Ok(match tag {
        TAG_NOTIFICATION => {
            let n = wire_rec::Notification::decode_message(r.take_rest())?;
            PeerMsg::Core(Message::Notification(wire::notification_from_wire(&n)?))
        }
        TAG_TO_LEADER => {
            let session = r.read_i64()? as u64;
            let packet = QuorumPacket::decode(&mut r)?;
            let (msg, _announced_id) = wire::learner_msg_from_packet(&packet)?;
            PeerMsg::Core(Message::ToLeader { session, msg })
        }
        TAG_TO_LEARNER => {
            let session = r.read_i64()? as u64;
            let prev = zxid_opt(r.read_i64()?);
            let last = zxid_opt(r.read_i64()?);
            let commit = zxid_opt(r.read_i64()?);
            let packet = QuorumPacket::decode(&mut r)?;
            let mut msg = wire::leader_msg_from_packet(&packet)?;
            match &mut msg {
                LeaderMsg::Proposal { prev: p, .. } | LeaderMsg::Inform { prev: p, .. } => {
                    *p = prev
                }
                LeaderMsg::NewLeader { last_zxid, .. } => *last_zxid = last,
                LeaderMsg::Trunc { commit_upto, .. } => {
                    if let Some(c) = commit {
                        *commit_upto = c;
                    }
                }
                LeaderMsg::Snap { commit_upto, .. } => {
                    if let Some(c) = commit {
                        *commit_upto = c;
                    }
                }
                _ => {}
            }
            PeerMsg::Core(Message::ToLearner { session, msg })
        }
        TAG_FORWARD => {
            let session = r.read_i64()?;
            let auth = Vec::<Id>::decode(&mut r)?;
            let frame = RequestFrame::decode(&mut r)?;
            PeerMsg::Forward {
                session,
                auth,
                frame,
            }
        }
        TAG_CREATE_SESSION => PeerMsg::CreateSession {
            session: r.read_i64()?,
            timeout: r.read_i32()?,
        },
        TAG_TOUCH => {
            let n = count(r.read_i32()?, r.remaining(), 12)?;
            let mut sessions = Vec::with_capacity(n);
            for _ in 0..n {
                sessions.push((r.read_i64()?, r.read_i32()?));
            }
            PeerMsg::Touch(sessions)
        }
        TAG_SYNC_REQUEST => PeerMsg::SyncRequest {
            token: r.read_i64()? as u64,
        },
        TAG_SYNC_REPLY => PeerMsg::SyncReply {
            token: r.read_i64()? as u64,
            zxid: r.read_i64()?,
        },
        TAG_SNAP_CHUNK => PeerMsg::SnapChunk(r.take_rest()),
        TAG_SNAP_END => PeerMsg::SnapEnd {
            complete: String::decode(&mut r)? == SNAP_SIGNATURE,
        },
        other => return Err(CodecError::UnknownTag(other)),
    })
}

/// A vector length checked against what is left (each item is at least
/// `min_item` bytes), so a bad length cannot make us allocate wildly.
fn count(n: i32, remaining: usize, min_item: usize) -> Result<usize, DecodeError> {
    let n = usize::try_from(n).unwrap_or(0);
    if n.saturating_mul(min_item) > remaining {
        return Err(DecodeError::UnexpectedEof {
            what: "peer message vector",
            needed: n.saturating_mul(min_item),
            remaining,
        });
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quorum::{make_zxid, LearnerMsg, LogEntry, Notification, ServerState, Vote};
    use zk_proto::{GetDataRequest, Request};

    fn round_trip(msg: PeerMsg) -> PeerMsg {
        decode(encode(3, &msg)).unwrap()
    }

    #[test]
    fn leader_messages_keep_their_gap_checks_and_snap_state() {
        let entry = LogEntry {
            zxid: make_zxid(2, 5),
            payload: Bytes::from_static(b"txn"),
        };
        let msgs = [
            LeaderMsg::Proposal {
                entry: entry.clone(),
                prev: Some(make_zxid(2, 4)),
            },
            LeaderMsg::NewLeader {
                epoch: 2,
                last_zxid: Some(make_zxid(2, 5)),
            },
            LeaderMsg::Trunc {
                to: make_zxid(1, 3),
                commit_upto: make_zxid(2, 5),
            },
            LeaderMsg::Snap {
                zxid: make_zxid(2, 3),
                commit_upto: make_zxid(2, 5),
            },
            LeaderMsg::UpToDate,
        ];
        for msg in msgs {
            let core = PeerMsg::Core(Message::ToLearner { session: 99, msg });
            assert_eq!(round_trip(core.clone()), core);
        }
    }

    #[test]
    fn learner_messages_and_notifications_round_trip() {
        let msgs = [
            Message::ToLeader {
                session: u64::MAX,
                msg: LearnerMsg::AckEpoch {
                    last_zxid: make_zxid(1, 1),
                    current_epoch: Some(1),
                },
            },
            Message::Notification(Notification {
                state: ServerState::Looking,
                vote: Vote {
                    peer_epoch: 1,
                    zxid: 7,
                    leader: 2,
                },
                election_epoch: 4,
            }),
        ];
        for msg in msgs {
            assert_eq!(round_trip(PeerMsg::Core(msg.clone())), PeerMsg::Core(msg));
        }
    }

    #[test]
    fn driver_messages_round_trip() {
        let msgs = [
            PeerMsg::Forward {
                session: 0x1234,
                auth: vec![Id::new("ip", "127.0.0.1")],
                frame: RequestFrame::new(
                    7,
                    Request::GetData(GetDataRequest {
                        path: "/a".into(),
                        watch: false,
                    }),
                ),
            },
            PeerMsg::CreateSession {
                session: 5,
                timeout: 4000,
            },
            PeerMsg::Touch(vec![(1, 2000), (2, 3000)]),
            PeerMsg::SyncRequest { token: 8 },
            PeerMsg::SyncReply {
                token: 8,
                zxid: make_zxid(3, 1),
            },
            PeerMsg::SnapChunk(Bytes::from_static(b"part of a tree")),
            PeerMsg::SnapEnd { complete: true },
            PeerMsg::SnapEnd { complete: false },
        ];
        for msg in msgs {
            assert_eq!(round_trip(msg.clone()), msg);
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [&b""[..], b"\x09", b"\x05\x7f\xff\xff\xff", b"\x02\x00"] {
            assert!(decode(Bytes::copy_from_slice(bytes)).is_err());
        }
    }
}
