//! Snapshot files: Apache's layout and seal, atomic writes, and choosing
//! the newest valid one (ZAB.md §9.4).

mod storage_support;

use storage_support::*;
use zk_proto::disk::Adler32;
use zk_server::storage::{read_newest_snapshot, write_snapshot};

#[test]
fn a_snapshot_is_header_body_and_seal_named_after_its_zxid() {
    let dir = tempfile::tempdir().unwrap();
    let body = snapshot_body("a");
    let path = write_snapshot(dir.path(), 0x1a, &body).unwrap();
    assert_eq!(path, snapshot_path(dir.path(), 0x1a));
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(
        &bytes[..16],
        b"ZKSN\0\0\0\x02\xff\xff\xff\xff\xff\xff\xff\xff"
    );
    assert_eq!(&bytes[16..16 + body.len()], &body[..]);
    let seal = &bytes[16 + body.len()..];
    let expected = i64::from(Adler32::checksum(&bytes[..16 + body.len()]));
    assert_eq!(seal[..8], expected.to_be_bytes());
    assert_eq!(
        &seal[8..],
        &[0, 0, 0, 1, b'/'],
        "seal ends with ustring \"/\""
    );
}

#[test]
fn a_written_snapshot_reads_back_through_the_body_closure() {
    let dir = tempfile::tempdir().unwrap();
    write_snapshot(dir.path(), 0x1a, &snapshot_body("a")).unwrap();
    let loaded = read_newest_snapshot(dir.path(), load_body)
        .unwrap()
        .unwrap();
    assert_eq!(loaded.zxid, 0x1a);
    assert_eq!(loaded.value.zxid, 0x1a, "the closure is told the zxid");
    assert_eq!(loaded.value.paths, vec!["".to_string(), "/a".to_string()]);
    assert_eq!(loaded.value.sessions[0].session_id, 7);
}

#[test]
fn no_temporary_file_is_left_behind() {
    let dir = tempfile::tempdir().unwrap();
    write_snapshot(dir.path(), 3, &snapshot_body("a")).unwrap();
    let names: Vec<_> = std::fs::read_dir(v2(dir.path()))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec!["snapshot.3".to_string()]);
}

#[test]
fn the_newest_snapshot_by_zxid_value_wins() {
    let dir = tempfile::tempdir().unwrap();
    write_snapshot(dir.path(), 0x9, &snapshot_body("nine")).unwrap();
    write_snapshot(dir.path(), 0x10, &snapshot_body("sixteen")).unwrap();
    let loaded = read_newest_snapshot(dir.path(), load_body)
        .unwrap()
        .unwrap();
    assert_eq!(loaded.zxid, 0x10);
    assert_eq!(loaded.value.paths[1], "/sixteen");
}

#[test]
fn a_corrupted_newest_snapshot_falls_back_to_the_older_one() {
    let dir = tempfile::tempdir().unwrap();
    write_snapshot(dir.path(), 5, &snapshot_body("old")).unwrap();
    let newest = write_snapshot(dir.path(), 9, &snapshot_body("new")).unwrap();
    // Damage a byte of node data the body closure does not look at, so
    // only the seal can tell.
    let mut bytes = std::fs::read(&newest).unwrap();
    let session_timeout_byte = 16 + 4 + 8 + 3;
    bytes[session_timeout_byte] ^= 0x01;
    std::fs::write(&newest, &bytes).unwrap();
    let loaded = read_newest_snapshot(dir.path(), load_body)
        .unwrap()
        .unwrap();
    assert_eq!(loaded.zxid, 5);
    assert_eq!(loaded.value.paths[1], "/old");
}

#[test]
fn a_snapshot_cut_short_falls_back_to_the_older_one() {
    let dir = tempfile::tempdir().unwrap();
    write_snapshot(dir.path(), 5, &snapshot_body("old")).unwrap();
    let newest = write_snapshot(dir.path(), 9, &snapshot_body("new")).unwrap();
    let bytes = std::fs::read(&newest).unwrap();
    std::fs::write(&newest, &bytes[..bytes.len() - 3]).unwrap();
    assert_eq!(
        read_newest_snapshot(dir.path(), load_body)
            .unwrap()
            .unwrap()
            .zxid,
        5
    );
}

#[test]
fn a_body_the_closure_rejects_falls_back_to_the_older_one() {
    let dir = tempfile::tempdir().unwrap();
    write_snapshot(dir.path(), 5, &snapshot_body("old")).unwrap();
    write_snapshot(dir.path(), 9, b"\0\0\0\x01\x2f").unwrap();
    assert_eq!(
        read_newest_snapshot(dir.path(), load_body)
            .unwrap()
            .unwrap()
            .zxid,
        5
    );
}

#[test]
fn without_any_valid_snapshot_there_is_none() {
    let dir = tempfile::tempdir().unwrap();
    assert!(read_newest_snapshot(dir.path(), load_body)
        .unwrap()
        .is_none());
    std::fs::create_dir_all(v2(dir.path())).unwrap();
    std::fs::write(snapshot_path(dir.path(), 4), b"junk").unwrap();
    assert!(read_newest_snapshot(dir.path(), load_body)
        .unwrap()
        .is_none());
}
