//! Snapshots (DESIGN.md "Snapshots"): when they are due, and the fuzzy
//! snapshot itself. The writer task serializes the tree a slice at a time
//! (db/fuzzy.rs) between the other things it does, so clients never wait
//! behind a big tree; a `zk-snapshot` thread streams the slices to disk
//! (storage/snapstream.rs) through a small bounded channel, so memory stays
//! a few slices whatever the tree's size. The file is named by the zxid
//! applied when the snapshot started; recovery replays from there.
//!
//! A snapshot that cannot be written stops the member (fail_stop.rs), as
//! Apache's `takeSnapshot` exits with TXNLOG_ERROR_TAKING_SNAPSHOT.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use rand::Rng;
use tokio::sync::mpsc;

use super::{Pipeline, Shared};
use crate::db::fuzzy::FuzzyWalk;
use crate::db::SessionId;
use crate::fail_stop::FailStop;
use crate::storage::SnapshotAssembler;

/// Bytes of nodes serialized per slice: well under a millisecond of work.
/// (64 KiB slices measured no better: docs/PERFORMANCE.md.)
const SLICE_BYTES: usize = 256 * 1024;
/// Slices queued for the file writer at most (bounded memory).
const SLICES_IN_FLIGHT: usize = 8;

/// What the writer task hands the snapshot thread.
#[derive(Debug)]
pub(super) enum Slice {
    Tail(Bytes),
    /// The last nodes, then the head (sessions + ACL cache) to put first.
    Finish {
        tail: Bytes,
        head: Bytes,
    },
}

/// A fuzzy snapshot being taken.
#[derive(Debug)]
struct Taking {
    zxid: i64,
    /// The sessions when it started (Apache writes them first too).
    sessions: BTreeMap<SessionId, i32>,
    walk: FuzzyWalk,
    slices: mpsc::Sender<Slice>,
}

/// When the next snapshot is due (ZAB.md §8: snapCount/2 + rand(snapCount/2)).
#[derive(Debug)]
pub(super) struct SnapSchedule {
    snap_count: u64,
    since_last: u64,
    threshold: u64,
    /// The walk of the snapshot in progress, if any.
    taking: Option<Taking>,
    /// The thread writing the last snapshot started.
    running: Option<std::thread::JoinHandle<()>>,
}

impl SnapSchedule {
    pub(super) fn new(snap_count: u64) -> Self {
        SnapSchedule {
            snap_count,
            since_last: 0,
            threshold: Self::roll_threshold(snap_count),
            taking: None,
            running: None,
        }
    }

    /// Where the next slice goes while a snapshot is being taken.
    pub(super) fn slices(&self) -> Option<mpsc::Sender<Slice>> {
        self.taking.as_ref().map(|t| t.slices.clone())
    }

    fn roll_threshold(snap_count: u64) -> u64 {
        let half = (snap_count / 2).max(1);
        half + rand::thread_rng().gen_range(0..half)
    }

    /// Counts one logged txn; true when a snapshot should start now. A
    /// snapshot due while the previous one still runs is skipped and the
    /// count starts over, as Apache's SyncRequestProcessor does ("Too busy
    /// to snap, skipping"), so a slow disk never gets snapshots back to
    /// back.
    pub(super) fn count(&mut self) -> bool {
        self.since_last += 1;
        if self.since_last < self.threshold {
            return false;
        }
        self.since_last = 0;
        self.threshold = Self::roll_threshold(self.snap_count);
        if self.busy() {
            tracing::warn!("too busy to snapshot, skipping");
            return false;
        }
        true
    }

    /// A snapshot is being walked or written.
    fn busy(&self) -> bool {
        self.taking.is_some() || self.running.as_ref().is_some_and(|h| !h.is_finished())
    }
}

/// Room for the next slice of the snapshot in progress; pending forever
/// when there is none (a `select!` branch of the writer task).
pub(super) async fn next_slot(
    slices: Option<mpsc::Sender<Slice>>,
) -> Option<mpsc::OwnedPermit<Slice>> {
    match slices {
        Some(slices) => slices.reserve_owned().await.ok(),
        None => std::future::pending().await,
    }
}

impl Pipeline {
    /// Starts a fuzzy snapshot named by the last applied zxid: rolls the
    /// log (later txns start a new file, as Apache's `rollLog`), starts
    /// the file thread; the walk advances in [`Pipeline::snapshot_slice`].
    pub(super) fn start_snapshot(&mut self) {
        let zxid = self.db.last_processed_zxid();
        if let Some(log) = &self.log {
            log.roll();
        }
        self.stats.snapshots += 1;
        let (slices, queue) = mpsc::channel(SLICES_IN_FLIGHT);
        let shared = Arc::clone(&self.shared);
        let thread = std::thread::Builder::new()
            .name("zk-snapshot".into())
            .spawn(move || write_streamed(&shared, zxid, queue));
        match thread {
            Ok(thread) => self.snaps.running = Some(thread),
            Err(e) => {
                return self.fail(FailStop::Snapshot {
                    zxid,
                    error: format!("cannot start the snapshot thread: {e}"),
                })
            }
        }
        self.snaps.taking = Some(Taking {
            zxid,
            sessions: self.db.sessions().collect(),
            walk: FuzzyWalk::new(),
            slices,
        });
    }

    /// Serializes the next slice of the snapshot in progress into the
    /// room reserved for it.
    pub(super) fn snapshot_slice(&mut self, slot: mpsc::OwnedPermit<Slice>) {
        let Some(taking) = self.snaps.taking.as_mut() else {
            return;
        };
        let mut chunk = BytesMut::with_capacity(SLICE_BYTES + 4096);
        if !taking
            .walk
            .next_slice(self.db.tree(), &mut chunk, SLICE_BYTES)
        {
            slot.send(Slice::Tail(chunk.freeze()));
            return;
        }
        let head = taking.walk.head(&taking.sessions).freeze();
        tracing::debug!(
            zxid = taking.zxid,
            nodes = taking.walk.nodes(),
            "snapshot walk done"
        );
        slot.send(Slice::Finish {
            tail: chunk.freeze(),
            head,
        });
        self.snaps.taking = None;
    }

    /// Drops the snapshot in progress (its thread removes its temp files)
    /// and waits for the snapshot thread: before the files change under it
    /// (TRUNC, SNAP) or the process stops. Blocking.
    pub(super) fn abandon_snapshot(&mut self) {
        self.snaps.taking = None;
        if let Some(thread) = self.snaps.running.take() {
            let _ = thread.join();
        }
    }

    /// [`Pipeline::abandon_snapshot`] for async callers.
    pub(super) async fn stop_snapshots(&mut self) {
        self.snaps.taking = None;
        if let Some(thread) = self.snaps.running.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }

    /// The snapshot of a clean stop, taken in one go (nobody is served any
    /// more) and written before the log closes.
    pub(super) async fn final_snapshot(&mut self) {
        let mut body = BytesMut::new();
        self.db.serialize_snapshot(&mut body);
        let zxid = self.db.last_processed_zxid();
        let shared = Arc::clone(&self.shared);
        let _ = tokio::task::spawn_blocking(move || {
            let result = crate::storage::write_snapshot(&shared.config.data_dir, zxid, &body);
            report(&shared, zxid, result.map(Some));
        })
        .await;
    }
}

/// The `zk-snapshot` thread: streams the slices into the file and
/// finishes it; ends quietly when the snapshot is abandoned.
fn write_streamed(shared: &Shared, zxid: i64, mut queue: mpsc::Receiver<Slice>) {
    let started = std::time::Instant::now();
    let dir: &Path = &shared.config.data_dir;
    let result = (|| {
        let mut file = SnapshotAssembler::create(dir, zxid)?;
        while let Some(slice) = queue.blocking_recv() {
            match slice {
                Slice::Tail(bytes) => file.write_tail(&bytes)?,
                Slice::Finish { tail, head } => {
                    file.write_tail(&tail)?;
                    return file.finish(&head).map(Some);
                }
            }
        }
        Ok(None)
    })();
    if matches!(result, Ok(Some(_))) {
        // mntr's snapshottime: from the first slice to the sealed file.
        shared
            .metrics
            .observe_ms(crate::metrics::Summary::SnapshotTime, started.elapsed());
    }
    report(shared, zxid, result);
}

fn report(shared: &Shared, zxid: i64, result: std::io::Result<Option<std::path::PathBuf>>) {
    match result {
        Ok(Some(path)) => tracing::info!("snapshot written: {}", path.display()),
        Ok(None) => tracing::info!("snapshot 0x{zxid:x} abandoned"),
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
    fn a_snapshot_due_while_one_is_written_is_skipped_and_the_count_restarts() {
        let mut s = SnapSchedule::new(2);
        let (release, wait) = std::sync::mpsc::channel::<()>();
        s.running = Some(std::thread::spawn(move || {
            let _ = wait.recv();
        }));
        assert!(!s.count(), "busy: skipped");
        assert_eq!(s.since_last, 0, "the count starts over");
        release.send(()).unwrap();
        if let Some(thread) = s.running.take() {
            thread.join().unwrap();
        }
        assert!(s.count());
    }

    #[test]
    fn snapshot_is_due_after_threshold_txns() {
        let mut s = SnapSchedule::new(2);
        assert!(s.count(), "threshold 1 with snapCount 2");
        assert!(s.count());
    }
}
