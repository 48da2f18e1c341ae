//! Helpers for the ensemble tests: fallible client calls (a member may die
//! under a test's feet) on top of the raw client of `server_common`.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use zk_proto::{
    Acl, CreateMode, CreateRequest, ErrorCode, GetDataRequest, OpCode, ReplyFrame, Request,
    RequestFrame, Response, ServerMessage, SyncRequest,
};

use crate::server_common::{connect_request, RawClient};

/// Bound on any wait for the ensemble.
pub const SETTLE: Duration = Duration::from_secs(20);

/// A session on `addr`, or `None` when the member refuses (not serving).
pub async fn try_session(addr: SocketAddr) -> Option<RawClient> {
    let connect =
        tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr));
    let Ok(Ok(_probe)) = connect.await else {
        return None;
    };
    drop(_probe);
    let mut c = RawClient::open(addr).await;
    let resp = tokio::time::timeout(
        Duration::from_secs(5),
        c.handshake(&connect_request(10_000)),
    )
    .await
    .ok()??;
    (resp.timeout > 0).then_some(c)
}

/// A session on `addr`, retried until the member serves.
pub async fn session(addr: SocketAddr) -> RawClient {
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        if let Some(c) = try_session(addr).await {
            return c;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{addr} never accepted a session"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends one request and waits for its reply; `None` when the connection
/// closed first (the request may or may not have taken effect).
pub async fn try_call(c: &mut RawClient, xid: i32, request: Request) -> Option<ReplyFrame> {
    let op: OpCode = request.op_code();
    let frame = RequestFrame::new(xid, request);
    let mut buf = bytes::BytesMut::new();
    zk_proto::encode_frame(&frame, &mut buf);
    use tokio::io::AsyncWriteExt;
    c.stream.write_all(&buf).await.ok()?;
    loop {
        let bytes = tokio::time::timeout(Duration::from_secs(8), c.recv_frame())
            .await
            .ok()??;
        if let Ok(ServerMessage::Reply { header, .. }) = ServerMessage::decode_frame(bytes.clone())
        {
            if header.xid == xid {
                return ReplyFrame::decode_reply(bytes, op).ok();
            }
        }
    }
}

pub fn create_request(path: &str, data: &[u8]) -> Request {
    Request::Create(CreateRequest {
        path: path.into(),
        data: Some(Bytes::copy_from_slice(data)),
        acl: Acl::open_unsafe(),
        flags: CreateMode::Persistent.code(),
    })
}

/// Creates `path`; true when the server acknowledged it.
pub async fn try_create(c: &mut RawClient, xid: i32, path: &str) -> bool {
    match try_call(c, xid, create_request(path, path.as_bytes())).await {
        Some(r) => r.header.err == 0,
        None => false,
    }
}

/// `sync` then `getData`: the data, or the error code.
pub async fn synced_get(c: &mut RawClient, xid: i32, path: &str) -> Result<Bytes, ErrorCode> {
    let sync = try_call(
        c,
        xid,
        Request::Sync(SyncRequest {
            path: Some(path.into()),
        }),
    )
    .await
    .expect("sync got no reply");
    assert_eq!(sync.header.err, 0, "sync failed");
    let reply = try_call(
        c,
        xid + 1,
        Request::GetData(GetDataRequest {
            path: path.into(),
            watch: false,
        }),
    )
    .await
    .expect("getData got no reply");
    if reply.header.err != 0 {
        return Err(ErrorCode::from_code(reply.header.err).expect("unknown error code"));
    }
    match reply.response {
        Response::GetData(r) => Ok(r.data.unwrap_or_default()),
        other => panic!("unexpected reply {other:?}"),
    }
}
