//! The txn log writer: group commit, durability announcements,
//! preallocation, rolling, and failure reporting (ZAB.md §8, §9.2).

mod storage_support;

use std::sync::{Arc, Mutex};

use storage_support::*;
use zk_server::storage::{LogOptions, TxnLog, DEFAULT_PREALLOC_SIZE};

fn small() -> LogOptions {
    LogOptions {
        prealloc_size: 64 * 1024,
        force_sync: true,
    }
}

#[tokio::test]
async fn durable_zxid_is_announced_only_after_the_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let log = TxnLog::open(dir.path(), small()).unwrap();
    let mut durable = log.durable();
    assert_eq!(*durable.borrow(), 0, "nothing is durable before any append");
    for zxid in 1..=20 {
        log.append(zxid, entry_bytes(zxid));
        wait_durable(&mut durable, zxid).await;
        let seen = *durable.borrow();
        let stats = log.stats();
        assert!(stats.fsyncs >= 1, "announced {seen} without any fsync");
        assert!(
            stats.synced_zxid >= seen,
            "announced {seen}, synced only {}",
            stats.synced_zxid
        );
        // What is announced can be read back from the file.
        assert!(logged_zxids(dir.path(), 1).contains(&seen));
    }
    log.close().unwrap();
}

#[tokio::test]
async fn without_force_sync_batches_are_durable_once_written_and_never_fsynced() {
    let dir = tempfile::tempdir().unwrap();
    let opts = LogOptions {
        force_sync: false,
        ..small()
    };
    let log = TxnLog::open(dir.path(), opts).unwrap();
    let mut durable = log.durable();
    for zxid in 1..=5 {
        log.append(zxid, entry_bytes(zxid));
    }
    wait_durable(&mut durable, 5).await;
    assert_eq!(log.stats().fsyncs, 0);
    log.close().unwrap();
    assert_eq!(logged_zxids(dir.path(), 0), (1..=5).collect::<Vec<_>>());
}

#[tokio::test]
async fn appends_from_many_threads_are_batched_one_fsync_per_batch() {
    const THREADS: i64 = 8;
    const EACH: i64 = 200;
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(TxnLog::open(dir.path(), small()).unwrap());
    // Like the pipeline, zxids are assigned and appended in one order.
    let next_zxid = Arc::new(Mutex::new(0i64));
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let log = Arc::clone(&log);
            let next_zxid = Arc::clone(&next_zxid);
            std::thread::spawn(move || {
                for _ in 0..EACH {
                    let mut zxid = next_zxid.lock().unwrap();
                    *zxid += 1;
                    log.append(*zxid, entry_bytes(*zxid));
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let total = THREADS * EACH;
    wait_durable(&mut log.durable(), total).await;
    let stats = log.stats();
    assert_eq!(stats.appends, total as u64);
    assert!(
        stats.batches < total as u64,
        "{} appends took {} batches: nothing was batched",
        total,
        stats.batches
    );
    assert_eq!(stats.fsyncs, stats.batches, "one file, one fsync per batch");
    assert_eq!(logged_zxids(dir.path(), 0), (1..=total).collect::<Vec<_>>());
    Arc::into_inner(log).unwrap().close().unwrap();
}

#[tokio::test]
async fn a_fresh_log_is_preallocated_to_header_plus_64_mib() {
    let dir = tempfile::tempdir().unwrap();
    let log = TxnLog::open(dir.path(), LogOptions::default()).unwrap();
    log.append(1, entry_bytes(1));
    wait_durable(&mut log.durable(), 1).await;
    let len = std::fs::metadata(log_path(dir.path(), 1)).unwrap().len();
    assert_eq!(len, 16 + DEFAULT_PREALLOC_SIZE);
    assert_eq!(len, 67_108_880, "the size ZAB.md §9.2 observed");
    log.close().unwrap();
}

#[tokio::test]
async fn a_log_nearing_its_end_grows_by_one_step() {
    let dir = tempfile::tempdir().unwrap();
    let step = 8 * 1024;
    let opts = LogOptions {
        prealloc_size: step,
        force_sync: false,
    };
    let log = TxnLog::open(dir.path(), opts).unwrap();
    let mut durable = log.durable();
    let mut zxid = 0;
    // Each record is ~100 bytes: write well past the first step.
    while zxid < 200 {
        zxid += 1;
        log.append(zxid, entry_bytes(zxid));
        wait_durable(&mut durable, zxid).await;
    }
    let len = std::fs::metadata(log_path(dir.path(), 1)).unwrap().len();
    let written = log.stats().bytes;
    assert!(
        len > written + 4096 - 200,
        "file {len} must stay ahead of data {written}"
    );
    assert_eq!(
        (len - 16) % step,
        0,
        "grown in whole steps from 16 + step: {len}"
    );
    log.close().unwrap();
    assert_eq!(logged_zxids(dir.path(), 0).len(), 200);
}

#[tokio::test]
async fn roll_starts_a_new_file_named_after_its_first_zxid() {
    let dir = tempfile::tempdir().unwrap();
    let log = TxnLog::open(dir.path(), small()).unwrap();
    for zxid in 1..=3 {
        log.append(zxid, entry_bytes(zxid));
    }
    log.roll();
    for zxid in 0x1_0000_0001..=0x1_0000_0002 {
        log.append(zxid, entry_bytes(zxid));
    }
    wait_durable(&mut log.durable(), 0x1_0000_0002).await;
    assert!(log_path(dir.path(), 1).exists());
    assert!(v2(dir.path()).join("log.100000001").exists());
    assert_eq!(log.stats().files, 2);
    log.close().unwrap();
    assert_eq!(
        logged_zxids(dir.path(), 0),
        vec![1, 2, 3, 0x1_0000_0001, 0x1_0000_0002]
    );
}

#[tokio::test]
async fn close_writes_everything_queued() {
    let dir = tempfile::tempdir().unwrap();
    let log = TxnLog::open(dir.path(), small()).unwrap();
    for zxid in 1..=100 {
        log.append(zxid, entry_bytes(zxid));
    }
    log.close().unwrap();
    assert_eq!(logged_zxids(dir.path(), 0), (1..=100).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_write_failure_stops_the_log_and_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    // Growing the file to this size is beyond any file system: the write
    // that preallocates fails.
    let opts = LogOptions {
        prealloc_size: i64::MAX as u64,
        force_sync: true,
    };
    let log = TxnLog::open(dir.path(), opts).unwrap();
    let failure = log.failure();
    log.append(1, entry_bytes(1));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while failure.borrow().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the failure was not reported"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        *log.durable().borrow(),
        0,
        "nothing may be announced durable"
    );
    log.append(2, entry_bytes(2));
    assert!(log.close().is_err());
}
