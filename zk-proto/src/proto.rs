//! Client-protocol records (jute module `org.apache.zookeeper.proto`,
//! WIRE.md §4, §5, §7, §9).

use bytes::{BufMut, Bytes};

use crate::consts::{ErrorCode, EventType, KeeperState, OpCode};
use crate::data::{Acl, ClientInfo, Stat};
use crate::jute::{DecodeError, Jute, Reader};
use crate::record;

/// The first frame a client sends.
///
/// `read_only` is the trailing boolean 3.4+ clients append; `None` means the
/// client did not send it (3.3 and older), in which case the server must not
/// send it back either.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectRequest {
    pub protocol_version: i32,
    pub last_zxid_seen: i64,
    pub timeout: i32,
    pub session_id: i64,
    pub passwd: Bytes,
    pub read_only: Option<bool>,
}

/// The first frame a server sends. `timeout <= 0` means the session is
/// expired (or the password was wrong).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectResponse {
    pub protocol_version: i32,
    pub timeout: i32,
    pub session_id: i64,
    pub passwd: Bytes,
    pub read_only: Option<bool>,
}

fn decode_trailing_bool(r: &mut Reader) -> Result<Option<bool>, DecodeError> {
    if r.is_empty() {
        Ok(None)
    } else {
        r.read_bool().map(Some)
    }
}

impl Jute for ConnectRequest {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        self.protocol_version.encode(buf);
        self.last_zxid_seen.encode(buf);
        self.timeout.encode(buf);
        self.session_id.encode(buf);
        self.passwd.encode(buf);
        if let Some(ro) = self.read_only {
            ro.encode(buf);
        }
    }
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ConnectRequest {
            protocol_version: r.read_i32()?,
            last_zxid_seen: r.read_i64()?,
            timeout: r.read_i32()?,
            session_id: r.read_i64()?,
            passwd: Jute::decode(r)?,
            read_only: decode_trailing_bool(r)?,
        })
    }
}

impl Jute for ConnectResponse {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        self.protocol_version.encode(buf);
        self.timeout.encode(buf);
        self.session_id.encode(buf);
        self.passwd.encode(buf);
        if let Some(ro) = self.read_only {
            ro.encode(buf);
        }
    }
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ConnectResponse {
            protocol_version: r.read_i32()?,
            timeout: r.read_i32()?,
            session_id: r.read_i64()?,
            passwd: Jute::decode(r)?,
            read_only: decode_trailing_bool(r)?,
        })
    }
}

record! {
    /// Precedes every request after the connect request.
    pub struct RequestHeader {
        pub xid: i32,
        /// The [`OpCode`] number.
        pub op: i32,
    }

    /// Precedes every reply after the connect response.
    pub struct ReplyHeader {
        pub xid: i32,
        pub zxid: i64,
        /// The [`ErrorCode`] number, 0 for success.
        pub err: i32,
    }

    /// create (1), create2 (15) and createContainer (19).
    pub struct CreateRequest {
        pub path: String,
        pub data: Option<Bytes>,
        pub acl: Vec<Acl>,
        /// The [`CreateMode`](crate::CreateMode) number.
        pub flags: i32,
    }

    /// createTTL (21).
    pub struct CreateTtlRequest {
        pub path: String,
        pub data: Option<Bytes>,
        pub acl: Vec<Acl>,
        pub flags: i32,
        pub ttl: i64,
    }

    pub struct CreateResponse {
        pub path: String,
    }

    pub struct Create2Response {
        pub path: String,
        pub stat: Stat,
    }

    pub struct DeleteRequest {
        pub path: String,
        pub version: i32,
    }

    pub struct ExistsRequest {
        pub path: String,
        pub watch: bool,
    }

    pub struct ExistsResponse {
        pub stat: Stat,
    }

    pub struct GetDataRequest {
        pub path: String,
        pub watch: bool,
    }

    pub struct GetDataResponse {
        pub data: Option<Bytes>,
        pub stat: Stat,
    }

    pub struct SetDataRequest {
        pub path: String,
        pub data: Option<Bytes>,
        pub version: i32,
    }

    pub struct SetDataResponse {
        pub stat: Stat,
    }

    pub struct GetAclRequest {
        pub path: String,
    }

    pub struct GetAclResponse {
        pub acl: Vec<Acl>,
        pub stat: Stat,
    }

    pub struct SetAclRequest {
        pub path: String,
        pub acl: Vec<Acl>,
        /// Compared with the node's `aversion`; -1 matches any.
        pub version: i32,
    }

    pub struct SetAclResponse {
        pub stat: Stat,
    }

    /// getChildren (8) and getChildren2 (12) share this layout.
    pub struct GetChildrenRequest {
        pub path: String,
        pub watch: bool,
    }

    pub struct GetChildrenResponse {
        pub children: Vec<String>,
    }

    pub struct GetChildren2Response {
        pub children: Vec<String>,
        pub stat: Stat,
    }

    pub struct CheckVersionRequest {
        pub path: String,
        pub version: i32,
    }

    /// sync (9). Apache answers a null path with a null path.
    pub struct SyncRequest {
        pub path: Option<String>,
    }

    pub struct SyncResponse {
        pub path: Option<String>,
    }

    /// reconfig (16); unused member lists are null.
    pub struct ReconfigRequest {
        pub joining_servers: Option<String>,
        pub leaving_servers: Option<String>,
        pub new_members: Option<String>,
        pub cur_config_id: i64,
    }

    /// checkWatches (17).
    pub struct CheckWatchesRequest {
        pub path: String,
        /// The [`WatcherType`](crate::WatcherType) number.
        pub watcher_type: i32,
    }

    /// removeWatches (18).
    pub struct RemoveWatchesRequest {
        pub path: String,
        pub watcher_type: i32,
    }

    /// addWatch (106).
    pub struct AddWatchRequest {
        pub path: String,
        /// The [`AddWatchMode`](crate::AddWatchMode) number.
        pub mode: i32,
    }

    /// The body of an addWatch reply (always 0) and of a failed multi op.
    pub struct ErrorResponse {
        pub err: i32,
    }

    /// auth (100), sent with xid -4.
    pub struct AuthPacket {
        /// Ignored by servers; Java sends 0.
        pub auth_type: i32,
        pub scheme: String,
        /// Null makes Apache's digest provider fail (AuthFailed).
        pub auth: Option<Bytes>,
    }

    /// setWatches (101): re-registration of one-shot watches after reconnect.
    pub struct SetWatches {
        pub relative_zxid: i64,
        pub data_watches: Vec<String>,
        pub exist_watches: Vec<String>,
        pub child_watches: Vec<String>,
    }

    /// setWatches2 (105): as setWatches, plus persistent watches.
    pub struct SetWatches2 {
        pub relative_zxid: i64,
        pub data_watches: Vec<String>,
        pub exist_watches: Vec<String>,
        pub child_watches: Vec<String>,
        pub persistent_watches: Vec<String>,
        pub persistent_recursive_watches: Vec<String>,
    }

    /// sasl (102) request. A null token makes Apache drop the connection.
    pub struct GetSaslRequest {
        pub token: Option<Bytes>,
    }

    /// sasl (102) reply; a server without SASL answers with a null token.
    pub struct SetSaslResponse {
        pub token: Option<Bytes>,
    }

    pub struct GetEphemeralsRequest {
        pub prefix_path: String,
    }

    pub struct GetEphemeralsResponse {
        pub ephemerals: Vec<String>,
    }

    pub struct GetAllChildrenNumberRequest {
        pub path: String,
    }

    pub struct GetAllChildrenNumberResponse {
        pub total_number: i32,
    }

    pub struct WhoAmIResponse {
        pub client_info: Vec<ClientInfo>,
    }

    /// The body of a notification (xid -1).
    pub struct WatcherEvent {
        /// The [`EventType`] number.
        pub event_type: i32,
        /// The [`KeeperState`] number; always SyncConnected from a server.
        pub state: i32,
        pub path: String,
    }

    /// Precedes each op and each result inside multi / multiRead.
    pub struct MultiHeader {
        pub op: i32,
        pub done: bool,
        pub err: i32,
    }
}

/// deleteContainer (20): an internal op whose body is one `buffer` holding
/// the UTF-8 path (not a `ustring`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeleteContainerRequest {
    pub path: String,
}

impl Jute for DeleteContainerRequest {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        Bytes::copy_from_slice(self.path.as_bytes()).encode(buf);
    }
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let raw = Bytes::decode(r)?;
        Ok(DeleteContainerRequest {
            path: String::from_utf8_lossy(&raw).into_owned(),
        })
    }
}

impl RequestHeader {
    pub fn new(xid: i32, op: OpCode) -> Self {
        RequestHeader { xid, op: op.code() }
    }

    pub fn op_code(&self) -> Result<OpCode, DecodeError> {
        OpCode::try_from(self.op)
    }
}

impl ReplyHeader {
    /// The error code; numbers this crate does not know are `None`.
    pub fn error_code(&self) -> Option<ErrorCode> {
        ErrorCode::from_code(self.err)
    }
}

impl WatcherEvent {
    pub fn event_type(&self) -> Result<EventType, DecodeError> {
        EventType::try_from(self.event_type)
    }

    pub fn keeper_state(&self) -> Result<KeeperState, DecodeError> {
        KeeperState::try_from(self.state)
    }
}

impl MultiHeader {
    /// The header that ends an op list or a result list.
    pub const DONE: MultiHeader = MultiHeader {
        op: -1,
        done: true,
        err: -1,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_request_with_password_is_45_bytes() {
        let req = ConnectRequest {
            timeout: 30000,
            passwd: Bytes::from_static(&[0; 16]),
            read_only: Some(false),
            ..Default::default()
        };
        assert_eq!(req.to_bytes().len(), 45);
    }

    #[test]
    fn connect_response_without_read_only_stays_without() {
        let resp = ConnectResponse {
            timeout: 4000,
            session_id: 1,
            passwd: Bytes::from_static(&[7; 16]),
            ..Default::default()
        };
        let bytes = resp.to_bytes();
        assert_eq!(bytes.len(), 36);
        assert_eq!(ConnectResponse::from_bytes(bytes).unwrap(), resp);
    }

    #[test]
    fn exists_request_matches_the_worked_frame() {
        let mut body = RequestHeader::new(1, OpCode::Exists).to_bytes().to_vec();
        body.extend_from_slice(
            &ExistsRequest {
                path: "/a".into(),
                watch: true,
            }
            .to_bytes(),
        );
        assert_eq!(
            body,
            [0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 2, b'/', b'a', 1],
            "WIRE.md §7 worked frame: exists /a (w), xid 1"
        );
    }

    #[test]
    fn delete_container_path_is_a_buffer() {
        let req = DeleteContainerRequest { path: "/c".into() };
        assert_eq!(&req.to_bytes()[..], &[0, 0, 0, 2, b'/', b'c']);
        assert_eq!(
            DeleteContainerRequest::from_bytes(req.to_bytes()).unwrap(),
            req
        );
    }
}
