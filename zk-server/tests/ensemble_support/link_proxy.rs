//! A one-way quorum link through which a test can cut the network: a TCP
//! proxy on 127.0.0.1 that forwards to one member's port and, when cut,
//! closes every connection it carries and stops listening, so dialers get
//! "connection refused" (as from an unreachable host that answers with a
//! reset) until it is healed on the same port.
//!
//! Refusing rather than accepting-then-closing matters: a peer dialer that
//! sees a connection accepted and then closed redials at once, and would
//! spin; a refused dial waits its retry delay.

use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
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
}

impl LinkProxy {
    /// Listens on a free 127.0.0.1 port and forwards to `upstream`.
    pub fn start(upstream: SocketAddr) -> io::Result<LinkProxy> {
        let listener = listen(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let addr = listener.local_addr()?;
        Ok(LinkProxy {
            addr,
            upstream,
            running: Some(spawn_acceptor(listener, upstream)),
        })
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
            self.running = Some(spawn_acceptor(listener, self.upstream));
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

fn spawn_acceptor(listener: TcpListener, upstream: SocketAddr) -> Running {
    let stop = CancellationToken::new();
    let acceptor = tokio::spawn(accept_loop(listener, upstream, stop.clone()));
    Running { stop, acceptor }
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, stop: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            a = listener.accept() => a,
        };
        // An accept error is transient (e.g. the dialer gave up); keep going.
        if let Ok((inbound, _)) = accepted {
            tokio::spawn(forward(inbound, upstream, stop.clone()));
        }
    }
}

/// Pumps bytes both ways until either side closes or the proxy is cut;
/// dropping both streams then closes both connections.
async fn forward(mut inbound: TcpStream, upstream: SocketAddr, stop: CancellationToken) {
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
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
    }
}
