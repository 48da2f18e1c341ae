//! Proptest strategies for every zk-proto record, shared by the round-trip
//! and arbitrary-bytes suites.
//!
//! Every strategy generates values that the codec can represent exactly:
//! strings are any Unicode (the codec writes UTF-8 and reads valid UTF-8
//! back unchanged), znode data is `None`, empty or arbitrary bytes, and
//! combinations the wire cannot tell apart (see the txn strategies) are not
//! generated. The round-trip suite tests those combinations on their own.

// Each test crate that includes this module uses a different subset.
#![allow(dead_code)]

use bytes::Bytes;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;

use zk_proto::disk::{AclCacheEntry, DataNode, FileHeader, SnapshotSession, ZxidDigest};
use zk_proto::txn::{
    CheckVersionTxn, CloseSessionTxn, CreateContainerTxn, CreateSessionTxn, CreateTtlTxn,
    CreateTxn, DeleteTxn, ErrorTxn, SetAclTxn, SetDataTxn, SubTxn, TxnDigest,
};
use zk_proto::*;

// ---------------------------------------------------------------------------
// Primitives
// ---------------------------------------------------------------------------

/// Any Unicode text, control characters and astral planes included.
pub fn text() -> impl Strategy<Value = String> {
    vec(any::<char>(), 0..12).prop_map(|chars| chars.into_iter().collect())
}

/// A nullable string.
pub fn opt_text() -> impl Strategy<Value = Option<String>> {
    option::of(text())
}

/// A list of strings (children, watch paths, ephemerals).
pub fn texts() -> impl Strategy<Value = Vec<String>> {
    vec(text(), 0..6)
}

/// A non-null buffer (passwords, tokens, auth data).
pub fn buffer() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..40).prop_map(Bytes::from)
}

/// Znode data: null, empty and non-empty are three different values.
pub fn data() -> impl Strategy<Value = Option<Bytes>> {
    prop_oneof![
        Just(None),
        Just(Some(Bytes::new())),
        vec(any::<u8>(), 1..64).prop_map(|v| Some(Bytes::from(v))),
    ]
}

// ---------------------------------------------------------------------------
// data.rs
// ---------------------------------------------------------------------------

pub fn id() -> impl Strategy<Value = Id> {
    (opt_text(), opt_text()).prop_map(|(scheme, id)| Id::from_wire(scheme, id))
}

pub fn acl() -> impl Strategy<Value = Acl> {
    (any::<i32>(), id()).prop_map(|(perms, id)| Acl { perms, id })
}

pub fn acls() -> impl Strategy<Value = Vec<Acl>> {
    vec(acl(), 0..4)
}

pub fn stat() -> impl Strategy<Value = Stat> {
    (
        (any::<i64>(), any::<i64>(), any::<i64>(), any::<i64>()),
        (any::<i32>(), any::<i32>(), any::<i32>()),
        (any::<i64>(), any::<i32>(), any::<i32>(), any::<i64>()),
    )
        .prop_map(
            |(
                (czxid, mzxid, ctime, mtime),
                (version, cversion, aversion),
                (ephemeral_owner, data_length, num_children, pzxid),
            )| Stat {
                czxid,
                mzxid,
                ctime,
                mtime,
                version,
                cversion,
                aversion,
                ephemeral_owner,
                data_length,
                num_children,
                pzxid,
            },
        )
}

pub fn stat_persisted() -> impl Strategy<Value = StatPersisted> {
    (
        (any::<i64>(), any::<i64>(), any::<i64>(), any::<i64>()),
        (any::<i32>(), any::<i32>(), any::<i32>()),
        (any::<i64>(), any::<i64>()),
    )
        .prop_map(
            |(
                (czxid, mzxid, ctime, mtime),
                (version, cversion, aversion),
                (ephemeral_owner, pzxid),
            )| StatPersisted {
                czxid,
                mzxid,
                ctime,
                mtime,
                version,
                cversion,
                aversion,
                ephemeral_owner,
                pzxid,
            },
        )
}

pub fn client_info() -> impl Strategy<Value = ClientInfo> {
    (text(), text()).prop_map(|(auth_scheme, user)| ClientInfo { auth_scheme, user })
}

// ---------------------------------------------------------------------------
// proto.rs: handshake and headers
// ---------------------------------------------------------------------------

pub fn connect_request() -> impl Strategy<Value = ConnectRequest> {
    (
        any::<i32>(),
        any::<i64>(),
        any::<i32>(),
        any::<i64>(),
        buffer(),
        option::of(any::<bool>()),
    )
        .prop_map(
            |(protocol_version, last_zxid_seen, timeout, session_id, passwd, read_only)| {
                ConnectRequest {
                    protocol_version,
                    last_zxid_seen,
                    timeout,
                    session_id,
                    passwd,
                    read_only,
                }
            },
        )
}

pub fn connect_response() -> impl Strategy<Value = ConnectResponse> {
    (
        any::<i32>(),
        any::<i32>(),
        any::<i64>(),
        buffer(),
        option::of(any::<bool>()),
    )
        .prop_map(
            |(protocol_version, timeout, session_id, passwd, read_only)| ConnectResponse {
                protocol_version,
                timeout,
                session_id,
                passwd,
                read_only,
            },
        )
}

pub fn request_header() -> impl Strategy<Value = RequestHeader> {
    (any::<i32>(), any::<i32>()).prop_map(|(xid, op)| RequestHeader { xid, op })
}

pub fn reply_header() -> impl Strategy<Value = ReplyHeader> {
    (any::<i32>(), any::<i64>(), any::<i32>()).prop_map(|(xid, zxid, err)| ReplyHeader {
        xid,
        zxid,
        err,
    })
}

pub fn multi_header() -> impl Strategy<Value = MultiHeader> {
    (any::<i32>(), any::<bool>(), any::<i32>()).prop_map(|(op, done, err)| MultiHeader {
        op,
        done,
        err,
    })
}

pub fn watcher_event() -> impl Strategy<Value = WatcherEvent> {
    (any::<i32>(), any::<i32>(), text()).prop_map(|(event_type, state, path)| WatcherEvent {
        event_type,
        state,
        path,
    })
}

// ---------------------------------------------------------------------------
// proto.rs: per-op request records
// ---------------------------------------------------------------------------

pub fn create_request() -> impl Strategy<Value = CreateRequest> {
    (text(), data(), acls(), any::<i32>()).prop_map(|(path, data, acl, flags)| CreateRequest {
        path,
        data,
        acl,
        flags,
    })
}

pub fn create_ttl_request() -> impl Strategy<Value = CreateTtlRequest> {
    (text(), data(), acls(), any::<i32>(), any::<i64>()).prop_map(
        |(path, data, acl, flags, ttl)| CreateTtlRequest {
            path,
            data,
            acl,
            flags,
            ttl,
        },
    )
}

pub fn delete_request() -> impl Strategy<Value = DeleteRequest> {
    (text(), any::<i32>()).prop_map(|(path, version)| DeleteRequest { path, version })
}

pub fn delete_container_request() -> impl Strategy<Value = DeleteContainerRequest> {
    text().prop_map(|path| DeleteContainerRequest { path })
}

pub fn exists_request() -> impl Strategy<Value = ExistsRequest> {
    (text(), any::<bool>()).prop_map(|(path, watch)| ExistsRequest { path, watch })
}

pub fn get_data_request() -> impl Strategy<Value = GetDataRequest> {
    (text(), any::<bool>()).prop_map(|(path, watch)| GetDataRequest { path, watch })
}

pub fn set_data_request() -> impl Strategy<Value = SetDataRequest> {
    (text(), data(), any::<i32>()).prop_map(|(path, data, version)| SetDataRequest {
        path,
        data,
        version,
    })
}

pub fn get_acl_request() -> impl Strategy<Value = GetAclRequest> {
    text().prop_map(|path| GetAclRequest { path })
}

pub fn set_acl_request() -> impl Strategy<Value = SetAclRequest> {
    (text(), acls(), any::<i32>()).prop_map(|(path, acl, version)| SetAclRequest {
        path,
        acl,
        version,
    })
}

pub fn get_children_request() -> impl Strategy<Value = GetChildrenRequest> {
    (text(), any::<bool>()).prop_map(|(path, watch)| GetChildrenRequest { path, watch })
}

pub fn check_version_request() -> impl Strategy<Value = CheckVersionRequest> {
    (text(), any::<i32>()).prop_map(|(path, version)| CheckVersionRequest { path, version })
}

pub fn sync_request() -> impl Strategy<Value = SyncRequest> {
    opt_text().prop_map(|path| SyncRequest { path })
}

pub fn reconfig_request() -> impl Strategy<Value = ReconfigRequest> {
    (opt_text(), opt_text(), opt_text(), any::<i64>()).prop_map(
        |(joining_servers, leaving_servers, new_members, cur_config_id)| ReconfigRequest {
            joining_servers,
            leaving_servers,
            new_members,
            cur_config_id,
        },
    )
}

pub fn check_watches_request() -> impl Strategy<Value = CheckWatchesRequest> {
    (text(), any::<i32>())
        .prop_map(|(path, watcher_type)| CheckWatchesRequest { path, watcher_type })
}

pub fn remove_watches_request() -> impl Strategy<Value = RemoveWatchesRequest> {
    (text(), any::<i32>())
        .prop_map(|(path, watcher_type)| RemoveWatchesRequest { path, watcher_type })
}

pub fn add_watch_request() -> impl Strategy<Value = AddWatchRequest> {
    (text(), any::<i32>()).prop_map(|(path, mode)| AddWatchRequest { path, mode })
}

pub fn auth_packet() -> impl Strategy<Value = AuthPacket> {
    (any::<i32>(), text(), data()).prop_map(|(auth_type, scheme, auth)| AuthPacket {
        auth_type,
        scheme,
        auth,
    })
}

pub fn set_watches() -> impl Strategy<Value = SetWatches> {
    (any::<i64>(), texts(), texts(), texts()).prop_map(
        |(relative_zxid, data_watches, exist_watches, child_watches)| SetWatches {
            relative_zxid,
            data_watches,
            exist_watches,
            child_watches,
        },
    )
}

pub fn set_watches2() -> impl Strategy<Value = SetWatches2> {
    (any::<i64>(), texts(), texts(), texts(), texts(), texts()).prop_map(
        |(
            relative_zxid,
            data_watches,
            exist_watches,
            child_watches,
            persistent_watches,
            persistent_recursive_watches,
        )| SetWatches2 {
            relative_zxid,
            data_watches,
            exist_watches,
            child_watches,
            persistent_watches,
            persistent_recursive_watches,
        },
    )
}

pub fn get_sasl_request() -> impl Strategy<Value = GetSaslRequest> {
    data().prop_map(|token| GetSaslRequest { token })
}

pub fn get_ephemerals_request() -> impl Strategy<Value = GetEphemeralsRequest> {
    text().prop_map(|prefix_path| GetEphemeralsRequest { prefix_path })
}

pub fn get_all_children_number_request() -> impl Strategy<Value = GetAllChildrenNumberRequest> {
    text().prop_map(|path| GetAllChildrenNumberRequest { path })
}

// ---------------------------------------------------------------------------
// proto.rs: per-op response records
// ---------------------------------------------------------------------------

pub fn create_response() -> impl Strategy<Value = CreateResponse> {
    text().prop_map(|path| CreateResponse { path })
}

pub fn create2_response() -> impl Strategy<Value = Create2Response> {
    (text(), stat()).prop_map(|(path, stat)| Create2Response { path, stat })
}

pub fn exists_response() -> impl Strategy<Value = ExistsResponse> {
    stat().prop_map(|stat| ExistsResponse { stat })
}

pub fn get_data_response() -> impl Strategy<Value = GetDataResponse> {
    (data(), stat()).prop_map(|(data, stat)| GetDataResponse { data, stat })
}

pub fn set_data_response() -> impl Strategy<Value = SetDataResponse> {
    stat().prop_map(|stat| SetDataResponse { stat })
}

pub fn get_acl_response() -> impl Strategy<Value = GetAclResponse> {
    (acls(), stat()).prop_map(|(acl, stat)| GetAclResponse { acl, stat })
}

pub fn set_acl_response() -> impl Strategy<Value = SetAclResponse> {
    stat().prop_map(|stat| SetAclResponse { stat })
}

pub fn get_children_response() -> impl Strategy<Value = GetChildrenResponse> {
    texts().prop_map(|children| GetChildrenResponse { children })
}

pub fn get_children2_response() -> impl Strategy<Value = GetChildren2Response> {
    (texts(), stat()).prop_map(|(children, stat)| GetChildren2Response { children, stat })
}

pub fn sync_response() -> impl Strategy<Value = SyncResponse> {
    opt_text().prop_map(|path| SyncResponse { path })
}

pub fn error_response() -> impl Strategy<Value = ErrorResponse> {
    any::<i32>().prop_map(|err| ErrorResponse { err })
}

pub fn set_sasl_response() -> impl Strategy<Value = SetSaslResponse> {
    data().prop_map(|token| SetSaslResponse { token })
}

pub fn get_ephemerals_response() -> impl Strategy<Value = GetEphemeralsResponse> {
    texts().prop_map(|ephemerals| GetEphemeralsResponse { ephemerals })
}

pub fn get_all_children_number_response() -> impl Strategy<Value = GetAllChildrenNumberResponse> {
    any::<i32>().prop_map(|total_number| GetAllChildrenNumberResponse { total_number })
}

pub fn who_am_i_response() -> impl Strategy<Value = WhoAmIResponse> {
    vec(client_info(), 0..4).prop_map(|client_info| WhoAmIResponse { client_info })
}

// ---------------------------------------------------------------------------
// request.rs
// ---------------------------------------------------------------------------

/// An op a `multi` may hold: the writes and check.
pub fn write_op() -> impl Strategy<Value = MultiOp> {
    prop_oneof![
        create_request().prop_map(MultiOp::Create),
        create_request().prop_map(MultiOp::Create2),
        create_request().prop_map(MultiOp::CreateContainer),
        create_ttl_request().prop_map(MultiOp::CreateTtl),
        delete_request().prop_map(MultiOp::Delete),
        set_data_request().prop_map(MultiOp::SetData),
        check_version_request().prop_map(MultiOp::Check),
    ]
}

/// An op a `multiRead` may hold: getData and getChildren.
pub fn read_op() -> impl Strategy<Value = MultiOp> {
    prop_oneof![
        get_data_request().prop_map(MultiOp::GetData),
        get_children_request().prop_map(MultiOp::GetChildren),
    ]
}

/// The body of a `multi`: write ops only.
pub fn multi_write() -> impl Strategy<Value = MultiRequest> {
    vec(write_op(), 0..6).prop_map(|ops| MultiRequest { ops })
}

/// The body of a `multiRead`: read ops only.
pub fn multi_read() -> impl Strategy<Value = MultiRequest> {
    vec(read_op(), 0..6).prop_map(|ops| MultiRequest { ops })
}

/// Every `Request` variant.
pub fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        create_request().prop_map(Request::Create).boxed(),
        create_request().prop_map(Request::Create2).boxed(),
        create_request().prop_map(Request::CreateContainer).boxed(),
        create_ttl_request().prop_map(Request::CreateTtl).boxed(),
        delete_request().prop_map(Request::Delete).boxed(),
        delete_container_request()
            .prop_map(Request::DeleteContainer)
            .boxed(),
        exists_request().prop_map(Request::Exists).boxed(),
        get_data_request().prop_map(Request::GetData).boxed(),
        set_data_request().prop_map(Request::SetData).boxed(),
        get_acl_request().prop_map(Request::GetAcl).boxed(),
        set_acl_request().prop_map(Request::SetAcl).boxed(),
        get_children_request()
            .prop_map(Request::GetChildren)
            .boxed(),
        get_children_request()
            .prop_map(Request::GetChildren2)
            .boxed(),
        sync_request().prop_map(Request::Sync).boxed(),
        Just(Request::Ping).boxed(),
        check_version_request().prop_map(Request::Check).boxed(),
        multi_write().prop_map(Request::Multi).boxed(),
        multi_read().prop_map(Request::MultiRead).boxed(),
        reconfig_request().prop_map(Request::Reconfig).boxed(),
        check_watches_request()
            .prop_map(Request::CheckWatches)
            .boxed(),
        remove_watches_request()
            .prop_map(Request::RemoveWatches)
            .boxed(),
        auth_packet().prop_map(Request::Auth).boxed(),
        set_watches().prop_map(Request::SetWatches).boxed(),
        get_sasl_request().prop_map(Request::Sasl).boxed(),
        get_ephemerals_request()
            .prop_map(Request::GetEphemerals)
            .boxed(),
        get_all_children_number_request()
            .prop_map(Request::GetAllChildrenNumber)
            .boxed(),
        set_watches2().prop_map(Request::SetWatches2).boxed(),
        add_watch_request().prop_map(Request::AddWatch).boxed(),
        Just(Request::WhoAmI).boxed(),
        Just(Request::CloseSession).boxed(),
    ]
}

pub fn request_frame() -> impl Strategy<Value = RequestFrame> {
    (any::<i32>(), request()).prop_map(|(xid, request)| RequestFrame { xid, request })
}

// ---------------------------------------------------------------------------
// response.rs
// ---------------------------------------------------------------------------

/// Every `MultiResult` variant, errors with any code.
pub fn multi_result() -> impl Strategy<Value = MultiResult> {
    prop_oneof![
        create_response().prop_map(MultiResult::Create),
        create2_response().prop_map(MultiResult::Create2),
        Just(MultiResult::Delete),
        set_data_response().prop_map(MultiResult::SetData),
        Just(MultiResult::Check),
        get_data_response().prop_map(MultiResult::GetData),
        get_children_response().prop_map(MultiResult::GetChildren),
        any::<i32>().prop_map(MultiResult::Error),
    ]
}

pub fn multi_response() -> impl Strategy<Value = MultiResponse> {
    vec(multi_result(), 0..6).prop_map(|results| MultiResponse { results })
}

/// A successful reply body of the shape the reply to `op` has.
pub fn response_for(op: OpCode) -> BoxedStrategy<Response> {
    match op {
        OpCode::Create => create_response().prop_map(Response::Create).boxed(),
        OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
            create2_response().prop_map(Response::Create2).boxed()
        }
        OpCode::Exists | OpCode::SetData | OpCode::SetAcl => {
            stat().prop_map(Response::Stat).boxed()
        }
        OpCode::GetData | OpCode::Reconfig => {
            get_data_response().prop_map(Response::GetData).boxed()
        }
        OpCode::GetAcl => get_acl_response().prop_map(Response::GetAcl).boxed(),
        OpCode::GetChildren => get_children_response()
            .prop_map(Response::GetChildren)
            .boxed(),
        OpCode::GetChildren2 => get_children2_response()
            .prop_map(Response::GetChildren2)
            .boxed(),
        OpCode::Sync => sync_response().prop_map(Response::Sync).boxed(),
        OpCode::Multi | OpCode::MultiRead => multi_response().prop_map(Response::Multi).boxed(),
        OpCode::Sasl => set_sasl_response().prop_map(Response::Sasl).boxed(),
        OpCode::GetEphemerals => get_ephemerals_response()
            .prop_map(Response::GetEphemerals)
            .boxed(),
        OpCode::GetAllChildrenNumber => get_all_children_number_response()
            .prop_map(Response::GetAllChildrenNumber)
            .boxed(),
        OpCode::AddWatch => error_response().prop_map(Response::AddWatch).boxed(),
        OpCode::WhoAmI => who_am_i_response().prop_map(Response::WhoAmI).boxed(),
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
        | OpCode::Error => Just(Response::Empty).boxed(),
    }
}

/// Any opcode.
pub fn op_code() -> impl Strategy<Value = OpCode> {
    select(OpCode::ALL)
}

/// An opcode and a reply body of the shape its reply has.
pub fn op_and_response() -> impl Strategy<Value = (OpCode, Response)> {
    op_code().prop_flat_map(|op| (Just(op), response_for(op)))
}

/// An opcode and a whole reply to it: a failed reply (`err != 0`) carries
/// no body, so its response is `Empty`.
pub fn op_and_reply_frame() -> impl Strategy<Value = (OpCode, ReplyFrame)> {
    (
        op_code(),
        any::<i32>(),
        any::<i64>(),
        prop_oneof![Just(0), any::<i32>()],
    )
        .prop_flat_map(|(op, xid, zxid, err)| {
            let header = ReplyHeader { xid, zxid, err };
            let response = if err == 0 {
                response_for(op)
            } else {
                Just(Response::Empty).boxed()
            };
            (Just(op), response).prop_map(move |(op, response)| {
                (
                    op,
                    ReplyFrame {
                        header: header.clone(),
                        response,
                    },
                )
            })
        })
}

// ---------------------------------------------------------------------------
// txn.rs
// ---------------------------------------------------------------------------

pub fn txn_header(txn_type: i32) -> impl Strategy<Value = TxnHeader> {
    (any::<i64>(), any::<i32>(), any::<i64>(), any::<i64>()).prop_map(
        move |(client_id, cxid, zxid, time)| TxnHeader {
            client_id,
            cxid,
            zxid,
            time,
            txn_type,
        },
    )
}

pub fn create_txn() -> impl Strategy<Value = CreateTxn> {
    (text(), data(), acls(), any::<bool>(), any::<i32>()).prop_map(
        |(path, data, acl, ephemeral, parent_cversion)| CreateTxn {
            path,
            data,
            acl,
            ephemeral,
            parent_cversion,
        },
    )
}

pub fn create_container_txn() -> impl Strategy<Value = CreateContainerTxn> {
    (text(), data(), acls(), any::<i32>()).prop_map(|(path, data, acl, parent_cversion)| {
        CreateContainerTxn {
            path,
            data,
            acl,
            parent_cversion,
        }
    })
}

pub fn create_ttl_txn() -> impl Strategy<Value = CreateTtlTxn> {
    (text(), data(), acls(), any::<i32>(), any::<i64>()).prop_map(
        |(path, data, acl, parent_cversion, ttl)| CreateTtlTxn {
            path,
            data,
            acl,
            parent_cversion,
            ttl,
        },
    )
}

pub fn delete_txn() -> impl Strategy<Value = DeleteTxn> {
    text().prop_map(|path| DeleteTxn { path })
}

pub fn set_data_txn() -> impl Strategy<Value = SetDataTxn> {
    (text(), data(), any::<i32>()).prop_map(|(path, data, version)| SetDataTxn {
        path,
        data,
        version,
    })
}

pub fn set_acl_txn() -> impl Strategy<Value = SetAclTxn> {
    (text(), acls(), any::<i32>()).prop_map(|(path, acl, version)| SetAclTxn { path, acl, version })
}

pub fn check_version_txn() -> impl Strategy<Value = CheckVersionTxn> {
    (text(), any::<i32>()).prop_map(|(path, version)| CheckVersionTxn { path, version })
}

pub fn error_txn() -> impl Strategy<Value = ErrorTxn> {
    any::<i32>().prop_map(|err| ErrorTxn { err })
}

pub fn create_session_txn() -> impl Strategy<Value = CreateSessionTxn> {
    any::<i32>().prop_map(|timeout| CreateSessionTxn { timeout })
}

pub fn close_session_txn() -> impl Strategy<Value = CloseSessionTxn> {
    texts().prop_map(|paths_to_delete| CloseSessionTxn { paths_to_delete })
}

pub fn sub_txn() -> impl Strategy<Value = SubTxn> {
    (any::<i32>(), buffer()).prop_map(|(txn_type, data)| SubTxn { txn_type, data })
}

pub fn txn_digest() -> impl Strategy<Value = TxnDigest> {
    (any::<i32>(), any::<i64>()).prop_map(|(version, tree_digest)| TxnDigest {
        version,
        tree_digest,
    })
}

/// Every txn that is not a multi: what a multi may hold. Includes
/// `CloseSession(None)`, which inside a multi is an empty sub-record.
pub fn single_txn() -> impl Strategy<Value = Txn> {
    prop_oneof![
        create_txn().prop_map(Txn::Create).boxed(),
        create_txn().prop_map(Txn::Create2).boxed(),
        create_container_txn()
            .prop_map(Txn::CreateContainer)
            .boxed(),
        create_ttl_txn().prop_map(Txn::CreateTtl).boxed(),
        delete_txn().prop_map(Txn::Delete).boxed(),
        delete_txn().prop_map(Txn::DeleteContainer).boxed(),
        set_data_txn().prop_map(Txn::SetData).boxed(),
        set_data_txn().prop_map(Txn::Reconfig).boxed(),
        set_acl_txn().prop_map(Txn::SetAcl).boxed(),
        check_version_txn().prop_map(Txn::Check).boxed(),
        error_txn().prop_map(Txn::Error).boxed(),
        create_session_txn().prop_map(Txn::CreateSession).boxed(),
        option::of(close_session_txn())
            .prop_map(Txn::CloseSession)
            .boxed(),
    ]
}

/// Every txn, a multi of single txns included.
pub fn txn() -> impl Strategy<Value = Txn> {
    prop_oneof![
        4 => single_txn(),
        1 => vec(single_txn(), 0..5).prop_map(Txn::Multi),
    ]
}

/// A whole txn entry whose header names its txn's type, with or without a
/// digest.
///
/// A top-level `CloseSession(None)` never gets a digest: with no record
/// between header and digest, the decoder reads the digest as the record
/// (the rule `close_session_without_record_*` tests pin down).
pub fn txn_entry() -> impl Strategy<Value = TxnEntry> {
    (txn(), option::of(txn_digest()))
        .prop_flat_map(|(txn, digest)| {
            let digest = match txn {
                Txn::CloseSession(None) => None,
                _ => digest,
            };
            (txn_header(txn.op_code().code()), Just(txn), Just(digest))
        })
        .prop_map(|(header, txn, digest)| TxnEntry {
            header,
            txn,
            digest,
        })
}

// ---------------------------------------------------------------------------
// disk.rs
// ---------------------------------------------------------------------------

pub fn file_header() -> impl Strategy<Value = FileHeader> {
    (any::<i32>(), any::<i32>(), any::<i64>()).prop_map(|(magic, version, dbid)| FileHeader {
        magic,
        version,
        dbid,
    })
}

pub fn snapshot_session() -> impl Strategy<Value = SnapshotSession> {
    (any::<i64>(), any::<i32>()).prop_map(|(session_id, timeout)| SnapshotSession {
        session_id,
        timeout,
    })
}

pub fn acl_cache_entry() -> impl Strategy<Value = AclCacheEntry> {
    (any::<i64>(), acls()).prop_map(|(acl_ref, acls)| AclCacheEntry { acl_ref, acls })
}

pub fn data_node() -> impl Strategy<Value = DataNode> {
    (data(), any::<i64>(), stat_persisted()).prop_map(|(data, acl_ref, stat)| DataNode {
        data,
        acl_ref,
        stat,
    })
}

pub fn zxid_digest() -> impl Strategy<Value = ZxidDigest> {
    (any::<i64>(), any::<i32>(), any::<i64>()).prop_map(|(zxid, digest_version, digest)| {
        ZxidDigest {
            zxid,
            digest_version,
            digest,
        }
    })
}

// ---------------------------------------------------------------------------
// Byte streams
// ---------------------------------------------------------------------------

/// Arbitrary bytes, mostly short, sometimes up to a few KiB.
pub fn raw_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => vec(any::<u8>(), 0..64),
        1 => vec(any::<u8>(), 0..4096),
    ]
}

/// Cut points for splitting a stream into chunks: each is a chunk length.
pub fn chunk_lengths() -> impl Strategy<Value = Vec<usize>> {
    vec(0usize..64, 1..32)
}

/// Splits `bytes` into consecutive chunks whose lengths cycle through
/// `lengths` (a zero length gives an empty chunk, as a spurious wake-up
/// does); every byte lands in exactly one chunk.
pub fn split_into_chunks<'a>(bytes: &'a [u8], lengths: &[usize]) -> Vec<&'a [u8]> {
    let mut chunks = Vec::new();
    let mut rest = bytes;
    let mut i = 0;
    while !rest.is_empty() {
        let len = lengths[i % lengths.len()].min(rest.len());
        let (chunk, tail) = rest.split_at(len);
        chunks.push(chunk);
        rest = tail;
        i += 1;
        // A lengths list of all zeros would never make progress: after a
        // full cycle of empty chunks, take one byte.
        if i % lengths.len() == 0 && lengths.iter().all(|&l| l == 0) {
            let (chunk, tail) = rest.split_at(1);
            chunks.push(chunk);
            rest = tail;
        }
    }
    chunks
}
