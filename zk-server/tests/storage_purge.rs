//! Autopurge: keep the newest N snapshots and the logs replay from the
//! oldest of them needs (ZAB.md §9.7).

mod storage_support;

use storage_support::*;
use zk_server::storage::{purge, write_snapshot};

fn names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(v2(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn populate(dir: &std::path::Path) {
    for zxid in [0x10, 0x20, 0x30, 0x40, 0x50] {
        write_snapshot(dir, zxid, &snapshot_body("s")).unwrap();
    }
    write_raw_log(dir, 0x1..=0x2, 0);
    write_raw_log(dir, 0x15..=0x16, 0);
    write_raw_log(dir, 0x25..=0x26, 0);
    write_raw_log(dir, 0x35..=0x36, 0);
    write_raw_log(dir, 0x45..=0x46, 0);
}

#[test]
fn older_snapshots_and_logs_go_but_the_log_holding_the_oldest_kept_snapshot_stays() {
    let dir = tempfile::tempdir().unwrap();
    populate(dir.path());
    let report = purge(dir.path(), dir.path(), 3).unwrap();
    assert_eq!(
        names(dir.path()),
        vec![
            "log.25",
            "log.35",
            "log.45",
            "snapshot.30",
            "snapshot.40",
            "snapshot.50"
        ]
    );
    assert_eq!(report.retained_snapshots.len(), 3);
    assert_eq!(report.deleted_snapshots.len(), 2);
    assert_eq!(report.deleted_logs.len(), 2);
}

#[test]
fn fewer_than_three_is_raised_to_three() {
    let dir = tempfile::tempdir().unwrap();
    populate(dir.path());
    purge(dir.path(), dir.path(), 1).unwrap();
    assert!(snapshot_path(dir.path(), 0x30).exists());
    assert!(!snapshot_path(dir.path(), 0x20).exists());
}

#[test]
fn a_log_starting_exactly_at_the_oldest_kept_snapshot_is_kept_and_older_ones_go() {
    let dir = tempfile::tempdir().unwrap();
    for zxid in [0x10, 0x20, 0x30, 0x40] {
        write_snapshot(dir.path(), zxid, &snapshot_body("s")).unwrap();
    }
    write_raw_log(dir.path(), 0x11..=0x12, 0);
    write_raw_log(dir.path(), 0x20..=0x21, 0);
    purge(dir.path(), dir.path(), 3).unwrap();
    assert_eq!(
        names(dir.path()),
        vec!["log.20", "snapshot.20", "snapshot.30", "snapshot.40"]
    );
}

#[test]
fn with_no_more_snapshots_than_retained_nothing_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    write_snapshot(dir.path(), 0x10, &snapshot_body("s")).unwrap();
    write_snapshot(dir.path(), 0x20, &snapshot_body("s")).unwrap();
    write_raw_log(dir.path(), 0x1..=0x2, 0);
    let before = names(dir.path());
    let report = purge(dir.path(), dir.path(), 3).unwrap();
    assert_eq!(names(dir.path()), before);
    assert!(report.deleted_logs.is_empty() && report.deleted_snapshots.is_empty());
}

#[test]
fn invalid_snapshots_do_not_count_toward_those_kept() {
    let dir = tempfile::tempdir().unwrap();
    populate(dir.path());
    // The newest is torn: the three kept are 0x20, 0x30, 0x40.
    std::fs::write(snapshot_path(dir.path(), 0x50), b"torn").unwrap();
    let report = purge(dir.path(), dir.path(), 3).unwrap();
    assert_eq!(report.retained_snapshots.len(), 3);
    assert!(snapshot_path(dir.path(), 0x20).exists());
    assert!(!snapshot_path(dir.path(), 0x10).exists());
    assert!(
        log_path(dir.path(), 0x15).exists(),
        "holds snapshot 0x20's start"
    );
    assert!(!log_path(dir.path(), 0x1).exists());
}

#[test]
fn an_empty_directory_purges_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let report = purge(dir.path(), dir.path(), 3).unwrap();
    assert!(report.retained_snapshots.is_empty());
}
