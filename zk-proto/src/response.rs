//! Replies, typed by the opcode of the request they answer.

use bytes::{BufMut, Bytes};

use crate::consts::{ErrorCode, OpCode};
use crate::data::Stat;
use crate::jute::{DecodeError, Jute, Reader};
use crate::proto::*;

/// One result of a `multi` / `multiRead`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiResult {
    Create(CreateResponse),
    /// Used for create2, createContainer and createTTL ops.
    Create2(Create2Response),
    Delete,
    SetData(SetDataResponse),
    Check,
    GetData(GetDataResponse),
    GetChildren(GetChildrenResponse),
    /// A failed op (or, in a failed multi, an op before the failing one,
    /// with code 0). Holds the raw error code number.
    Error(i32),
}

impl MultiResult {
    fn header(&self) -> MultiHeader {
        let (op, err) = match self {
            MultiResult::Create(_) => (OpCode::Create, 0),
            MultiResult::Create2(_) => (OpCode::Create2, 0),
            MultiResult::Delete => (OpCode::Delete, 0),
            MultiResult::SetData(_) => (OpCode::SetData, 0),
            MultiResult::Check => (OpCode::Check, 0),
            MultiResult::GetData(_) => (OpCode::GetData, 0),
            MultiResult::GetChildren(_) => (OpCode::GetChildren, 0),
            MultiResult::Error(code) => (OpCode::Error, *code),
        };
        MultiHeader {
            op: op.code(),
            done: false,
            err,
        }
    }

    /// The error code of a failed entry; `None` for a success entry.
    pub fn error(&self) -> Option<i32> {
        match self {
            MultiResult::Error(code) => Some(*code),
            _ => None,
        }
    }

    fn decode_body(header: &MultiHeader, r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(match OpCode::try_from(header.op)? {
            OpCode::Create => MultiResult::Create(Jute::decode(r)?),
            OpCode::Create2 => MultiResult::Create2(Jute::decode(r)?),
            OpCode::Delete => MultiResult::Delete,
            OpCode::SetData => MultiResult::SetData(Jute::decode(r)?),
            OpCode::Check => MultiResult::Check,
            OpCode::GetData => MultiResult::GetData(Jute::decode(r)?),
            OpCode::GetChildren => MultiResult::GetChildren(Jute::decode(r)?),
            OpCode::Error => MultiResult::Error(ErrorResponse::decode(r)?.err),
            _ => return Err(DecodeError::Invalid("unexpected result type inside multi")),
        })
    }

    fn encode_body<B: BufMut>(&self, buf: &mut B) {
        match self {
            MultiResult::Create(r) => r.encode(buf),
            MultiResult::Create2(r) => r.encode(buf),
            MultiResult::SetData(r) => r.encode(buf),
            MultiResult::GetData(r) => r.encode(buf),
            MultiResult::GetChildren(r) => r.encode(buf),
            MultiResult::Error(err) => ErrorResponse { err: *err }.encode(buf),
            MultiResult::Delete | MultiResult::Check => {}
        }
    }
}

/// The body of a multi / multiRead reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiResponse {
    pub results: Vec<MultiResult>,
}

impl MultiResponse {
    /// The first non-zero error code, which is what a failed multi reports
    /// (the reply header's err stays 0).
    pub fn first_error(&self) -> Option<i32> {
        self.results
            .iter()
            .filter_map(MultiResult::error)
            .find(|&code| code != ErrorCode::Ok.code())
    }
}

impl Jute for MultiResponse {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        for result in &self.results {
            result.header().encode(buf);
            result.encode_body(buf);
        }
        MultiHeader::DONE.encode(buf);
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let mut results = Vec::new();
        loop {
            let header = MultiHeader::decode(r)?;
            if header.done {
                return Ok(MultiResponse { results });
            }
            results.push(MultiResult::decode_body(&header, r)?);
        }
    }
}

/// A successful reply body, typed by the request's opcode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// delete, check, ping, auth, setWatches(2), checkWatches,
    /// removeWatches, closeSession, and every failed request.
    Empty,
    Create(CreateResponse),
    /// create2, createContainer, createTTL.
    Create2(Create2Response),
    /// exists, setData, setACL: a bare Stat.
    Stat(Stat),
    /// getData, and reconfig (the new config and its Stat).
    GetData(GetDataResponse),
    GetAcl(GetAclResponse),
    GetChildren(GetChildrenResponse),
    GetChildren2(GetChildren2Response),
    Sync(SyncResponse),
    Multi(MultiResponse),
    Sasl(SetSaslResponse),
    GetEphemerals(GetEphemeralsResponse),
    GetAllChildrenNumber(GetAllChildrenNumberResponse),
    /// addWatch answers with an `ErrorResponse` holding 0.
    AddWatch(ErrorResponse),
    WhoAmI(WhoAmIResponse),
}

impl Response {
    pub fn encode_body<B: BufMut>(&self, buf: &mut B) {
        match self {
            Response::Empty => {}
            Response::Create(r) => r.encode(buf),
            Response::Create2(r) => r.encode(buf),
            Response::Stat(r) => r.encode(buf),
            Response::GetData(r) => r.encode(buf),
            Response::GetAcl(r) => r.encode(buf),
            Response::GetChildren(r) => r.encode(buf),
            Response::GetChildren2(r) => r.encode(buf),
            Response::Sync(r) => r.encode(buf),
            Response::Multi(r) => r.encode(buf),
            Response::Sasl(r) => r.encode(buf),
            Response::GetEphemerals(r) => r.encode(buf),
            Response::GetAllChildrenNumber(r) => r.encode(buf),
            Response::AddWatch(r) => r.encode(buf),
            Response::WhoAmI(r) => r.encode(buf),
        }
    }

    /// Decodes the body of a successful reply to a request with opcode `op`.
    pub fn decode_body(op: OpCode, r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(match op {
            OpCode::Create => Response::Create(Jute::decode(r)?),
            OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
                Response::Create2(Jute::decode(r)?)
            }
            OpCode::Exists | OpCode::SetData | OpCode::SetAcl => Response::Stat(Jute::decode(r)?),
            OpCode::GetData | OpCode::Reconfig => Response::GetData(Jute::decode(r)?),
            OpCode::GetAcl => Response::GetAcl(Jute::decode(r)?),
            OpCode::GetChildren => Response::GetChildren(Jute::decode(r)?),
            OpCode::GetChildren2 => Response::GetChildren2(Jute::decode(r)?),
            OpCode::Sync => Response::Sync(Jute::decode(r)?),
            OpCode::Multi | OpCode::MultiRead => Response::Multi(Jute::decode(r)?),
            OpCode::Sasl => Response::Sasl(Jute::decode(r)?),
            OpCode::GetEphemerals => Response::GetEphemerals(Jute::decode(r)?),
            OpCode::GetAllChildrenNumber => Response::GetAllChildrenNumber(Jute::decode(r)?),
            OpCode::AddWatch => Response::AddWatch(Jute::decode(r)?),
            OpCode::WhoAmI => Response::WhoAmI(Jute::decode(r)?),
            OpCode::Delete
            | OpCode::DeleteContainer
            | OpCode::Check
            | OpCode::Ping
            | OpCode::CheckWatches
            | OpCode::RemoveWatches
            | OpCode::Auth
            | OpCode::SetWatches
            | OpCode::SetWatches2
            | OpCode::CloseSession
            | OpCode::Notification
            | OpCode::CreateSession
            | OpCode::Error => Response::Empty,
        })
    }
}

/// A whole server frame body after the handshake: reply header plus body.
/// When `err != 0` the body is not encoded (Apache sends none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyFrame {
    pub header: ReplyHeader,
    pub response: Response,
}

impl ReplyFrame {
    /// Decodes a reply to a request with opcode `op`. A failed reply's body
    /// (if a server sent one) is ignored, as Java's client does.
    pub fn decode_reply(frame: Bytes, op: OpCode) -> Result<Self, DecodeError> {
        let mut r = Reader::new(frame);
        let header = ReplyHeader::decode(&mut r)?;
        let response = if header.err != 0 {
            Response::Empty
        } else {
            Response::decode_body(op, &mut r)?
        };
        Ok(ReplyFrame { header, response })
    }

    /// Encodes the frame body (no length prefix).
    pub fn encode<B: BufMut>(&self, buf: &mut B) {
        self.header.encode(buf);
        if self.header.err == 0 {
            self.response.encode_body(buf);
        }
    }
}

/// What a server sends after the handshake, as a client sees it before it
/// has matched the reply to a request: notifications and special replies
/// are recognised by xid alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerMessage {
    /// xid -1.
    Notification { zxid: i64, event: WatcherEvent },
    /// Any other xid: the body still to be decoded with the request's opcode.
    Reply { header: ReplyHeader, body: Reader },
}

impl ServerMessage {
    pub fn decode_frame(frame: Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new(frame);
        let header = ReplyHeader::decode(&mut r)?;
        if header.xid == crate::consts::xid::NOTIFICATION {
            Ok(ServerMessage::Notification {
                zxid: header.zxid,
                event: WatcherEvent::decode(&mut r)?,
            })
        } else {
            Ok(ServerMessage::Reply { header, body: r })
        }
    }
}

/// Encodes a notification frame body (xid -1).
pub fn encode_notification<B: BufMut>(zxid: i64, event: &WatcherEvent, buf: &mut B) {
    ReplyHeader {
        xid: crate::consts::xid::NOTIFICATION,
        zxid,
        err: 0,
    }
    .encode(buf);
    event.encode(buf);
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    #[test]
    fn failed_multi_matches_the_observed_bytes() {
        let resp = MultiResponse {
            results: vec![
                MultiResult::Error(0),
                MultiResult::Error(ErrorCode::NodeExists.code()),
                MultiResult::Error(ErrorCode::RuntimeInconsistency.code()),
            ],
        };
        let hex: String = resp.to_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "ffffffff 00 00000000 00000000 | ffffffff 00 ffffff92 ffffff92 | \
             ffffffff 00 fffffffe fffffffe | ffffffff 01 ffffffff"
                .replace([' ', '|'], "")
        );
        assert_eq!(resp.first_error(), Some(-110));
        assert_eq!(MultiResponse::from_bytes(resp.to_bytes()).unwrap(), resp);
    }

    #[test]
    fn error_replies_carry_no_body() {
        let frame = ReplyFrame {
            header: ReplyHeader {
                xid: 3,
                zxid: 9,
                err: ErrorCode::NoNode.code(),
            },
            response: Response::Empty,
        };
        let mut buf = BytesMut::new();
        frame.encode(&mut buf);
        assert_eq!(buf.len(), 16);
        assert_eq!(
            ReplyFrame::decode_reply(buf.freeze(), OpCode::GetData).unwrap(),
            frame
        );
    }

    #[test]
    fn notifications_are_recognised_by_xid() {
        let event = WatcherEvent {
            event_type: 1,
            state: 3,
            path: "/a".into(),
        };
        let mut buf = BytesMut::new();
        encode_notification(-1, &event, &mut buf);
        match ServerMessage::decode_frame(buf.freeze()).unwrap() {
            ServerMessage::Notification { zxid, event: got } => {
                assert_eq!(zxid, -1);
                assert_eq!(got, event);
            }
            other => panic!("expected a notification, got {other:?}"),
        }
    }
}
