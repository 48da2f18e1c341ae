//! A deliberately dumb client: one TCP connection, one request in flight,
//! frames in and out exactly as zk-proto encodes them. It never retries,
//! reorders or interprets anything, so what it records is what the server
//! sent.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zk_proto::{
    encode_frame, xid, ConnectRequest, ConnectResponse, Jute, OpCode, ReplyFrame, ReplyHeader,
    Request, RequestFrame, Response, ServerMessage, WatcherEvent,
};

/// How long any single read may take before the server counts as silent.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The session timeout every raw client asks for; both servers run with
/// tickTime 2000, so both negotiate it unchanged.
pub const SESSION_TIMEOUT_MS: i32 = 30_000;

/// Why a conversation with the server stopped.
#[derive(Debug, thiserror::Error)]
pub enum RawError {
    #[error("no frame within {0:?}")]
    Timeout(Duration),
    #[error("connection closed by the server")]
    Closed,
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("undecodable frame: {0}")]
    Decode(#[from] zk_proto::DecodeError),
}

/// What arrived while waiting for a reply: watch notifications (in arrival
/// order) and then the reply itself.
#[derive(Debug)]
pub struct Exchange {
    pub notifications: Vec<(i64, WatcherEvent)>,
    pub reply: ReplyFrame,
}

/// One connected session.
#[derive(Debug)]
pub struct RawClient {
    stream: TcpStream,
    next_xid: i32,
    pub session_id: i64,
    pub negotiated_timeout: i32,
}

impl RawClient {
    /// Opens a new session (no session id, empty password, not read-only).
    pub async fn connect(addr: SocketAddr) -> Result<RawClient, RawError> {
        let stream = tokio::time::timeout(READ_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| RawError::Timeout(READ_TIMEOUT))??;
        stream.set_nodelay(true)?;
        let mut client = RawClient {
            stream,
            next_xid: 1,
            session_id: 0,
            negotiated_timeout: 0,
        };
        client
            .send(&ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: 0,
                timeout: SESSION_TIMEOUT_MS,
                session_id: 0,
                passwd: Bytes::from_static(&[0; 16]),
                read_only: Some(false),
            })
            .await?;
        let response = ConnectResponse::from_bytes(client.read_frame().await?)?;
        client.session_id = response.session_id;
        client.negotiated_timeout = response.timeout;
        Ok(client)
    }

    /// Sends `request` (with its special xid if it has one, else the next
    /// xid) and reads until its reply, collecting notifications on the way.
    pub async fn call(&mut self, request: Request) -> Result<Exchange, RawError> {
        let op = request.op_code();
        let xid = request.special_xid().unwrap_or_else(|| {
            let xid = self.next_xid;
            self.next_xid += 1;
            xid
        });
        self.send(&RequestFrame::new(xid, request)).await?;
        self.await_reply(op).await
    }

    /// Sends a request whose body is given as raw bytes (for bodies our
    /// encoder would never write, such as null paths) with `xid`, or the
    /// next xid, and reads until its reply.
    pub async fn call_raw(
        &mut self,
        op: OpCode,
        xid: Option<i32>,
        body: &[u8],
    ) -> Result<Exchange, RawError> {
        let xid = xid.unwrap_or_else(|| {
            let xid = self.next_xid;
            self.next_xid += 1;
            xid
        });
        let mut frame = BytesMut::new();
        frame.extend_from_slice(&xid.to_be_bytes());
        frame.extend_from_slice(&op.code().to_be_bytes());
        frame.extend_from_slice(body);
        let len = i32::try_from(frame.len()).unwrap_or(i32::MAX);
        self.stream.write_all(&len.to_be_bytes()).await?;
        self.stream.write_all(&frame).await?;
        self.await_reply(op).await
    }

    async fn await_reply(&mut self, op: OpCode) -> Result<Exchange, RawError> {
        let mut notifications = Vec::new();
        loop {
            match ServerMessage::decode_frame(self.read_frame().await?)? {
                ServerMessage::Notification { zxid, event } => notifications.push((zxid, event)),
                ServerMessage::Reply { header, mut body } => {
                    let response = decode_body(&header, op, &mut body)?;
                    // A reply to something else (there is nothing else in
                    // flight) is a protocol error worth seeing, so keep it.
                    return Ok(Exchange {
                        notifications,
                        reply: ReplyFrame { header, response },
                    });
                }
            }
        }
    }

    /// A ping round trip: every notification the server queued for this
    /// session before it saw the ping comes back first.
    pub async fn drain(&mut self) -> Result<Vec<(i64, WatcherEvent)>, RawError> {
        Ok(self.call(Request::Ping).await?.notifications)
    }

    async fn send<T: Jute>(&mut self, item: &T) -> Result<(), RawError> {
        let mut buf = BytesMut::new();
        encode_frame(item, &mut buf);
        self.stream.write_all(&buf).await?;
        Ok(())
    }

    async fn read_frame(&mut self) -> Result<Bytes, RawError> {
        tokio::time::timeout(READ_TIMEOUT, read_frame(&mut self.stream))
            .await
            .map_err(|_| RawError::Timeout(READ_TIMEOUT))?
    }
}

fn decode_body(
    header: &ReplyHeader,
    op: OpCode,
    body: &mut zk_proto::Reader,
) -> Result<Response, RawError> {
    if header.err != 0 {
        return Ok(Response::Empty);
    }
    // Pings and auth answers travel with their special xids and no body.
    if header.xid == xid::PING || header.xid == xid::AUTH {
        return Ok(Response::Empty);
    }
    Ok(Response::decode_body(op, body)?)
}

async fn read_frame(stream: &mut TcpStream) -> Result<Bytes, RawError> {
    let mut prefix = [0u8; 4];
    match stream.read_exact(&mut prefix).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(RawError::Closed),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Err(RawError::Closed),
        Err(e) => return Err(e.into()),
    }
    let len = i32::from_be_bytes(prefix);
    let len = usize::try_from(len)
        .ok()
        .filter(|&len| len <= zk_proto::jute::DEFAULT_MAX_BUFFER)
        .ok_or(zk_proto::DecodeError::Invalid("frame length out of range"))?;
    let mut body = vec![0u8; len];
    match stream.read_exact(&mut body).await {
        Ok(_) => Ok(Bytes::from(body)),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(RawError::Closed),
        Err(e) => Err(e.into()),
    }
}
