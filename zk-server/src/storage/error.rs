//! The errors of the storage layer: every one names the file it is about.

use std::io;
use std::path::{Path, PathBuf};

use zk_proto::DecodeError;

/// Why reading or writing the server's files failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A txn-log file does not start with the `ZKLG` header.
    #[error("{path}: not a txn log (bad file header)")]
    BadLogHeader { path: PathBuf },
    /// A txn-log record whose checksum does not match, followed by more
    /// records: not a torn tail but damage in the middle of the history.
    #[error(
        "{path}: CRC check failed at offset {offset} (stored {stored:#x}, computed {computed:#x})"
    )]
    Corrupt {
        path: PathBuf,
        offset: u64,
        stored: i64,
        computed: u32,
    },
    /// A record with a valid checksum whose bytes are not a txn.
    #[error("{path}: undecodable txn at offset {offset}: {source}")]
    BadTxn {
        path: PathBuf,
        offset: u64,
        #[source]
        source: DecodeError,
    },
    /// Snapshot files exist but none of them is valid, while txn logs exist:
    /// replaying the logs onto an empty tree would silently lose data.
    #[error("{dir}: no valid snapshot among {count} snapshot files, refusing to start from an empty tree")]
    NoValidSnapshot { dir: PathBuf, count: usize },
    /// No log file starts at or before the zxid to truncate to.
    #[error("{dir}: cannot truncate to zxid {zxid:#x}: no log file holds it")]
    NothingToTruncate { dir: PathBuf, zxid: i64 },
}

impl StorageError {
    /// Wraps an IO error with the path it happened on.
    pub(crate) fn io(path: &Path) -> impl FnOnce(io::Error) -> StorageError {
        let path = path.to_path_buf();
        move |source| StorageError::Io { path, source }
    }
}
