//! [`TestingServer`]: a throwaway in-process server for integration tests,
//! like Curator's `TestingServer`.
//!
//! It listens on a free `127.0.0.1` port and keeps its data in a temporary
//! directory that is deleted when the `TestingServer` is dropped.
//!
//! ```no_run
//! # async fn demo() -> Result<(), zk_server::server::ServerError> {
//! use zk_server::testing::TestingServer;
//!
//! let mut server = TestingServer::start().await?;
//! let connect = server.connect_string(); // "127.0.0.1:<port>"
//! // ... point a client at `connect`, write some data ...
//! server.restart().await?;  // same port, same data: acknowledged writes survive
//! server.kill().await;      // crash: no final snapshot; `restart` recovers from the log
//! server.restart().await?;
//! server.stop().await;      // clean stop; the temp dir goes when `server` drops
//! # Ok(()) }
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use crate::config::ServerConfig;
use crate::server::{Server, ServerError};

/// A standalone server on a free local port with a temporary data dir.
#[derive(Debug)]
pub struct TestingServer {
    config: ServerConfig,
    addr: SocketAddr,
    server: Option<Server>,
    // Dropped last: removes the data dir.
    _dir: tempfile::TempDir,
}

impl TestingServer {
    /// Starts with test-friendly defaults: tickTime 200 ms (so sessions can
    /// expire within a second or two), fsync off (the log is still written
    /// before any write is acknowledged; only power-loss durability is
    /// given up), and every four-letter word whitelisted.
    pub async fn start() -> Result<TestingServer, ServerError> {
        Self::start_with(|_| {}).await
    }

    /// Starts with the defaults of [`TestingServer::start`] adjusted by
    /// `tune` (data dir and address are chosen here and override it).
    pub async fn start_with(
        tune: impl FnOnce(&mut ServerConfig),
    ) -> Result<TestingServer, ServerError> {
        let dir = tempfile::Builder::new()
            .prefix("zk-testing-")
            .tempdir()
            .map_err(|source| ServerError::DataDir {
                path: std::env::temp_dir(),
                source,
            })?;
        let mut config = ServerConfig {
            tick_time_ms: 200,
            force_sync: false,
            prealloc_size_bytes: 1024 * 1024,
            four_letter_whitelist: crate::config::FourLetterWhitelist::All,
            ..ServerConfig::default()
        };
        tune(&mut config);
        config.data_dir = dir.path().to_path_buf();
        config.data_log_dir = None;
        config.client_port_address = Some(Ipv4Addr::LOCALHOST.into());
        config.client_port = 0;
        let server = Server::start(config.clone()).await?;
        let addr = server.local_addr();
        // Restarts reuse the port the first start picked.
        config.client_port = addr.port();
        Ok(TestingServer {
            config,
            addr,
            server: Some(server),
            _dir: dir,
        })
    }

    /// `127.0.0.1:<port>`, for a client's connect string.
    pub fn connect_string(&self) -> String {
        self.addr.to_string()
    }

    /// The socket address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port the server listens on (stable across restarts).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The temporary data directory.
    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    /// The configuration the server runs with.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Whether the server is currently running.
    pub fn is_running(&self) -> bool {
        self.server.is_some()
    }

    /// Why the server stopped itself (fail-stop), if it did.
    pub fn failure(&self) -> Option<crate::FailStop> {
        self.server.as_ref().and_then(Server::failure)
    }

    /// Clean stop (final snapshot, log closed). The data dir is kept until
    /// the `TestingServer` is dropped, so [`restart`](Self::restart) works.
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }

    /// Crash stop: drops the server without a final snapshot, as a
    /// `kill -9` would (what the log made durable stays).
    pub async fn kill(&mut self) {
        if let Some(server) = self.server.take() {
            server.kill().await;
        }
    }

    /// Stops the server if it runs (cleanly) and starts it again on the same
    /// port with the same data dir.
    pub async fn restart(&mut self) -> Result<(), ServerError> {
        self.stop().await;
        let server = Server::start(self.config.clone()).await?;
        self.server = Some(server);
        Ok(())
    }
}

/// One member of a [`TestingCluster`].
#[derive(Debug)]
struct Member {
    config: ServerConfig,
    addr: SocketAddr,
    server: Option<Server>,
    isolated: bool,
    _dir: tempfile::TempDir,
}

/// An ensemble of in-process servers on free local ports, each with its own
/// temporary data dir, like Curator's `TestingCluster`. Members are indexed
/// from 0; member `i` has server id `i + 1`. Voters come first, then
/// observers.
///
/// ```no_run
/// # async fn demo() -> Result<(), zk_server::server::ServerError> {
/// use std::time::Duration;
/// use zk_server::testing::TestingCluster;
///
/// let mut cluster = TestingCluster::start(3).await?;
/// let leader = cluster.wait_for_leader(Duration::from_secs(10)).await.unwrap();
/// let connect = cluster.connect_string(); // every member, comma separated
/// cluster.kill(leader).await;             // crash; the others elect again
/// cluster.restart(leader).await?;         // rejoins and catches up
/// cluster.isolate(0, true);               // cut member 0 off its peers
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TestingCluster {
    members: Vec<Member>,
}

/// A free port on 127.0.0.1, held until the returned listener drops.
fn reserve_port() -> Result<std::net::TcpListener, ServerError> {
    std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|source| ServerError::Bind {
        addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        source,
    })
}

fn port_of(l: &std::net::TcpListener) -> Result<u16, ServerError> {
    l.local_addr()
        .map(|a| a.port())
        .map_err(|source| ServerError::Bind {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            source,
        })
}

impl TestingCluster {
    /// `voters` voting members, tickTime 100 ms, fsync off.
    pub async fn start(voters: usize) -> Result<TestingCluster, ServerError> {
        Self::start_with(voters, 0, |_| {}).await
    }

    /// `voters` voting members and `observers` observers; `tune` adjusts
    /// every member's configuration (ports, ids and dirs are set here).
    pub async fn start_with(
        voters: usize,
        observers: usize,
        tune: impl Fn(&mut ServerConfig),
    ) -> Result<TestingCluster, ServerError> {
        let total = voters + observers;
        // Hold every port until all are chosen, so none is picked twice.
        let mut held = Vec::new();
        let mut peers = Vec::new();
        let mut client_ports = Vec::new();
        for i in 0..total {
            let (c, q, e) = (reserve_port()?, reserve_port()?, reserve_port()?);
            client_ports.push(port_of(&c)?);
            peers.push(crate::config::PeerSpec {
                id: i as u64 + 1,
                host: Ipv4Addr::LOCALHOST.to_string(),
                quorum_port: port_of(&q)?,
                election_port: port_of(&e)?,
                role: if i < voters {
                    crate::config::PeerRole::Participant
                } else {
                    crate::config::PeerRole::Observer
                },
                client: None,
            });
            held.extend([c, q, e]);
        }
        drop(held);
        let mut members = Vec::new();
        for (i, client_port) in client_ports.into_iter().enumerate() {
            let dir = tempfile::Builder::new()
                .prefix(&format!("zk-cluster-{}-", i + 1))
                .tempdir()
                .map_err(|source| ServerError::DataDir {
                    path: std::env::temp_dir(),
                    source,
                })?;
            let mut config = ServerConfig {
                tick_time_ms: 100,
                force_sync: false,
                prealloc_size_bytes: 1024 * 1024,
                four_letter_whitelist: crate::config::FourLetterWhitelist::All,
                init_limit: Some(10),
                sync_limit: Some(5),
                ..ServerConfig::default()
            };
            tune(&mut config);
            config.data_dir = dir.path().to_path_buf();
            config.data_log_dir = None;
            config.client_port_address = Some(Ipv4Addr::LOCALHOST.into());
            config.client_port = client_port;
            config.peers = peers.clone();
            config.my_id = Some(i as u64 + 1);
            members.push(Member {
                addr: SocketAddr::from((Ipv4Addr::LOCALHOST, client_port)),
                config,
                server: None,
                isolated: false,
                _dir: dir,
            });
        }
        let mut cluster = TestingCluster { members };
        for i in 0..total {
            cluster.restart(i).await?;
        }
        Ok(cluster)
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Every member's client address, comma separated.
    pub fn connect_string(&self) -> String {
        let addrs: Vec<String> = self.members.iter().map(|m| m.addr.to_string()).collect();
        addrs.join(",")
    }

    /// Member `i`'s client address.
    pub fn addr(&self, i: usize) -> SocketAddr {
        self.members[i].addr
    }

    /// Member `i`'s configuration.
    pub fn config(&self, i: usize) -> &ServerConfig {
        &self.members[i].config
    }

    pub fn is_running(&self, i: usize) -> bool {
        self.members[i].server.is_some()
    }

    /// Why member `i` stopped itself (fail-stop), if it did.
    pub fn failure(&self, i: usize) -> Option<crate::FailStop> {
        self.members[i].server.as_ref().and_then(Server::failure)
    }

    /// Member `i`'s role, if it runs.
    pub fn status(&self, i: usize) -> Option<crate::ensemble::QuorumStatus> {
        self.members[i]
            .server
            .as_ref()
            .and_then(Server::quorum_status)
    }

    /// The index of the serving leader among the members that are not
    /// isolated (an isolated leader believes in itself for a while), if
    /// there is exactly one.
    pub fn leader(&self) -> Option<usize> {
        let leaders: Vec<usize> = (0..self.len())
            .filter(|&i| !self.is_isolated(i))
            .filter(|&i| self.status(i).is_some_and(|s| s.is_leader()))
            .collect();
        match leaders[..] {
            [one] => Some(one),
            _ => None,
        }
    }

    /// Waits (polling, bounded by `timeout`) until one member leads and
    /// every running member serves; returns the leader's index.
    pub async fn wait_for_leader(&self, timeout: std::time::Duration) -> Option<usize> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let all_serving = (0..self.len())
                .filter(|&i| self.is_running(i) && !self.is_isolated(i))
                .all(|i| self.status(i).is_some_and(|s| s.serving));
            if let (Some(leader), true) = (self.leader(), all_serving) {
                return Some(leader);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Crash-stops member `i` (no final snapshot).
    pub async fn kill(&mut self, i: usize) {
        if let Some(server) = self.members[i].server.take() {
            server.kill().await;
        }
    }

    /// Cleanly stops member `i`.
    pub async fn stop(&mut self, i: usize) {
        if let Some(server) = self.members[i].server.take() {
            server.shutdown().await;
        }
    }

    /// (Re)starts member `i` with its data dir and ports (stopping it
    /// cleanly first if it runs).
    pub async fn restart(&mut self, i: usize) -> Result<(), ServerError> {
        self.stop(i).await;
        let server = Server::start(self.members[i].config.clone()).await?;
        server.set_isolated(self.members[i].isolated);
        self.members[i].server = Some(server);
        Ok(())
    }

    /// Cuts member `i` off its peers (`true`) or reconnects it (`false`);
    /// its clients stay connected to it.
    pub fn isolate(&mut self, i: usize, isolated: bool) {
        if let Some(server) = &self.members[i].server {
            server.set_isolated(isolated);
        }
        self.members[i].isolated = isolated;
    }

    fn is_isolated(&self, i: usize) -> bool {
        self.members[i].isolated
    }

    /// Stops every member cleanly.
    pub async fn stop_all(&mut self) {
        for i in 0..self.len() {
            self.stop(i).await;
        }
    }
}
