//! kazoo, the Python client, against our server: its core API and its
//! recipes (Lock, Election, Barrier, DoubleBarrier, Queue, LockingQueue,
//! Counter, ChildrenWatch, DataWatch, TreeCache) and `CREATOR_ALL_ACL`
//! (whose empty id kazoo sends as a null string) in create, set_acls and a
//! transaction, as scripted in `tests/interop/kazoo_recipes.py`.
//!
//! When python3 or kazoo is missing: a counted skip, or a failure under
//! `ZK_REQUIRE_ORACLES=1` (`zk_testkit::oracle`; `.ci/run` installs it).

mod interop;

use std::time::Duration;

use zk_server::testing::TestingServer;
use zk_testkit::oracle::{self, Oracle};

/// The whole script; each check inside has its own 10 s waits.
const SCRIPT_LIMIT: Duration = Duration::from_secs(120);

/// Runs the script against `connect`; panics with its output on failure.
async fn run_script(connect: &str, target: &str) {
    let script = interop::script_path("kazoo_recipes.py");
    let script = script.to_string_lossy();
    let out = interop::run("python3", &[&script, connect], SCRIPT_LIMIT)
        .await
        .expect("run python3");
    assert!(
        out.success,
        "kazoo_recipes.py failed against {target}:\n{}",
        out.text
    );
    // Every check reported, none failed.
    assert!(
        out.text.contains("0 of 13 checks failed"),
        "unexpected kazoo output against {target}:\n{}",
        out.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kazoo_api_and_recipes_work_against_our_server() {
    if !oracle::require(Oracle::Kazoo) {
        return;
    }
    let server = TestingServer::start_with(|cfg| {
        cfg.tick_time_ms = 2000;
        cfg.extended_types_enabled = true;
    })
    .await
    .expect("start our server");
    run_script(&server.connect_string(), "our server").await;
}

/// The script's own check: what it expects is what Apache does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kazoo_script_passes_against_apache() {
    if !oracle::require_all(&[Oracle::Kazoo, Oracle::ApacheZooKeeper]) {
        return;
    }
    let apache = tokio::task::spawn_blocking(|| {
        zk_testkit::apache::ApacheZk::start("").expect("start Apache ZooKeeper")
    })
    .await
    .expect("Apache start task");
    run_script(&apache.connect_string(), "Apache ZooKeeper").await;
    // Dropping the handle kills the JVM; do it off the async threads.
    tokio::task::spawn_blocking(move || drop(apache))
        .await
        .expect("Apache stop task");
}
