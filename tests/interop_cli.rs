//! The same scripted session of Apache's own command-line clients — the
//! Java `zkCli.sh` and the C `cli_mt` — against Apache ZooKeeper 3.8 and
//! against our server: the normalised outputs must be identical.
//!
//! Skipped (with a notice) when the Debian packages `zookeeper` /
//! `zookeeper-bin` are not installed.

mod interop;

use std::sync::OnceLock;
use std::time::Duration;

use interop::normalize::{self, Session};
use interop::{run_interactive, Feed};
use zk_server::testing::TestingServer;
use zk_testkit::apache::ApacheZk;
use zk_testkit::oracle::{self, Oracle, CLI_MT, ZKCLI};

/// The longest one CLI session may take.
const SESSION_LIMIT: Duration = Duration::from_secs(90);

static APACHE: OnceLock<ApacheZk> = OnceLock::new();

async fn apache_connect_string() -> String {
    tokio::task::spawn_blocking(|| {
        APACHE
            .get_or_init(|| ApacheZk::start("").expect("start Apache ZooKeeper"))
            .connect_string()
    })
    .await
    .expect("Apache start task")
}

async fn ours() -> TestingServer {
    TestingServer::start_with(|cfg| {
        cfg.tick_time_ms = 2000;
        cfg.extended_types_enabled = true;
    })
    .await
    .expect("start our server")
}

/// zkCli answers each command before reading the next, so the whole
/// script can go in at once.
const ZKCLI_SESSION: &[&str] = &[
    "create /zc \"hello\"",
    "create -e /zc/eph",
    "create -s /zc/seq- data",
    "create -c /zc/cont",
    "create -t 3600000 /zc/ttl x",
    "create noslash",
    "create /zc",
    "create /zc/missing/child",
    "ls /zc",
    "ls -s /zc",
    "ls -R /zc",
    "get /zc",
    "get -s /zc",
    "stat /zc/eph",
    "get -w /zc",
    "set /zc world",
    "set -v 7 /zc x",
    "ls -w /zc",
    "create /zc/k",
    "addWatch -m PERSISTENT_RECURSIVE /zc/k",
    "set /zc/k 1",
    "create /zc/k/deep",
    "stat /nope",
    "get /nope",
    "whoami",
    "addauth digest alice:secret",
    "whoami",
    "setAcl /zc/k auth::cdrwa",
    "getAcl /zc/k",
    "getAcl /zc",
    "getEphemerals /zc",
    "getAllChildrenNumber /zc",
    "sync /zc",
    "delete /zc",
    "delete -v 5 /zc/eph",
    "delete /zookeeper",
    "set /zookeeper x",
    "deleteall /zc",
    "stat /zc",
    "quit",
];

async fn zkcli_session(connect: &str) -> Session {
    let log_dir = std::env::temp_dir();
    let flags = format!("-Dzookeeper.log.dir={}", log_dir.display());
    let feed = Feed {
        first_wait: Duration::ZERO,
        gap: Duration::ZERO,
    };
    let out = run_interactive(
        ZKCLI,
        &["-server", connect],
        &[("CLIENT_JVMFLAGS", flags.as_str())],
        ZKCLI_SESSION,
        &feed,
        SESSION_LIMIT,
    )
    .await
    .expect("run zkCli.sh");
    normalize::zkcli(&out.text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zkcli_session_reads_the_same_against_ours_and_apache() {
    if !oracle::require(Oracle::ZkCli) {
        return;
    }
    let apache = apache_connect_string().await;
    let server = ours().await;
    let ours = server.connect_string();
    let (theirs, mine) = tokio::join!(zkcli_session(&apache), zkcli_session(&ours));
    // The session must really have run, not just failed the same way.
    assert!(
        theirs
            .lines
            .iter()
            .any(|l| l == "Created /zc/seq-0000000001"),
        "zkCli did not run its session against Apache:\n{}",
        theirs.lines.join("\n")
    );
    if std::env::var_os("ZK_INTEROP_DUMP").is_some() {
        eprintln!("{}\n{:?}", mine.lines.join("\n"), mine.events);
    }
    if let Some(report) = normalize::first_difference(&theirs, &mine) {
        panic!(
            "zkCli.sh sees a difference between Apache and ours\n{report}\n\
             --- apache ---\n{}\n--- ours ---\n{}",
            theirs.lines.join("\n"),
            mine.lines.join("\n")
        );
    }
}

/// cli_mt answers asynchronously, so lines go in with gaps; `get` in
/// cli_mt leaves a watch, so the `set` after it shows where the event
/// lands relative to the reply.
const CLI_MT_SESSION: &[&str] = &[
    "create /cm",
    "create +e /cm/e",
    "create +s /cm/s",
    "create /cm",
    "ls /cm",
    "get /cm",
    "set /cm hello",
    "exists /cm",
    "exists /cm/none",
    "ls2 /cm",
    "delete /cm",
    "get /missing",
    "sync /cm",
    "delete /cm/s0000000001",
    "delete /cm/e",
    "delete /cm",
    "quit",
];

async fn cli_mt_session(connect: &str) -> Session {
    let feed = Feed {
        first_wait: Duration::from_millis(1000),
        gap: Duration::from_millis(300),
    };
    let out = run_interactive(
        CLI_MT,
        &[connect],
        &[],
        CLI_MT_SESSION,
        &feed,
        SESSION_LIMIT,
    )
    .await
    .expect("run cli_mt");
    normalize::cli_mt(&out.text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_mt_session_reads_the_same_against_ours_and_apache() {
    if !oracle::require_all(&[Oracle::CliMt, Oracle::ApacheZooKeeper]) {
        return;
    }
    let apache = apache_connect_string().await;
    let server = ours().await;
    let ours = server.connect_string();
    let (theirs, mine) = tokio::join!(cli_mt_session(&apache), cli_mt_session(&ours));
    assert!(
        theirs
            .lines
            .iter()
            .any(|l| l.contains("name = /cm/s0000000001")),
        "cli_mt did not run its session against Apache:\n{}",
        theirs.lines.join("\n")
    );
    if std::env::var_os("ZK_INTEROP_DUMP").is_some() {
        eprintln!("{}", mine.lines.join("\n"));
    }
    if let Some(report) = normalize::first_difference(&theirs, &mine) {
        panic!(
            "cli_mt sees a difference between Apache and ours\n{report}\n\
             --- apache ---\n{}\n--- ours ---\n{}",
            theirs.lines.join("\n"),
            mine.lines.join("\n")
        );
    }
}

// The normaliser, specified on small inputs.

#[test]
fn zxids_become_ranks_and_times_and_sessions_placeholders() {
    let s = normalize::zkcli(
        "cZxid = 0x1f\nctime = Sun Nov 22 06:03:01 UTC 2026\nmZxid = 0x2a\n\
         ephemeralOwner = 0x100003826b1002c\nephemeralOwner = 0x0\n",
    );
    assert_eq!(
        s.lines,
        [
            "cZxid = z1",
            "ctime = TIME",
            "mZxid = z2",
            "ephemeralOwner = session#0",
            "ephemeralOwner = 0"
        ]
    );
}

#[test]
fn zkcli_log_lines_and_watcher_banners_are_dropped_and_events_set_aside() {
    let s = normalize::zkcli(
        "SLF4J: Failed to load class\n2026-11-22 06:03:01,123 [myid:] - INFO  [main:x] - hi\n\
         WATCHER::\n\nWatchedEvent state:SyncConnected type:None path:null\nCreated /a\n",
    );
    assert_eq!(s.lines, ["Created /a"]);
    assert_eq!(
        s.events,
        ["WatchedEvent state:SyncConnected type:None path:null"]
    );
}

#[test]
fn children_lists_are_sorted() {
    assert_eq!(normalize::zkcli("[b, a, c]\n").lines, ["[a, b, c]"]);
    let mt = normalize::cli_mt("/cm: rc = 0\n\ts0000000001\n\te\ntime = 1 msec\n\tczxid=121\n");
    assert_eq!(
        mt.lines,
        ["/cm: rc = 0", "\te", "\ts0000000001", "\tczxid=z1"]
    );
}

#[test]
fn cli_mt_session_ids_and_owners_share_one_numbering() {
    let mt = normalize::cli_mt("Got a new session id: 0x10000abc\n\tephemeralOwner = 10000abc\n");
    assert_eq!(
        mt.lines,
        [
            "Got a new session id: session#0",
            "\tephemeralOwner = session#0"
        ]
    );
}
