#![allow(dead_code)]

//! A one-way quorum link through which a test can cut the network: a TCP
//! proxy on 127.0.0.1 that forwards to one member's port and, when cut,
//! closes every connection it carries and stops listening, so dialers get
//! "connection refused" (as from an unreachable host that answers with a
//! reset) until it is healed on the same port.
//!
//! Refusing rather than accepting-then-closing matters: a peer dialer that
//! sees a connection accepted and then closed redials at once, and would
//! spin; a refused dial waits its retry delay.
//!
//! `stall` is the silent kind of cut (packets dropped, not refused): every
//! connection stays open and new ones are accepted, but no byte moves
//! either way until `resume`; then what was held goes through, as TCP
//! retransmits after a network heals. Nobody sees a connection close.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The listener task and the token that stops it and its connections.
#[derive(Debug)]
struct Running {
    stop: CancellationToken,
    acceptor: JoinHandle<()>,
}

/// A proxy on a fixed local port forwarding to `upstream`.
#[derive(Debug)]
pub struct LinkProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    running: Option<Running>,
    /// True while stalled (see the module docs).
    stalled: watch::Sender<bool>,
}

impl LinkProxy {
    /// Listens on a free 127.0.0.1 port and forwards to `upstream`.
    pub fn start(upstream: SocketAddr) -> io::Result<LinkProxy> {
        let listener = listen(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let addr = listener.local_addr()?;
        let (stalled, _) = watch::channel(false);
        let running = spawn_acceptor(listener, upstream, stalled.subscribe());
        Ok(LinkProxy {
            addr,
            upstream,
            running: Some(running),
            stalled,
        })
    }

    /// Stops moving bytes on every connection, old and new, without
    /// closing any.
    pub fn stall(&self) {
        self.stalled.send_replace(true);
    }

    /// Moves bytes again, what was held first.
    pub fn resume(&self) {
        self.stalled.send_replace(false);
    }

    /// Where peers dial to reach `upstream` through this proxy.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every forwarded connection and stops listening; returns once
    /// the port refuses new connections.
    pub async fn cut(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop.cancel();
            // The acceptor owns the listener: once it ended, the port is closed.
            let _ = running.acceptor.await;
        }
    }

    /// Listens again on the same port and forwards new connections.
    pub fn heal(&mut self) -> io::Result<()> {
        if self.running.is_none() {
            let listener = listen(self.addr)?;
            let stalled = self.stalled.subscribe();
            self.running = Some(spawn_acceptor(listener, self.upstream, stalled));
        }
        Ok(())
    }
}

impl Drop for LinkProxy {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop.cancel();
        }
    }
}

/// A listener with SO_REUSEADDR, so a healed proxy gets its port back even
/// while connections it closed linger in TIME_WAIT.
fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(64)
}

fn spawn_acceptor(
    listener: TcpListener,
    upstream: SocketAddr,
    stalled: watch::Receiver<bool>,
) -> Running {
    let stop = CancellationToken::new();
    let acceptor = tokio::spawn(accept_loop(listener, upstream, stop.clone(), stalled));
    Running { stop, acceptor }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    stop: CancellationToken,
    stalled: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            a = listener.accept() => a,
        };
        // An accept error is transient (e.g. the dialer gave up); keep going.
        if let Ok((inbound, _)) = accepted {
            tokio::spawn(forward(inbound, upstream, stop.clone(), stalled.clone()));
        }
    }
}

/// Waits while the proxy is stalled.
async fn flowing(stalled: &mut watch::Receiver<bool>) {
    while *stalled.borrow_and_update() {
        if stalled.changed().await.is_err() {
            return;
        }
    }
}

/// Copies one direction, holding each chunk while the proxy is stalled.
async fn pump(
    mut from: tokio::net::tcp::ReadHalf<'_>,
    mut to: tokio::net::tcp::WriteHalf<'_>,
    mut stalled: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        flowing(&mut stalled).await;
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        flowing(&mut stalled).await;
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Pumps bytes both ways until either side closes or the proxy is cut;
/// dropping both streams then closes both connections.
async fn forward(
    mut inbound: TcpStream,
    upstream: SocketAddr,
    stop: CancellationToken,
    mut stalled: watch::Receiver<bool>,
) {
    tokio::select! {
        _ = stop.cancelled() => return,
        _ = flowing(&mut stalled) => {}
    }
    let connect = tokio::time::timeout(
        std::time::Duration::from_secs(1),
        TcpStream::connect(upstream),
    );
    let mut outbound = tokio::select! {
        _ = stop.cancelled() => return,
        c = connect => match c {
            Ok(Ok(s)) => s,
            // The member is down: the dialer sees its connection close.
            _ => return,
        },
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (in_read, in_write) = inbound.split();
    let (out_read, out_write) = outbound.split();
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = pump(in_read, out_write, stalled.clone()) => {}
        _ = pump(out_read, in_write, stalled) => {}
    }
}
