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
