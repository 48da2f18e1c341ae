//! Requests over a raw socket: CRUD, watch ordering, protocol errors,
//! connection limits.

mod server_common;

use bytes::{BufMut, BytesMut};
use server_common::{err_of, Incoming, RawClient};
use zk_proto::{
    CheckVersionRequest, CreateMode, ErrorCode, EventType, GetDataResponse, OpCode, Request,
    Response,
};
use zk_server::testing::TestingServer;

#[tokio::test]
async fn create_get_set_delete_round_trip() {
    let server = TestingServer::start().await.unwrap();
    let mut c = RawClient::session(server.addr(), 3000).await;

    let created = c.create(1, "/a", b"one", CreateMode::Persistent).await;
    assert_eq!(created.header.err, 0);
    assert!(matches!(&created.response, Response::Create(r) if r.path == "/a"));

    let got = c.get(2, "/a", false).await;
    match &got.response {
        Response::GetData(GetDataResponse { data, stat }) => {
            assert_eq!(data.as_deref(), Some(&b"one"[..]));
            assert_eq!(stat.czxid, created.header.zxid);
        }
        other => panic!("{other:?}"),
    }

    let set = c.set(3, "/a", b"two").await;
    assert_eq!(set.header.err, 0);
    assert!(
        set.header.zxid > created.header.zxid,
        "each write gets a new zxid"
    );
    let got = c.get(4, "/a", false).await;
    assert!(
        matches!(&got.response, Response::GetData(r) if r.data.as_deref() == Some(&b"two"[..]))
    );

    assert_eq!(c.delete(5, "/a").await.header.err, 0);
    assert_eq!(
        err_of(&c.get(6, "/a", false).await),
        Some(ErrorCode::NoNode)
    );
}

#[tokio::test]
async fn failed_writes_report_their_error_code() {
    let server = TestingServer::start().await.unwrap();
    let mut c = RawClient::session(server.addr(), 3000).await;
    c.create(1, "/dup", b"", CreateMode::Persistent).await;
    let again = c.create(2, "/dup", b"", CreateMode::Persistent).await;
    assert_eq!(err_of(&again), Some(ErrorCode::NodeExists));
    let orphan = c
        .create(3, "/missing/child", b"", CreateMode::Persistent)
        .await;
    assert_eq!(err_of(&orphan), Some(ErrorCode::NoNode));
}

#[tokio::test]
async fn watch_event_arrives_before_the_reply_that_follows_it() {
    let server = TestingServer::start().await.unwrap();
    let mut writer = RawClient::session(server.addr(), 3000).await;
    writer.create(1, "/w", b"0", CreateMode::Persistent).await;

    // The watcher sets a data watch, then its own setData triggers it: the
    // event must come before the setData reply.
    let mut watcher = RawClient::session(server.addr(), 3000).await;
    assert_eq!(watcher.get(1, "/w", true).await.header.err, 0);
    watcher
        .send(
            2,
            Request::SetData(zk_proto::SetDataRequest {
                path: "/w".into(),
                data: None,
                version: -1,
            }),
        )
        .await;
    match watcher.recv(OpCode::SetData).await {
        Some(Incoming::Event(e)) => {
            assert_eq!(e.event_type, EventType::NodeDataChanged.code());
            assert_eq!(e.path, "/w");
        }
        other => panic!("expected the event first, got {other:?}"),
    }
    match watcher.recv(OpCode::SetData).await {
        Some(Incoming::Reply(r)) => assert_eq!(r.header.xid, 2),
        other => panic!("expected the reply, got {other:?}"),
    }
}

#[tokio::test]
async fn another_sessions_write_fires_the_watch() {
    let server = TestingServer::start().await.unwrap();
    let mut writer = RawClient::session(server.addr(), 3000).await;
    let mut watcher = RawClient::session(server.addr(), 3000).await;
    writer.create(1, "/x", b"", CreateMode::Persistent).await;
    watcher.get(1, "/x", true).await;
    writer.delete(2, "/x").await;
    match watcher.recv(OpCode::Ping).await {
        Some(Incoming::Event(e)) => assert_eq!(e.event_type, EventType::NodeDeleted.code()),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn set_watches_with_xid_minus_eight_is_echoed() {
    let server = TestingServer::start().await.unwrap();
    let mut c = RawClient::session(server.addr(), 3000).await;
    let reply = c
        .call(
            -8,
            Request::SetWatches(zk_proto::SetWatches {
                relative_zxid: 0,
                data_watches: vec![],
                exist_watches: vec![],
                child_watches: vec![],
            }),
        )
        .await;
    assert_eq!(reply.header.xid, -8);
    assert_eq!(reply.header.err, 0);
}

#[tokio::test]
async fn unknown_opcode_gets_unimplemented_then_close() {
    let server = TestingServer::start().await.unwrap();
    let mut c = RawClient::session(server.addr(), 3000).await;
    // header {xid 7, type 99}, no body.
    c.write(&[0, 0, 0, 8, 0, 0, 0, 7, 0, 0, 0, 99]).await;
    let reply = c.recv(OpCode::Ping).await;
    match reply {
        Some(Incoming::Reply(r)) => {
            assert_eq!(r.header.xid, 7);
            assert_eq!(r.header.zxid, -1);
            assert_eq!(err_of(&r), Some(ErrorCode::Unimplemented));
        }
        other => panic!("{other:?}"),
    }
    assert!(c.closed_without_more().await);
}

#[tokio::test]
async fn standalone_check_is_unimplemented_and_closes() {
    let server = TestingServer::start().await.unwrap();
    let mut c = RawClient::session(server.addr(), 3000).await;
    let reply = c
        .call(
            1,
            Request::Check(CheckVersionRequest {
                path: "/".into(),
                version: 0,
            }),
        )
        .await;
    assert_eq!(err_of(&reply), Some(ErrorCode::Unimplemented));
    assert!(c.closed_without_more().await);
}

#[tokio::test]
async fn malformed_body_gets_marshalling_error() {
    let server = TestingServer::start().await.unwrap();
    let mut c = RawClient::session(server.addr(), 3000).await;
    // getData (4) whose path claims 100 bytes but has 2.
    let mut frame = BytesMut::new();
    frame.put_i32(14);
    frame.put_i32(3);
    frame.put_i32(4);
    frame.put_i32(100);
    frame.put_slice(b"/a");
    c.write(&frame).await;
    match c.recv(OpCode::GetData).await {
        Some(Incoming::Reply(r)) => {
            assert_eq!(r.header.xid, 3);
            assert_eq!(err_of(&r), Some(ErrorCode::MarshallingError));
        }
        other => panic!("{other:?}"),
    }
    // The connection stays usable.
    assert_eq!(c.call(-2, Request::Ping).await.header.err, 0);
}

#[tokio::test]
async fn oversize_frame_closes_only_that_connection() {
    let server = TestingServer::start_with(|c| c.jute_max_buffer = 4096)
        .await
        .unwrap();
    let mut bystander = RawClient::session(server.addr(), 3000).await;
    let mut big = RawClient::session(server.addr(), 3000).await;
    let mut frame = BytesMut::new();
    frame.put_i32(5000);
    frame.put_slice(&[0; 64]);
    big.write(&frame).await;
    assert!(big.closed_without_more().await);
    assert_eq!(bystander.call(-2, Request::Ping).await.header.err, 0);
    let mut fresh = RawClient::session(server.addr(), 3000).await;
    assert_eq!(fresh.call(-2, Request::Ping).await.header.err, 0);
}

#[tokio::test]
async fn garbage_bytes_close_the_connection_and_the_server_keeps_serving() {
    let server = TestingServer::start().await.unwrap();
    let mut junk = RawClient::open(server.addr()).await;
    junk.write(&[0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8])
        .await;
    assert!(junk.closed_without_more().await);

    // A frame of the right size that is not a ConnectRequest.
    let mut short = RawClient::open(server.addr()).await;
    short.write(&[0, 0, 0, 3, 1, 2, 3]).await;
    assert!(short.closed_without_more().await);

    let mut ok = RawClient::session(server.addr(), 3000).await;
    assert_eq!(ok.call(-2, Request::Ping).await.header.err, 0);
}

#[tokio::test]
async fn connections_beyond_max_client_cnxns_are_closed() {
    let server = TestingServer::start_with(|c| c.max_client_cnxns = 2)
        .await
        .unwrap();
    let _a = RawClient::session(server.addr(), 3000).await;
    let _b = RawClient::session(server.addr(), 3000).await;
    let mut third = RawClient::open(server.addr()).await;
    assert!(
        third.closed_without_more().await,
        "third connection refused"
    );
    drop(_a);
    // Once one closes, a new connection is accepted again.
    let deadline = tokio::time::Instant::now() + server_common::WAIT;
    loop {
        let mut retry = RawClient::open(server.addr()).await;
        if retry
            .handshake(&server_common::connect_request(3000))
            .await
            .is_some()
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "slot never freed");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn digest_auth_is_acknowledged_with_xid_minus_four() {
    let server = TestingServer::start().await.unwrap();
    let mut c = RawClient::session(server.addr(), 3000).await;
    let reply = c
        .call(
            -4,
            Request::Auth(zk_proto::AuthPacket {
                auth_type: 0,
                scheme: "digest".into(),
                auth: Some(bytes::Bytes::from_static(b"alice:secret")),
            }),
        )
        .await;
    assert_eq!(reply.header.err, 0);
    let who = c.call(1, Request::WhoAmI).await;
    match &who.response {
        Response::WhoAmI(r) => assert!(
            r.client_info.iter().any(|i| i.auth_scheme == "digest"),
            "{r:?}"
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn failed_auth_is_answered_then_the_connection_closes() {
    let server = TestingServer::start().await.unwrap();
    let mut c = RawClient::session(server.addr(), 3000).await;
    let reply = c
        .call(
            -4,
            Request::Auth(zk_proto::AuthPacket {
                auth_type: 0,
                scheme: "no-such-scheme".into(),
                auth: Some(bytes::Bytes::from_static(b"x")),
            }),
        )
        .await;
    assert_eq!(err_of(&reply), Some(ErrorCode::AuthFailed));
    assert!(c.closed_without_more().await);
}

#[tokio::test]
async fn an_emptied_container_is_deleted_by_the_cleanup_timer() {
    let server = TestingServer::start_with(|c| c.container_check_interval_ms = 100)
        .await
        .unwrap();
    let mut c = RawClient::session(server.addr(), 3000).await;
    let created = c
        .call(
            1,
            Request::CreateContainer(zk_proto::CreateRequest {
                path: "/box".into(),
                data: None,
                acl: zk_proto::Acl::open_unsafe(),
                flags: CreateMode::Container.code(),
            }),
        )
        .await;
    assert_eq!(created.header.err, 0);
    c.create(2, "/box/item", b"", CreateMode::Persistent).await;
    c.delete(3, "/box/item").await;
    let deadline = tokio::time::Instant::now() + server_common::WAIT;
    let mut xid = 4;
    loop {
        if err_of(&c.get(xid, "/box", false).await) == Some(ErrorCode::NoNode) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "container never deleted"
        );
        xid += 1;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn random_frames_after_the_handshake_never_take_the_server_down() {
    use rand::{Rng, SeedableRng};
    let server = TestingServer::start().await.unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    for _ in 0..30 {
        let mut c = RawClient::session(server.addr(), 3000).await;
        // A header with a random opcode (often a real one) and a random body.
        let len = rng.gen_range(8..64usize);
        let mut frame = BytesMut::new();
        frame.put_i32(len as i32);
        frame.put_i32(rng.gen_range(1..1000));
        frame.put_i32(
            *[
                1,
                2,
                3,
                4,
                5,
                7,
                8,
                12,
                14,
                15,
                22,
                101,
                105,
                106,
                rng.gen(),
            ]
            .get(rng.gen_range(0..15usize))
            .unwrap_or(&4),
        );
        for _ in 8..len {
            frame.put_u8(rng.gen());
        }
        // The server may answer, close, or both; it must not go down.
        let _ = tokio::io::AsyncWriteExt::write_all(&mut c.stream, &frame).await;
        drop(c);
    }
    let mut ok = RawClient::session(server.addr(), 3000).await;
    assert_eq!(ok.call(-2, Request::Ping).await.header.err, 0);
    assert_eq!(
        server_common::four_letter(server.addr(), "ruok").await,
        "imok"
    );
}

#[tokio::test]
async fn pipelined_reads_wait_for_the_sessions_earlier_writes() {
    let server = TestingServer::start().await.unwrap();
    let mut c = RawClient::session(server.addr(), 3000).await;
    // Four requests in one write, no waiting in between.
    let mut burst = BytesMut::new();
    let requests = [
        Request::Create(zk_proto::CreateRequest {
            path: "/fifo".into(),
            data: Some(bytes::Bytes::from_static(b"1")),
            acl: zk_proto::Acl::open_unsafe(),
            flags: 0,
        }),
        Request::GetData(zk_proto::GetDataRequest {
            path: "/fifo".into(),
            watch: false,
        }),
        Request::SetData(zk_proto::SetDataRequest {
            path: "/fifo".into(),
            data: Some(bytes::Bytes::from_static(b"2")),
            version: -1,
        }),
        Request::GetData(zk_proto::GetDataRequest {
            path: "/fifo".into(),
            watch: false,
        }),
    ];
    let ops: Vec<OpCode> = requests.iter().map(Request::op_code).collect();
    for (i, request) in requests.into_iter().enumerate() {
        zk_proto::encode_frame(
            &zk_proto::RequestFrame::new(i as i32 + 1, request),
            &mut burst,
        );
    }
    c.write(&burst).await;
    let mut replies = Vec::new();
    for (i, op) in ops.into_iter().enumerate() {
        let reply = c.reply_to(i as i32 + 1, op).await;
        assert_eq!(reply.header.err, 0, "request {}", i + 1);
        replies.push(reply);
    }
    let data = |r: &zk_proto::ReplyFrame| match &r.response {
        Response::GetData(g) => g.data.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(data(&replies[1]).as_deref(), Some(&b"1"[..]));
    assert_eq!(data(&replies[3]).as_deref(), Some(&b"2"[..]));
}
