#![allow(dead_code)]

//! Real `zk-server` processes for the multi-process ensemble tests: a kill
//! guard, free ports, and the `srvr` Mode line of a member.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Kills the process when dropped, so a failing test leaves nothing behind.
#[derive(Debug)]
pub struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `zk-server <cfg>` with its output discarded.
pub fn spawn_server(cfg: &Path) -> Proc {
    let child = Command::new(env!("CARGO_BIN_EXE_zk-server"))
        .arg(cfg)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn zk-server");
    Proc(child)
}

/// Starts `zk-server <cfg>` with its log (info level) written to `log`.
pub fn spawn_server_logged(cfg: &Path, log: &Path) -> Proc {
    let out = std::fs::File::create(log).expect("create the server log");
    let child = Command::new(env!("CARGO_BIN_EXE_zk-server"))
        .arg(cfg)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(out)
        .spawn()
        .expect("spawn zk-server");
    Proc(child)
}

/// `n` distinct free ports, held (bound) until the listeners are dropped,
/// so nothing else that binds port 0 meanwhile (a proxy) can take one.
pub fn reserve_ports(n: usize) -> Vec<TcpListener> {
    (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect()
}

/// The `server.N` lines of `members` members whose ports come three per
/// member from `ports`: client, quorum, election.
pub fn server_lines(ports: &[u16], members: usize) -> String {
    (0..members)
        .map(|i| {
            format!(
                "server.{}=127.0.0.1:{}:{};{}\n",
                i + 1,
                ports[3 * i + 1],
                ports[3 * i + 2],
                ports[3 * i]
            )
        })
        .collect()
}

/// The port a reservation holds.
pub fn port_of(reserved: &TcpListener) -> u16 {
    reserved.local_addr().expect("local addr").port()
}

/// `srvr`'s Mode line, or `None` when the member does not answer or does
/// not serve.
pub async fn mode_of(addr: SocketAddr) -> Option<String> {
    let connect =
        tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr));
    let mut stream = connect.await.ok()?.ok()?;
    stream.write_all(b"srvr").await.ok()?;
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(2), stream.read_to_string(&mut out))
        .await
        .ok()?
        .ok()?;
    out.lines()
        .find_map(|l| l.strip_prefix("Mode: "))
        .map(str::to_string)
}
