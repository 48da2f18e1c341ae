//! Requests, typed by opcode: what a client sends after the connect request.

use bytes::{BufMut, Bytes, BytesMut};

use crate::consts::{xid, OpCode};
use crate::jute::{DecodeError, Jute, NullStrings, Reader};
use crate::proto::*;

/// One op of a `multi` (write ops) or `multiRead` (getData / getChildren).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOp {
    Create(CreateRequest),
    Create2(CreateRequest),
    CreateContainer(CreateRequest),
    CreateTtl(CreateTtlRequest),
    Delete(DeleteRequest),
    SetData(SetDataRequest),
    Check(CheckVersionRequest),
    GetData(GetDataRequest),
    GetChildren(GetChildrenRequest),
}

impl MultiOp {
    pub fn op_code(&self) -> OpCode {
        match self {
            MultiOp::Create(_) => OpCode::Create,
            MultiOp::Create2(_) => OpCode::Create2,
            MultiOp::CreateContainer(_) => OpCode::CreateContainer,
            MultiOp::CreateTtl(_) => OpCode::CreateTtl,
            MultiOp::Delete(_) => OpCode::Delete,
            MultiOp::SetData(_) => OpCode::SetData,
            MultiOp::Check(_) => OpCode::Check,
            MultiOp::GetData(_) => OpCode::GetData,
            MultiOp::GetChildren(_) => OpCode::GetChildren,
        }
    }

    /// The path the op acts on.
    pub fn path(&self) -> &str {
        match self {
            MultiOp::Create(r) | MultiOp::Create2(r) | MultiOp::CreateContainer(r) => &r.path,
            MultiOp::CreateTtl(r) => &r.path,
            MultiOp::Delete(r) => &r.path,
            MultiOp::SetData(r) => &r.path,
            MultiOp::Check(r) => &r.path,
            MultiOp::GetData(r) => &r.path,
            MultiOp::GetChildren(r) => &r.path,
        }
    }

    /// Reads are the only ops a `multiRead` may hold, and a `multi` none.
    pub fn is_read(&self) -> bool {
        matches!(self, MultiOp::GetData(_) | MultiOp::GetChildren(_))
    }

    fn encode_body<B: BufMut>(&self, buf: &mut B) {
        match self {
            MultiOp::Create(r) | MultiOp::Create2(r) | MultiOp::CreateContainer(r) => r.encode(buf),
            MultiOp::CreateTtl(r) => r.encode(buf),
            MultiOp::Delete(r) => r.encode(buf),
            MultiOp::SetData(r) => r.encode(buf),
            MultiOp::Check(r) => r.encode(buf),
            MultiOp::GetData(r) => r.encode(buf),
            MultiOp::GetChildren(r) => r.encode(buf),
        }
    }

    fn decode_body(op: i32, r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(match OpCode::try_from(op)? {
            OpCode::Create => MultiOp::Create(Jute::decode(r)?),
            OpCode::Create2 => MultiOp::Create2(Jute::decode(r)?),
            OpCode::CreateContainer => MultiOp::CreateContainer(Jute::decode(r)?),
            OpCode::CreateTtl => MultiOp::CreateTtl(Jute::decode(r)?),
            OpCode::Delete => MultiOp::Delete(Jute::decode(r)?),
            OpCode::SetData => MultiOp::SetData(Jute::decode(r)?),
            OpCode::Check => MultiOp::Check(Jute::decode(r)?),
            OpCode::GetData => MultiOp::GetData(Jute::decode(r)?),
            OpCode::GetChildren => MultiOp::GetChildren(Jute::decode(r)?),
            _ => return Err(DecodeError::Invalid("op not allowed inside multi")),
        })
    }
}

/// The body of multi (14) and multiRead (22): ops, each behind a
/// [`MultiHeader`], ended by [`MultiHeader::DONE`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiRequest {
    pub ops: Vec<MultiOp>,
}

impl Jute for MultiRequest {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        for op in &self.ops {
            MultiHeader {
                op: op.op_code().code(),
                done: false,
                err: -1,
            }
            .encode(buf);
            op.encode_body(buf);
        }
        MultiHeader::DONE.encode(buf);
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let mut ops = Vec::new();
        loop {
            let header = MultiHeader::decode(r)?;
            if header.done {
                return Ok(MultiRequest { ops });
            }
            ops.push(MultiOp::decode_body(header.op, r)?);
        }
    }
}

/// A request body, typed by the opcode of its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Create(CreateRequest),
    Create2(CreateRequest),
    CreateContainer(CreateRequest),
    CreateTtl(CreateTtlRequest),
    Delete(DeleteRequest),
    DeleteContainer(DeleteContainerRequest),
    Exists(ExistsRequest),
    GetData(GetDataRequest),
    SetData(SetDataRequest),
    GetAcl(GetAclRequest),
    SetAcl(SetAclRequest),
    GetChildren(GetChildrenRequest),
    GetChildren2(GetChildrenRequest),
    Sync(SyncRequest),
    Ping,
    /// Only meaningful inside a multi; servers refuse it standalone.
    Check(CheckVersionRequest),
    Multi(MultiRequest),
    MultiRead(MultiRequest),
    Reconfig(ReconfigRequest),
    CheckWatches(CheckWatchesRequest),
    RemoveWatches(RemoveWatchesRequest),
    Auth(AuthPacket),
    SetWatches(SetWatches),
    Sasl(GetSaslRequest),
    GetEphemerals(GetEphemeralsRequest),
    GetAllChildrenNumber(GetAllChildrenNumberRequest),
    SetWatches2(SetWatches2),
    AddWatch(AddWatchRequest),
    WhoAmI,
    CloseSession,
}

impl Request {
    pub fn op_code(&self) -> OpCode {
        match self {
            Request::Create(_) => OpCode::Create,
            Request::Create2(_) => OpCode::Create2,
            Request::CreateContainer(_) => OpCode::CreateContainer,
            Request::CreateTtl(_) => OpCode::CreateTtl,
            Request::Delete(_) => OpCode::Delete,
            Request::DeleteContainer(_) => OpCode::DeleteContainer,
            Request::Exists(_) => OpCode::Exists,
            Request::GetData(_) => OpCode::GetData,
            Request::SetData(_) => OpCode::SetData,
            Request::GetAcl(_) => OpCode::GetAcl,
            Request::SetAcl(_) => OpCode::SetAcl,
            Request::GetChildren(_) => OpCode::GetChildren,
            Request::GetChildren2(_) => OpCode::GetChildren2,
            Request::Sync(_) => OpCode::Sync,
            Request::Ping => OpCode::Ping,
            Request::Check(_) => OpCode::Check,
            Request::Multi(_) => OpCode::Multi,
            Request::MultiRead(_) => OpCode::MultiRead,
            Request::Reconfig(_) => OpCode::Reconfig,
            Request::CheckWatches(_) => OpCode::CheckWatches,
            Request::RemoveWatches(_) => OpCode::RemoveWatches,
            Request::Auth(_) => OpCode::Auth,
            Request::SetWatches(_) => OpCode::SetWatches,
            Request::Sasl(_) => OpCode::Sasl,
            Request::GetEphemerals(_) => OpCode::GetEphemerals,
            Request::GetAllChildrenNumber(_) => OpCode::GetAllChildrenNumber,
            Request::SetWatches2(_) => OpCode::SetWatches2,
            Request::AddWatch(_) => OpCode::AddWatch,
            Request::WhoAmI => OpCode::WhoAmI,
            Request::CloseSession => OpCode::CloseSession,
        }
    }

    /// The xid this request travels with when it is one of the special
    /// ones (ping, auth); `None` for requests that take a normal xid.
    pub fn special_xid(&self) -> Option<i32> {
        match self {
            Request::Ping => Some(xid::PING),
            Request::Auth(_) => Some(xid::AUTH),
            _ => None,
        }
    }

    /// Encodes the body (everything after the request header).
    pub fn encode_body<B: BufMut>(&self, buf: &mut B) {
        match self {
            Request::Create(r) | Request::Create2(r) | Request::CreateContainer(r) => r.encode(buf),
            Request::CreateTtl(r) => r.encode(buf),
            Request::Delete(r) => r.encode(buf),
            Request::DeleteContainer(r) => r.encode(buf),
            Request::Exists(r) => r.encode(buf),
            Request::GetData(r) => r.encode(buf),
            Request::SetData(r) => r.encode(buf),
            Request::GetAcl(r) => r.encode(buf),
            Request::SetAcl(r) => r.encode(buf),
            Request::GetChildren(r) | Request::GetChildren2(r) => r.encode(buf),
            Request::Sync(r) => r.encode(buf),
            Request::Check(r) => r.encode(buf),
            Request::Multi(r) | Request::MultiRead(r) => r.encode(buf),
            Request::Reconfig(r) => r.encode(buf),
            Request::CheckWatches(r) => r.encode(buf),
            Request::RemoveWatches(r) => r.encode(buf),
            Request::Auth(r) => r.encode(buf),
            Request::SetWatches(r) => r.encode(buf),
            Request::Sasl(r) => r.encode(buf),
            Request::GetEphemerals(r) => r.encode(buf),
            Request::GetAllChildrenNumber(r) => r.encode(buf),
            Request::SetWatches2(r) => r.encode(buf),
            Request::AddWatch(r) => r.encode(buf),
            Request::Ping | Request::WhoAmI | Request::CloseSession => {}
        }
    }

    /// Decodes the body of a request whose header carried `op`.
    ///
    /// Unknown opcodes give [`DecodeError::UnknownValue`]; opcodes that are
    /// not client requests (notification, createSession, error) give
    /// [`DecodeError::Invalid`]. A multi that mixes reads and writes, or a
    /// multiRead with a write, is [`DecodeError::Invalid`] too.
    ///
    /// Null strings and vectors are taken as Apache's server takes them
    /// (docs/COMPATIBILITY.md, "Malformed requests"): a null path is "" in
    /// the requests whose path Apache checks before use (setData, setACL,
    /// check, removeWatches, getEphemerals, addWatch) and an error in the
    /// others, where Apache fails on it; inside a multi it is
    /// [`DecodeError::NullPathInMulti`]; a null watch list of setWatches
    /// is an error. Null ACL schemes and ids are kept in the [`crate::Id`]s for
    /// the server's ACL check.
    pub fn decode_body(op: i32, r: &mut Reader) -> Result<Self, DecodeError> {
        let op = OpCode::try_from(op)?;
        r.set_null_strings(null_strings_for(op));
        r.set_reject_null_vectors(matches!(op, OpCode::SetWatches | OpCode::SetWatches2));
        let request = Self::decode_typed(op, r)?;
        if matches!(op, OpCode::Multi | OpCode::MultiRead) && r.nulls_seen() > 0 {
            return Err(DecodeError::NullPathInMulti);
        }
        Ok(request)
    }

    fn decode_typed(op: OpCode, r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(match op {
            OpCode::Create => Request::Create(Jute::decode(r)?),
            OpCode::Create2 => Request::Create2(Jute::decode(r)?),
            OpCode::CreateContainer => Request::CreateContainer(Jute::decode(r)?),
            OpCode::CreateTtl => Request::CreateTtl(Jute::decode(r)?),
            OpCode::Delete => Request::Delete(Jute::decode(r)?),
            OpCode::DeleteContainer => Request::DeleteContainer(Jute::decode(r)?),
            OpCode::Exists => Request::Exists(Jute::decode(r)?),
            OpCode::GetData => Request::GetData(Jute::decode(r)?),
            OpCode::SetData => Request::SetData(Jute::decode(r)?),
            OpCode::GetAcl => Request::GetAcl(Jute::decode(r)?),
            OpCode::SetAcl => Request::SetAcl(Jute::decode(r)?),
            OpCode::GetChildren => Request::GetChildren(Jute::decode(r)?),
            OpCode::GetChildren2 => Request::GetChildren2(Jute::decode(r)?),
            OpCode::Sync => Request::Sync(Jute::decode(r)?),
            OpCode::Ping => Request::Ping,
            OpCode::Check => Request::Check(Jute::decode(r)?),
            OpCode::Multi => {
                let multi = MultiRequest::decode(r)?;
                if multi.ops.iter().any(MultiOp::is_read) {
                    return Err(DecodeError::Invalid("read op inside multi"));
                }
                Request::Multi(multi)
            }
            OpCode::MultiRead => {
                let multi = MultiRequest::decode(r)?;
                if !multi.ops.iter().all(MultiOp::is_read) {
                    return Err(DecodeError::Invalid("write op inside multiRead"));
                }
                Request::MultiRead(multi)
            }
            OpCode::Reconfig => Request::Reconfig(Jute::decode(r)?),
            OpCode::CheckWatches => Request::CheckWatches(Jute::decode(r)?),
            OpCode::RemoveWatches => Request::RemoveWatches(Jute::decode(r)?),
            OpCode::Auth => Request::Auth(Jute::decode(r)?),
            OpCode::SetWatches => Request::SetWatches(Jute::decode(r)?),
            OpCode::Sasl => Request::Sasl(Jute::decode(r)?),
            OpCode::GetEphemerals => Request::GetEphemerals(Jute::decode(r)?),
            OpCode::GetAllChildrenNumber => Request::GetAllChildrenNumber(Jute::decode(r)?),
            OpCode::SetWatches2 => Request::SetWatches2(Jute::decode(r)?),
            OpCode::AddWatch => Request::AddWatch(Jute::decode(r)?),
            OpCode::WhoAmI => Request::WhoAmI,
            OpCode::CloseSession => Request::CloseSession,
            OpCode::Notification | OpCode::CreateSession | OpCode::Error => {
                return Err(DecodeError::Invalid("not a client request opcode"))
            }
        })
    }

    /// The path a request names, for logging and ACL checks; `None` for
    /// requests without one (ping, auth, multi, setWatches ...).
    pub fn path(&self) -> Option<&str> {
        Some(match self {
            Request::Create(r) | Request::Create2(r) | Request::CreateContainer(r) => &r.path,
            Request::CreateTtl(r) => &r.path,
            Request::Delete(r) => &r.path,
            Request::DeleteContainer(r) => &r.path,
            Request::Exists(r) => &r.path,
            Request::GetData(r) => &r.path,
            Request::SetData(r) => &r.path,
            Request::GetAcl(r) => &r.path,
            Request::SetAcl(r) => &r.path,
            Request::GetChildren(r) | Request::GetChildren2(r) => &r.path,
            Request::Sync(r) => return r.path.as_deref(),
            Request::Check(r) => &r.path,
            Request::CheckWatches(r) => &r.path,
            Request::RemoveWatches(r) => &r.path,
            Request::GetEphemerals(r) => &r.prefix_path,
            Request::GetAllChildrenNumber(r) => &r.path,
            Request::AddWatch(r) => &r.path,
            _ => return None,
        })
    }
}

/// How the body of `op` reads a null `ustring` where a path is expected:
/// as "" where Apache's server gives a null path the outcome of an empty one
/// (setData, setACL and check validate it first: BadArguments; removeWatches,
/// getEphemerals and addWatch look it up and find nothing; an auth scheme
/// has no provider: AuthFailed), and inside multi / multiRead, where the
/// decoder reports it once the ops are read. Elsewhere Apache fails on it
/// (MarshallingError), and so does decoding.
fn null_strings_for(op: OpCode) -> NullStrings {
    match op {
        OpCode::SetData
        | OpCode::SetAcl
        | OpCode::Check
        | OpCode::RemoveWatches
        | OpCode::GetEphemerals
        | OpCode::AddWatch
        | OpCode::Auth
        | OpCode::Multi
        | OpCode::MultiRead => NullStrings::AsEmpty,
        _ => NullStrings::Reject,
    }
}

/// A whole client frame body after the handshake: header plus request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFrame {
    pub xid: i32,
    pub request: Request,
}

impl RequestFrame {
    pub fn new(xid: i32, request: Request) -> Self {
        RequestFrame { xid, request }
    }

    pub fn header(&self) -> RequestHeader {
        RequestHeader::new(self.xid, self.request.op_code())
    }

    /// Decodes a frame body (without its length prefix).
    pub fn decode_frame(frame: Bytes) -> Result<Self, DecodeError> {
        Self::decode(&mut Reader::new(frame))
    }
}

impl Jute for RequestFrame {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        self.header().encode(buf);
        self.request.encode_body(buf);
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let header = RequestHeader::decode(r)?;
        Ok(RequestFrame {
            xid: header.xid,
            request: Request::decode_body(header.op, r)?,
        })
    }
}

/// Encodes a request body alone, e.g. for a REQUEST forwarded to a leader.
pub fn encode_request_body(request: &Request) -> Bytes {
    let mut buf = BytesMut::new();
    request.encode_body(&mut buf);
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(op: OpCode, body: &[u8]) -> Result<Request, DecodeError> {
        Request::decode_body(op.code(), &mut Reader::new(Bytes::copy_from_slice(body)))
    }

    const NULL: [u8; 4] = [0xff; 4];

    #[test]
    fn a_null_set_data_path_reads_as_empty_for_the_path_check() {
        let body = [&NULL[..], &[0, 0, 0, 0], &[0xff; 4]].concat();
        let Ok(Request::SetData(r)) = decode(OpCode::SetData, &body) else {
            panic!("setData with a null path decodes");
        };
        assert_eq!(r.path, "");
    }

    #[test]
    fn a_null_get_data_path_is_an_error_as_apache_fails_on_it() {
        let body = [&NULL[..], &[0]].concat();
        assert_eq!(
            decode(OpCode::GetData, &body),
            Err(DecodeError::UnexpectedNull { what: "ustring" })
        );
    }

    #[test]
    fn a_null_path_inside_multi_is_reported_after_the_ops() {
        let delete = [&[0, 0, 0, 2, 0][..], &NULL, &NULL, &NULL].concat();
        let done = [&NULL[..], &[1], &NULL].concat();
        assert_eq!(
            decode(OpCode::Multi, &[delete, done].concat()),
            Err(DecodeError::NullPathInMulti)
        );
    }

    #[test]
    fn a_null_sync_path_stays_null() {
        assert_eq!(
            decode(OpCode::Sync, &NULL),
            Ok(Request::Sync(SyncRequest { path: None }))
        );
    }

    #[test]
    fn a_null_set_watches_list_is_an_error() {
        let body = [&[0u8; 8][..], &NULL, &[0; 8]].concat();
        assert_eq!(
            decode(OpCode::SetWatches, &body),
            Err(DecodeError::UnexpectedNull { what: "vector" })
        );
    }
}
