//! A client may send requests right behind its ConnectRequest, before the
//! ConnectResponse arrives: Apache's Netty client socket does (zkCli with
//! `zookeeper.clientCnxnSocket=...ClientCnxnSocketNetty`, the socket TLS
//! needs). Apache holds them until the session exists; so must we.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use zk_proto::{
    encode_frame, ConnectRequest, ConnectResponse, GetChildrenRequest, Jute, ReplyHeader, Request,
    RequestFrame,
};
use zk_server::{Server, ServerConfig};

fn read_frame(s: &mut TcpStream) -> Bytes {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).unwrap();
    Bytes::from(body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_sent_behind_the_connect_request_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        client_port_address: Some("127.0.0.1".parse().unwrap()),
        ..ServerConfig::standalone(dir.path(), 0)
    };
    let ours = Server::start(config).await.unwrap();
    let addr = ours.local_addr();
    tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = BytesMut::new();
        encode_frame(
            &ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: 0,
                timeout: 30_000,
                session_id: 0,
                passwd: Bytes::from(vec![0u8; 16]),
                read_only: Some(false),
            },
            &mut buf,
        );
        encode_frame(
            &RequestFrame::new(
                1,
                Request::GetChildren2(GetChildrenRequest {
                    path: "/".into(),
                    watch: false,
                }),
            ),
            &mut buf,
        );
        // One write: both frames reach the server together.
        s.write_all(&buf).unwrap();
        let connected = ConnectResponse::from_bytes(read_frame(&mut s)).unwrap();
        assert!(connected.session_id != 0);
        let reply = ReplyHeader::from_bytes(read_frame(&mut s)).unwrap();
        assert_eq!((reply.xid, reply.err), (1, 0));
    })
    .await
    .unwrap();
    ours.shutdown().await;
}
