//! Autopurge (ZAB.md §9.7, Apache's `PurgeTxnLog`): keep the newest N
//! valid snapshots and the logs needed to replay from the oldest of them;
//! delete everything older.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::storage::files::{
    list, version_dir, Compression, ZxidFile, LOG_PREFIX, SNAPSHOT_PREFIX,
};
use crate::storage::snapfile::passes_quick_test;

/// Apache never keeps fewer snapshots than this (`snapRetainCount`).
pub const MIN_RETAIN_COUNT: usize = 3;

/// What [`purge`] kept and deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// The snapshots kept, newest first.
    pub retained_snapshots: Vec<PathBuf>,
    pub deleted_snapshots: Vec<PathBuf>,
    pub deleted_logs: Vec<PathBuf>,
}

/// Keeps the `retain_count` (at least [`MIN_RETAIN_COUNT`]) newest valid
/// snapshots of `<snap_dir>/version-2`. Snapshots older than the oldest
/// kept one are deleted, and so are logs of `<log_dir>/version-2` whose
/// first zxid is below it, except the log holding that snapshot's start
/// (the newest log starting at or before it), which replay needs.
pub fn purge(snap_dir: &Path, log_dir: &Path, retain_count: usize) -> io::Result<PurgeReport> {
    if retain_count < MIN_RETAIN_COUNT {
        tracing::warn!(
            retain_count,
            "snapRetainCount below {MIN_RETAIN_COUNT}: keeping {MIN_RETAIN_COUNT}"
        );
    }
    let retain = retain_count.max(MIN_RETAIN_COUNT);
    let snapshots = list(&version_dir(snap_dir), SNAPSHOT_PREFIX)?;
    let mut kept = Vec::new();
    for snapshot in snapshots.iter().rev() {
        if kept.len() == retain {
            break;
        }
        if looks_valid(snapshot)? {
            kept.push(snapshot);
        }
    }
    let mut report = PurgeReport {
        retained_snapshots: kept.iter().map(|s| s.path.clone()).collect(),
        ..PurgeReport::default()
    };
    let Some(oldest_kept) = kept.last().map(|s| s.zxid) else {
        return Ok(report);
    };

    let logs = list(&version_dir(log_dir), LOG_PREFIX)?;
    let needed_log = logs.iter().rposition(|l| l.zxid <= oldest_kept);
    for (i, log) in logs.iter().enumerate() {
        if log.zxid < oldest_kept && Some(i) != needed_log && remove(&log.path)? {
            report.deleted_logs.push(log.path.clone());
        }
    }
    for snapshot in &snapshots {
        if snapshot.zxid < oldest_kept && remove(&snapshot.path)? {
            report.deleted_snapshots.push(snapshot.path.clone());
        }
    }
    tracing::info!(
        snapshots = report.deleted_snapshots.len(),
        logs = report.deleted_logs.len(),
        "purged old snapshots and logs"
    );
    Ok(report)
}

/// The quick validity test, reading only the file's last bytes. A
/// compressed snapshot cannot be checked without inflating it, and counts
/// as valid, as in Apache.
fn looks_valid(snapshot: &ZxidFile) -> io::Result<bool> {
    if snapshot.compression != Compression::None {
        return Ok(true);
    }
    let mut file = File::open(&snapshot.path)?;
    let len = file.metadata()?.len();
    let tail_len = len.min(10);
    file.seek(SeekFrom::Start(len - tail_len))?;
    let mut tail = Vec::with_capacity(tail_len as usize);
    file.take(tail_len).read_to_end(&mut tail)?;
    Ok(passes_quick_test(&tail))
}

/// Deletes `path`; false when someone else already did.
fn remove(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}
