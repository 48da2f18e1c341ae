//! The connection task (Java's `ClientCnxn.SendThread` and `EventThread`
//! in one): owns the socket, allocates xids, matches replies to requests,
//! pings, detects dead servers, reconnects and re-establishes the session,
//! replays auth and watches, and delivers watch events.
//!
//! Replies and events arrive on one socket and are handled one frame at a
//! time by this task, so a watch triggered by an event is completed before
//! the reply to any request the server answered after that event.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep, sleep_until, timeout, Instant};
use tokio_util::codec::FramedRead;
use tracing::{debug, debug_span, warn, Instrument, Span};
use zk_proto::{
    write_frame, xid, AuthPacket, ConnectRequest, ConnectResponse, ErrorCode, FrameCodec, Jute,
    KeeperState, OpCode, Request, RequestHeader, Response, ServerMessage, WatcherType,
};

use crate::connect_string::HostAddr;
use crate::error::{Error, Result};
use crate::host_provider::HostProvider;
use crate::path::Chroot;
use crate::pending::{PendingQueue, XidGen};
use crate::read_only::{find_rw_server, handshake_session_id, probe_candidates};
use crate::state::{SessionState, StateHub};
use crate::watch::{Sink, WatchKind, WatchRegistry, WatchedEvent};

/// Java never lets more than this pass without a ping.
const MAX_PING_INTERVAL: Duration = Duration::from_secs(10);
/// How long `close()` waits for the server to confirm.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// How often to ping an otherwise idle connection, from the read timeout
/// (Java: ping once the time since the last send reaches `readTimeout/2`,
/// less a second once that idle time exceeds a second; at least every 10 s).
pub fn ping_interval(read_timeout: Duration) -> Duration {
    let half = read_timeout / 2;
    let second = Duration::from_secs(1);
    let interval = if half > 2 * second {
        half - second
    } else if half > second {
        second
    } else {
        half
    };
    interval.min(MAX_PING_INTERVAL)
}

/// What stays fixed for the life of a client.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub session_timeout: Duration,
    pub read_only: bool,
    pub chroot: Chroot,
    pub max_frame: usize,
}

/// The session as the handles see it.
#[derive(Debug, Clone, Default)]
pub(crate) struct SessionInfo {
    pub id: i64,
    pub passwd: Bytes,
    pub timeout: Duration,
    pub server: Option<SocketAddr>,
}

/// What the handles and the task share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub state: StateHub,
    pub session: Mutex<SessionInfo>,
}

impl Shared {
    pub(crate) fn session(&self) -> SessionInfo {
        self.session
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// A watch to register, or watches to forget, once the reply is known.
#[derive(Debug)]
pub(crate) enum OnReply {
    /// `kind` Data on an exists request means: Data when the node exists,
    /// Exist when it does not.
    Register {
        kind: WatchKind,
        exists: bool,
        path: String,
        sink: Sink,
    },
    Remove {
        path: String,
        watcher_type: WatcherType,
    },
}

/// A request from a handle.
#[derive(Debug)]
pub(crate) struct Outgoing {
    /// Paths already carry the chroot.
    pub request: Request,
    pub on_reply: Option<OnReply>,
    pub reply: oneshot::Sender<Result<Response>>,
    pub span: Span,
}

#[derive(Debug)]
pub(crate) enum Command {
    Request(Outgoing),
    AddAuth {
        scheme: String,
        auth: Bytes,
        reply: oneshot::Sender<Result<()>>,
    },
    UpdateServerList {
        hosts: Vec<HostAddr>,
        reply: oneshot::Sender<bool>,
    },
    Close {
        reply: oneshot::Sender<()>,
    },
}

impl Command {
    /// Answers a command that will never be carried out.
    fn fail(self, error: Error) {
        match self {
            Command::Request(o) => {
                let _ = o.reply.send(Err(error));
            }
            Command::AddAuth { reply, .. } => {
                let _ = reply.send(Err(error));
            }
            Command::UpdateServerList { reply, .. } => {
                let _ = reply.send(false);
            }
            Command::Close { reply } => {
                let _ = reply.send(());
            }
        }
    }
}

/// A request on the wire.
struct InFlight {
    op: OpCode,
    reply: Option<oneshot::Sender<Result<Response>>>,
    on_reply: Option<OnReply>,
    span: Span,
}

/// How a connection ended.
enum End {
    /// Reconnect (pending requests got ConnectionLoss).
    Lost(String),
    /// Stop for good.
    Terminal(SessionState),
}

/// A socket that completed the handshake.
struct Connected {
    reader: FramedRead<OwnedReadHalf, FrameCodec>,
    writer: OwnedWriteHalf,
    response: ConnectResponse,
    addr: SocketAddr,
}

/// The error every call gets once the client is in `state`.
pub(crate) fn terminal_error(state: SessionState) -> Error {
    match state {
        SessionState::Expired => Error::SessionExpired,
        SessionState::AuthFailed => Error::AuthFailed,
        _ => Error::Closed,
    }
}

/// The connection task.
pub(crate) struct Driver {
    pub config: Config,
    pub shared: Arc<Shared>,
    pub commands: mpsc::UnboundedReceiver<Command>,
    pub hosts: HostProvider,
    pub rng: StdRng,
    pub session_id: i64,
    pub passwd: Bytes,
    pub auths: Vec<(String, Bytes)>,
    pub last_zxid: i64,
    pub watches: WatchRegistry,
    pub xids: XidGen,
    pub close_waiters: Vec<oneshot::Sender<()>>,
    /// The host of the live connection, for server-list rebalancing.
    pub connected_host: Option<HostAddr>,
    /// Whether a read/write server ever accepted us: until then every
    /// handshake asks for a new session (WIRE.md §4.5).
    pub seen_rw_server: bool,
    /// A read/write server found while on a read-only one: the next
    /// connection goes there.
    pub rw_server: Option<HostAddr>,
}

impl Driver {
    pub(crate) async fn run(mut self) {
        let mut waiting: VecDeque<Command> = VecDeque::new();
        let mut first = true;
        let end = loop {
            let (host, delay) = self.next_host(first);
            first = false;
            let span = debug_span!("zk_connect", %host, session_id = format_args!("{:#x}", self.session_id));
            match self
                .establish(&host, delay, &mut waiting)
                .instrument(span.clone())
                .await
            {
                Ok(Some(conn)) => {
                    self.connected_host = Some(host.clone());
                    let end = self.serve(conn, &mut waiting).instrument(span).await;
                    self.connected_host = None;
                    match end {
                        End::Lost(why) => {
                            debug!(%why, "connection lost");
                            self.shared.state.set(SessionState::Disconnected);
                        }
                        End::Terminal(state) => break state,
                    }
                }
                Ok(None) => break self.shared_terminal_or(SessionState::Closed),
                Err(End::Terminal(state)) => break state,
                Err(End::Lost(why)) => {
                    debug!(%why, "connection attempt failed");
                    // As Java's cleanup(): requests queued while
                    // disconnected fail rather than wait forever.
                    self.fail_queued(&mut waiting, Error::ConnectionLoss);
                }
            }
        };
        self.finish(end, waiting);
    }

    /// The host for the next attempt and the pause before it: a read/write
    /// server a probe found, at once; else the host provider's pick, and
    /// on reconnects a random extra pause (Java spreads reconnecting
    /// clients over a second).
    fn next_host(&mut self, first: bool) -> (HostAddr, Duration) {
        if let Some(host) = self.rw_server.take() {
            if self.hosts.jump_to(&host) {
                return (host, Duration::ZERO);
            }
        }
        let (host, mut delay) = self.hosts.next(&mut self.rng);
        if !first {
            delay += Duration::from_millis(self.rng.gen_range(0..1000));
        }
        (host, delay)
    }

    fn shared_terminal_or(&self, state: SessionState) -> SessionState {
        let current = self.shared.state.get();
        if current.is_terminal() {
            current
        } else {
            state
        }
    }

    /// Fails queued requests, keeping a queued close for `finish`.
    fn fail_queued(&mut self, waiting: &mut VecDeque<Command>, error: Error) {
        let mut kept = VecDeque::new();
        for cmd in waiting.drain(..) {
            match cmd {
                Command::Close { .. } => kept.push_back(cmd),
                other => other.fail(error.clone()),
            }
        }
        *waiting = kept;
    }

    /// One connection attempt, queueing commands meanwhile. `Ok(None)`:
    /// the client was closed before a connection was made.
    async fn establish(
        &mut self,
        host: &HostAddr,
        delay: Duration,
        waiting: &mut VecDeque<Command>,
    ) -> Result<Option<Connected>, End> {
        let request = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: self.last_zxid,
            timeout: i32::try_from(self.config.session_timeout.as_millis()).unwrap_or(i32::MAX),
            session_id: handshake_session_id(self.seen_rw_server, self.session_id),
            passwd: if self.passwd.is_empty() {
                Bytes::from_static(&[0; 16])
            } else {
                self.passwd.clone()
            },
            read_only: Some(self.config.read_only),
        };
        let per_host = self.config.session_timeout / self.hosts.len().max(1) as u32;
        let attempt = connect(
            host.clone(),
            request,
            per_host,
            self.config.max_frame,
            self.rng.gen(),
        );
        let attempt = async move {
            sleep(delay).await;
            attempt.await
        };
        tokio::pin!(attempt);
        loop {
            tokio::select! {
                result = &mut attempt => {
                    let conn = result.map_err(End::Lost)?;
                    if conn.response.timeout <= 0 {
                        debug!("server says the session expired");
                        return Err(End::Terminal(SessionState::Expired));
                    }
                    return Ok(Some(conn));
                }
                cmd = self.commands.recv() => match cmd {
                    None => return Ok(None),
                    Some(Command::Close { reply }) => {
                        self.close_waiters.push(reply);
                        return Ok(None);
                    }
                    Some(Command::UpdateServerList { hosts, reply }) => {
                        let moved = self.hosts.update(hosts, None, &mut self.rng);
                        let _ = reply.send(moved);
                    }
                    Some(other) => waiting.push_back(other),
                }
            }
        }
    }

    /// Runs an established connection until it ends.
    async fn serve(&mut self, conn: Connected, waiting: &mut VecDeque<Command>) -> End {
        let Connected {
            mut reader,
            mut writer,
            response,
            addr,
        } = conn;
        let negotiated = Duration::from_millis(u64::try_from(response.timeout).unwrap_or(0));
        self.session_id = response.session_id;
        self.passwd = response.passwd.clone();
        {
            let mut session = self
                .shared
                .session
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            *session = SessionInfo {
                id: response.session_id,
                passwd: response.passwd.clone(),
                timeout: negotiated,
                server: Some(addr),
            };
        }
        self.hosts.on_connected();
        let read_only = response.read_only == Some(true);
        self.seen_rw_server |= !read_only;
        // On a read-only server, look for a read/write one in the
        // background; the search is dropped with this connection.
        let candidates = if read_only {
            probe_candidates(self.hosts.hosts(), self.connected_host.as_ref())
        } else {
            Vec::new()
        };
        let rw_search = async move {
            if read_only {
                find_rw_server(candidates).await
            } else {
                std::future::pending().await
            }
        };
        tokio::pin!(rw_search);
        debug!(session_id = format_args!("{:#x}", response.session_id), ?negotiated, %addr, read_only, "session established");
        self.shared.state.set(if read_only {
            SessionState::ConnectedReadOnly
        } else {
            SessionState::Connected
        });

        let read_timeout = negotiated * 2 / 3;
        let ping_every = ping_interval(read_timeout);
        let mut conn = Conn::default();

        // Prime the connection as Java does: auth, then watches, then
        // whatever was queued while disconnected.
        for (scheme, auth) in &self.auths {
            conn.write_auth(scheme, auth);
            conn.auth_waiters.push_back(None);
        }
        self.watches.prune();
        for request in self
            .watches
            .set_watches_requests(&self.config.chroot, self.last_zxid)
        {
            let xid = self.xids.next_xid();
            conn.write(xid, &request);
            conn.pending.push(
                xid,
                InFlight {
                    op: request.op_code(),
                    reply: None,
                    on_reply: None,
                    span: Span::current(),
                },
            );
        }
        let mut closing: Option<Instant> = None;
        let mut end = None;
        while let Some(cmd) = waiting.pop_front() {
            match self.send_command(cmd, &mut conn) {
                After::Continue => {}
                After::Closing => closing = Some(Instant::now() + CLOSE_WAIT),
                After::Lost(why) => {
                    end = Some(End::Lost(why));
                    break;
                }
            }
        }

        let mut clock = Deadlines {
            last_recv: Instant::now(),
            last_send: Instant::now(),
            read_timeout,
            ping_every,
            closing,
        };
        // One timer serves pings, the read timeout and the close deadline.
        // It is moved only when it fires or closing starts: re-arming a
        // timer per message would cost more than handling the message.
        let timer = sleep_until(clock.next());
        tokio::pin!(timer);
        let end = loop {
            // Every command already queued leaves in the same write, so a
            // burst of requests costs one syscall instead of one each.
            if end.is_none() {
                end = self.queue_waiting_commands(&mut conn, &mut clock, timer.as_mut());
            }
            if end.is_none() && !conn.out.is_empty() {
                // The callers woken by the replies just handled run on this
                // runtime too: let them queue their next requests first, so
                // those share this write rather than each waking us for one.
                tokio::task::yield_now().await;
                end = self.queue_waiting_commands(&mut conn, &mut clock, timer.as_mut());
            }
            if let Some(end) = end.take() {
                break end;
            }
            if !conn.out.is_empty() {
                if let Err(e) = writer.write_all(&conn.out).await {
                    break End::Lost(format!("write failed: {e}"));
                }
                conn.out.clear();
                clock.last_send = Instant::now();
            }
            tokio::select! {
                frame = reader.next() => match frame {
                    None => break if clock.closing.is_some() {
                        End::Terminal(SessionState::Closed)
                    } else {
                        End::Lost("server closed the connection".into())
                    },
                    Some(Err(e)) => break End::Lost(format!("read failed: {e}")),
                    Some(Ok(frame)) => {
                        clock.last_recv = Instant::now();
                        match self.on_frame(frame, &mut conn) {
                            Ok(None) => {}
                            Ok(Some(e)) => break e,
                            Err(why) => break End::Lost(why),
                        }
                    }
                },
                cmd = self.commands.recv(), if clock.closing.is_none() => {
                    let cmd = cmd.unwrap_or_else(|| {
                        // Every handle is gone: close the session politely.
                        let (reply, _) = oneshot::channel();
                        Command::Close { reply }
                    });
                    match self.send_command(cmd, &mut conn) {
                        After::Continue => {}
                        After::Closing => {
                            clock.start_closing();
                            timer.as_mut().reset(clock.next());
                        }
                        After::Lost(why) => end = Some(End::Lost(why)),
                    }
                }
                host = &mut rw_search => {
                    self.rw_server = Some(host.clone());
                    break End::Lost(format!("moving to read/write server {host}"));
                }
                () = &mut timer => {
                    match clock.due(Instant::now()) {
                        Due::Nothing => {}
                        Due::Ping => {
                            conn.write(xid::PING, &Request::Ping);
                            // Sent at the top of the loop, right away.
                            clock.last_send = Instant::now();
                        }
                        Due::End(state) => break match state {
                            Some(state) => End::Terminal(state),
                            None => End::Lost(format!("nothing received for {read_timeout:?}")),
                        },
                    }
                    timer.as_mut().reset(clock.next());
                }
            }
        };
        let error = match &end {
            End::Lost(_) => Error::ConnectionLoss,
            End::Terminal(state) => terminal_error(*state),
        };
        for entry in conn.pending.drain() {
            if let Some(reply) = entry.reply {
                let _ = reply.send(Err(error.clone()));
            }
        }
        for waiter in conn.auth_waiters.drain(..).flatten() {
            let _ = waiter.send(Err(error.clone()));
        }
        end
    }

    /// Sends the commands already queued, without waiting for more.
    /// `Some` when one of them ended the connection.
    fn queue_waiting_commands(
        &mut self,
        conn: &mut Conn,
        clock: &mut Deadlines,
        mut timer: std::pin::Pin<&mut tokio::time::Sleep>,
    ) -> Option<End> {
        while clock.closing.is_none() {
            let Ok(cmd) = self.commands.try_recv() else {
                break;
            };
            match self.send_command(cmd, conn) {
                After::Continue => {}
                After::Closing => {
                    clock.start_closing();
                    timer.as_mut().reset(clock.next());
                }
                After::Lost(why) => return Some(End::Lost(why)),
            }
        }
        None
    }

    /// Sends one command on a live connection.
    fn send_command(&mut self, cmd: Command, conn: &mut Conn) -> After {
        match cmd {
            Command::Request(o) => {
                let xid = self.xids.next_xid();
                let op = o.request.op_code();
                o.span.in_scope(|| debug!(xid, ?op, "sending"));
                conn.write(xid, &o.request);
                conn.pending.push(
                    xid,
                    InFlight {
                        op,
                        reply: Some(o.reply),
                        on_reply: o.on_reply,
                        span: o.span,
                    },
                );
                After::Continue
            }
            Command::AddAuth {
                scheme,
                auth,
                reply,
            } => {
                conn.write_auth(&scheme, &auth);
                conn.auth_waiters.push_back(Some(reply));
                self.auths.push((scheme, auth));
                After::Continue
            }
            Command::UpdateServerList { hosts, reply } => {
                let current = self.connected_host.clone();
                let moved = self.hosts.update(hosts, current.as_ref(), &mut self.rng);
                let _ = reply.send(moved);
                if moved {
                    After::Lost("moving to rebalance the new server list".into())
                } else {
                    After::Continue
                }
            }
            Command::Close { reply } => {
                self.close_waiters.push(reply);
                let xid = self.xids.next_xid();
                conn.write(xid, &Request::CloseSession);
                conn.pending.push(
                    xid,
                    InFlight {
                        op: OpCode::CloseSession,
                        reply: None,
                        on_reply: None,
                        span: Span::current(),
                    },
                );
                After::Closing
            }
        }
    }

    /// Handles one frame from the server.
    fn on_frame(&mut self, frame: Bytes, conn: &mut Conn) -> Result<Option<End>, String> {
        let message =
            ServerMessage::decode_frame(frame).map_err(|e| format!("undecodable frame: {e}"))?;
        let (header, mut body) = match message {
            ServerMessage::Notification { event, .. } => {
                let Ok(event_type) = event.event_type() else {
                    warn!(event.event_type, "ignoring an event of unknown type");
                    return Ok(None);
                };
                let event = WatchedEvent {
                    event_type,
                    state: event.keeper_state().unwrap_or(KeeperState::SyncConnected),
                    path: self.config.chroot.strip(&event.path),
                };
                debug!(?event, "watch event");
                self.watches.dispatch(&event);
                return Ok(None);
            }
            ServerMessage::Reply { header, body } => (header, body),
        };
        match header.xid {
            xid::PING => Ok(None),
            xid::AUTH => {
                let waiter = conn.auth_waiters.pop_front().flatten();
                if header.err == ErrorCode::AuthFailed.code() {
                    if let Some(waiter) = waiter {
                        let _ = waiter.send(Err(Error::AuthFailed));
                    }
                    return Ok(Some(End::Terminal(SessionState::AuthFailed)));
                }
                if let Some(waiter) = waiter {
                    let _ = waiter.send(if header.err == 0 {
                        Ok(())
                    } else {
                        Err(Error::from_code(header.err))
                    });
                }
                Ok(None)
            }
            reply_xid => {
                let entry = conn
                    .pending
                    .complete(reply_xid)
                    .map_err(|e| e.to_string())?;
                if header.zxid > 0 {
                    self.last_zxid = self.last_zxid.max(header.zxid);
                }
                let _enter = entry.span.enter();
                debug!(xid = reply_xid, err = header.err, "reply");
                let result = if header.err != 0 {
                    Err(Error::from_code(header.err))
                } else {
                    match Response::decode_body(entry.op, &mut body) {
                        Ok(response) => Ok(response),
                        Err(e) => {
                            if let Some(reply) = entry.reply {
                                let _ = reply.send(Err(Error::ConnectionLoss));
                            }
                            return Err(format!("undecodable {:?} reply: {e}", entry.op));
                        }
                    }
                };
                if let Some(on_reply) = entry.on_reply {
                    self.apply(on_reply, header.err);
                }
                if entry.op == OpCode::CloseSession {
                    return Ok(Some(End::Terminal(SessionState::Closed)));
                }
                if let Some(reply) = entry.reply {
                    let _ = reply.send(result);
                }
                Ok(None)
            }
        }
    }

    /// Registers or forgets watches once the server answered (Java's
    /// `WatchRegistration.register`: only on success, and for exists also
    /// on NoNode).
    fn apply(&mut self, on_reply: OnReply, err: i32) {
        match on_reply {
            OnReply::Register {
                kind,
                exists,
                path,
                sink,
            } => {
                let kind = if exists && err == ErrorCode::NoNode.code() {
                    Some(WatchKind::Exist)
                } else if err == 0 {
                    Some(kind)
                } else {
                    None
                };
                if let Some(kind) = kind {
                    self.watches.add(kind, path, sink);
                }
            }
            OnReply::Remove { path, watcher_type } => {
                if err == 0 {
                    self.watches.remove(&path, watcher_type);
                }
            }
        }
    }

    /// Final state: tell everybody, answer everything, stop.
    fn finish(mut self, state: SessionState, mut waiting: VecDeque<Command>) {
        debug!(?state, "client finished");
        self.shared.state.set(state);
        let state = self.shared.state.get();
        self.watches.finish(state.keeper_state());
        let error = terminal_error(state);
        for cmd in waiting.drain(..) {
            cmd.fail(error.clone());
        }
        self.commands.close();
        while let Ok(cmd) = self.commands.try_recv() {
            cmd.fail(error.clone());
        }
        for waiter in self.close_waiters.drain(..) {
            let _ = waiter.send(());
        }
    }
}

/// The times a live connection acts on by itself.
struct Deadlines {
    last_recv: Instant,
    last_send: Instant,
    read_timeout: Duration,
    ping_every: Duration,
    /// When a closing connection gives up waiting for the server.
    closing: Option<Instant>,
}

/// What the connection timer found due.
#[derive(Debug, PartialEq, Eq)]
enum Due {
    Nothing,
    Ping,
    /// The connection ends: closed (`Some`) or lost (`None`).
    End(Option<SessionState>),
}

impl Deadlines {
    fn start_closing(&mut self) {
        self.closing = Some(Instant::now() + CLOSE_WAIT);
    }

    /// The earliest moment something may be due.
    fn next(&self) -> Instant {
        let silent = self.last_recv + self.read_timeout;
        match self.closing {
            Some(give_up) => silent.min(give_up),
            None => silent.min(self.last_send + self.ping_every),
        }
    }

    /// What is due at `now`: a silent server ends the connection (a
    /// closing one counts as closed), so does the close deadline; an idle
    /// open connection pings.
    fn due(&self, now: Instant) -> Due {
        let closing = self.closing.is_some();
        if now >= self.last_recv + self.read_timeout {
            return Due::End(closing.then_some(SessionState::Closed));
        }
        match self.closing {
            Some(give_up) if now >= give_up => Due::End(Some(SessionState::Closed)),
            Some(_) => Due::Nothing,
            None if now >= self.last_send + self.ping_every => Due::Ping,
            None => Due::Nothing,
        }
    }
}

/// What sending a command did to the connection.
enum After {
    Continue,
    Closing,
    Lost(String),
}

/// Per-connection bookkeeping.
#[derive(Default)]
struct Conn {
    /// Frames encoded and not yet written.
    out: BytesMut,
    pending: PendingQueue<InFlight>,
    /// Auth replies come back in order with xid -4; `None` for replays.
    auth_waiters: VecDeque<Option<oneshot::Sender<Result<()>>>>,
}

impl Conn {
    fn write(&mut self, xid: i32, request: &Request) {
        write_frame(&mut self.out, |buf| {
            RequestHeader::new(xid, request.op_code()).encode(buf);
            request.encode_body(buf);
        });
    }

    fn write_auth(&mut self, scheme: &str, auth: &Bytes) {
        self.write(
            xid::AUTH,
            &Request::Auth(AuthPacket {
                auth_type: 0,
                scheme: scheme.to_string(),
                auth: Some(auth.clone()),
            }),
        );
    }
}

/// Resolves `host` (anew on every attempt), connects and performs the
/// session handshake within `limit`.
async fn connect(
    host: HostAddr,
    request: ConnectRequest,
    limit: Duration,
    max_frame: usize,
    seed: u64,
) -> std::result::Result<Connected, String> {
    let handshake = async {
        let mut addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.host.as_str(), host.port))
            .await
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .collect();
        addrs.shuffle(&mut <StdRng as rand::SeedableRng>::seed_from_u64(seed));
        let addr = *addrs
            .first()
            .ok_or_else(|| format!("{host} resolves to nothing"))?;
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let (read, mut writer) = stream.into_split();
        let mut reader = FramedRead::new(read, FrameCodec::new(max_frame));
        let mut out = BytesMut::new();
        zk_proto::encode_frame(&request, &mut out);
        writer
            .write_all(&out)
            .await
            .map_err(|e| format!("cannot send the connect request: {e}"))?;
        let frame = reader
            .next()
            .await
            .ok_or_else(|| format!("{addr} closed the connection during the handshake"))?
            .map_err(|e| format!("handshake with {addr} failed: {e}"))?;
        let response = ConnectResponse::from_bytes(frame)
            .map_err(|e| format!("bad connect response from {addr}: {e}"))?;
        Ok(Connected {
            reader,
            writer,
            response,
            addr,
        })
    };
    timeout(limit, handshake)
        .await
        .map_err(|_| format!("no session with {host} within {limit:?}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deadlines(start: Instant) -> Deadlines {
        Deadlines {
            last_recv: start,
            last_send: start,
            read_timeout: Duration::from_secs(20),
            ping_every: Duration::from_secs(10),
            closing: None,
        }
    }

    #[test]
    fn an_idle_connection_pings_once_the_ping_interval_passes() {
        let start = Instant::now();
        let clock = deadlines(start);
        assert_eq!(clock.next(), start + Duration::from_secs(10));
        assert_eq!(clock.due(start + Duration::from_secs(9)), Due::Nothing);
        assert_eq!(clock.due(start + Duration::from_secs(10)), Due::Ping);
    }

    #[test]
    fn recent_sends_postpone_the_ping() {
        let start = Instant::now();
        let mut clock = deadlines(start);
        clock.last_send = start + Duration::from_secs(5);
        assert_eq!(clock.due(start + Duration::from_secs(10)), Due::Nothing);
        assert_eq!(clock.next(), start + Duration::from_secs(15));
    }

    #[test]
    fn a_silent_server_loses_the_connection() {
        let start = Instant::now();
        let mut clock = deadlines(start);
        clock.last_send = start + Duration::from_secs(19);
        assert_eq!(clock.due(start + Duration::from_secs(20)), Due::End(None));
    }

    #[test]
    fn a_closing_connection_stops_pinging_and_gives_up_at_its_deadline() {
        let start = Instant::now();
        let mut clock = deadlines(start);
        clock.closing = Some(start + Duration::from_secs(2));
        assert_eq!(clock.next(), start + Duration::from_secs(2));
        assert_eq!(clock.due(start + Duration::from_secs(1)), Due::Nothing);
        assert_eq!(
            clock.due(start + Duration::from_secs(2)),
            Due::End(Some(SessionState::Closed))
        );
    }

    #[test]
    fn ping_interval_follows_the_java_timers() {
        // 30 s session -> read timeout 20 s -> half 10 s -> ping after 9 s.
        assert_eq!(
            ping_interval(Duration::from_secs(20)),
            Duration::from_secs(9)
        );
        // 4 s session -> read timeout 2.666 s -> half 1.333 s -> 1 s.
        assert_eq!(
            ping_interval(Duration::from_millis(2666)),
            Duration::from_secs(1)
        );
        // Tiny timeouts ping at half the read timeout.
        assert_eq!(
            ping_interval(Duration::from_millis(1000)),
            Duration::from_millis(500)
        );
        // Never more than 10 s apart.
        assert_eq!(ping_interval(Duration::from_secs(60)), MAX_PING_INTERVAL);
    }

    #[test]
    fn terminal_states_map_to_their_errors() {
        assert_eq!(terminal_error(SessionState::Expired), Error::SessionExpired);
        assert_eq!(terminal_error(SessionState::AuthFailed), Error::AuthFailed);
        assert_eq!(terminal_error(SessionState::Closed), Error::Closed);
    }
}
