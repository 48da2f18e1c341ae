//! A raw-socket ZooKeeper client for the server tests: zk-proto frames over
//! a TcpStream, every wait bounded.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Decoder;
use zk_proto::{
    encode_frame, Acl, ConnectRequest, ConnectResponse, CreateMode, CreateRequest, DeleteRequest,
    ErrorCode, FrameCodec, GetDataRequest, Jute, OpCode, ReplyFrame, Request, RequestFrame,
    ServerMessage, SetDataRequest, WatcherEvent,
};

/// How long any single wait may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct RawClient {
    pub stream: TcpStream,
    buf: BytesMut,
    codec: FrameCodec,
    pub session_id: i64,
    pub passwd: Bytes,
    pub timeout: i32,
}

/// What the server sent next, as a test sees it.
#[derive(Debug)]
pub enum Incoming {
    Event(WatcherEvent),
    Reply(ReplyFrame),
}

pub fn connect_request(timeout: i32) -> ConnectRequest {
    ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout,
        session_id: 0,
        passwd: Bytes::from_static(&[0; 16]),
        read_only: Some(false),
    }
}

impl RawClient {
    /// A TCP connection, no handshake yet.
    pub async fn open(addr: SocketAddr) -> RawClient {
        let stream = tokio::time::timeout(WAIT, TcpStream::connect(addr))
            .await
            .expect("connect timed out")
            .expect("connect failed");
        RawClient {
            stream,
            buf: BytesMut::new(),
            codec: FrameCodec::default(),
            session_id: 0,
            passwd: Bytes::new(),
            timeout: 0,
        }
    }

    /// A connection with a new session of `timeout` ms.
    pub async fn session(addr: SocketAddr, timeout: i32) -> RawClient {
        let mut c = RawClient::open(addr).await;
        let resp = c
            .handshake(&connect_request(timeout))
            .await
            .expect("server closed during handshake");
        assert!(resp.timeout > 0, "session refused: {resp:?}");
        c
    }

    /// Sends a ConnectRequest; the response, or `None` if the server
    /// closed without one.
    pub async fn handshake(&mut self, req: &ConnectRequest) -> Option<ConnectResponse> {
        let mut buf = BytesMut::new();
        encode_frame(req, &mut buf);
        // A refused connection may already be closed: no panic here.
        if self.stream.write_all(&buf).await.is_err() {
            return None;
        }
        let frame = self.recv_frame().await?;
        let resp = ConnectResponse::from_bytes(frame).expect("bad connect response");
        self.session_id = resp.session_id;
        self.passwd = resp.passwd.clone();
        self.timeout = resp.timeout;
        Some(resp)
    }

    pub async fn send_raw_frame<T: Jute>(&mut self, item: &T) {
        let mut buf = BytesMut::new();
        encode_frame(item, &mut buf);
        self.write(&buf).await;
    }

    pub async fn write(&mut self, bytes: &[u8]) {
        tokio::time::timeout(WAIT, self.stream.write_all(bytes))
            .await
            .expect("write timed out")
            .expect("write failed");
    }

    pub async fn send(&mut self, xid: i32, request: Request) {
        self.send_raw_frame(&RequestFrame::new(xid, request)).await;
    }

    /// The next frame body; `None` when the server closed the connection.
    pub async fn recv_frame(&mut self) -> Option<Bytes> {
        loop {
            match self.codec.decode(&mut self.buf) {
                Ok(Some(frame)) => return Some(frame),
                Ok(None) => {}
                Err(e) => panic!("bad frame from server: {e}"),
            }
            let read = tokio::time::timeout(WAIT, self.stream.read_buf(&mut self.buf))
                .await
                .expect("timed out waiting for the server");
            match read {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// The next event or reply; replies decoded for `op`.
    pub async fn recv(&mut self, op: OpCode) -> Option<Incoming> {
        let frame = self.recv_frame().await?;
        Some(
            match ServerMessage::decode_frame(frame.clone()).expect("bad message") {
                ServerMessage::Notification { event, .. } => Incoming::Event(event),
                ServerMessage::Reply { .. } => {
                    Incoming::Reply(ReplyFrame::decode_reply(frame, op).expect("bad reply"))
                }
            },
        )
    }

    /// Reads until the reply to `xid`, skipping events and other replies.
    pub async fn reply_to(&mut self, xid: i32, op: OpCode) -> ReplyFrame {
        loop {
            let frame = self.recv_frame().await.expect("connection closed");
            if let Ok(ServerMessage::Reply { header, .. }) =
                ServerMessage::decode_frame(frame.clone())
            {
                if header.xid == xid {
                    return ReplyFrame::decode_reply(frame, op).expect("bad reply");
                }
            }
        }
    }

    /// Sends a request and returns its reply (no events expected between).
    pub async fn call(&mut self, xid: i32, request: Request) -> ReplyFrame {
        let op = request.op_code();
        self.send(xid, request).await;
        match self.recv(op).await {
            Some(Incoming::Reply(reply)) => {
                assert_eq!(reply.header.xid, xid, "reply out of order");
                reply
            }
            other => panic!("expected the reply to xid {xid}, got {other:?}"),
        }
    }

    pub async fn create(
        &mut self,
        xid: i32,
        path: &str,
        data: &[u8],
        mode: CreateMode,
    ) -> ReplyFrame {
        self.call(
            xid,
            Request::Create(CreateRequest {
                path: path.into(),
                data: Some(Bytes::copy_from_slice(data)),
                acl: Acl::open_unsafe(),
                flags: mode.code(),
            }),
        )
        .await
    }

    pub async fn get(&mut self, xid: i32, path: &str, watch: bool) -> ReplyFrame {
        self.call(
            xid,
            Request::GetData(GetDataRequest {
                path: path.into(),
                watch,
            }),
        )
        .await
    }

    pub async fn set(&mut self, xid: i32, path: &str, data: &[u8]) -> ReplyFrame {
        self.call(
            xid,
            Request::SetData(SetDataRequest {
                path: path.into(),
                data: Some(Bytes::copy_from_slice(data)),
                version: -1,
            }),
        )
        .await
    }

    pub async fn delete(&mut self, xid: i32, path: &str) -> ReplyFrame {
        self.call(
            xid,
            Request::Delete(DeleteRequest {
                path: path.into(),
                version: -1,
            }),
        )
        .await
    }

    /// True when the server closes the connection (EOF or reset) without
    /// sending anything more.
    pub async fn closed_without_more(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut byte = [0u8; 1];
        matches!(
            tokio::time::timeout(WAIT, self.stream.read(&mut byte)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}

pub fn err_of(reply: &ReplyFrame) -> Option<ErrorCode> {
    ErrorCode::from_code(reply.header.err)
}

/// Sends a four-letter word and reads the whole answer.
pub async fn four_letter(addr: SocketAddr, word: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(word.as_bytes()).await.expect("write");
    let mut out = String::new();
    tokio::time::timeout(WAIT, stream.read_to_string(&mut out))
        .await
        .expect("4lw timed out")
        .expect("4lw read failed");
    out
}
