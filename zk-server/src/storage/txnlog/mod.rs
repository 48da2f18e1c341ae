//! The txn log (ZAB.md §8, §9.2): a group-commit writer thread, the reader
//! that iterates logs in zxid order, and the repairs recovery and TRUNC
//! make (cutting torn tails, truncating to a zxid).
//!
//! A log file is a 16-byte `ZKLG` header, then records (checksum, length,
//! txn bytes, `'B'`), then zero padding up to the preallocated size. The
//! first zero length ends the data.

mod padding;
mod reader;
mod repair;
mod writer;

pub use reader::{OnCorrupt, TailCause, TornTail, TxnLogReader};
pub use repair::{repair_torn_tails, truncate_to, TruncateReport};
pub use writer::{LogFailure, LogOptions, LogStats, TxnLog, DEFAULT_PREALLOC_SIZE};

pub(crate) use repair::cut_torn_tails;

/// Length of the file header every log starts with.
pub(crate) const HEADER_LEN: u64 = 16;
