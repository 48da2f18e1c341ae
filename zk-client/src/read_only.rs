//! Leaving a read-only server (WIRE.md §4.5), as Java's client does: while
//! the session is `ConnectedReadOnly`, the other servers are asked `isro`
//! (a four-letter word answered `rw` or `ro`) with a back-off from 100 ms
//! doubling to 60 s, and the client moves to the first server answering
//! `rw`. Until a read/write server has been seen, every handshake asks for
//! a new session (sessionId 0): a read-only server only hands out local
//! sessions, which a read/write server would not know.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{sleep, timeout};
use tracing::debug;

use crate::connect_string::HostAddr;

/// The first pause before probing (Java's `minPingRwTimeout`).
pub const MIN_PROBE_INTERVAL: Duration = Duration::from_millis(100);
/// The longest pause between probes (Java's `maxPingRwTimeout`).
pub const MAX_PROBE_INTERVAL: Duration = Duration::from_secs(60);
/// How long one probe may take, connect and answer together.
const PROBE_LIMIT: Duration = Duration::from_secs(1);
/// An answer is two letters; anything much longer is not a ZooKeeper.
const MAX_ANSWER: usize = 16;

/// The pauses between probes: 100 ms, 200 ms, 400 ms, ... capped at 60 s.
#[derive(Debug, Clone)]
pub struct ProbeBackoff {
    next: Duration,
}

impl Default for ProbeBackoff {
    fn default() -> Self {
        ProbeBackoff {
            next: MIN_PROBE_INTERVAL,
        }
    }
}

impl ProbeBackoff {
    /// The pause before the next probe; each call doubles the following one.
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(MAX_PROBE_INTERVAL);
        wait
    }
}

/// What a server says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerMode {
    /// Serves reads and writes.
    ReadWrite,
    /// Serves reads only (cut off from its quorum).
    ReadOnly,
}

/// Reads an `isro` answer; `None` for anything but `rw` / `ro` (trailing
/// whitespace tolerated).
pub fn parse_isro_answer(answer: &[u8]) -> Option<ServerMode> {
    match answer.trim_ascii() {
        b"rw" => Some(ServerMode::ReadWrite),
        b"ro" => Some(ServerMode::ReadOnly),
        _ => None,
    }
}

/// The sessionId to put in a ConnectRequest: ours once a read/write server
/// has been seen (or the caller supplied the session), else 0 so that
/// each server hands out a fresh session.
pub fn handshake_session_id(seen_rw_server: bool, session_id: i64) -> i64 {
    if seen_rw_server {
        session_id
    } else {
        0
    }
}

/// The servers worth probing: every host but the one we are on.
pub fn probe_candidates(hosts: &[HostAddr], current: Option<&HostAddr>) -> Vec<HostAddr> {
    hosts
        .iter()
        .filter(|h| Some(*h) != current)
        .cloned()
        .collect()
}

/// Asks `host` `isro`; `None` when it cannot be reached or answers
/// nonsense within `PROBE_LIMIT`.
pub async fn probe(host: &HostAddr) -> Option<ServerMode> {
    let ask = async {
        let mut stream = TcpStream::connect((host.host.as_str(), host.port))
            .await
            .ok()?;
        stream.write_all(b"isro").await.ok()?;
        // The server answers and closes; read until then (bounded).
        let mut answer = Vec::with_capacity(MAX_ANSWER);
        let mut limited = (&mut stream).take(MAX_ANSWER as u64);
        limited.read_to_end(&mut answer).await.ok()?;
        parse_isro_answer(&answer)
    };
    let mode = timeout(PROBE_LIMIT, ask).await.ok().flatten();
    debug!(%host, ?mode, "isro probe");
    mode
}

/// Probes `candidates` round robin, pausing per [`ProbeBackoff`] before
/// each probe, and returns the first host that answers `rw`. Never
/// returns when there is nobody to probe (the caller drops it instead).
pub async fn find_rw_server(candidates: Vec<HostAddr>) -> HostAddr {
    if candidates.is_empty() {
        return std::future::pending().await;
    }
    let mut backoff = ProbeBackoff::default();
    let mut turn = 0;
    loop {
        sleep(backoff.next_wait()).await;
        let host = &candidates[turn % candidates.len()];
        turn += 1;
        if probe(host).await == Some(ServerMode::ReadWrite) {
            return host.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    use bytes::{Bytes, BytesMut};
    use tokio::net::TcpListener;
    use zk_proto::{ConnectRequest, ConnectResponse, Jute};

    use crate::{Client, SessionState};

    #[test]
    fn probes_back_off_from_100_ms_doubling_to_60_s() {
        let mut backoff = ProbeBackoff::default();
        let waits: Vec<u64> = (0..12)
            .map(|_| backoff.next_wait().as_millis() as u64)
            .collect();
        assert_eq!(
            waits,
            [100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000, 60000]
        );
    }

    #[test]
    fn isro_answers_name_the_server_mode() {
        assert_eq!(parse_isro_answer(b"rw"), Some(ServerMode::ReadWrite));
        assert_eq!(parse_isro_answer(b"ro\n"), Some(ServerMode::ReadOnly));
        assert_eq!(parse_isro_answer(b""), None);
        assert_eq!(parse_isro_answer(b"imok"), None);
    }

    #[test]
    fn sessions_are_kept_only_after_a_read_write_server_was_seen() {
        assert_eq!(handshake_session_id(false, 0x1234), 0);
        assert_eq!(handshake_session_id(true, 0x1234), 0x1234);
    }

    #[test]
    fn the_current_server_is_not_probed() {
        let hosts = vec![HostAddr::new("a", 1), HostAddr::new("b", 2)];
        assert_eq!(
            probe_candidates(&hosts, Some(&hosts[0])),
            vec![HostAddr::new("b", 2)]
        );
        assert_eq!(probe_candidates(&hosts, None), hosts);
    }

    /// A server that answers every connection's `isro` with `answer`.
    async fn isro_server(answer: &'static [u8]) -> HostAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut word = [0u8; 4];
                if socket.read_exact(&mut word).await.is_ok() && &word == b"isro" {
                    let _ = socket.write_all(answer).await;
                }
            }
        });
        HostAddr::new("127.0.0.1", port)
    }

    #[tokio::test]
    async fn a_probe_reads_the_server_answer() {
        assert_eq!(
            probe(&isro_server(b"rw").await).await,
            Some(ServerMode::ReadWrite)
        );
        assert_eq!(
            probe(&isro_server(b"ro").await).await,
            Some(ServerMode::ReadOnly)
        );
    }

    #[tokio::test]
    async fn an_unreachable_server_answers_nothing() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        assert_eq!(probe(&HostAddr::new("127.0.0.1", port)).await, None);
    }

    #[tokio::test]
    async fn the_search_skips_read_only_servers() {
        let ro = isro_server(b"ro").await;
        let rw = isro_server(b"rw").await;
        let found = timeout(Duration::from_secs(5), find_rw_server(vec![ro, rw.clone()]))
            .await
            .expect("found within the first probes");
        assert_eq!(found, rw);
    }

    /// A fake server for the handshake only: it refuses sessions (closes)
    /// while `serving` is false, and otherwise grants one, read-only or
    /// not as `read_only` says; `isro` is answered from `read_only` too.
    /// Every sessionId asked for is recorded.
    struct FakeServer {
        addr: HostAddr,
        serving: Arc<AtomicBool>,
        asked: Arc<Mutex<Vec<i64>>>,
    }

    async fn fake_server(read_only: bool, serving: bool) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let serving = Arc::new(AtomicBool::new(serving));
        let asked = Arc::new(Mutex::new(Vec::new()));
        let (on, log) = (serving.clone(), asked.clone());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (on, log) = (on.clone(), log.clone());
                tokio::spawn(async move {
                    let mut head = [0u8; 4];
                    if socket.read_exact(&mut head).await.is_err() {
                        return;
                    }
                    if &head == b"isro" {
                        let answer: &[u8] = if read_only { b"ro" } else { b"rw" };
                        let _ = socket.write_all(answer).await;
                        return;
                    }
                    if !on.load(Ordering::SeqCst) {
                        return;
                    }
                    let mut body = vec![0u8; u32::from_be_bytes(head) as usize];
                    if socket.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let Ok(request) = ConnectRequest::from_bytes(Bytes::from(body)) else {
                        return;
                    };
                    log.lock().unwrap().push(request.session_id);
                    let response = ConnectResponse {
                        protocol_version: 0,
                        timeout: 10_000,
                        session_id: if read_only { 0x77 } else { 0x88 },
                        passwd: Bytes::from_static(&[1; 16]),
                        read_only: Some(read_only),
                    };
                    let mut out = BytesMut::new();
                    zk_proto::encode_frame(&response, &mut out);
                    let _ = socket.write_all(&out).await;
                    // Hold the connection until the client drops it.
                    let mut sink = Vec::new();
                    let _ = socket.read_to_end(&mut sink).await;
                });
            }
        });
        FakeServer {
            addr: HostAddr::new("127.0.0.1", port),
            serving,
            asked,
        }
    }

    #[tokio::test]
    async fn a_read_only_client_moves_to_a_read_write_server_once_one_answers() {
        let ro = fake_server(true, true).await;
        let rw = fake_server(false, false).await;
        let client = Client::builder(&format!("{},{}", ro.addr, rw.addr))
            .read_only(true)
            .connection_timeout(Duration::from_secs(5))
            .connect()
            .await
            .unwrap();
        assert_eq!(client.state(), SessionState::ConnectedReadOnly);
        assert_eq!(client.session_id(), 0x77);

        rw.serving.store(true, Ordering::SeqCst);
        let moved = timeout(
            Duration::from_secs(5),
            client.wait_for_state(|s| *s == SessionState::Connected),
        )
        .await;
        assert_eq!(moved, Ok(SessionState::Connected));
        assert_eq!(client.session_id(), 0x88);
        assert_eq!(
            client.connected_server().map(|a| a.port()),
            Some(rw.addr.port)
        );
        // Neither handshake offered the read-only server's local session.
        assert_eq!(*ro.asked.lock().unwrap(), [0]);
        assert_eq!(*rw.asked.lock().unwrap(), [0]);
        drop(client);
    }
}
