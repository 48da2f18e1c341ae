//! The servers the client suites run against, and per-test scaffolding.
//!
//! Each suite is written once against [`Target`]; `target_tests!` expands
//! every scenario into one test per target. Adding our own server
//! (`zk_server::testing::TestingServer`) is one enum variant plus one line
//! in the macro.
//!
//! Servers are shared by all tests of a binary (a test owns a fresh chroot
//! node, so tests do not see each other). The test kit kills them when the
//! test process exits.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use zk_client::{Acl, Client, CreateMode, Error, SessionState};
use zk_testkit::apache::{ApacheEnsemble, ApacheZk};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A standalone Apache ZooKeeper 3.8.
    Apache,
    /// A 3-member Apache ZooKeeper 3.8 ensemble.
    ApacheEnsemble,
    /// Our own standalone server (`zk_server::testing::TestingServer`).
    Ours,
}

static APACHE: OnceLock<ApacheZk> = OnceLock::new();
static ENSEMBLE: OnceLock<ApacheEnsemble> = OnceLock::new();

/// Expands scenarios `async fn name(target: Target)` into one `#[tokio::test]`
/// per target.
macro_rules! target_tests {
    ($($name:ident),* $(,)?) => {
        mod apache {
            $( #[tokio::test] async fn $name() { super::$name(crate::client_target::Target::Apache).await } )*
        }
        mod apache_ensemble {
            $( #[tokio::test] async fn $name() { super::$name(crate::client_target::Target::ApacheEnsemble).await } )*
        }
        mod ours {
            $( #[tokio::test] async fn $name() { super::$name(crate::client_target::Target::Ours).await } )*
        }
    };
}

impl Target {
    /// True when the target can run here. Apache targets ask the test
    /// kit ([`zk_testkit::oracle::require`]): a missing Apache ZooKeeper
    /// is a counted skip, or a failure under `ZK_REQUIRE_ORACLES=1`.
    pub fn available(self) -> bool {
        self == Target::Ours
            || zk_testkit::oracle::require(zk_testkit::oracle::Oracle::ApacheZooKeeper)
    }

    /// The shared server's connect string (starting it on first use).
    pub fn connect_string(self) -> String {
        match self {
            Target::Apache => APACHE
                .get_or_init(|| ApacheZk::start("").expect("start Apache ZooKeeper"))
                .connect_string(),
            Target::ApacheEnsemble => ENSEMBLE
                .get_or_init(|| ApacheEnsemble::start(3).expect("start an Apache ensemble"))
                .connect_string(),
            Target::Ours => zk_testkit::ours::shared_server().to_string(),
        }
    }

    /// One client address of the shared server (for proxies).
    pub fn one_server(self) -> SocketAddr {
        let first = self.connect_string();
        let first = first.split(',').next().expect("a host");
        first.parse().expect("an address")
    }
}

/// A test's own corner of a shared server.
pub struct Ctx {
    /// Connected with the test's chroot.
    pub client: Client,
    /// The server's connect string, no chroot.
    pub servers: String,
    /// The test's chroot node, e.g. `/client-tests/name-123`.
    pub root: String,
}

impl Ctx {
    /// `servers + root`: a connect string into the test's chroot.
    pub fn connect_string(&self) -> String {
        format!("{}{}", self.servers, self.root)
    }

    /// Another session in the test's chroot.
    pub async fn another_client(&self) -> Client {
        connect(&self.connect_string(), Duration::from_secs(10)).await
    }

    /// A session without chroot.
    pub async fn unrooted_client(&self) -> Client {
        connect(&self.servers, Duration::from_secs(10)).await
    }
}

pub async fn connect(connect_string: &str, session_timeout: Duration) -> Client {
    Client::builder(connect_string)
        .session_timeout(session_timeout)
        .connection_timeout(Duration::from_secs(20))
        .request_timeout(Duration::from_secs(20))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connect to {connect_string}: {e}"))
}

/// Creates `path` (and missing parents) as persistent nodes.
pub async fn ensure_path(client: &Client, path: &str) {
    let mut current = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        current.push('/');
        current.push_str(part);
        match client
            .create(&current, b"", &Acl::open_unsafe(), CreateMode::Persistent)
            .await
        {
            Ok(_) | Err(Error::NodeExists) => {}
            Err(e) => panic!("create {current}: {e}"),
        }
    }
}

/// A fresh chroot for the test `name` on `target`; `None` (after a skip
/// notice) when the target cannot run here.
pub async fn ctx(target: Target, name: &str) -> Option<Ctx> {
    if !target.available() {
        return None;
    }
    let servers = tokio::task::spawn_blocking(move || target.connect_string())
        .await
        .expect("server start");
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let root = format!("/client-tests/{name}-{nanos}");
    let setup = connect(&servers, Duration::from_secs(10)).await;
    ensure_path(&setup, &root).await;
    setup.close().await.expect("close");
    let client = connect(&format!("{servers}{root}"), Duration::from_secs(10)).await;
    Some(Ctx {
        client,
        servers,
        root,
    })
}

/// Waits (bounded) until the client reaches a state `pred` accepts.
pub async fn wait_state(
    client: &Client,
    within: Duration,
    pred: impl FnMut(&SessionState) -> bool,
) -> SessionState {
    tokio::time::timeout(within, client.wait_for_state(pred))
        .await
        .unwrap_or_else(|_| panic!("state still {:?} after {within:?}", client.state()))
}

/// Polls `check` every 100 ms until it returns true or `within` passes.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}
