//! Real clients against an ensemble: kazoo (Python) on a follower reads its
//! own write after `sync`; Apache's zkCli creates on one member and reads
//! on each other member. A missing client is decided by the workspace test
//! kit's one rule (a counted skip, or a failure under
//! `ZK_REQUIRE_ORACLES=1`); its std-only module is included by path, as
//! zk-server cannot depend on the kit that depends on it.

mod ensemble_support;
#[path = "../../tests/support/oracle.rs"]
#[allow(dead_code)]
mod oracle;
mod server_common;

use std::process::Stdio;
use std::time::Duration;

use ensemble_support::SETTLE;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use zk_server::testing::TestingCluster;

use oracle::{Oracle, ZKCLI};
/// Bound on one client process.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `cmd` (feeding `stdin`), killing it when it outlives the bound;
/// returns (success, stdout + stderr).
async fn run(mut cmd: Command, stdin: &str) -> (bool, String) {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("spawn client");
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes()).await.expect("stdin");
    }
    let out = tokio::time::timeout(CLIENT_TIMEOUT, child.wait_with_output())
        .await
        .expect("client process timed out")
        .expect("client process failed");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Connects to one member only, writes, syncs, reads its own write back.
const KAZOO_SCRIPT: &str = r#"
import sys
from kazoo.client import KazooClient
zk = KazooClient(hosts=sys.argv[1], timeout=10)
zk.start(timeout=15)
zk.create("/kazoo-own-write", b"written through a follower")
zk.sync("/kazoo-own-write")
data, stat = zk.get("/kazoo-own-write")
assert data == b"written through a follower", data
print("OK", stat.czxid)
zk.stop()
zk.close()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kazoo_on_a_follower_reads_its_own_write_after_sync() {
    if !oracle::require(Oracle::Kazoo) {
        return;
    }
    let mut cluster = TestingCluster::start(3).await.unwrap();
    let leader = cluster.wait_for_leader(SETTLE).await.expect("no leader");
    let follower = (leader + 1) % 3;
    let mut cmd = Command::new("python3");
    cmd.args(["-c", KAZOO_SCRIPT, &cluster.addr(follower).to_string()]);
    let (ok, out) = run(cmd, "").await;
    assert!(ok && out.contains("OK"), "kazoo failed:\n{out}");
    cluster.stop_all().await;
}

/// One non-interactive zkCli session on `addr` running `commands`.
async fn zkcli(addr: std::net::SocketAddr, commands: &str) -> String {
    let mut cmd = Command::new(ZKCLI);
    cmd.args(["-server", &addr.to_string()]);
    let (_, out) = run(cmd, &format!("{commands}\nquit\n")).await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zkcli_creates_on_each_member_and_reads_on_the_others_after_sync() {
    if !oracle::require(Oracle::ZkCli) {
        return;
    }
    let mut cluster = TestingCluster::start(3).await.unwrap();
    cluster.wait_for_leader(SETTLE).await.expect("no leader");
    for i in 0..3 {
        let path = format!("/zkcli-{i}");
        let data = format!("made-on-{i}");
        let out = zkcli(cluster.addr(i), &format!("create {path} {data}")).await;
        assert!(out.contains(&format!("Created {path}")), "{out}");
        let reader = (i + 1) % 3;
        let out = zkcli(cluster.addr(reader), &format!("sync {path}\nget {path}")).await;
        assert!(
            out.lines().any(|l| l.trim() == data),
            "member {reader} does not show {path}:\n{out}"
        );
    }
    cluster.stop_all().await;
}
