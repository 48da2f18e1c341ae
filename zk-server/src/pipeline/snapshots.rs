//! Snapshots taken by the writer task (DESIGN.md "Net side"): when they
//! are due, the cut, and the file written on a blocking task. A snapshot
//! that cannot be written stops the member (fail_stop.rs), as Apache's
//! `takeSnapshot` exits with TXNLOG_ERROR_TAKING_SNAPSHOT.

use std::path::Path;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use rand::Rng;

use super::{Pipeline, Shared};
use crate::fail_stop::FailStop;

/// When the next snapshot is due (ZAB.md §8: snapCount/2 + rand(snapCount/2)).
#[derive(Debug)]
pub(super) struct SnapSchedule {
    snap_count: u64,
    since_last: u64,
    threshold: u64,
    pub(super) running: Option<tokio::task::JoinHandle<()>>,
}

impl SnapSchedule {
    pub(super) fn new(snap_count: u64) -> Self {
        SnapSchedule {
            snap_count,
            since_last: 0,
            threshold: Self::roll_threshold(snap_count),
            running: None,
        }
    }

    fn roll_threshold(snap_count: u64) -> u64 {
        let half = (snap_count / 2).max(1);
        half + rand::thread_rng().gen_range(0..half)
    }

    /// Counts one logged txn; true when a snapshot should start now.
    pub(super) fn count(&mut self) -> bool {
        self.since_last += 1;
        if self.since_last < self.threshold {
            return false;
        }
        if self.running.as_ref().is_some_and(|h| !h.is_finished()) {
            // Apache: "Too busy to snap, skipping".
            return false;
        }
        self.since_last = 0;
        self.threshold = Self::roll_threshold(self.snap_count);
        true
    }
}

impl Pipeline {
    /// Serialises the tree here (a consistent cut at the last applied zxid),
    /// rolls the log so later txns start a new file, and writes the file on
    /// a blocking task.
    pub(super) fn start_snapshot(&mut self) {
        let (zxid, body) = self.serialize();
        if let Some(log) = &self.log {
            log.roll();
        }
        self.stats.snapshots += 1;
        let shared = Arc::clone(&self.shared);
        self.snaps.running = Some(tokio::task::spawn_blocking(move || {
            write_or_fail(&shared, zxid, &body)
        }));
    }

    /// The snapshot of a clean stop, written before the log closes.
    pub(super) async fn final_snapshot(&mut self) {
        let (zxid, body) = self.serialize();
        let shared = Arc::clone(&self.shared);
        let _ = tokio::task::spawn_blocking(move || write_or_fail(&shared, zxid, &body)).await;
    }

    fn serialize(&self) -> (i64, Bytes) {
        let mut body = BytesMut::new();
        self.db.serialize_snapshot(&mut body);
        (self.db.last_processed_zxid(), body.freeze())
    }
}

/// Writes `snapshot.<zxid>`; a failure stops the member.
fn write_or_fail(shared: &Shared, zxid: i64, body: &[u8]) {
    let dir: &Path = &shared.config.data_dir;
    match crate::storage::write_snapshot(dir, zxid, body) {
        Ok(path) => tracing::info!("snapshot written: {}", path.display()),
        Err(e) => shared.health.fail(FailStop::Snapshot {
            zxid,
            error: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_threshold_is_between_half_and_full_snap_count() {
        for _ in 0..100 {
            let t = SnapSchedule::roll_threshold(1000);
            assert!((500..1000).contains(&t), "{t}");
        }
        assert_eq!(SnapSchedule::roll_threshold(2), 1);
    }

    #[test]
    fn snapshot_is_due_after_threshold_txns() {
        let mut s = SnapSchedule::new(2);
        assert!(s.count(), "threshold 1 with snapCount 2");
        assert!(s.count());
    }
}
