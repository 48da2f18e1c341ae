//! What the quorum core's storage outputs mean on disk: the durable state
//! a peer starts from, TRUNC, and SNAP.
//!
//! The core's log continues the oldest snapshot on disk: purge keeps every
//! log a retained snapshot needs, so the txns after the oldest one are all
//! there, while older ones may be gone. A learner behind that point gets
//! SNAP (the leader's serialized tree) instead of a DIFF.

use std::collections::VecDeque;
use std::fs;
use std::io;
use std::path::Path;

use zk_proto::disk::parse_zxid_file_name;
use zk_proto::Jute;

use super::epochs::EpochFiles;
use crate::quorum::{zxid_epoch, DurableState, EpochKind, LogEntry, LogHistory, Zxid};
use crate::storage::{self, StorageError, TxnLogReader};

/// Why the ensemble's files could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        source: io::Error,
    },
}

fn io_err(what: &'static str) -> impl FnOnce(io::Error) -> DiskError {
    move |source| DiskError::Io { what, source }
}

/// Every logged txn, in zxid order, as the core's log entries.
pub fn read_log(log_dir: &Path) -> Result<Vec<LogEntry>, DiskError> {
    let mut log = Vec::new();
    for entry in TxnLogReader::open(log_dir, 0)? {
        let entry = entry?;
        log.push(LogEntry {
            zxid: entry.header.zxid,
            payload: entry.to_bytes(),
        });
    }
    Ok(log)
}

/// The zxid of the oldest snapshot file in `data_dir` (0 with none).
pub fn oldest_snapshot_zxid(data_dir: &Path) -> Result<Zxid, DiskError> {
    let v2 = storage::version_dir(data_dir);
    let entries = match fs::read_dir(&v2) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => {
            return Err(DiskError::Io {
                what: "listing snapshots",
                source: e,
            })
        }
    };
    let mut oldest: Option<Zxid> = None;
    for entry in entries {
        let entry = entry.map_err(io_err("listing snapshots"))?;
        let name = entry.file_name();
        if let Some(zxid) = name
            .to_str()
            .and_then(|n| parse_zxid_file_name(n, "snapshot"))
        {
            oldest = Some(oldest.map_or(zxid, |o| o.min(zxid)));
        }
    }
    Ok(oldest.unwrap_or(0))
}

/// The epochs, snapshot point and log a peer restarts from, with the
/// database recovered at `applied_zxid`. The logs are read once, front to
/// back: only the newest `keep` txns (and any not applied) stay in memory,
/// the rest leaves its trace in the [`LogHistory`]. A missing currentEpoch
/// is the epoch of the last logged txn (a data dir from a standalone run);
/// a missing acceptedEpoch is the currentEpoch.
pub fn durable_state(
    data_dir: &Path,
    log_dir: &Path,
    applied_zxid: Zxid,
    keep: usize,
) -> Result<DurableState, DiskError> {
    // The log may start in a file older than the oldest snapshot; the core
    // keeps only what continues it.
    let snapshot_zxid = oldest_snapshot_zxid(data_dir)?.min(applied_zxid);
    let mut history = LogHistory::default();
    if snapshot_zxid > 0 {
        history.record(snapshot_zxid, 0);
    }
    let mut tail: VecDeque<LogEntry> = VecDeque::new();
    let mut log_start = snapshot_zxid;
    for entry in TxnLogReader::open(log_dir, snapshot_zxid)? {
        let entry = entry?;
        let zxid = entry.header.zxid;
        if zxid <= snapshot_zxid {
            continue;
        }
        let payload = entry.to_bytes();
        history.record(zxid, payload.len());
        tail.push_back(LogEntry { zxid, payload });
        while tail.len() > keep && tail.front().is_some_and(|e| e.zxid <= applied_zxid) {
            if let Some(e) = tail.pop_front() {
                log_start = e.zxid;
            }
        }
    }
    let epochs = EpochFiles::new(data_dir);
    let last = tail.back().map_or(log_start, |e| e.zxid);
    let current = epochs
        .read(EpochKind::Current)
        .map_err(io_err("reading currentEpoch"))?
        .unwrap_or(zxid_epoch(last));
    let accepted = epochs
        .read(EpochKind::Accepted)
        .map_err(io_err("reading acceptedEpoch"))?
        .unwrap_or(current);
    Ok(DurableState {
        accepted_epoch: accepted,
        current_epoch: current,
        snapshot_zxid,
        log: tail.into(),
        log_start,
        history,
        applied_zxid,
    })
}

/// Deletes the `<prefix>.<hex>` files of `dir/version-2` whose zxid is
/// above `above` (every one when `above` is negative).
fn remove_files_after(dir: &Path, prefix: &str, above: Zxid) -> io::Result<()> {
    let v2 = storage::version_dir(dir);
    let entries = match fs::read_dir(&v2) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(zxid) = name.to_str().and_then(|n| parse_zxid_file_name(n, prefix)) else {
            continue;
        };
        if zxid > above {
            fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// TRUNC: keeps the txns up to `to`, and drops snapshots taken after it
/// (they hold txns that are gone now).
pub fn truncate(data_dir: &Path, log_dir: &Path, to: Zxid) -> Result<(), DiskError> {
    match storage::truncate_to(log_dir, to) {
        Ok(_) => {}
        // No file starts at or before `to`: every logged txn is after it.
        Err(StorageError::NothingToTruncate { .. }) => {
            remove_files_after(log_dir, "log", -1).map_err(io_err("removing txn logs"))?
        }
        Err(e) => return Err(e.into()),
    }
    remove_files_after(data_dir, "snapshot", to).map_err(io_err("removing snapshots"))
}

/// SNAP: the leader's snapshot as of `zxid` (a complete, fsynced snapshot
/// file staged under a temporary name, see `snapsync`) and the txns after
/// it replace every log and snapshot; all of it is on disk (fsynced)
/// before this returns. The snapshot is renamed into place first, so a
/// crash in between leaves it as the newest state to recover from.
pub fn install(
    data_dir: &Path,
    log_dir: &Path,
    zxid: Zxid,
    staged: &Path,
    log: &[LogEntry],
    opts: storage::LogOptions,
) -> Result<(), DiskError> {
    let v2 = storage::version_dir(data_dir);
    let target = v2.join(zk_proto::disk::zxid_file_name("snapshot", zxid));
    fs::rename(staged, &target).map_err(io_err("placing the snapshot"))?;
    fs::File::open(&v2)
        .and_then(|d| d.sync_all())
        .map_err(io_err("syncing the snapshot directory"))?;
    remove_files_after(log_dir, "log", -1).map_err(io_err("removing txn logs"))?;
    remove_snapshots_except(data_dir, zxid).map_err(io_err("removing snapshots"))?;
    write_log(log_dir, log, opts)
}

/// Deletes every snapshot file of `dir/version-2` but `snapshot.<keep>`.
fn remove_snapshots_except(dir: &Path, keep: Zxid) -> io::Result<()> {
    let v2 = storage::version_dir(dir);
    for entry in fs::read_dir(&v2)? {
        let entry = entry?;
        let name = entry.file_name();
        let zxid = name
            .to_str()
            .and_then(|n| parse_zxid_file_name(n, "snapshot"));
        if zxid.is_some_and(|z| z != keep) {
            fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Appends `entries` to the log of `log_dir` and closes it (durable).
fn write_log(
    log_dir: &Path,
    entries: &[LogEntry],
    opts: storage::LogOptions,
) -> Result<(), DiskError> {
    let log = storage::TxnLog::open(log_dir, opts).map_err(io_err("opening the txn log"))?;
    for e in entries {
        log.append(e.zxid, e.payload.clone());
    }
    log.close().map_err(io_err("writing txns"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use zk_proto::txn::CreateSessionTxn;
    use zk_proto::{OpCode, Txn, TxnEntry, TxnHeader};

    fn entry(zxid: Zxid) -> LogEntry {
        let txn = TxnEntry {
            header: TxnHeader {
                client_id: 1,
                cxid: 0,
                zxid,
                time: 0,
                txn_type: OpCode::CreateSession.code(),
            },
            txn: Txn::CreateSession(CreateSessionTxn { timeout: 3000 }),
            digest: None,
        };
        LogEntry {
            zxid,
            payload: txn.to_bytes(),
        }
    }

    fn opts() -> storage::LogOptions {
        storage::LogOptions {
            prealloc_size: 4096,
            force_sync: false,
        }
    }

    #[test]
    fn written_history_is_what_the_log_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let entries = vec![entry(1), entry(2), entry(0x1_0000_0001)];
        write_log(dir.path(), &entries, opts()).unwrap();
        assert_eq!(read_log(dir.path()).unwrap(), entries);
    }

    #[test]
    fn install_replaces_logs_and_snapshots_with_the_leaders_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        write_log(dir.path(), &[entry(1), entry(2)], opts()).unwrap();
        storage::write_snapshot(dir.path(), 1, b"old").unwrap();
        let written = storage::write_snapshot(dir.path(), 7, b"tree").unwrap();
        let staged = written.with_file_name(".snapshot.7.recv");
        fs::rename(&written, &staged).unwrap();
        install(dir.path(), dir.path(), 7, &staged, &[entry(8)], opts()).unwrap();
        assert_eq!(read_log(dir.path()).unwrap(), vec![entry(8)]);
        assert_eq!(oldest_snapshot_zxid(dir.path()).unwrap(), 7);
        let v2 = storage::version_dir(dir.path());
        assert!(!v2.join("snapshot.1").exists());
    }

    #[test]
    fn durable_state_continues_the_oldest_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        write_log(dir.path(), &[entry(1), entry(2), entry(3)], opts()).unwrap();
        storage::write_snapshot(dir.path(), 2, b"").unwrap();
        storage::write_snapshot(dir.path(), 3, b"").unwrap();
        let state = durable_state(dir.path(), dir.path(), 3, 500).unwrap();
        assert_eq!(state.snapshot_zxid, 2);
        assert_eq!(state.log, vec![entry(3)]);
        assert_eq!(state.applied_zxid, 3);
    }

    #[test]
    fn durable_state_keeps_only_the_newest_txns_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let entries: Vec<LogEntry> = (1..=50).map(entry).collect();
        write_log(dir.path(), &entries, opts()).unwrap();
        let state = durable_state(dir.path(), dir.path(), 50, 10).unwrap();
        assert_eq!(state.log, entries[40..].to_vec());
        assert_eq!(state.log_start, 40);
        assert!(
            state.history.holds(7),
            "older txns are known to be in the files"
        );
    }

    #[test]
    fn durable_state_keeps_txns_not_yet_applied_whatever_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let entries: Vec<LogEntry> = (1..=50).map(entry).collect();
        write_log(dir.path(), &entries, opts()).unwrap();
        let state = durable_state(dir.path(), dir.path(), 30, 10).unwrap();
        assert_eq!(state.log.first().map(|e| e.zxid), Some(31));
    }

    #[test]
    fn truncate_keeps_the_prefix_and_drops_later_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        write_log(dir.path(), &[entry(1), entry(2), entry(3)], opts()).unwrap();
        storage::write_snapshot(dir.path(), 3, b"").unwrap();
        storage::write_snapshot(dir.path(), 1, b"").unwrap();
        truncate(dir.path(), dir.path(), 2).unwrap();
        let zxids: Vec<Zxid> = read_log(dir.path())
            .unwrap()
            .iter()
            .map(|e| e.zxid)
            .collect();
        assert_eq!(zxids, vec![1, 2]);
        let v2 = storage::version_dir(dir.path());
        assert!(v2.join("snapshot.1").exists());
        assert!(!v2.join("snapshot.3").exists());
    }

    #[test]
    fn truncate_to_zero_empties_the_log() {
        let dir = tempfile::tempdir().unwrap();
        write_log(dir.path(), &[entry(1)], opts()).unwrap();
        truncate(dir.path(), dir.path(), 0).unwrap();
        assert!(read_log(dir.path()).unwrap().is_empty());
    }
}
