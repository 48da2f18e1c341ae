//! Fault injection under the storage layer (zk_server::storage::faults):
//! write, fsync and rename errors and a full disk on the txn log, a
//! snapshot and an epoch file. What must hold (DESIGN.md "Fail-stop"): no
//! reply, ACK or ACKEPOCH after a failed write, no acknowledged write
//! lost, and the member stops (the binary then exits non-zero; see
//! server_durability.rs for the process-level run on a full tmpfs).

mod server_common;
mod storage_support;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use server_common::{RawClient, WAIT};
use storage_support::{entry_bytes, wait_durable};
use zk_proto::{Acl, CreateMode, CreateRequest, OpCode, Request};
use zk_server::ensemble::epochs::EpochFiles;
use zk_server::quorum::EpochKind;
use zk_server::storage::faults::{inject, no_space, DiskOp, FaultPlan, FaultPoint, FileKind};
use zk_server::storage::{write_snapshot, LogOptions, TxnLog};
use zk_server::testing::{TestingCluster, TestingServer};
use zk_server::FailStop;

/// Fails every `op` (any op when `None`) on files of kind `file`.
struct Fail {
    file: FileKind,
    op: Option<DiskOp>,
    error: fn() -> io::Error,
    hits: AtomicUsize,
}

impl FaultPlan for Fail {
    fn check(&self, at: FaultPoint<'_>) -> Option<io::Error> {
        if at.file != self.file || self.op.is_some_and(|op| op != at.op) {
            return None;
        }
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some((self.error)())
    }
}

fn fail(file: FileKind, op: Option<DiskOp>, error: fn() -> io::Error) -> Arc<Fail> {
    Arc::new(Fail {
        file,
        op,
        error,
        hits: AtomicUsize::new(0),
    })
}

fn injected() -> io::Error {
    io::Error::other("injected I/O error")
}

fn create(path: &str) -> Request {
    Request::Create(CreateRequest {
        path: path.into(),
        data: Some(bytes::Bytes::from_static(b"v")),
        acl: Acl::open_unsafe(),
        flags: CreateMode::Persistent.code(),
    })
}

/// Sends creates of `/<prefix><i>` one at a time until one is not
/// answered (the server closed the connection); returns the acknowledged
/// paths. At most `max` attempts.
async fn create_until_refused(c: &mut RawClient, prefix: &str, max: usize) -> Vec<String> {
    let mut acked = Vec::new();
    for i in 0..max {
        let path = format!("/{prefix}{i}");
        c.send(i as i32 + 1, create(&path)).await;
        match c.recv(OpCode::Create).await {
            Some(server_common::Incoming::Reply(r)) if r.header.err == 0 => acked.push(path),
            Some(other) => panic!("unexpected answer to {path}: {other:?}"),
            None => return acked,
        }
    }
    acked
}

async fn assert_present(addr: SocketAddr, paths: &[String]) {
    let mut c = RawClient::session(addr, 3000).await;
    for (i, path) in paths.iter().enumerate() {
        let reply = c.get(i as i32 + 1, path, false).await;
        assert_eq!(reply.header.err, 0, "acknowledged {path} lost");
    }
}

/// `ruok`, or `None` when the server no longer accepts connections.
async fn ruok(addr: SocketAddr) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    stream.write_all(b"ruok").await.ok()?;
    let mut out = String::new();
    let read = tokio::time::timeout(WAIT, stream.read_to_string(&mut out)).await;
    read.ok()?.ok()?;
    Some(out)
}

async fn wait_failure(failure: impl Fn() -> Option<FailStop>) -> FailStop {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(f) = failure() {
            return f;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server did not fail-stop"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---- storage level -------------------------------------------------------

fn log_opts() -> LogOptions {
    LogOptions {
        prealloc_size: 4096,
        force_sync: true,
    }
}

#[tokio::test]
async fn a_failed_log_fsync_never_announces_its_batch_durable() {
    let dir = tempfile::tempdir().unwrap();
    let log = TxnLog::open(dir.path(), log_opts()).unwrap();
    let mut durable = log.durable();
    log.append(1, entry_bytes(1));
    wait_durable(&mut durable, 1).await;

    let plan = fail(FileKind::TxnLog, Some(DiskOp::Sync), injected);
    let _faults = inject(dir.path(), plan.clone());
    log.append(2, entry_bytes(2));
    let mut failure = log.failure();
    let failed = tokio::time::timeout(WAIT, failure.wait_for(Option::is_some))
        .await
        .expect("the log did not report the failure")
        .unwrap()
        .clone()
        .unwrap();
    assert!(
        failed.to_string().contains("injected I/O error"),
        "{failed}"
    );
    assert_eq!(*durable.borrow(), 1, "txn 2 was announced durable");
    log.append(3, entry_bytes(3));
    assert!(
        durable.changed().await.is_err(),
        "the writer stopped for good"
    );
    assert_eq!(*durable.borrow(), 1);
    assert!(plan.hits.load(Ordering::Relaxed) >= 1);
}

#[tokio::test]
async fn a_full_disk_under_the_log_never_announces_the_write_durable() {
    let dir = tempfile::tempdir().unwrap();
    let log = TxnLog::open(dir.path(), log_opts()).unwrap();
    let mut durable = log.durable();
    log.append(1, entry_bytes(1));
    wait_durable(&mut durable, 1).await;
    let _faults = inject(
        dir.path(),
        fail(FileKind::TxnLog, Some(DiskOp::Write), no_space),
    );
    log.append(2, entry_bytes(2));
    assert!(durable.changed().await.is_err());
    assert_eq!(*durable.borrow(), 1);
    let failure = log.failure().borrow().clone().unwrap();
    assert_eq!(failure.source.raw_os_error(), Some(28));
}

#[test]
fn a_snapshot_that_cannot_be_synced_leaves_no_snapshot_file() {
    let dir = tempfile::tempdir().unwrap();
    let _faults = inject(
        dir.path(),
        fail(FileKind::Snapshot, Some(DiskOp::Sync), injected),
    );
    assert!(write_snapshot(dir.path(), 5, b"body").is_err());
    let left: Vec<_> = std::fs::read_dir(dir.path().join("version-2"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_failed_epoch_write_keeps_the_previous_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let epochs = EpochFiles::new(dir.path());
    epochs.write(EpochKind::Accepted, 5).unwrap();
    for op in [DiskOp::Create, DiskOp::Write, DiskOp::Sync, DiskOp::Rename] {
        let _faults = inject(dir.path(), fail(FileKind::Epoch, Some(op), injected));
        assert!(epochs.write(EpochKind::Accepted, 6).is_err(), "{op:?}");
        assert_eq!(epochs.read(EpochKind::Accepted).unwrap(), Some(5), "{op:?}");
    }
}

// ---- a standalone server -------------------------------------------------

#[tokio::test]
async fn a_failed_log_fsync_answers_nothing_and_stops_the_server() {
    let mut server = TestingServer::start().await.unwrap();
    let mut c = RawClient::session(server.addr(), 3000).await;
    let acked = create_until_refused(&mut c, "a", 5).await;
    assert_eq!(acked.len(), 5);

    let faults = inject(
        server.data_dir(),
        fail(FileKind::TxnLog, Some(DiskOp::Sync), injected),
    );
    let refused = create_until_refused(&mut c, "lost", 1).await;
    assert!(
        refused.is_empty(),
        "a write was acknowledged after the fsync failed"
    );
    let failure = wait_failure(|| server.failure()).await;
    assert!(
        matches!(&failure, FailStop::TxnLog(e) if e.contains("injected")),
        "{failure}"
    );
    assert_eq!(failure.exit_code(), 1);
    assert_ne!(ruok(server.addr()).await.as_deref(), Some("imok"));

    drop(faults);
    server.restart().await.unwrap();
    assert_present(server.addr(), &acked).await;
}

#[tokio::test]
async fn a_full_disk_under_the_log_stops_the_server_and_loses_no_acknowledged_write() {
    let mut server = TestingServer::start().await.unwrap();
    let mut c = RawClient::session(server.addr(), 3000).await;
    let acked = create_until_refused(&mut c, "a", 3).await;
    let faults = inject(
        server.data_dir(),
        fail(FileKind::TxnLog, Some(DiskOp::Write), no_space),
    );
    assert!(create_until_refused(&mut c, "lost", 1).await.is_empty());
    let failure = wait_failure(|| server.failure()).await;
    assert!(failure.to_string().contains("No space left"), "{failure}");

    drop(faults); // space is back: a restart serves again
    server.restart().await.unwrap();
    assert_present(server.addr(), &acked).await;
    let mut c = RawClient::session(server.addr(), 3000).await;
    assert_eq!(create_until_refused(&mut c, "b", 2).await.len(), 2);
}

#[tokio::test]
async fn a_failed_snapshot_stops_the_server_with_apaches_exit_code() {
    let mut server = TestingServer::start_with(|c| c.snap_count = 2)
        .await
        .unwrap();
    let faults = inject(
        server.data_dir(),
        fail(FileKind::Snapshot, Some(DiskOp::Create), no_space),
    );
    // snapCount 2 snapshots after every txn: the first one fails.
    let mut c = RawClient::session(server.addr(), 3000).await;
    let acked = create_until_refused(&mut c, "a", 20).await;
    let failure = wait_failure(|| server.failure()).await;
    assert!(matches!(failure, FailStop::Snapshot { .. }), "{failure}");
    assert_eq!(failure.exit_code(), 10);

    drop(faults);
    server.restart().await.unwrap();
    assert_present(server.addr(), &acked).await;
}

// ---- an ensemble member ----------------------------------------------------

#[tokio::test]
async fn a_member_whose_epoch_file_fails_sends_no_ackepoch() {
    let mut cluster = TestingCluster::start(3).await.unwrap();
    cluster.wait_for_leader(WAIT).await.expect("a first leader");
    let mut c = RawClient::session(cluster.addr(0), 3000).await;
    let acked = create_until_refused(&mut c, "a", 3).await;
    drop(c);
    assert_eq!(acked.len(), 3);
    for i in 0..3 {
        cluster.kill(i).await;
    }

    // Two of three come back; member 1 cannot write its epoch files. The
    // new epoch needs both: without member 1's ACKEPOCH member 0 never
    // leads or follows a leader into serving.
    let faults = inject(
        &cluster.config(1).data_dir,
        fail(FileKind::Epoch, None, injected),
    );
    cluster.restart(0).await.unwrap();
    cluster.restart(1).await.unwrap();
    let failure = wait_failure(|| cluster.failure(1)).await;
    assert!(matches!(failure, FailStop::EpochFile { .. }), "{failure}");
    // A negative property needs a window: several initLimits (10 ticks of
    // 100 ms) in which member 0 must not start serving.
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < until {
        let status = cluster.status(0).expect("member 0 runs");
        assert!(
            !status.serving,
            "member 0 serves: an epoch was acknowledged without being written"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    drop(faults);
    cluster.restart(1).await.unwrap();
    cluster
        .wait_for_leader(WAIT)
        .await
        .expect("a leader once the disk works");
    assert_present(cluster.addr(0), &acked).await;
}
