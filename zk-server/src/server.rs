//! [`Server`]: recover the database, open the log, listen, serve.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::ServerConfig;
use crate::db::{Database, DbConfig};
use crate::ensemble::driver::Driver;
use crate::ensemble::snapsync::{self, Staging};
use crate::ensemble::transport::{self, FaultSwitch};
use crate::ensemble::{disk, epochs::EpochFiles, EnsembleError, Membership, QuorumStatus};
use crate::fail_stop::FailStop;
use crate::net::{self, NetContext};
use crate::pipeline::{Inbound, Pipeline, Shared};
use crate::quorum::Peer;
use crate::storage::{self, LogOptions, StorageError, TxnLog};

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("ensemble configuration: {0}")]
    Ensemble(#[from] EnsembleError),
    #[error("reading the ensemble state failed: {0}")]
    EnsembleDisk(#[from] disk::DiskError),
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
    #[error("TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
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
    /// Ensemble mode: the member's role, and the switch that cuts its links.
    quorum: Option<(watch::Receiver<QuorumStatus>, FaultSwitch)>,
    /// Set when a durability error stopped the member (fail_stop.rs).
    health: watch::Receiver<Option<FailStop>>,
    /// Where the AdminServer and the Prometheus endpoint listen.
    http: crate::admin_http::HttpEndpoints,
    /// The TLS client port (`secureClientPort`), when configured.
    secure_addr: Option<SocketAddr>,
}

impl Server {
    /// Recovers `<dataDir>` (newest valid snapshot plus later txns), takes a
    /// snapshot of the result as Apache does at start, opens the txn log and
    /// starts listening on `clientPortAddress:clientPort` (port 0 picks a
    /// free one; see [`Server::local_addr`]).
    pub async fn start(mut config: ServerConfig) -> Result<Server, ServerError> {
        let membership = if !config.runs_as_ensemble() {
            config.adopt_single_peer_client_addr();
            None
        } else {
            let m = Membership::from_config(&config)?;
            if let Some((ip, port)) = m.client_addr {
                config.client_port = port;
                config.client_port_address = ip.or(config.client_port_address);
            }
            Some(m)
        };
        for dir in [config.data_dir.clone(), config.log_dir().to_path_buf()] {
            std::fs::create_dir_all(&dir).map_err(|source| ServerError::DataDir {
                path: dir.clone(),
                source,
            })?;
        }
        let metrics = crate::metrics::Metrics::default();
        let db = recover(&config, &metrics).await?;
        let log_opts = LogOptions {
            prealloc_size: config.prealloc_size_bytes,
            force_sync: config.force_sync,
        };
        let log = TxnLog::open(config.log_dir(), log_opts).map_err(ServerError::TxnLog)?;
        let (listener, secure, local_addr) = bind_client_ports(&config).await?;

        let shared = Arc::new(Shared {
            config,
            started: Instant::now(),
            local_addr,
            connections_rejected: Default::default(),
            health: Default::default(),
            metrics,
            secure_addr: secure.as_ref().map(|(_, addr, _)| *addr),
        });
        let health = shared.health.subscribe();
        let (inbound, inbound_rx) = mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        let (driver, quorum) = match membership {
            Some(m) => {
                let applied = db.last_processed_zxid();
                let staging = Staging {
                    snap_dir: shared.config.data_dir.clone(),
                    db_config: db.config().clone(),
                };
                let (driver, status, faults) = start_quorum(
                    &shared.config,
                    m,
                    log_opts,
                    applied,
                    staging,
                    cancel.clone(),
                )
                .await?;
                (Some(Box::new(driver)), Some((status, faults)))
            }
            None => (None, None),
        };
        let pipeline =
            tokio::spawn(Pipeline::new(Arc::clone(&shared), db, log, driver).run(inbound_rx));
        let http = crate::admin_http::start(&shared, inbound.clone(), cancel.clone())
            .await
            .map_err(|(addr, source)| {
                cancel.cancel();
                ServerError::Bind { addr, source }
            })?;
        let ctx = Arc::new(NetContext::new(shared, inbound.clone(), cancel.clone()));
        let secure_addr = secure.as_ref().map(|(_, addr, _)| *addr);
        if let Some((secure_listener, addr, tls)) = secure {
            tracing::info!(%addr, "serving TLS");
            tokio::spawn(net::tls_accept::accept_loop(
                secure_listener,
                Arc::clone(&ctx),
                tls,
            ));
        }
        let acceptor = match listener {
            Some(listener) => tokio::spawn(net::accept_loop(listener, ctx)),
            None => tokio::spawn(async {}),
        };
        tokio::spawn(stop_listening_on_failure(health.clone(), cancel.clone()));
        tracing::info!(%local_addr, "serving");
        Ok(Server {
            local_addr,
            inbound,
            cancel,
            pipeline,
            acceptor,
            quorum,
            health,
            http,
            secure_addr,
        })
    }

    /// Why the member stopped itself, if it did (fail-stop on a
    /// durability error; see [`FailStop`]).
    pub fn failure(&self) -> Option<FailStop> {
        self.health.borrow().clone()
    }

    /// Waits until a durability error stops the member; pending forever
    /// while it is healthy. The `zk-server` binary exits on it.
    pub async fn failed(&self) -> FailStop {
        let mut health = self.health.clone();
        loop {
            if let Some(failure) = health.borrow_and_update().clone() {
                return failure;
            }
            if health.changed().await.is_err() {
                // Nobody can report a failure any more.
                return std::future::pending().await;
            }
        }
    }

    /// Ensemble mode: the member's current role (`None` standalone).
    pub fn quorum_status(&self) -> Option<QuorumStatus> {
        self.quorum.as_ref().map(|(status, _)| *status.borrow())
    }

    /// Ensemble mode: cuts (true) or restores (false) every link to the
    /// other members, a network partition around this server.
    pub fn set_isolated(&self, isolated: bool) {
        if let Some((_, faults)) = &self.quorum {
            faults.set_isolated(isolated);
        }
    }

    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where TLS clients connect (`secureClientPort`), when configured.
    /// With only a secure port, [`Server::local_addr`] is this address.
    pub fn secure_addr(&self) -> Option<SocketAddr> {
        self.secure_addr
    }

    /// Where the AdminServer listens, when it runs.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.http.admin
    }

    /// Where the Prometheus endpoint listens, when configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.http.metrics
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

/// A failed member stops listening and drops its connections and peer
/// links: it serves nobody with a state it cannot vouch for.
async fn stop_listening_on_failure(
    mut health: watch::Receiver<Option<FailStop>>,
    cancel: CancellationToken,
) {
    tokio::select! {
        failed = health.wait_for(Option::is_some) => {
            if failed.is_ok() {
                cancel.cancel();
            }
        }
        _ = cancel.cancelled() => {}
    }
}

/// Binds the election and quorum ports, opens the peer links, and builds
/// the quorum core from the durable state on disk.
async fn start_quorum(
    config: &ServerConfig,
    membership: Membership,
    log_opts: LogOptions,
    applied_zxid: i64,
    staging: Staging,
    cancel: CancellationToken,
) -> Result<(Driver, watch::Receiver<QuorumStatus>, FaultSwitch), ServerError> {
    let my_id = membership.my_id;
    let mine = membership
        .my_addrs()
        .ok_or(EnsembleError::NotAMember(my_id))?;
    let election = bind_addr(mine.election).await?;
    let quorum = bind_addr(mine.quorum).await?;
    let (data_dir, log_dir) = (config.data_dir.clone(), config.log_dir().to_path_buf());
    let keep = membership.peer_config.commit_log_count;
    let durable = tokio::task::spawn_blocking(move || {
        disk::durable_state(&data_dir, &log_dir, applied_zxid, keep)
    })
    .await
    .map_err(|e| ServerError::Task(e.to_string()))??;
    tracing::info!(
        my_id,
        accepted_epoch = durable.accepted_epoch,
        current_epoch = durable.current_epoch,
        last_zxid = format_args!("0x{:x}", durable.last_logged_zxid()),
        "joining the ensemble"
    );
    snapsync::remove_stale_staging(&config.data_dir);
    let (links, inbound) =
        transport::start(my_id, election, quorum, &membership.addrs, staging, cancel);
    let faults = links.fault_switch();
    let (status_tx, status_rx) = watch::channel(QuorumStatus::looking(my_id));
    let peer = Peer::new(membership.peer_config, durable, 0, rand::random());
    let driver = Driver::new(
        peer,
        links,
        inbound,
        EpochFiles::new(&config.data_dir),
        status_tx,
        log_opts,
    );
    Ok((driver, status_rx, faults))
}

/// The plain listener (unless only a secure port is configured), the
/// secure one with its TLS configuration, and the address clients use.
#[allow(clippy::type_complexity)]
async fn bind_client_ports(
    config: &ServerConfig,
) -> Result<
    (
        Option<TcpListener>,
        Option<(TcpListener, SocketAddr, Arc<rustls::ServerConfig>)>,
        SocketAddr,
    ),
    ServerError,
> {
    let tls = &config.security.tls;
    let secure = match tls.secure_client_port {
        None => None,
        Some(port) => {
            let rustls_config = crate::tls::server_config(tls)?;
            let ip = tls
                .secure_client_port_address
                .or(config.client_port_address)
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
            let addr = SocketAddr::new(ip, port);
            let listener = bind_addr(addr).await?;
            let bound = listener
                .local_addr()
                .map_err(|source| ServerError::Bind { addr, source })?;
            Some((listener, bound, rustls_config))
        }
    };
    if tls.secure_only {
        let addr = secure.as_ref().map(|(_, a, _)| *a).ok_or_else(|| {
            ServerError::Task("secure-only configuration without a secure port".into())
        })?;
        return Ok((None, secure, addr));
    }
    let listener = bind(config).await?;
    let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: listen_addr(config),
        source,
    })?;
    Ok((Some(listener), secure, local_addr))
}

fn listen_addr(config: &ServerConfig) -> SocketAddr {
    let ip = config
        .client_port_address
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    SocketAddr::new(ip, config.client_port)
}

/// Binds with SO_REUSEADDR so a restarted server gets its port back at
/// once even with connections of the previous run in TIME_WAIT.
async fn bind(config: &ServerConfig) -> Result<TcpListener, ServerError> {
    bind_addr(listen_addr(config)).await
}

/// How long a port still in use is retried: a server restarted in the
/// same process (TestingServer / TestingCluster) may find its previous
/// run's listener not yet dropped by the task that held it.
const BIND_RETRY: Duration = Duration::from_secs(3);

async fn bind_addr(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    let deadline = tokio::time::Instant::now() + BIND_RETRY;
    loop {
        match try_bind(addr) {
            Err(ServerError::Bind { source, .. })
                if source.kind() == std::io::ErrorKind::AddrInUse
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            result => return result,
        }
    }
}

fn try_bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
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
        sasl_enabled: config.security.sasl_provider,
        ..DbConfig::default()
    }
}

/// Restores the database: newest valid snapshot plus the later txns.
/// Blocking; also used to reload after an ensemble TRUNC.
pub(crate) fn load_database(config: &ServerConfig) -> Result<Database, ServerError> {
    load_database_counted(config).map(|(db, _)| db)
}

/// [`load_database`], also telling how many txns were replayed.
fn load_database_counted(config: &ServerConfig) -> Result<(Database, u64), ServerError> {
    let db_cfg = db_config(config);
    let load_cfg = db_cfg.clone();
    let on_corrupt = if config.truncate_corrupt_txn_log {
        storage::OnCorrupt::Truncate
    } else {
        storage::OnCorrupt::Refuse
    };
    let (mut db, report) = storage::recover_with(
        &config.data_dir,
        config.log_dir(),
        on_corrupt,
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
        "{}",
        crate::ops_log::recovery_line(&report, db.last_processed_zxid(), orphans.len())
    );
    Ok((db, report.txns_replayed))
}

/// Restores the database and writes a snapshot of it, on a blocking task.
async fn recover(
    config: &ServerConfig,
    metrics: &crate::metrics::Metrics,
) -> Result<Database, ServerError> {
    let snap_dir = config.data_dir.clone();
    let config = config.clone();
    let started = Instant::now();
    let recovered = tokio::task::spawn_blocking(move || {
        let (db, replayed) = load_database_counted(&config)?;
        // Apache snapshots right after loading, so the next start never
        // depends on a long log replay (and an empty dir gets snapshot.0).
        let mut body = BytesMut::new();
        db.serialize_snapshot(&mut body);
        storage::write_snapshot(&snap_dir, db.last_processed_zxid(), &body)
            .map_err(ServerError::Snapshot)?;
        Ok::<_, ServerError>((db, replayed))
    })
    .await
    .map_err(|e| ServerError::Task(e.to_string()))??;
    let (db, replayed) = recovered;
    use crate::metrics::Summary;
    metrics.observe_ms(Summary::DbInitTime, started.elapsed());
    metrics.observe(Summary::StartupTxnsLoaded, replayed as i64);
    Ok(db)
}
