//! Peer links over TCP: every server dials every other server once per
//! port and sends its messages on that connection; what it receives comes
//! in on connections the others dialed. Election notifications use the
//! election port, everything else the quorum port.
//!
//! A connection starts with the dialer's id (8 bytes); then each message is
//! a 4-byte big-endian length and the bytes of `codec`. A link that is down
//! drops what is sent on it: the quorum core resends what matters and
//! treats the rest as lost, as on any network. The driver's own traffic
//! (forwarded client requests) has no such resend, so every link counts its
//! losses ([`Links::losses`]): a connection that broke, or a message
//! dropped, bumps the count, and a learner fails the requests it forwarded
//! before the count moved. `isolate` cuts every link of this server (a
//! network partition, for tests).
//!
//! The links also say when a quorum-port link is down
//! ([`PeerEvent::LinkDown`]): a connection to or from the peer closed or
//! broke, or a connection attempt failed (refused by a dead peer, timed
//! out, or cut off by `isolate`). The driver turns that into the core's
//! `Input::PeerDisconnected`, so a follower whose leader died starts an
//! election at once instead of after syncLimit ticks of silence. Failed
//! attempts repeat every retry while the peer stays unreachable, so a
//! member that decides to follow a peer that is already gone hears about it
//! too. The election port reports nothing: only leader/learner traffic
//! cares about a link, and it uses the quorum port.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use super::codec::{self, PeerMsg};
use super::snapsync::{self, Piece, StagedSnapshot, Staging, STAGE_QUEUE};
use crate::log_limit::RateLimit;
use crate::quorum::{LeaderMsg, Message, ServerId};

/// Largest message accepted. Proposals and forwarded requests are bounded
/// by jute.maxbuffer; the tree travels in pieces, never as one message.
pub const MAX_FRAME: usize = 64 * 1024 * 1024;
/// Largest hello frame: a peer id (8 bytes) with room to spare.
const MAX_HELLO: usize = 1024;
/// How often one kind of repeated warning is logged at most.
const WARN_EVERY: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const RETRY_DELAY: Duration = Duration::from_millis(100);
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// Which of a peer's two ports a message goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Port {
    Election,
    Quorum,
}

fn port_of(msg: &PeerMsg) -> Port {
    match msg {
        PeerMsg::Core(Message::Notification(_)) => Port::Election,
        _ => Port::Quorum,
    }
}

/// Where a peer listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddrs {
    pub quorum: SocketAddr,
    pub election: SocketAddr,
}

/// What arrives from the links about one peer.
#[derive(Debug)]
pub enum PeerEvent {
    Message(PeerMsg),
    /// A SNAP packet (`msg`) whose snapshot arrived whole and is staged.
    Snapshot {
        msg: Message,
        staged: Box<StagedSnapshot>,
    },
    /// The quorum-port link to this peer is down (see the module docs).
    LinkDown,
}

/// How much of what was sent on one outgoing link is still queued, and a
/// wake-up each time some of it is written (flow control for streams).
#[derive(Debug, Default)]
pub struct LinkLoad {
    queued: AtomicUsize,
    drained: Notify,
}

impl LinkLoad {
    fn add(&self, n: usize) {
        self.queued.fetch_add(n, Ordering::Relaxed);
    }

    fn done(&self, n: usize) {
        self.queued.fetch_sub(n, Ordering::Relaxed);
        self.drained.notify_one();
    }

    /// Bytes queued and not yet written to the socket.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Returns once fewer than `limit` bytes are queued.
    pub async fn below(&self, limit: usize) {
        loop {
            let drained = self.drained.notified();
            if self.queued() < limit {
                return;
            }
            drained.await;
        }
    }
}

/// Refused hellos and malformed messages are logged at most once per
/// [`WARN_EVERY`], with the number left out (a misconfigured or hostile
/// peer would otherwise flood the log).
static REFUSED_HELLO: RateLimit = RateLimit::new(WARN_EVERY);
static MALFORMED_MESSAGE: RateLimit = RateLimit::new(WARN_EVERY);
static ACCEPT_FAILED: RateLimit = RateLimit::new(WARN_EVERY);

/// An event and the peer it is about.
pub type Received = (ServerId, PeerEvent);

/// The sending side of this server's links.
#[derive(Debug)]
pub struct Links {
    my_id: ServerId,
    out: BTreeMap<(ServerId, Port), mpsc::UnboundedSender<Bytes>>,
    /// Per outgoing link: how many times it lost what was sent on it.
    lost: BTreeMap<(ServerId, Port), Arc<AtomicU64>>,
    /// Per outgoing quorum link: bytes queued on it.
    load: BTreeMap<ServerId, Arc<LinkLoad>>,
    isolated: Arc<AtomicBool>,
}

impl Links {
    /// Queues `msg` for `to`; dropped when the link is down or unknown.
    pub fn send(&self, to: ServerId, msg: &PeerMsg) {
        let key = (to, port_of(msg));
        let delivered = !self.isolated.load(Ordering::Relaxed)
            && self.out.get(&key).is_some_and(|tx| {
                let bytes = codec::encode(self.my_id, msg);
                let len = bytes.len();
                let sent = tx.send(bytes).is_ok();
                if sent && key.1 == Port::Quorum {
                    if let Some(load) = self.load.get(&to) {
                        load.add(len);
                    }
                }
                sent
            });
        if !delivered {
            if let Some(lost) = self.lost.get(&key) {
                lost.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// How many times the quorum-port link to `to` lost messages so far. A
    /// message sent while this stays unchanged was not lost by this side's
    /// connection; once it moves, anything sent before may be gone.
    pub fn losses(&self, to: ServerId) -> u64 {
        self.lost
            .get(&(to, Port::Quorum))
            .map_or(0, |lost| lost.load(Ordering::Relaxed))
    }

    /// The load of the quorum link to `to` (for flow control).
    pub fn load(&self, to: ServerId) -> Option<Arc<LinkLoad>> {
        self.load.get(&to).cloned()
    }

    /// A handle that cuts or restores every link of this server.
    pub fn fault_switch(&self) -> FaultSwitch {
        FaultSwitch {
            isolated: Arc::clone(&self.isolated),
        }
    }
}

/// Cuts a server off its peers (both directions) and back.
#[derive(Debug, Clone)]
pub struct FaultSwitch {
    isolated: Arc<AtomicBool>,
}

impl FaultSwitch {
    pub fn set_isolated(&self, isolated: bool) {
        self.isolated.store(isolated, Ordering::Relaxed);
    }

    pub fn is_isolated(&self) -> bool {
        self.isolated.load(Ordering::Relaxed)
    }
}

/// Starts accepting on both listeners and dialing every peer. Every task
/// stops when `cancel` fires. Snapshots received from a leader are staged
/// as `staging` says.
pub fn start(
    my_id: ServerId,
    election: TcpListener,
    quorum: TcpListener,
    peers: &BTreeMap<ServerId, PeerAddrs>,
    staging: Staging,
    cancel: CancellationToken,
) -> (Links, mpsc::UnboundedReceiver<Received>) {
    let isolated = Arc::new(AtomicBool::new(false));
    let (in_tx, in_rx) = mpsc::unbounded_channel();
    let accepting = Arc::new(Accepting {
        my_id,
        members: peers.keys().copied().collect(),
        staging,
    });
    for (port, listener) in [(Port::Election, election), (Port::Quorum, quorum)] {
        tokio::spawn(accept_loop(
            listener,
            Inbound {
                port,
                events: in_tx.clone(),
            },
            Arc::clone(&accepting),
            Arc::clone(&isolated),
            cancel.clone(),
        ));
    }
    let mut out = BTreeMap::new();
    let mut lost = BTreeMap::new();
    let mut load = BTreeMap::new();
    for (&id, addrs) in peers.iter().filter(|(id, _)| **id != my_id) {
        for (port, addr) in [
            (Port::Election, addrs.election),
            (Port::Quorum, addrs.quorum),
        ] {
            let (tx, rx) = mpsc::unbounded_channel();
            let losses = Arc::new(AtomicU64::new(0));
            let link_load = Arc::new(LinkLoad::default());
            out.insert((id, port), tx);
            lost.insert((id, port), Arc::clone(&losses));
            if port == Port::Quorum {
                load.insert(id, Arc::clone(&link_load));
            }
            tokio::spawn(dial_loop(
                DialTarget {
                    my_id,
                    peer: id,
                    addr,
                    losses,
                    load: link_load,
                    inbound: Inbound {
                        port,
                        events: in_tx.clone(),
                    },
                },
                rx,
                Arc::clone(&isolated),
                cancel.clone(),
            ));
        }
    }
    let links = Links {
        my_id,
        out,
        lost,
        load,
        isolated,
    };
    (links, in_rx)
}

/// Throws away whatever is queued: nobody can receive it.
fn drain(rx: &mut mpsc::UnboundedReceiver<Bytes>, losses: &AtomicU64, load: &LinkLoad) {
    let mut dropped = false;
    while let Ok(msg) = rx.try_recv() {
        load.done(msg.len());
        dropped = true;
    }
    if dropped {
        losses.fetch_add(1, Ordering::Relaxed);
    }
}

/// Where a link's events go, and which port the link serves.
#[derive(Clone)]
struct Inbound {
    port: Port,
    events: mpsc::UnboundedSender<Received>,
}

impl Inbound {
    /// Passes a message on; false once nobody listens any more.
    fn message(&self, from: ServerId, msg: PeerMsg) -> bool {
        self.events.send((from, PeerEvent::Message(msg))).is_ok()
    }

    /// Reports the link to `peer` down (quorum port only).
    fn link_down(&self, peer: ServerId) {
        if self.port == Port::Quorum {
            let _ = self.events.send((peer, PeerEvent::LinkDown));
        }
    }
}

/// One outgoing link: who we are, whom and where it goes, its loss count
/// and where to report it down.
struct DialTarget {
    my_id: ServerId,
    peer: ServerId,
    addr: SocketAddr,
    losses: Arc<AtomicU64>,
    /// Counted for quorum links only; a private one for election links.
    load: Arc<LinkLoad>,
    inbound: Inbound,
}

/// Keeps one outgoing connection to `addr` up and writes our messages on it.
async fn dial_loop(
    target: DialTarget,
    mut rx: mpsc::UnboundedReceiver<Bytes>,
    isolated: Arc<AtomicBool>,
    cancel: CancellationToken,
) {
    let DialTarget {
        my_id,
        peer,
        addr,
        losses,
        load,
        inbound,
    } = target;
    // Election links are not counted on send; only count what was.
    let counted = inbound.port == Port::Quorum;
    let done = |n: usize| {
        if counted {
            load.done(n);
        }
    };
    loop {
        if cancel.is_cancelled() {
            return;
        }
        let stream = if isolated.load(Ordering::Relaxed) {
            None
        } else {
            tokio::select! {
                _ = cancel.cancelled() => return,
                s = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)) => {
                    s.ok().and_then(Result::ok)
                }
            }
        };
        let Some(mut stream) = stream else {
            if counted {
                drain(&mut rx, &losses, &load);
            } else {
                drain(&mut rx, &losses, &LinkLoad::default());
            }
            inbound.link_down(peer);
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(RETRY_DELAY) => continue,
            }
        };
        let _ = stream.set_nodelay(true);
        if write_frame(&mut stream, &my_id.to_be_bytes())
            .await
            .is_err()
        {
            losses.fetch_add(1, Ordering::Relaxed);
            inbound.link_down(peer);
            continue;
        }
        // The peer never writes on a connection we dialed, so anything the
        // read side sees (end of stream, reset) means the connection is
        // gone: notice it now rather than on our next write.
        let mut probe = [0u8; 1];
        loop {
            let msg = tokio::select! {
                _ = cancel.cancelled() => return,
                m = rx.recv() => match m {
                    Some(msg) => msg,
                    None => return, // the links are gone: we are stopping
                },
                _ = stream.read(&mut probe) => {
                    // Whatever the connection had not delivered yet is gone.
                    losses.fetch_add(1, Ordering::Relaxed);
                    inbound.link_down(peer);
                    break;
                }
            };
            let written =
                !isolated.load(Ordering::Relaxed) && write_frame(&mut stream, &msg).await.is_ok();
            done(msg.len());
            if !written {
                // This message, and whatever the broken connection had not
                // delivered yet, is gone.
                losses.fetch_add(1, Ordering::Relaxed);
                inbound.link_down(peer);
                break;
            }
        }
    }
}

async fn write_frame(stream: &mut TcpStream, body: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(body.len()).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    let mut buf = Vec::with_capacity(4 + body.len());
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(body);
    stream.write_all(&buf).await
}

/// Reads one frame of at most `max` bytes. The buffer grows with what
/// actually arrives, so a length claimed by a peer that then sends less
/// costs nothing.
async fn read_frame(stream: &mut TcpStream, max: usize) -> std::io::Result<Bytes> {
    let len = stream.read_u32().await? as usize;
    if len > max {
        return Err(std::io::ErrorKind::InvalidData.into());
    }
    let mut body = Vec::with_capacity(len.min(64 * 1024));
    let read = (&mut *stream)
        .take(len as u64)
        .read_to_end(&mut body)
        .await?;
    if read < len {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(Bytes::from(body))
}

/// What every accepted connection needs to know.
#[derive(Debug)]
struct Accepting {
    my_id: ServerId,
    /// Every server of the ensemble (ours included).
    members: BTreeSet<ServerId>,
    staging: Staging,
}

async fn accept_loop(
    listener: TcpListener,
    inbound: Inbound,
    accepting: Arc<Accepting>,
    isolated: Arc<AtomicBool>,
    cancel: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, _)) => {
                tokio::spawn(read_loop(
                    stream,
                    inbound.clone(),
                    Arc::clone(&accepting),
                    Arc::clone(&isolated),
                    cancel.clone(),
                ));
            }
            Err(e) => {
                crate::warn_limited!(ACCEPT_FAILED, "peer accept failed: {e}");
                tokio::time::sleep(RETRY_DELAY).await;
            }
        }
    }
}

/// The server id a hello frame claims, if it is another member's.
fn check_hello(hello: &[u8], accepting: &Accepting) -> Result<ServerId, String> {
    let id = <[u8; 8]>::try_from(hello)
        .map_err(|_| format!("a hello of {} bytes is not a server id", hello.len()))?;
    let id = ServerId::from_be_bytes(id);
    if id == accepting.my_id || !accepting.members.contains(&id) {
        return Err(format!("server id {id} is not another member"));
    }
    Ok(id)
}

/// Reads one peer's connection: its id, then messages until it closes,
/// and then reports the link down.
async fn read_loop(
    mut stream: TcpStream,
    inbound: Inbound,
    accepting: Arc<Accepting>,
    isolated: Arc<AtomicBool>,
    cancel: CancellationToken,
) {
    let peer_addr = stream.peer_addr().ok();
    let hello = tokio::time::timeout(HELLO_TIMEOUT, read_frame(&mut stream, MAX_HELLO)).await;
    let Ok(Ok(hello)) = hello else {
        return;
    };
    let from = match check_hello(&hello, &accepting) {
        Ok(id) => id,
        Err(why) => {
            crate::warn_limited!(
                REFUSED_HELLO,
                "refusing a peer connection from {peer_addr:?}: {why}"
            );
            return;
        }
    };
    let reader = LinkReader {
        from,
        inbound: &inbound,
        accepting: &accepting,
        isolated: &isolated,
        cancel: &cancel,
    };
    if reader.run(&mut stream).await == Ended::Broken {
        inbound.link_down(from);
    }
}

/// How reading a connection (or a part of it) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// Keep reading (a snapshot stream was abandoned by the leader).
    Continue,
    /// The link broke.
    Broken,
    /// We are stopping.
    Stopped,
}

/// One accepted connection from `from`, read until it ends.
struct LinkReader<'a> {
    from: ServerId,
    inbound: &'a Inbound,
    accepting: &'a Accepting,
    isolated: &'a AtomicBool,
    cancel: &'a CancellationToken,
}

impl LinkReader<'_> {
    /// The next message, or how the connection ended.
    async fn next(&self, stream: &mut TcpStream) -> Result<PeerMsg, Ended> {
        let frame = tokio::select! {
            _ = self.cancel.cancelled() => return Err(Ended::Stopped),
            f = read_frame(stream, MAX_FRAME) => f,
        };
        let Ok(frame) = frame else {
            return Err(Ended::Broken);
        };
        if self.isolated.load(Ordering::Relaxed) {
            return Err(Ended::Broken);
        }
        codec::decode(frame).map_err(|e| {
            crate::warn_limited!(
                MALFORMED_MESSAGE,
                "dropping a malformed message from server {}: {e}",
                self.from
            );
            Ended::Broken
        })
    }

    /// Passes the messages on until the connection ends.
    async fn run(&self, stream: &mut TcpStream) -> Ended {
        loop {
            let msg = match self.next(stream).await {
                Ok(msg) => msg,
                Err(ended) => return ended,
            };
            let ended = match msg {
                PeerMsg::Core(
                    msg @ Message::ToLearner {
                        msg: LeaderMsg::Snap { .. },
                        ..
                    },
                ) => self.receive_snapshot(stream, msg).await,
                // The leader abandoning a stream that was not a SNAP.
                PeerMsg::SnapEnd { complete: false } => Ended::Continue,
                // Pieces outside a stream: the connection is out of step.
                PeerMsg::SnapChunk(_) | PeerMsg::SnapEnd { complete: true } => Ended::Broken,
                msg => {
                    if self.inbound.message(self.from, msg) {
                        Ended::Continue
                    } else {
                        Ended::Stopped
                    }
                }
            };
            if ended != Ended::Continue {
                return ended;
            }
        }
    }

    /// After a SNAP packet: the snapshot's pieces go to a staging thread;
    /// once it is whole and staged, the SNAP goes to the core with it.
    async fn receive_snapshot(&self, stream: &mut TcpStream, msg: Message) -> Ended {
        let Message::ToLearner {
            session,
            msg: LeaderMsg::Snap { zxid, .. },
        } = &msg
        else {
            return Ended::Broken;
        };
        let (zxid, session) = (*zxid, *session);
        let (tx, rx) = mpsc::channel(STAGE_QUEUE);
        let staging = self.accepting.staging.clone();
        let job =
            tokio::task::spawn_blocking(move || snapsync::receive(&staging, zxid, session, rx));
        let ended = loop {
            match self.next(stream).await {
                Ok(PeerMsg::SnapChunk(bytes)) => {
                    if tx.send(Piece::Chunk(bytes)).await.is_err() {
                        break Ended::Broken; // staging failed; its error follows
                    }
                }
                Ok(PeerMsg::SnapEnd { complete: true }) => {
                    let _ = tx.send(Piece::End).await;
                    break Ended::Continue;
                }
                Ok(PeerMsg::SnapEnd { complete: false }) => {
                    drop(tx);
                    let _ = job.await;
                    tracing::info!(from = self.from, "the leader abandoned a snapshot stream");
                    return Ended::Continue;
                }
                Ok(_) => break Ended::Broken,
                Err(ended) => break ended,
            }
        };
        drop(tx);
        let staged = match job.await {
            Ok(Ok(staged)) => staged,
            Ok(Err(e)) => {
                if ended != Ended::Stopped {
                    tracing::warn!(
                        from = self.from,
                        "receiving the leader's snapshot failed: {e}"
                    );
                }
                return if ended == Ended::Continue {
                    Ended::Broken
                } else {
                    ended
                };
            }
            Err(e) => {
                tracing::error!("the snapshot staging task failed: {e}");
                return Ended::Broken;
            }
        };
        if ended != Ended::Continue {
            return ended;
        }
        tracing::info!(
            from = self.from,
            "snapshot at 0x{zxid:x} received and staged"
        );
        let event = PeerEvent::Snapshot {
            msg,
            staged: Box::new(staged),
        };
        if self.inbound.events.send((self.from, event)).is_ok() {
            Ended::Continue
        } else {
            Ended::Stopped
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepting() -> Accepting {
        Accepting {
            my_id: 1,
            members: BTreeSet::from([1, 2, 3]),
            staging: Staging {
                snap_dir: std::env::temp_dir(),
                db_config: crate::db::DbConfig::default(),
            },
        }
    }

    #[test]
    fn a_hello_from_another_member_names_it() {
        assert_eq!(check_hello(&3u64.to_be_bytes(), &accepting()), Ok(3));
    }

    #[test]
    fn a_hello_claiming_a_stranger_or_ourselves_is_refused() {
        let a = accepting();
        assert!(check_hello(&9u64.to_be_bytes(), &a).is_err());
        assert!(check_hello(&1u64.to_be_bytes(), &a).is_err());
    }

    #[test]
    fn a_hello_that_is_not_a_server_id_is_refused() {
        let a = accepting();
        assert!(check_hello(b"", &a).is_err());
        assert!(check_hello(&[0u8; 12], &a).is_err());
    }

    #[tokio::test]
    async fn an_oversized_hello_is_refused_before_its_body_is_read() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            // Claims 512 MiB and sends nothing more.
            s.write_all(&(512u32 * 1024 * 1024).to_be_bytes())
                .await
                .unwrap();
            s
        });
        let (mut server, _) = listener.accept().await.unwrap();
        let read = read_frame(&mut server, MAX_HELLO).await;
        assert_eq!(read.unwrap_err().kind(), std::io::ErrorKind::InvalidData);
        drop(client.await.unwrap());
    }

    #[test]
    fn a_link_load_counts_what_is_queued() {
        let load = LinkLoad::default();
        load.add(100);
        load.add(50);
        load.done(100);
        assert_eq!(load.queued(), 50);
    }
}
