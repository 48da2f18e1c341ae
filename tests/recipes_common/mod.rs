//! Scaffolding shared by the recipe suites: one Apache ZooKeeper per test
//! binary (killed by the test kit when the process exits), a fresh chroot
//! per test, and frameworks with short timeouts so failures stay quick.

#![allow(dead_code)]

use std::future::Future;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use zk_client::{Acl, Client, CreateMode, Error};
use zk_recipes::{Curator, RetryPolicy};
use zk_testkit::apache::{self, ApacheZk};

static APACHE: OnceLock<ApacheZk> = OnceLock::new();

/// A short session so simulated expiry and server expiry happen quickly
/// (Apache's minimum with tickTime 2000 is 4 s).
pub const SESSION: Duration = Duration::from_secs(4);

/// A test's corner of the shared server.
pub struct Ctx {
    /// `host:port/<root>` for frameworks in this test.
    pub connect: String,
    /// The server address without chroot (for proxies).
    pub server: std::net::SocketAddr,
    pub root: String,
}

/// The shared server and a fresh root for `tag`, or `None` (with a
/// notice) when Apache ZooKeeper is not installed.
pub async fn ctx(tag: &str) -> Option<Ctx> {
    if !apache::installed() {
        eprintln!(
            "SKIPPED: Apache ZooKeeper is not installed \
             (apt-get install -y zookeeper zookeeper-bin)"
        );
        return None;
    }
    let server = tokio::task::spawn_blocking(|| {
        APACHE
            .get_or_init(|| ApacheZk::start("").expect("start Apache ZooKeeper"))
            .addr()
    })
    .await
    .expect("server start task");
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let root = format!("/recipes-{tag}-{nanos}");
    let admin = Client::connect(&server.to_string()).await.expect("connect");
    match admin
        .create(&root, b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
    {
        Ok(_) | Err(Error::NodeExists) => {}
        Err(e) => panic!("create test root: {e}"),
    }
    admin.close().await.expect("close admin");
    Some(Ctx {
        connect: format!("{server}{root}"),
        server,
        root,
    })
}

/// A quick retry policy for tests.
pub fn retry() -> RetryPolicy {
    RetryPolicy::bounded_exponential_backoff(
        Duration::from_millis(50),
        Duration::from_millis(500),
        10,
    )
}

/// A connected framework on `connect` with short timeouts.
pub async fn curator(connect: &str) -> Curator {
    Curator::builder(connect)
        .session_timeout(SESSION)
        .connection_timeout(Duration::from_secs(10))
        .retry_policy(retry())
        .connect()
        .await
        .expect("framework connects")
}

impl Ctx {
    pub async fn curator(&self) -> Curator {
        curator(&self.connect).await
    }

    /// A plain client in the test's chroot.
    pub async fn client(&self) -> Client {
        Client::connect(&self.connect).await.expect("connect")
    }
}

/// Polls `check` every 50 ms until it is true or `within` passes.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs `future` with a hard limit so a hung recipe fails the test.
pub async fn within<T>(limit: Duration, what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {limit:?}"))
}
