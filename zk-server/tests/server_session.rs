//! Sessions over a raw socket: handshake, timeout negotiation, ping,
//! closeSession, reconnect, wrong password, expiry.

mod server_common;

use std::time::Duration;

use bytes::Bytes;
use server_common::{connect_request, err_of, Incoming, RawClient, WAIT};
use zk_proto::{CreateMode, ErrorCode, EventType, OpCode, Request};
use zk_server::testing::TestingServer;

#[tokio::test]
async fn new_session_gets_an_id_a_password_and_the_clamped_timeout() {
    // TestingServer: tickTime 200 ms, so timeouts clamp into [400, 4000].
    let server = TestingServer::start().await.unwrap();
    let mut low = RawClient::open(server.addr()).await;
    let resp = low.handshake(&connect_request(100)).await.unwrap();
    assert_eq!(resp.timeout, 400);
    assert_ne!(resp.session_id, 0);
    assert_eq!(resp.passwd.len(), 16);
    assert_eq!(resp.read_only, Some(false), "readOnly echoed when sent");

    let mut high = RawClient::open(server.addr()).await;
    let resp = high.handshake(&connect_request(1_000_000)).await.unwrap();
    assert_eq!(resp.timeout, 4000);
    assert_ne!(resp.session_id, low.session_id);
}

#[tokio::test]
async fn read_only_flag_is_not_echoed_when_the_client_omits_it() {
    let server = TestingServer::start().await.unwrap();
    let mut c = RawClient::open(server.addr()).await;
    let mut req = connect_request(3000);
    req.read_only = None;
    let resp = c.handshake(&req).await.unwrap();
    assert_eq!(resp.read_only, None);
}

#[tokio::test]
async fn ping_is_answered_with_xid_minus_two_and_the_last_zxid() {
    let server = TestingServer::start().await.unwrap();
    let mut c = RawClient::session(server.addr(), 3000).await;
    let created = c.create(1, "/p", b"", CreateMode::Persistent).await;
    let reply = c.call(-2, Request::Ping).await;
    assert_eq!(reply.header.err, 0);
    assert_eq!(reply.header.zxid, created.header.zxid);
}

#[tokio::test]
async fn close_session_is_answered_then_the_connection_closes() {
    let server = TestingServer::start().await.unwrap();
    let mut c = RawClient::session(server.addr(), 3000).await;
    let reply = c.call(1, Request::CloseSession).await;
    assert_eq!(reply.header.err, 0);
    assert!(c.closed_without_more().await);
}

#[tokio::test]
async fn closed_session_cannot_be_resumed() {
    let server = TestingServer::start().await.unwrap();
    let mut c = RawClient::session(server.addr(), 3000).await;
    c.call(1, Request::CloseSession).await;
    let mut again = RawClient::open(server.addr()).await;
    let mut req = connect_request(3000);
    req.session_id = c.session_id;
    req.passwd = c.passwd.clone();
    let resp = again.handshake(&req).await.unwrap();
    assert_eq!(resp.timeout, 0);
    assert!(again.closed_without_more().await);
}

#[tokio::test]
async fn reconnect_with_id_and_password_moves_the_session_and_closes_the_first() {
    let server = TestingServer::start().await.unwrap();
    let mut first = RawClient::session(server.addr(), 3000).await;
    first.create(1, "/kept", b"v", CreateMode::Ephemeral).await;

    let mut second = RawClient::open(server.addr()).await;
    let mut req = connect_request(3000);
    req.session_id = first.session_id;
    req.passwd = first.passwd.clone();
    let resp = second.handshake(&req).await.unwrap();
    assert_eq!(resp.session_id, first.session_id);
    assert_eq!(resp.passwd, first.passwd);
    assert_eq!(resp.timeout, 3000);

    assert!(first.closed_without_more().await, "old connection closed");
    let reply = second.get(2, "/kept", false).await;
    assert_eq!(reply.header.err, 0, "the session and its ephemeral live on");
}

#[tokio::test]
async fn wrong_password_gets_timeout_zero_and_a_closed_connection() {
    let server = TestingServer::start().await.unwrap();
    let owner = RawClient::session(server.addr(), 3000).await;
    let mut thief = RawClient::open(server.addr()).await;
    let mut req = connect_request(3000);
    req.session_id = owner.session_id;
    req.passwd = Bytes::from_static(&[7; 16]);
    let resp = thief.handshake(&req).await.unwrap();
    assert_eq!(resp.timeout, 0);
    assert_eq!(resp.session_id, 0);
    assert_eq!(&resp.passwd[..], &[0; 16]);
    assert!(thief.closed_without_more().await);
}

#[tokio::test]
async fn client_ahead_of_the_server_is_closed_without_reply() {
    let server = TestingServer::start().await.unwrap();
    let mut c = RawClient::open(server.addr()).await;
    let mut req = connect_request(3000);
    req.last_zxid_seen = 1 << 40;
    assert!(c.handshake(&req).await.is_none());
}

#[tokio::test]
async fn expiry_removes_ephemerals_and_fires_node_deleted_to_other_sessions() {
    let server = TestingServer::start().await.unwrap();
    let mut doomed = RawClient::session(server.addr(), 400).await;
    let created = doomed.create(1, "/eph", b"x", CreateMode::Ephemeral).await;
    assert_eq!(created.header.err, 0);

    let mut watcher = RawClient::session(server.addr(), 4000).await;
    assert_eq!(watcher.get(1, "/eph", true).await.header.err, 0);

    // `doomed` goes silent; `watcher` keeps pinging while it waits.
    let deadline = tokio::time::Instant::now() + WAIT;
    let event = loop {
        assert!(tokio::time::Instant::now() < deadline, "no NodeDeleted");
        watcher.send(-2, Request::Ping).await;
        match watcher.recv(OpCode::Ping).await {
            Some(Incoming::Event(e)) => break e,
            Some(Incoming::Reply(_)) => tokio::time::sleep(Duration::from_millis(100)).await,
            None => panic!("watcher connection closed"),
        }
    };
    assert_eq!(event.event_type, EventType::NodeDeleted.code());
    assert_eq!(event.path, "/eph");
    // Drain the pong that may follow, then check the node is gone.
    let exists = zk_proto::ExistsRequest {
        path: "/eph".into(),
        watch: false,
    };
    watcher.send(50, Request::Exists(exists)).await;
    let reply = watcher.reply_to(50, OpCode::Exists).await;
    assert_eq!(err_of(&reply), Some(ErrorCode::NoNode));
    assert!(
        doomed.closed_without_more().await,
        "expired session's connection closed"
    );
}
