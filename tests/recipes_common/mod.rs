//! Scaffolding shared by the recipe suites. Every scenario runs twice:
//! against Apache ZooKeeper 3.8 (the reference) and against our own server
//! (`zk_server::testing::TestingServer`), both with tickTime 2000 and TTL
//! nodes enabled. Each server is started once per test binary and lives as
//! long as the test process; every test works in a fresh chroot, and its
//! frameworks use short timeouts so failures stay quick.
//!
//! A suite writes scenarios as `async fn name(target: Target)` and lists
//! them in `recipe_tests!(...)`, which expands to `apache::name` and
//! `ours::name` tests.

#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use zk_client::{Acl, Client, CreateMode, Error};
use zk_recipes::{Curator, RetryPolicy};
use zk_testkit::apache::ApacheZk;

/// The server a scenario runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A standalone Apache ZooKeeper 3.8.
    Apache,
    /// Our own standalone server.
    Ours,
}

static APACHE: OnceLock<ApacheZk> = OnceLock::new();

/// Expands scenarios `async fn name(target: Target)` into one multi-thread
/// `#[tokio::test]` per target.
macro_rules! recipe_tests {
    ($($name:ident),* $(,)?) => {
        mod apache {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::recipes_common::Target::Apache).await
                }
            )*
        }
        mod ours {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::recipes_common::Target::Ours).await
                }
            )*
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

    /// The shared server's address (starting it on first use).
    fn addr(self) -> SocketAddr {
        match self {
            Target::Apache => APACHE
                .get_or_init(|| ApacheZk::start("").expect("start Apache ZooKeeper"))
                .addr(),
            Target::Ours => zk_testkit::ours::shared_server(),
        }
    }
}

/// A short session so simulated expiry and server expiry happen quickly
/// (the minimum with tickTime 2000 is 4 s).
pub const SESSION: Duration = Duration::from_secs(4);

/// A test's corner of the shared server.
pub struct Ctx {
    pub target: Target,
    /// `host:port/<root>` for frameworks in this test.
    pub connect: String,
    /// The server address without chroot (for proxies).
    pub server: SocketAddr,
    pub root: String,
}

/// The target's shared server and a fresh root for `tag`, or `None` (with
/// a notice) when the target cannot run here.
pub async fn ctx(target: Target, tag: &str) -> Option<Ctx> {
    if !target.available() {
        return None;
    }
    let server = tokio::task::spawn_blocking(move || target.addr())
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
        target,
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
