//! Reading txn logs back: zxid order across files, the end of data, torn
//! tails, corruption, torn-tail repair and TRUNC (ZAB.md §9.2, §9.7).

mod storage_support;

use storage_support::*;
use zk_server::storage::{
    repair_torn_tails, truncate_to, OnCorrupt, StorageError, TailCause, TxnLogReader,
};

#[test]
fn entries_come_back_whole_and_in_zxid_order_across_files() {
    let dir = tempfile::tempdir().unwrap();
    write_raw_log(dir.path(), 1..=4, 4096);
    write_raw_log(dir.path(), 5..=9, 0);
    let entries: Vec<_> = TxnLogReader::open(dir.path(), 0)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(entries, (1..=9).map(entry).collect::<Vec<_>>());
}

#[test]
fn files_sort_by_zxid_numerically_not_by_name() {
    let dir = tempfile::tempdir().unwrap();
    write_raw_log(dir.path(), 0xa..=0xa, 0);
    write_raw_log(dir.path(), 0x9..=0x9, 0);
    write_raw_log(dir.path(), 0x10..=0x10, 0);
    assert_eq!(logged_zxids(dir.path(), 0), vec![0x9, 0xa, 0x10]);
}

#[test]
fn reading_from_a_zxid_starts_in_the_file_holding_it() {
    let dir = tempfile::tempdir().unwrap();
    write_raw_log(dir.path(), 1..=4, 0);
    write_raw_log(dir.path(), 5..=9, 0);
    assert_eq!(logged_zxids(dir.path(), 7), vec![7, 8, 9]);
    assert_eq!(logged_zxids(dir.path(), 5), vec![5, 6, 7, 8, 9]);
    assert_eq!(logged_zxids(dir.path(), 10), Vec::<i64>::new());
}

#[test]
fn an_empty_or_missing_directory_has_no_entries() {
    let dir = tempfile::tempdir().unwrap();
    assert!(logged_zxids(dir.path(), 0).is_empty());
}

#[test]
fn a_record_cut_short_is_a_torn_tail_and_repair_cuts_it_off() {
    let dir = tempfile::tempdir().unwrap();
    let (path, raw) = write_raw_log(dir.path(), 1..=3, 0);
    let third = raw.record_offsets[2];
    std::fs::write(&path, &raw.bytes[..third + 20]).unwrap();

    let mut reader = TxnLogReader::open(dir.path(), 0).unwrap();
    let zxids: Vec<i64> = reader.by_ref().map(|e| e.unwrap().header.zxid).collect();
    assert_eq!(zxids, vec![1, 2]);
    assert_eq!(reader.torn_tails().len(), 1);
    assert_eq!(reader.torn_tails()[0].offset, third as u64);

    let cut = repair_torn_tails(dir.path()).unwrap();
    assert_eq!(cut.len(), 1);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), third as u64);
    assert!(
        repair_torn_tails(dir.path()).unwrap().is_empty(),
        "nothing left to repair"
    );
}

#[test]
fn garbage_after_the_last_record_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut raw) = write_raw_log(dir.path(), 1..=3, 0);
    let end = raw.bytes.len();
    raw.bytes.extend_from_slice(&[0xab; 40]);
    std::fs::write(&path, &raw.bytes).unwrap();

    let cut = repair_torn_tails(dir.path()).unwrap();
    assert_eq!(cut[0].offset, end as u64);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), end as u64);
    assert_eq!(logged_zxids(dir.path(), 0), vec![1, 2, 3]);
}

#[test]
fn a_missing_end_marker_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut raw) = write_raw_log(dir.path(), 1..=2, 100);
    let last_byte_of_second = raw.bytes.len() - 100 - 1;
    raw.bytes[last_byte_of_second] = b'X';
    std::fs::write(&path, &raw.bytes).unwrap();
    let mut reader = TxnLogReader::open(dir.path(), 0).unwrap();
    assert_eq!(reader.by_ref().count(), 1);
    assert_eq!(reader.torn_tails()[0].offset, raw.record_offsets[1] as u64);
}

#[test]
fn a_bad_checksum_on_the_last_whole_record_is_corruption_not_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut raw) = write_raw_log(dir.path(), 1..=3, 512);
    // A byte inside the third record's txn bytes (after checksum + length);
    // its length and end marker are intact, so the record is whole.
    raw.bytes[raw.record_offsets[2] + 20] ^= 0x5a;
    std::fs::write(&path, &raw.bytes).unwrap();
    let results: Vec<_> = TxnLogReader::open(dir.path(), 0).unwrap().collect();
    assert_eq!(results.len(), 3, "two entries, then the error");
    match &results[2] {
        Err(StorageError::Corrupt {
            path: p, offset, ..
        }) => {
            assert_eq!(p, &path);
            assert_eq!(*offset, raw.record_offsets[2] as u64);
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    assert!(matches!(
        repair_torn_tails(dir.path()),
        Err(StorageError::Corrupt { .. })
    ));
    assert_eq!(std::fs::read(&path).unwrap(), raw.bytes, "nothing was cut");
}

#[test]
fn truncating_on_purpose_cuts_the_corrupt_record_and_every_later_file() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut raw) = write_raw_log(dir.path(), 1..=3, 512);
    let (later, _) = write_raw_log(dir.path(), 4..=5, 0);
    raw.bytes[raw.record_offsets[1] + 20] ^= 0x5a;
    std::fs::write(&path, &raw.bytes).unwrap();
    let mut reader = TxnLogReader::open_with(dir.path(), 0, OnCorrupt::Truncate).unwrap();
    let zxids: Vec<i64> = reader.by_ref().map(|e| e.unwrap().header.zxid).collect();
    assert_eq!(zxids, vec![1]);
    let tails = reader.torn_tails();
    assert_eq!(tails.len(), 2);
    assert_eq!(tails[0].cause, TailCause::Corrupt);
    assert_eq!(tails[0].offset, raw.record_offsets[1] as u64);
    assert_eq!(
        (tails[1].cause, &tails[1].path),
        (TailCause::AfterCorrupt, &later)
    );
}

#[test]
fn a_bad_checksum_followed_by_good_records_is_corruption_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut raw) = write_raw_log(dir.path(), 1..=4, 512);
    raw.bytes[raw.record_offsets[1] + 20] ^= 0x5a;
    std::fs::write(&path, &raw.bytes).unwrap();
    let results: Vec<_> = TxnLogReader::open(dir.path(), 0).unwrap().collect();
    assert_eq!(results.len(), 2, "one entry, then the error, then nothing");
    assert_eq!(results[0].as_ref().unwrap().header.zxid, 1);
    match &results[1] {
        Err(StorageError::Corrupt {
            path: p, offset, ..
        }) => {
            assert_eq!(p, &path);
            assert_eq!(*offset, raw.record_offsets[1] as u64);
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    assert!(matches!(
        repair_torn_tails(dir.path()),
        Err(StorageError::Corrupt { .. })
    ));
}

#[test]
fn a_file_without_a_log_header_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(v2(dir.path())).unwrap();
    std::fs::write(log_path(dir.path(), 1), b"ZKSN\0\0\0\x02 not a log at all").unwrap();
    let first = TxnLogReader::open(dir.path(), 0).unwrap().next();
    assert!(matches!(
        first,
        Some(Err(StorageError::BadLogHeader { .. }))
    ));
}

#[test]
fn a_log_torn_inside_its_header_is_deleted_by_repair() {
    let dir = tempfile::tempdir().unwrap();
    write_raw_log(dir.path(), 1..=2, 0);
    std::fs::write(log_path(dir.path(), 3), b"ZKL").unwrap();
    assert_eq!(logged_zxids(dir.path(), 0), vec![1, 2]);
    repair_torn_tails(dir.path()).unwrap();
    assert!(!log_path(dir.path(), 3).exists());
    assert!(log_path(dir.path(), 1).exists());
}

#[test]
fn truncate_keeps_entries_up_to_the_zxid_and_deletes_later_files() {
    let dir = tempfile::tempdir().unwrap();
    let (first, raw) = write_raw_log(dir.path(), 1..=5, 4096);
    let (second, _) = write_raw_log(dir.path(), 6..=9, 4096);
    let report = truncate_to(dir.path(), 3).unwrap();
    assert_eq!(report.cut_file, first);
    assert_eq!(report.cut_at, raw.record_offsets[3] as u64);
    assert_eq!(report.deleted_files, vec![second.clone()]);
    assert!(!second.exists());
    assert_eq!(std::fs::metadata(&first).unwrap().len(), report.cut_at);
    assert_eq!(logged_zxids(dir.path(), 0), vec![1, 2, 3]);
}

#[test]
fn truncate_to_the_last_entry_of_a_file_keeps_that_file_whole() {
    let dir = tempfile::tempdir().unwrap();
    write_raw_log(dir.path(), 1..=5, 0);
    write_raw_log(dir.path(), 6..=9, 0);
    truncate_to(dir.path(), 5).unwrap();
    assert_eq!(logged_zxids(dir.path(), 0), vec![1, 2, 3, 4, 5]);
}

#[test]
fn truncate_below_every_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_raw_log(dir.path(), 5..=9, 0);
    assert!(matches!(
        truncate_to(dir.path(), 4),
        Err(StorageError::NothingToTruncate { zxid: 4, .. })
    ));
    assert_eq!(logged_zxids(dir.path(), 0), vec![5, 6, 7, 8, 9]);
}
