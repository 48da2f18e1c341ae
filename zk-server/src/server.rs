//! [`Server`]: recover the database, open the log, listen, serve.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::ServerConfig;
use crate::db::{Database, DbConfig};
use crate::net::{self, NetContext};
use crate::pipeline::{Inbound, Pipeline, Shared};
use crate::storage::{self, LogOptions, StorageError, TxnLog};

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("ensemble mode (server.N lines) is not supported yet; remove them to run standalone")]
    EnsembleNotSupported,
    #[error("cannot create {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("recovering the database failed: {0}")]
    Recovery(#[from] StorageError),
    #[error("writing the startup snapshot failed: {0}")]
    Snapshot(std::io::Error),
    #[error("opening the txn log failed: {0}")]
    TxnLog(std::io::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("internal task failed: {0}")]
    Task(String),
}

/// A running standalone server.
///
/// ```no_run
/// # async fn demo() -> Result<(), zk_server::server::ServerError> {
/// use zk_server::{Server, ServerConfig};
/// let server = Server::start(ServerConfig::standalone("/tmp/zk-data", 2181)).await?;
/// println!("serving on {}", server.local_addr());
/// server.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Server {
    local_addr: SocketAddr,
    inbound: mpsc::UnboundedSender<Inbound>,
    cancel: CancellationToken,
    pipeline: JoinHandle<()>,
    acceptor: JoinHandle<()>,
}

impl Server {
    /// Recovers `<dataDir>` (newest valid snapshot plus later txns), takes a
    /// snapshot of the result as Apache does at start, opens the txn log and
    /// starts listening on `clientPortAddress:clientPort` (port 0 picks a
    /// free one; see [`Server::local_addr`]).
    pub async fn start(config: ServerConfig) -> Result<Server, ServerError> {
        if !config.peers.is_empty() {
            return Err(ServerError::EnsembleNotSupported);
        }
        for dir in [config.data_dir.clone(), config.log_dir().to_path_buf()] {
            std::fs::create_dir_all(&dir).map_err(|source| ServerError::DataDir {
                path: dir.clone(),
                source,
            })?;
        }
        let db = recover(&config).await?;
        let log = TxnLog::open(
            config.log_dir(),
            LogOptions {
                prealloc_size: config.prealloc_size_bytes,
                force_sync: config.force_sync,
            },
        )
        .map_err(ServerError::TxnLog)?;
        let listener = bind(&config)?;
        let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: listen_addr(&config),
            source,
        })?;

        let shared = Arc::new(Shared {
            config,
            started: Instant::now(),
            local_addr,
            connections_rejected: Default::default(),
        });
        let (inbound, inbound_rx) = mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        let pipeline = tokio::spawn(Pipeline::new(Arc::clone(&shared), db, log).run(inbound_rx));
        let ctx = Arc::new(NetContext::new(shared, inbound.clone(), cancel.clone()));
        let acceptor = tokio::spawn(net::accept_loop(listener, ctx));
        tracing::info!(%local_addr, "serving");
        Ok(Server {
            local_addr,
            inbound,
            cancel,
            pipeline,
            acceptor,
        })
    }

    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Clean stop: answers what is already durable, writes a snapshot,
    /// closes the log and every connection, and releases the port.
    pub async fn shutdown(mut self) {
        let (done, finished) = oneshot::channel();
        if self.inbound.send(Inbound::Shutdown { done }).is_ok() {
            let _ = finished.await;
        }
        self.cancel.cancel();
        let _ = (&mut self.acceptor).await;
        let _ = (&mut self.pipeline).await;
    }

    /// Crash stop: no final snapshot, nothing flushed beyond what the log
    /// already made durable. For tests that simulate a crash.
    pub async fn kill(mut self) {
        // Connections drop first, so no reply can go out after this point.
        self.cancel.cancel();
        let (done, finished) = oneshot::channel();
        if self.inbound.send(Inbound::Kill { done }).is_ok() {
            let _ = finished.await;
        }
        let _ = (&mut self.acceptor).await;
        let _ = (&mut self.pipeline).await;
    }
}

impl Drop for Server {
    /// A server dropped without `shutdown` stops listening and closes its
    /// connections; the pipeline then sees every sender gone and stops
    /// cleanly on its own (final snapshot, log closed).
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn listen_addr(config: &ServerConfig) -> SocketAddr {
    let ip = config
        .client_port_address
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    SocketAddr::new(ip, config.client_port)
}

/// Binds with SO_REUSEADDR so a restarted server gets its port back at
/// once even with connections of the previous run in TIME_WAIT.
fn bind(config: &ServerConfig) -> Result<TcpListener, ServerError> {
    let addr = listen_addr(config);
    let fail = |source| ServerError::Bind { addr, source };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(fail)?;
    socket.set_reuseaddr(true).map_err(fail)?;
    socket.bind(addr).map_err(fail)?;
    socket.listen(1024).map_err(fail)
}

/// The database configuration the server's settings imply.
fn db_config(config: &ServerConfig) -> DbConfig {
    DbConfig {
        super_digest: config.super_digest.clone(),
        extended_types_enabled: config.extended_types_enabled,
        ..DbConfig::default()
    }
}

/// Restores the database and writes a snapshot of it, on a blocking task.
async fn recover(config: &ServerConfig) -> Result<Database, ServerError> {
    let snap_dir = config.data_dir.clone();
    let log_dir = config.log_dir().to_path_buf();
    let db_cfg = db_config(config);
    let recovered = tokio::task::spawn_blocking(move || {
        let load_cfg = db_cfg.clone();
        let (mut db, report) = storage::recover(
            &snap_dir,
            &log_dir,
            |r, zxid| Database::deserialize_snapshot(load_cfg.clone(), r, zxid),
            || Database::new(db_cfg),
            |db, entry| {
                db.apply(entry);
            },
        )?;
        // A snapshot is fuzzy: it may hold ephemerals of sessions whose
        // close the replayed log already removed from the session table.
        let orphans = db.remove_orphaned_ephemerals();
        tracing::info!(
            ?report,
            zxid = db.last_processed_zxid(),
            orphaned_ephemerals = orphans.len(),
            "database recovered"
        );
        // Apache snapshots right after loading, so the next start never
        // depends on a long log replay (and an empty dir gets snapshot.0).
        let mut body = BytesMut::new();
        db.serialize_snapshot(&mut body);
        storage::write_snapshot(&snap_dir, db.last_processed_zxid(), &body)
            .map_err(ServerError::Snapshot)?;
        Ok::<_, ServerError>(db)
    })
    .await
    .map_err(|e| ServerError::Task(e.to_string()))??;
    Ok(recovered)
}
