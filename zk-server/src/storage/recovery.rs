//! Restoring the database at start (ZAB.md §9.6, Apache's
//! `FileTxnSnapLog.restore`): the newest valid snapshot, then every later
//! txn of the logs in zxid order. Torn log tails are cut on the way; a
//! whole record whose checksum fails stops recovery unless the operator
//! asked to cut it ([`OnCorrupt`]).

use std::path::{Path, PathBuf};

use zk_proto::{DecodeError, Reader, TxnEntry};

use crate::storage::files::{list, version_dir, LOG_PREFIX, SNAPSHOT_PREFIX};
use crate::storage::snapfile::read_newest_snapshot;
use crate::storage::txnlog::{cut_torn_tails, OnCorrupt, TornTail, TxnLogReader};
use crate::storage::StorageError;

/// What recovery found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The snapshot loaded (its name's zxid), if any.
    pub snapshot_zxid: Option<i64>,
    pub snapshot_path: Option<PathBuf>,
    /// Txns given to `apply` (those after the snapshot).
    pub txns_replayed: u64,
    /// The zxid the restored state is at: the last txn replayed, else the
    /// snapshot's, else 0.
    pub last_zxid: i64,
    /// Torn tails found in the logs; each file was cut at its offset.
    pub torn_tails: Vec<TornTail>,
    /// Bytes cut off log files (preallocated padding included).
    pub truncated_bytes: u64,
}

impl RecoveryReport {
    /// Log files cut because of a torn tail.
    pub fn truncated_files(&self) -> usize {
        self.torn_tails.len()
    }
}

/// Restores state from `<snap_dir>/version-2` and `<log_dir>/version-2`.
///
/// `load_body` parses a snapshot body (it may be called for several
/// snapshots, newest first, until one is valid); `empty` makes the state
/// when there is no snapshot; `apply` replays one txn, in zxid order.
///
/// Without any snapshot file the logs are the whole history (purge never
/// deletes logs before a snapshot exists) and are replayed onto `empty()`.
/// When snapshot files exist but none is valid while logs exist, recovery
/// refuses ([`StorageError::NoValidSnapshot`]) rather than lose the state
/// those snapshots held. A caller starting empty should write a
/// `snapshot.0` as Apache does, so that later starts have one.
///
/// A whole log record whose checksum fails stops recovery with
/// [`StorageError::Corrupt`] (see [`recover_with`] to cut there instead).
pub fn recover<T>(
    snap_dir: &Path,
    log_dir: &Path,
    load_body: impl FnMut(&mut Reader, i64) -> Result<T, DecodeError>,
    empty: impl FnOnce() -> T,
    apply: impl FnMut(&mut T, &TxnEntry),
) -> Result<(T, RecoveryReport), StorageError> {
    recover_with(
        snap_dir,
        log_dir,
        OnCorrupt::Refuse,
        load_body,
        empty,
        apply,
    )
}

/// [`recover`], choosing what a corrupt log record does: refuse (the
/// default) or cut the history before it (an operator's decision).
pub fn recover_with<T>(
    snap_dir: &Path,
    log_dir: &Path,
    on_corrupt: OnCorrupt,
    load_body: impl FnMut(&mut Reader, i64) -> Result<T, DecodeError>,
    empty: impl FnOnce() -> T,
    mut apply: impl FnMut(&mut T, &TxnEntry),
) -> Result<(T, RecoveryReport), StorageError> {
    let mut report = RecoveryReport::default();
    let (mut state, replay_from) = match read_newest_snapshot(snap_dir, load_body)? {
        Some(snapshot) => {
            tracing::debug!(path = %snapshot.path.display(), zxid = %format_args!("0x{:x}", snapshot.zxid), "loaded snapshot");
            report.snapshot_zxid = Some(snapshot.zxid);
            report.snapshot_path = Some(snapshot.path);
            report.last_zxid = snapshot.zxid;
            (snapshot.value, snapshot.zxid.saturating_add(1))
        }
        None => {
            check_empty_start_is_safe(snap_dir, log_dir)?;
            (empty(), i64::MIN)
        }
    };

    let mut reader = TxnLogReader::open_with(log_dir, replay_from, on_corrupt)?;
    for entry in reader.by_ref() {
        let entry = entry?;
        apply(&mut state, &entry);
        report.txns_replayed += 1;
        report.last_zxid = entry.header.zxid;
    }
    report.torn_tails = reader.torn_tails().to_vec();
    report.truncated_bytes = cut_torn_tails(&report.torn_tails)?;
    // The one-line summary for operators is the caller's (server.rs).
    tracing::debug!(
        replayed = report.txns_replayed,
        last_zxid = %format_args!("0x{:x}", report.last_zxid),
        torn = report.torn_tails.len(),
        "recovered from disk"
    );
    Ok((state, report))
}

/// Starting from an empty tree is right when there never was a snapshot,
/// or when there is nothing to replay; not when snapshots exist, are all
/// invalid, and logs would be replayed onto nothing.
fn check_empty_start_is_safe(snap_dir: &Path, log_dir: &Path) -> Result<(), StorageError> {
    let snap_v2 = version_dir(snap_dir);
    let log_v2 = version_dir(log_dir);
    let snapshots = list(&snap_v2, SNAPSHOT_PREFIX).map_err(StorageError::io(&snap_v2))?;
    let logs = list(&log_v2, LOG_PREFIX).map_err(StorageError::io(&log_v2))?;
    match (snapshots.len(), logs.is_empty()) {
        (0, _) => Ok(()),
        (count, true) => {
            tracing::warn!(count, dir = %snap_v2.display(), "no valid snapshot and no logs: starting empty");
            Ok(())
        }
        (count, false) => Err(StorageError::NoValidSnapshot {
            dir: snap_v2,
            count,
        }),
    }
}
