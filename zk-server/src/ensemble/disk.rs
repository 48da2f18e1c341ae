//! What the quorum core's storage outputs mean on disk: the durable state
//! a peer starts from, TRUNC, and SNAP.

use std::fs;
use std::io;
use std::path::Path;

use zk_proto::disk::parse_zxid_file_name;
use zk_proto::Jute;

use super::epochs::EpochFiles;
use crate::quorum::{zxid_epoch, DurableState, EpochKind, LogEntry, Zxid};
use crate::storage::{self, LogOptions, StorageError, TxnLog, TxnLogReader};

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

/// The epochs and the log a peer restarts from. A missing currentEpoch is
/// the epoch of the last logged txn (a data dir from a standalone run); a
/// missing acceptedEpoch is the currentEpoch.
pub fn durable_state(data_dir: &Path, log_dir: &Path) -> Result<DurableState, DiskError> {
    let log = read_log(log_dir)?;
    let epochs = EpochFiles::new(data_dir);
    let last_epoch = log.last().map_or(0, |e| zxid_epoch(e.zxid));
    let current = epochs
        .read(EpochKind::Current)
        .map_err(io_err("reading currentEpoch"))?
        .unwrap_or(last_epoch);
    let accepted = epochs
        .read(EpochKind::Accepted)
        .map_err(io_err("reading acceptedEpoch"))?
        .unwrap_or(current);
    Ok(DurableState {
        accepted_epoch: accepted,
        current_epoch: current,
        log,
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

/// SNAP: replaces every log and snapshot with `entries` (the committed
/// history), written and fsynced before this returns.
pub fn install(
    data_dir: &Path,
    log_dir: &Path,
    entries: &[LogEntry],
    opts: LogOptions,
) -> Result<(), DiskError> {
    remove_files_after(log_dir, "log", -1).map_err(io_err("removing txn logs"))?;
    remove_files_after(data_dir, "snapshot", -1).map_err(io_err("removing snapshots"))?;
    let log = TxnLog::open(log_dir, opts).map_err(io_err("opening the txn log"))?;
    for e in entries {
        log.append(e.zxid, e.payload.clone());
    }
    log.close().map_err(io_err("writing the snapshot's txns"))
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

    fn opts() -> LogOptions {
        LogOptions {
            prealloc_size: 4096,
            force_sync: false,
        }
    }

    #[test]
    fn installed_history_is_what_the_log_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let entries = vec![entry(1), entry(2), entry(0x1_0000_0001)];
        install(dir.path(), dir.path(), &entries, opts()).unwrap();
        assert_eq!(read_log(dir.path()).unwrap(), entries);
    }

    #[test]
    fn truncate_keeps_the_prefix_and_drops_later_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        install(
            dir.path(),
            dir.path(),
            &[entry(1), entry(2), entry(3)],
            opts(),
        )
        .unwrap();
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
        install(dir.path(), dir.path(), &[entry(1)], opts()).unwrap();
        truncate(dir.path(), dir.path(), 0).unwrap();
        assert!(read_log(dir.path()).unwrap().is_empty());
    }
}
