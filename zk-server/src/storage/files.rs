//! Naming and listing of `log.<hex>` / `snapshot.<hex>` files (ZAB.md §9.1).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use zk_proto::disk::parse_zxid_file_name;

/// The directory level Apache puts between dataDir and its files.
pub const VERSION_DIR: &str = "version-2";
pub(crate) const LOG_PREFIX: &str = "log";
pub(crate) const SNAPSHOT_PREFIX: &str = "snapshot";

/// `<dir>/version-2`, where the files of `dir` live.
pub fn version_dir(dir: &Path) -> PathBuf {
    dir.join(VERSION_DIR)
}

/// `<dir>/version-2`, created (with its parents) if missing.
pub(crate) fn ensure_version_dir(dir: &Path) -> io::Result<PathBuf> {
    let v2 = version_dir(dir);
    fs::create_dir_all(&v2)?;
    Ok(v2)
}

/// How a snapshot file's bytes are stored, told by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Snappy,
}

/// A log or snapshot file and the zxid its name carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ZxidFile {
    pub zxid: i64,
    pub path: PathBuf,
    pub compression: Compression,
}

/// Recognises `<prefix>.<hex>` and, for snapshots, `.gz` / `.snappy`
/// variants. Anything else (our temp files, editor backups) is not a file
/// of ours.
fn classify(name: &str, prefix: &str) -> Option<(i64, Compression)> {
    let zxid = parse_zxid_file_name(name, prefix)?;
    let rest = &name[prefix.len() + 1..];
    let compression = match rest.split_once('.').map(|(_, ext)| ext) {
        None => Compression::None,
        Some("gz") if prefix == SNAPSHOT_PREFIX => Compression::Gzip,
        Some("snappy") if prefix == SNAPSHOT_PREFIX => Compression::Snappy,
        Some(_) => return None,
    };
    Some((zxid, compression))
}

/// The files of `v2_dir` named `<prefix>.<hex>`, oldest (smallest zxid)
/// first, sorted numerically. A missing directory has no files.
pub(crate) fn list(v2_dir: &Path, prefix: &str) -> io::Result<Vec<ZxidFile>> {
    let entries = match fs::read_dir(v2_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some((zxid, compression)) = classify(name, prefix) {
            if entry.file_type()?.is_file() {
                files.push(ZxidFile {
                    zxid,
                    path: entry.path(),
                    compression,
                });
            }
        }
    }
    files.sort_by_key(|f| f.zxid);
    Ok(files)
}

/// The index of the first file needed to read every txn from `zxid` on:
/// the newest file starting at or before it (it may hold `zxid` itself),
/// or the first file when all start later. `files` is sorted by zxid.
pub(crate) fn first_file_holding(files: &[ZxidFile], zxid: i64) -> Option<usize> {
    if files.is_empty() {
        return None;
    }
    Some(files.iter().rposition(|f| f.zxid <= zxid).unwrap_or(0))
}

/// Makes a directory's entries (a new or renamed file) durable.
pub(crate) fn fsync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(zxid: i64) -> ZxidFile {
        ZxidFile {
            zxid,
            path: PathBuf::from(format!("log.{zxid:x}")),
            compression: Compression::None,
        }
    }

    #[test]
    fn snapshots_may_be_compressed_logs_may_not() {
        assert_eq!(
            classify("snapshot.1a.gz", SNAPSHOT_PREFIX),
            Some((0x1a, Compression::Gzip))
        );
        assert_eq!(classify("log.1a.gz", LOG_PREFIX), None);
        assert_eq!(
            classify("log.1a", LOG_PREFIX),
            Some((0x1a, Compression::None))
        );
        assert_eq!(classify("snapshot.1a.tmp", SNAPSHOT_PREFIX), None);
    }

    #[test]
    fn first_file_holding_is_the_newest_starting_at_or_before() {
        let files = [file(1), file(10), file(20)];
        assert_eq!(first_file_holding(&files, 15), Some(1));
        assert_eq!(first_file_holding(&files, 10), Some(1));
        assert_eq!(first_file_holding(&files, 0), Some(0));
        assert_eq!(first_file_holding(&files, 99), Some(2));
        assert_eq!(first_file_holding(&[], 5), None);
    }
}
