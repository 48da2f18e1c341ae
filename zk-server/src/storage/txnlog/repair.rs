//! Cutting logs: torn tails after a crash (recovery) and TRUNC to a zxid
//! (a learner whose history runs ahead of its new leader, ZAB.md §9.7).

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use zk_proto::{Jute, TxnHeader};

use super::reader::{LogFile, Next, TornTail, TxnLogReader};
use super::HEADER_LEN;
use crate::storage::files::{fsync_dir, list, version_dir, LOG_PREFIX};
use crate::storage::StorageError;

/// What [`truncate_to`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruncateReport {
    /// The file that now ends with the last txn ≤ the zxid.
    pub cut_file: PathBuf,
    /// Its new length.
    pub cut_at: u64,
    /// Bytes removed from it (preallocated padding included).
    pub bytes_removed: u64,
    /// Later files, deleted whole.
    pub deleted_files: Vec<PathBuf>,
}

/// Reads every log of `<log_dir>/version-2` and cuts each torn tail at the
/// end of its last whole record. Returns the tails cut.
pub fn repair_torn_tails(log_dir: &Path) -> Result<Vec<TornTail>, StorageError> {
    let mut reader = TxnLogReader::open(log_dir, i64::MIN)?;
    for entry in reader.by_ref() {
        entry?;
    }
    let tails = reader.torn_tails().to_vec();
    cut_torn_tails(&tails)?;
    Ok(tails)
}

/// Cuts each file at its torn tail (warning about each); a file torn
/// inside its header is deleted, as it holds nothing. Returns the bytes
/// removed.
pub(crate) fn cut_torn_tails(tails: &[TornTail]) -> Result<u64, StorageError> {
    let mut removed = 0;
    for tail in tails {
        removed += tail.file_len.saturating_sub(tail.offset);
        if tail.offset < HEADER_LEN {
            tracing::warn!(path = %tail.path.display(), cause = ?tail.cause, "txn log holds no record to keep: deleting it");
            fs::remove_file(&tail.path).map_err(StorageError::io(&tail.path))?;
        } else {
            tracing::warn!(
                path = %tail.path.display(),
                offset = tail.offset,
                cause = ?tail.cause,
                "cutting the txn log after its last whole record"
            );
            set_len(&tail.path, tail.offset)?;
        }
        if let Some(dir) = tail.path.parent() {
            fsync_dir(dir).map_err(StorageError::io(dir))?;
        }
    }
    Ok(removed)
}

/// TRUNC: keeps exactly the txns with zxid ≤ `zxid`. The file holding it
/// is cut after its last such record, later files are deleted. Errs when
/// no file starts at or before `zxid` (Apache refuses that too: the logs
/// cannot be those of this history).
pub fn truncate_to(log_dir: &Path, zxid: i64) -> Result<TruncateReport, StorageError> {
    let dir = version_dir(log_dir);
    let files = list(&dir, LOG_PREFIX).map_err(StorageError::io(&dir))?;
    let Some(keep) = files.iter().rposition(|f| f.zxid <= zxid) else {
        return Err(StorageError::NothingToTruncate { dir, zxid });
    };
    let target = &files[keep].path;
    let mut log = LogFile::open(target)?;
    let mut cut_at = HEADER_LEN;
    loop {
        match log.next() {
            Ok(Next::Txn {
                offset,
                end,
                txn_bytes,
            }) => {
                let header =
                    TxnHeader::from_bytes(txn_bytes).map_err(|source| StorageError::BadTxn {
                        path: target.clone(),
                        offset,
                        source,
                    })?;
                if header.zxid > zxid {
                    break;
                }
                cut_at = end;
            }
            // A header torn or zeroed by a crash: the file holds nothing.
            Ok(Next::Torn { offset }) if offset < HEADER_LEN => {
                cut_at = 0;
                break;
            }
            // Whatever follows the kept records goes: a torn tail, or even
            // damage, is cut away with them.
            Ok(Next::End | Next::Torn { .. }) | Err(StorageError::Corrupt { .. }) => break,
            Err(e) => return Err(e),
        }
    }
    let file_len = log.len();
    drop(log);
    set_len(target, cut_at)?;
    let mut deleted_files = Vec::new();
    for later in &files[keep + 1..] {
        fs::remove_file(&later.path).map_err(StorageError::io(&later.path))?;
        deleted_files.push(later.path.clone());
    }
    fsync_dir(&dir).map_err(StorageError::io(&dir))?;
    tracing::info!(zxid = %format_args!("0x{zxid:x}"), file = %target.display(), cut_at, deleted = deleted_files.len(), "truncated txn log");
    Ok(TruncateReport {
        cut_file: target.clone(),
        cut_at,
        bytes_removed: file_len.saturating_sub(cut_at),
        deleted_files,
    })
}

fn set_len(path: &Path, len: u64) -> Result<(), StorageError> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(StorageError::io(path))?;
    file.set_len(len).map_err(StorageError::io(path))?;
    file.sync_all().map_err(StorageError::io(path))
}
