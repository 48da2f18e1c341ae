//! A fault-injecting TCP proxy on 127.0.0.1 for client tests: it forwards
//! to one upstream address and can, on command, drop every connection,
//! blackhole traffic (accept bytes, forward nothing), or pause (stop
//! reading, so bytes pile up) and resume.
//!
//! Plain threads and blocking sockets with short read timeouts, so every
//! thread notices a mode change or shutdown within ~50 ms.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

const POLL: Duration = Duration::from_millis(50);

/// What the proxy does with bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    Forward = 0,
    /// Read and discard, both directions.
    Blackhole = 1,
    /// Read nothing; resumes where it stopped.
    Paused = 2,
}

impl Mode {
    fn from_u8(v: u8) -> Mode {
        match v {
            1 => Mode::Blackhole,
            2 => Mode::Paused,
            _ => Mode::Forward,
        }
    }
}

#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    mode: AtomicU8,
    stop: AtomicBool,
    /// Hold server→client bytes (requests still flow).
    replies_paused: AtomicBool,
    /// Both sockets of every live connection, to cut them.
    connections: Mutex<Vec<(TcpStream, TcpStream)>>,
}

impl Shared {
    fn mode(&self) -> Mode {
        Mode::from_u8(self.mode.load(Ordering::SeqCst))
    }

    /// Whether the pump in this direction must hold its bytes now.
    fn holds(&self, to_client: bool) -> bool {
        self.mode() == Mode::Paused || (to_client && self.replies_paused.load(Ordering::SeqCst))
    }
}

/// A running proxy; stops (and cuts every connection) when dropped.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Listens on a free 127.0.0.1 port and forwards to `upstream`.
    pub fn start(upstream: SocketAddr) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            mode: AtomicU8::new(Mode::Forward as u8),
            stop: AtomicBool::new(false),
            replies_paused: AtomicBool::new(false),
            connections: Mutex::new(Vec::new()),
        });
        let acceptor = {
            let shared = shared.clone();
            std::thread::spawn(move || accept_loop(listener, shared))
        };
        Ok(Proxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:<port>` of the proxy.
    pub fn connect_string(&self) -> String {
        self.addr.to_string()
    }

    pub fn mode(&self) -> Mode {
        self.shared.mode()
    }

    pub fn set_mode(&self, mode: Mode) {
        self.shared.mode.store(mode as u8, Ordering::SeqCst);
    }

    /// Forward normally (also ends a pause or a blackhole).
    pub fn forward(&self) {
        self.set_mode(Mode::Forward);
    }

    /// Accept bytes from both sides but forward nothing.
    pub fn blackhole(&self) {
        self.set_mode(Mode::Blackhole);
    }

    /// Stop reading from both sides until [`resume`](Self::resume).
    pub fn pause(&self) {
        self.set_mode(Mode::Paused);
    }

    pub fn resume(&self) {
        self.set_mode(Mode::Forward);
    }

    /// Stop forwarding server→client bytes (held, not lost) while
    /// client→server bytes still flow: requests reach the server, their
    /// replies do not reach the client. Combined with
    /// [`drop_all`](Self::drop_all) this loses replies to requests the
    /// server has executed.
    pub fn pause_replies(&self) {
        self.shared.replies_paused.store(true, Ordering::SeqCst);
    }

    /// Forward server→client bytes again (held bytes of connections not
    /// cut meanwhile are delivered).
    pub fn resume_replies(&self) {
        self.shared.replies_paused.store(false, Ordering::SeqCst);
    }

    /// Cuts every live connection (both sides see the connection close).
    /// New connections are still accepted.
    pub fn drop_all(&self) {
        let mut connections = self
            .shared
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for (client, server) in connections.drain(..) {
            let _ = client.shutdown(Shutdown::Both);
            let _ = server.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.drop_all();
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, _)) => {
                if let Err(e) = open(client, &shared) {
                    eprintln!("proxy: cannot open a connection: {e}");
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => {
                eprintln!("proxy: accept failed: {e}");
                std::thread::sleep(POLL);
            }
        }
    }
}

/// Connects upstream and starts one pump thread per direction.
fn open(client: TcpStream, shared: &Arc<Shared>) -> std::io::Result<()> {
    client.set_nonblocking(false)?;
    let server = match TcpStream::connect_timeout(&shared.upstream, Duration::from_secs(2)) {
        Ok(s) => s,
        Err(e) => {
            let _ = client.shutdown(Shutdown::Both);
            return Err(e);
        }
    };
    for s in [&client, &server] {
        s.set_read_timeout(Some(POLL))?;
        let _ = s.set_nodelay(true);
    }
    shared
        .connections
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((client.try_clone()?, server.try_clone()?));
    for (from, to, to_client) in [
        (client.try_clone()?, server.try_clone()?, false),
        (server, client, true),
    ] {
        let shared = shared.clone();
        std::thread::spawn(move || pump(from, to, to_client, &shared));
    }
    Ok(())
}

/// Copies `from` to `to` according to the mode until either side closes or
/// the proxy stops.
fn pump(mut from: TcpStream, mut to: TcpStream, to_client: bool, shared: &Shared) {
    let mut buf = [0u8; 16 * 1024];
    while !shared.stop.load(Ordering::SeqCst) {
        if shared.holds(to_client) {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                // A pause may have begun while we were reading: hold these
                // bytes until it ends.
                while shared.holds(to_client) && !shared.stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(10));
                }
                if shared.mode() == Mode::Forward && to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
