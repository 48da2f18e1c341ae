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

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::codec::{self, PeerMsg};
use crate::quorum::{Message, ServerId};

/// Largest message accepted (a SNAP carries a whole history).
const MAX_FRAME: usize = 512 * 1024 * 1024;
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
    /// The quorum-port link to this peer is down (see the module docs).
    LinkDown,
}

/// An event and the peer it is about.
pub type Received = (ServerId, PeerEvent);

/// The sending side of this server's links.
#[derive(Debug)]
pub struct Links {
    my_id: ServerId,
    out: BTreeMap<(ServerId, Port), mpsc::UnboundedSender<Bytes>>,
    /// Per outgoing link: how many times it lost what was sent on it.
    lost: BTreeMap<(ServerId, Port), Arc<AtomicU64>>,
    isolated: Arc<AtomicBool>,
}

impl Links {
    /// Queues `msg` for `to`; dropped when the link is down or unknown.
    pub fn send(&self, to: ServerId, msg: &PeerMsg) {
        let key = (to, port_of(msg));
        let delivered = !self.isolated.load(Ordering::Relaxed)
            && self
                .out
                .get(&key)
                .is_some_and(|tx| tx.send(codec::encode(self.my_id, msg)).is_ok());
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
/// stops when `cancel` fires.
pub fn start(
    my_id: ServerId,
    election: TcpListener,
    quorum: TcpListener,
    peers: &BTreeMap<ServerId, PeerAddrs>,
    cancel: CancellationToken,
) -> (Links, mpsc::UnboundedReceiver<Received>) {
    let isolated = Arc::new(AtomicBool::new(false));
    let (in_tx, in_rx) = mpsc::unbounded_channel();
    for (port, listener) in [(Port::Election, election), (Port::Quorum, quorum)] {
        tokio::spawn(accept_loop(
            listener,
            Inbound {
                port,
                events: in_tx.clone(),
            },
            Arc::clone(&isolated),
            cancel.clone(),
        ));
    }
    let mut out = BTreeMap::new();
    let mut lost = BTreeMap::new();
    for (&id, addrs) in peers.iter().filter(|(id, _)| **id != my_id) {
        for (port, addr) in [
            (Port::Election, addrs.election),
            (Port::Quorum, addrs.quorum),
        ] {
            let (tx, rx) = mpsc::unbounded_channel();
            let losses = Arc::new(AtomicU64::new(0));
            out.insert((id, port), tx);
            lost.insert((id, port), Arc::clone(&losses));
            tokio::spawn(dial_loop(
                DialTarget {
                    my_id,
                    peer: id,
                    addr,
                    losses,
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
        isolated,
    };
    (links, in_rx)
}

/// Throws away whatever is queued: nobody can receive it.
fn drain(rx: &mut mpsc::UnboundedReceiver<Bytes>, losses: &AtomicU64) {
    let mut dropped = false;
    while rx.try_recv().is_ok() {
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
        inbound,
    } = target;
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
            drain(&mut rx, &losses);
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
            if isolated.load(Ordering::Relaxed) || write_frame(&mut stream, &msg).await.is_err() {
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

async fn read_frame(stream: &mut TcpStream) -> std::io::Result<Bytes> {
    let len = stream.read_u32().await? as usize;
    if len > MAX_FRAME {
        return Err(std::io::ErrorKind::InvalidData.into());
    }
    let mut body = vec![0; len];
    stream.read_exact(&mut body).await?;
    Ok(Bytes::from(body))
}

async fn accept_loop(
    listener: TcpListener,
    inbound: Inbound,
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
                    Arc::clone(&isolated),
                    cancel.clone(),
                ));
            }
            Err(e) => {
                tracing::warn!("peer accept failed: {e}");
                tokio::time::sleep(RETRY_DELAY).await;
            }
        }
    }
}

/// Reads one peer's connection: its id, then messages until it closes,
/// and then reports the link down.
async fn read_loop(
    mut stream: TcpStream,
    inbound: Inbound,
    isolated: Arc<AtomicBool>,
    cancel: CancellationToken,
) {
    let hello = tokio::time::timeout(HELLO_TIMEOUT, read_frame(&mut stream)).await;
    let Ok(Ok(hello)) = hello else {
        return;
    };
    let Ok(id) = <[u8; 8]>::try_from(&hello[..]) else {
        return;
    };
    let from = ServerId::from_be_bytes(id);
    if read_messages(&mut stream, from, &inbound, &isolated, &cancel).await {
        inbound.link_down(from);
    }
}

/// Passes `from`'s messages on until the connection ends. True when it
/// ended because the link broke (not because we are stopping).
async fn read_messages(
    stream: &mut TcpStream,
    from: ServerId,
    inbound: &Inbound,
    isolated: &AtomicBool,
    cancel: &CancellationToken,
) -> bool {
    loop {
        let frame = tokio::select! {
            _ = cancel.cancelled() => return false,
            f = read_frame(stream) => f,
        };
        let Ok(frame) = frame else {
            return true;
        };
        if isolated.load(Ordering::Relaxed) {
            return true;
        }
        match codec::decode(frame) {
            Ok(msg) => {
                if !inbound.message(from, msg) {
                    return false;
                }
            }
            Err(e) => {
                tracing::warn!(from, "dropping a malformed peer message: {e}");
                return true;
            }
        }
    }
}
