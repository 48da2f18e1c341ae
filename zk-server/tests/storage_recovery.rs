//! Recovery: newest valid snapshot plus the later txns of the logs, torn
//! tails cut on the way (ZAB.md §9.6).

mod storage_support;

use storage_support::*;
use zk_proto::TxnEntry;
use zk_server::storage::{recover_with, write_snapshot, OnCorrupt, StorageError};

/// The state the tests rebuild: the snapshot's zxid (0 when started
/// empty) and the zxids replayed on top of it.
#[derive(Debug, Default, PartialEq, Eq)]
struct State {
    snapshot: Option<i64>,
    replayed: Vec<i64>,
}

fn run(dir: &std::path::Path) -> Result<(State, zk_server::storage::RecoveryReport), StorageError> {
    run_with(dir, OnCorrupt::Refuse)
}

fn run_with(
    dir: &std::path::Path,
    on_corrupt: OnCorrupt,
) -> Result<(State, zk_server::storage::RecoveryReport), StorageError> {
    recover_with(
        dir,
        dir,
        on_corrupt,
        |r, zxid| {
            load_body(r, zxid).map(|b| State {
                snapshot: Some(b.zxid),
                replayed: Vec::new(),
            })
        },
        State::default,
        |state: &mut State, entry: &TxnEntry| state.replayed.push(entry.header.zxid),
    )
}

#[test]
fn nothing_on_disk_recovers_the_empty_state() {
    let dir = tempfile::tempdir().unwrap();
    let (state, report) = run(dir.path()).unwrap();
    assert_eq!(state, State::default());
    assert_eq!(report.snapshot_zxid, None);
    assert_eq!(report.txns_replayed, 0);
    assert_eq!(report.last_zxid, 0);
}

#[test]
fn txns_after_the_snapshot_are_replayed_in_order() {
    let dir = tempfile::tempdir().unwrap();
    write_raw_log(dir.path(), 1..=6, 1024);
    write_snapshot(dir.path(), 3, &snapshot_body("s")).unwrap();
    let (state, report) = run(dir.path()).unwrap();
    assert_eq!(state.snapshot, Some(3));
    assert_eq!(state.replayed, vec![4, 5, 6]);
    assert_eq!(report.snapshot_zxid, Some(3));
    assert_eq!(report.txns_replayed, 3);
    assert_eq!(report.last_zxid, 6);
    assert_eq!(report.truncated_files(), 0);
}

#[test]
fn replay_starts_in_the_log_file_holding_the_snapshot_zxid() {
    let dir = tempfile::tempdir().unwrap();
    write_raw_log(dir.path(), 1..=4, 0);
    write_raw_log(dir.path(), 5..=8, 0);
    write_raw_log(dir.path(), 9..=10, 0);
    write_snapshot(dir.path(), 6, &snapshot_body("s")).unwrap();
    let (state, report) = run(dir.path()).unwrap();
    assert_eq!(state.replayed, vec![7, 8, 9, 10]);
    assert_eq!(report.last_zxid, 10);
}

#[test]
fn a_snapshot_newer_than_every_txn_replays_nothing() {
    let dir = tempfile::tempdir().unwrap();
    write_raw_log(dir.path(), 1..=4, 0);
    write_snapshot(dir.path(), 4, &snapshot_body("s")).unwrap();
    let (state, report) = run(dir.path()).unwrap();
    assert!(state.replayed.is_empty());
    assert_eq!(report.last_zxid, 4);
}

#[test]
fn a_torn_tail_is_cut_and_every_whole_record_is_replayed() {
    let dir = tempfile::tempdir().unwrap();
    write_snapshot(dir.path(), 0, &snapshot_body("s")).unwrap();
    let (path, raw) = write_raw_log(dir.path(), 1..=5, 0);
    let fifth = raw.record_offsets[4];
    std::fs::write(&path, &raw.bytes[..fifth + 7]).unwrap();
    let (state, report) = run(dir.path()).unwrap();
    assert_eq!(state.replayed, vec![1, 2, 3, 4]);
    assert_eq!(report.last_zxid, 4);
    assert_eq!(report.truncated_files(), 1);
    assert_eq!(report.truncated_bytes, 7);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), fifth as u64);
    // A second recovery finds nothing left to cut.
    let (again, report) = run(dir.path()).unwrap();
    assert_eq!(again.replayed, vec![1, 2, 3, 4]);
    assert_eq!(report.truncated_files(), 0);
}

#[test]
fn corruption_in_the_middle_of_the_log_fails_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut raw) = write_raw_log(dir.path(), 1..=5, 0);
    raw.bytes[raw.record_offsets[2] + 30] ^= 0xff;
    std::fs::write(&path, &raw.bytes).unwrap();
    match run(dir.path()) {
        Err(StorageError::Corrupt { offset, .. }) => {
            assert_eq!(offset, raw.record_offsets[2] as u64)
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn a_flipped_byte_in_the_last_whole_record_refuses_recovery_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    write_snapshot(dir.path(), 0, &snapshot_body("s")).unwrap();
    let (path, mut raw) = write_raw_log(dir.path(), 1..=10, 4096);
    raw.bytes[raw.record_offsets[9] + 25] ^= 0x01;
    std::fs::write(&path, &raw.bytes).unwrap();
    let err = run(dir.path()).unwrap_err();
    match &err {
        StorageError::Corrupt {
            path: p, offset, ..
        } => {
            assert_eq!(p, &path);
            assert_eq!(*offset, raw.record_offsets[9] as u64);
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains("CRC check failed"), "{text}");
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        raw.bytes,
        "the log is left as found"
    );
}

#[test]
fn truncating_a_corrupt_record_on_purpose_replays_what_precedes_it() {
    let dir = tempfile::tempdir().unwrap();
    write_snapshot(dir.path(), 0, &snapshot_body("s")).unwrap();
    let (path, mut raw) = write_raw_log(dir.path(), 1..=10, 4096);
    raw.bytes[raw.record_offsets[9] + 25] ^= 0x01;
    std::fs::write(&path, &raw.bytes).unwrap();
    let (state, report) = run_with(dir.path(), OnCorrupt::Truncate).unwrap();
    assert_eq!(state.replayed, (1..=9).collect::<Vec<_>>());
    assert_eq!(report.truncated_files(), 1);
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        raw.record_offsets[9] as u64
    );
    // Cut once: the next start needs no flag.
    let (again, _) = run(dir.path()).unwrap();
    assert_eq!(again.replayed, (1..=9).collect::<Vec<_>>());
}

#[test]
fn logs_without_any_snapshot_are_replayed_from_empty() {
    let dir = tempfile::tempdir().unwrap();
    write_raw_log(dir.path(), 1..=3, 0);
    let (state, report) = run(dir.path()).unwrap();
    assert_eq!(state.snapshot, None);
    assert_eq!(state.replayed, vec![1, 2, 3]);
    assert_eq!(report.last_zxid, 3);
}

#[test]
fn logs_with_only_invalid_snapshots_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_raw_log(dir.path(), 1..=3, 0);
    std::fs::write(snapshot_path(dir.path(), 2), b"not a snapshot").unwrap();
    assert!(matches!(
        run(dir.path()),
        Err(StorageError::NoValidSnapshot { count: 1, .. })
    ));
}

#[test]
fn a_log_written_by_the_writer_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let log = zk_server::storage::TxnLog::open(dir.path(), Default::default()).unwrap();
    for zxid in 1..=10 {
        log.append(zxid, entry_bytes(zxid));
    }
    log.close().unwrap();
    let (state, report) = run(dir.path()).unwrap();
    assert_eq!(state.replayed, (1..=10).collect::<Vec<_>>());
    assert_eq!(
        report.truncated_files(),
        0,
        "preallocated zeros are not a torn tail"
    );
}
