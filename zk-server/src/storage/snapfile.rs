//! Snapshot files (ZAB.md §9.4): `snapshot.<zxid hex>` = the `ZKSN` file
//! header, the body the database serializes (sessions, ACL cache, nodes,
//! `"/"`), then Seal #1: the Adler-32 of every byte before it and the
//! ustring `"/"`.
//!
//! We write no digest trailer; readers (Apache 3.8 included) accept a
//! snapshot that ends after Seal #1. When reading, trailers after Seal #1
//! are ignored.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use zk_proto::disk::{
    decode_seal_marker, encode_seal, zxid_file_name, Adler32, FileHeader, SNAPSHOT_MAGIC,
};
use zk_proto::{DecodeError, Jute, Reader};

use crate::storage::faults::{self, DiskOp, FileKind};
use crate::storage::files::{
    ensure_version_dir, fsync_dir, list, version_dir, Compression, ZxidFile, SNAPSHOT_PREFIX,
};
use crate::storage::StorageError;

/// How many of the newest snapshot files are tried before giving up, as
/// Apache's `findNValidSnapshots(100)`.
pub const MAX_CANDIDATES: usize = 100;

/// The last bytes of every snapshot: the ustring `"/"` after a seal.
const SEAL_MARKER_TAIL: [u8; 5] = [0, 0, 0, 1, b'/'];
/// The shortest file the quick validity test lets through.
const MIN_LEN: usize = 10;

/// A snapshot that loaded and whose seal matched.
#[derive(Debug)]
pub struct LoadedSnapshot<T> {
    /// From the file name: lastProcessedZxid when the snapshot started.
    pub zxid: i64,
    pub path: PathBuf,
    /// What the body closure built.
    pub value: T,
}

/// Why a snapshot file was passed over.
#[derive(Debug, thiserror::Error)]
enum Invalid {
    #[error(
        "fails the quick validity test (shorter than {MIN_LEN} bytes or no seal marker at the end)"
    )]
    QuickTest,
    #[error("compressed snapshots are not supported")]
    Compressed,
    #[error("not a snapshot (bad file header)")]
    Header,
    #[error("cannot parse: {0}")]
    Parse(#[from] DecodeError),
    #[error("seal checksum mismatch: stored {stored:#x}, computed {computed:#x}")]
    Seal { stored: i64, computed: u32 },
}

/// Writes `<snap_dir>/version-2/snapshot.<zxid hex>`: header, `body`,
/// seal. The bytes go to a temporary name first, are fsynced, renamed into
/// place and the directory fsynced, so a crash leaves either no snapshot
/// or a whole one.
pub fn write_snapshot(snap_dir: &Path, zxid: i64, body: &[u8]) -> io::Result<PathBuf> {
    let dir = ensure_version_dir(snap_dir)?;
    let name = zxid_file_name(SNAPSHOT_PREFIX, zxid);
    let target = dir.join(&name);
    // Not named `snapshot.*`, so no reader or purge mistakes it for one.
    let temp = dir.join(format!(".{name}.tmp"));
    let result = write_sealed(&temp, body).and_then(|()| {
        faults::check(FileKind::Snapshot, DiskOp::Rename, &target)?;
        fs::rename(&temp, &target)
    });
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result?;
    fsync_dir(&dir)?;
    Ok(target)
}

fn write_sealed(path: &Path, body: &[u8]) -> io::Result<()> {
    let header = FileHeader::snapshot().to_bytes();
    let mut checksum = Adler32::new();
    checksum.update(&header);
    checksum.update(body);
    let mut seal = BytesMut::new();
    encode_seal(checksum.value(), &mut seal);
    faults::check(FileKind::Snapshot, DiskOp::Create, path)?;
    let mut file = File::create(path)?;
    faults::check(FileKind::Snapshot, DiskOp::Write, path)?;
    file.write_all(&header)?;
    file.write_all(body)?;
    file.write_all(&seal)?;
    faults::check(FileKind::Snapshot, DiskOp::Sync, path)?;
    file.sync_all()
}

/// Loads the newest valid snapshot of `<snap_dir>/version-2`: of the
/// newest [`MAX_CANDIDATES`] files, newest first, the first that passes
/// the quick test, parses with `load_body` (given a reader right after the
/// file header, and the snapshot's zxid) and has a matching seal. Invalid
/// ones are skipped with a warning. `None` when there is none.
pub fn read_newest_snapshot<T>(
    snap_dir: &Path,
    mut load_body: impl FnMut(&mut Reader, i64) -> Result<T, DecodeError>,
) -> Result<Option<LoadedSnapshot<T>>, StorageError> {
    let dir = version_dir(snap_dir);
    let files = list(&dir, SNAPSHOT_PREFIX).map_err(StorageError::io(&dir))?;
    for candidate in files.iter().rev().take(MAX_CANDIDATES) {
        match load_file(candidate, &mut load_body)? {
            Ok(value) => {
                return Ok(Some(LoadedSnapshot {
                    zxid: candidate.zxid,
                    path: candidate.path.clone(),
                    value,
                }))
            }
            Err(why) => tracing::warn!(
                path = %candidate.path.display(),
                reason = %why,
                "skipping invalid snapshot"
            ),
        }
    }
    Ok(None)
}

/// The outer error is an IO failure (fatal); the inner one says why this
/// file is not a usable snapshot (try the next).
fn load_file<T>(
    file: &ZxidFile,
    load_body: &mut impl FnMut(&mut Reader, i64) -> Result<T, DecodeError>,
) -> Result<Result<T, Invalid>, StorageError> {
    if file.compression != Compression::None {
        return Ok(Err(Invalid::Compressed));
    }
    let bytes = fs::read(&file.path).map_err(StorageError::io(&file.path))?;
    Ok(parse_snapshot(Bytes::from(bytes), file.zxid, load_body))
}

/// True when `bytes` could be a whole snapshot: long enough, and ending
/// with a seal's `"/"` (Apache's `SnapStream.isValidSnapshot`).
pub(crate) fn passes_quick_test(bytes: &[u8]) -> bool {
    bytes.len() >= MIN_LEN && bytes.ends_with(&SEAL_MARKER_TAIL)
}

/// Checks the header, runs `load_body` on the body, then checks Seal #1
/// against the Adler-32 of everything the header and body took.
fn parse_snapshot<T>(
    bytes: Bytes,
    zxid: i64,
    load_body: &mut impl FnMut(&mut Reader, i64) -> Result<T, DecodeError>,
) -> Result<T, Invalid> {
    if !passes_quick_test(&bytes) {
        return Err(Invalid::QuickTest);
    }
    let mut r = Reader::new(bytes.clone());
    match FileHeader::decode(&mut r) {
        Ok(h) if h.magic == SNAPSHOT_MAGIC => {}
        _ => return Err(Invalid::Header),
    }
    let value = load_body(&mut r, zxid)?;
    let sealed_len = bytes.len() - r.remaining();
    let computed = Adler32::checksum(&bytes[..sealed_len]);
    let stored = r.read_i64()?;
    decode_seal_marker(&mut r)?;
    if stored != i64::from(computed) {
        return Err(Invalid::Seal { stored, computed });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in body: one ustring, then the `"/"` terminator.
    fn body() -> Bytes {
        let mut b = BytesMut::new();
        "hello".to_string().encode(&mut b);
        "/".to_string().encode(&mut b);
        b.freeze()
    }

    fn load(r: &mut Reader, _zxid: i64) -> Result<String, DecodeError> {
        let s = String::decode(r)?;
        match String::decode(r)?.as_str() {
            "/" => Ok(s),
            _ => Err(DecodeError::Invalid("no terminator")),
        }
    }

    fn sealed(body: &[u8]) -> Bytes {
        let mut b = BytesMut::new();
        FileHeader::snapshot().encode(&mut b);
        b.extend_from_slice(body);
        encode_seal(Adler32::checksum(&b), &mut b);
        b.freeze()
    }

    #[test]
    fn a_sealed_snapshot_parses() {
        let value = parse_snapshot(sealed(&body()), 5, &mut load).unwrap();
        assert_eq!(value, "hello");
    }

    #[test]
    fn a_wrong_seal_is_rejected() {
        let mut bytes = sealed(&body()).to_vec();
        let seal_at = bytes.len() - 5 - 8;
        bytes[seal_at + 7] ^= 1;
        assert!(matches!(
            parse_snapshot(Bytes::from(bytes), 5, &mut load),
            Err(Invalid::Seal { .. })
        ));
    }

    #[test]
    fn the_quick_test_wants_a_trailing_seal_marker() {
        assert!(passes_quick_test(&sealed(&body())));
        assert!(!passes_quick_test(&[0, 0, 0, 1, b'/']));
        assert!(!passes_quick_test(&[0u8; 20]));
    }
}
