//! `InterProcessReadWriteLock` (RECIPES.md §B5): both halves in one
//! directory, writers `_c_<uuid>-__WRIT__<seq>`, readers
//! `_c_<uuid>-__READ__<seq>`, ordered by the sequence after either name.
//!
//! * The write lock is a plain mutex over all children (readers too).
//! * A read lock is granted when no writer sorts before it; otherwise the
//!   reader watches the **first** writer. So a waiting writer holds back
//!   every later reader (fairness).
//! * The holder of the write half gets the read half at once (downgrade).
//!   A reader asking for the write half waits for itself forever, as in
//!   Curator: release the read lock first.
//!
//! Each half is an [`InterProcessMutex`]: not re-entrant, one hold per
//! handle at a time (a second `acquire` on the same half of the same
//! handle waits for the first hold), re-entry through
//! [`MutexGuard::reenter`](crate::MutexGuard::reenter). Concurrent readers
//! in one process each take their own handle. Both halves' guards carry a
//! [`Fence`](crate::Fence).

use std::sync::Arc;

use bytes::Bytes;

use crate::framework::Curator;
use crate::lock::internals::{LockDriver, StandardDriver, Turn};
use crate::lock::mutex::InterProcessMutex;

/// Curator's lock name for read nodes.
pub const READ_LOCK_NAME: &str = "__READ__";
/// Curator's lock name for write nodes.
pub const WRITE_LOCK_NAME: &str = "__WRIT__";
const BOTH: [&str; 2] = [READ_LOCK_NAME, WRITE_LOCK_NAME];

/// Readers pass everything except a writer ahead of them.
#[derive(Debug)]
struct ReadDriver;

impl LockDriver for ReadDriver {
    fn sort_names(&self) -> &[&'static str] {
        &BOTH
    }

    fn turn(&self, sorted: &[String], ours: usize) -> Turn {
        match sorted[..ours].iter().find(|c| c.contains(WRITE_LOCK_NAME)) {
            Some(first_writer) => Turn::WaitFor(first_writer.clone()),
            None => Turn::Acquired,
        }
    }
}

/// A distributed read/write lock.
///
/// ```no_run
/// # async fn demo(curator: zk_recipes::Curator) -> zk_recipes::Result<()> {
/// use zk_recipes::InterProcessReadWriteLock;
/// let rw = InterProcessReadWriteLock::new(&curator, "/locks/catalog");
/// let write = rw.write_lock().acquire().await?;
/// let read = rw.read_lock().acquire().await?; // the writer may also read
/// read.release().await?;
/// write.release().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct InterProcessReadWriteLock {
    read: InterProcessMutex,
    write: InterProcessMutex,
}

impl InterProcessReadWriteLock {
    /// Nodes carry the framework's default data.
    pub fn new(curator: &Curator, path: &str) -> Self {
        Self::with_data(curator, path, curator.default_data())
    }

    /// Both halves' nodes carry `data`.
    pub fn with_data(curator: &Curator, path: &str, data: impl Into<Bytes>) -> Self {
        let data = data.into();
        let writer = StandardDriver {
            sort_names: BOTH.to_vec(),
            max_leases: 1,
        };
        let write = InterProcessMutex::from_parts(
            curator,
            path,
            WRITE_LOCK_NAME,
            Arc::new(writer),
            data.clone(),
            None,
        );
        let read = InterProcessMutex::from_parts(
            curator,
            path,
            READ_LOCK_NAME,
            Arc::new(ReadDriver),
            data,
            Some(&write),
        );
        InterProcessReadWriteLock { read, write }
    }

    /// The read half (shared, blocked by earlier writers).
    pub fn read_lock(&self) -> &InterProcessMutex {
        &self.read
    }

    /// The write half (exclusive).
    pub fn write_lock(&self) -> &InterProcessMutex {
        &self.write
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn readers_share_when_no_writer_is_ahead() {
        let sorted = names(&["a-__READ__01", "b-__READ__02"]);
        assert_eq!(ReadDriver.turn(&sorted, 1), Turn::Acquired);
    }

    #[test]
    fn a_reader_waits_for_the_first_writer_ahead_of_it() {
        let sorted = names(&[
            "w1-__WRIT__01",
            "r-__READ__02",
            "w2-__WRIT__03",
            "me-__READ__04",
        ]);
        assert_eq!(
            ReadDriver.turn(&sorted, 3),
            Turn::WaitFor("w1-__WRIT__01".into())
        );
    }

    #[test]
    fn writers_behind_a_reader_do_not_block_it() {
        let sorted = names(&["me-__READ__01", "w-__WRIT__02"]);
        assert_eq!(ReadDriver.turn(&sorted, 0), Turn::Acquired);
    }
}
