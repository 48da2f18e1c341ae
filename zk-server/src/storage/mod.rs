//! Files: the txn log, snapshot files, recovery and purge (DESIGN.md,
//! ZAB.md §8-§9).
//!
//! Everything here works on Apache ZooKeeper's directory layout and byte
//! formats, so a data directory written by Apache can be read by us and the
//! other way round: `<dataDir>/version-2/snapshot.<hex>` and
//! `<dataLogDir>/version-2/log.<hex>`. Callers pass `dataDir` and
//! `dataLogDir`; the `version-2` level is added here.
//!
//! The only tokio type used is `tokio::sync::watch`, through which the log
//! writer thread announces durability (see [`txnlog`]).

mod error;
pub mod faults;
mod files;
pub mod purge;
pub mod recovery;
pub mod snapfile;
pub mod snapstream;
pub mod txnlog;

pub use error::StorageError;
pub use files::{version_dir, VERSION_DIR};
pub use purge::{purge, PurgeReport, MIN_RETAIN_COUNT};
pub use recovery::{recover, recover_with, RecoveryReport};
pub use snapfile::{read_newest_snapshot, write_snapshot, LoadedSnapshot};
pub use snapstream::SnapshotAssembler;
pub use txnlog::{
    repair_torn_tails, truncate_to, LogFailure, LogOptions, LogStats, OnCorrupt, TailCause,
    TornTail, TruncateReport, TxnLog, TxnLogReader, DEFAULT_PREALLOC_SIZE,
};
