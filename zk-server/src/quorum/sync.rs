//! Learner synchronisation decisions (ZAB.md §5.3) and log-shape rules, as
//! pure functions over a log.
//!
//! Logs obey ZAB's log-matching property: if two logs hold the same zxid,
//! they agree on everything up to it; and each epoch's part of a log is a
//! prefix `1..=k` of that epoch's proposals. The decisions below rely on it.

use super::history::LogHistory;
use super::types::{zxid_counter, zxid_epoch, LogEntry, Zxid};

/// How a leader brings a learner whose last zxid is `peer_last` up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPlan {
    /// The learner's log is a prefix of ours: send the entries from this
    /// index of our in-memory log on.
    Diff { from_index: usize },
    /// The learner has txns we lack, all in the epoch of `to`: it must drop
    /// everything after `to`, then receive our entries from `from_index`.
    Trunc { to: Zxid, from_index: usize },
    /// The learner is behind our in-memory log but its history is ours and
    /// the log files hold what it lacks, small enough to send: our logged
    /// txns after `peer_last` up to `upto` (the zxid our in-memory log
    /// continues) from the files, then the in-memory entries from
    /// `from_index`.
    DiffFromDisk { upto: Zxid, from_index: usize },
    /// Too far behind, or diverged across an epoch boundary: send the whole
    /// committed state.
    Snap,
}

/// What the log files offer beyond the in-memory log.
#[derive(Debug, Clone, Copy)]
pub struct DiskView<'a> {
    /// The files hold every txn after this zxid (the oldest snapshot).
    pub floor: Zxid,
    pub history: &'a LogHistory,
    /// The most a DIFF from the files may send: the state's size ×
    /// snapshotSizeFactor (Apache's `txnLogSizeLimit`).
    pub max_bytes: u64,
}

/// Position of `zxid` in a zxid-ordered log.
pub fn find(log: &[LogEntry], zxid: Zxid) -> Result<usize, usize> {
    log.binary_search_by_key(&zxid, |e| e.zxid)
}

/// Decides DIFF, TRUNC or SNAP for a learner at `peer_last` (ZAB.md §5.3),
/// given our in-memory log (the txns after `base`) and what the files hold
/// before it. As Apache: DIFF from memory when the learner is within it
/// (Apache's committedLog), else DIFF from the txn log files when they
/// hold its history and are smaller than the snapshot × the size factor,
/// else SNAP.
pub fn plan_sync(log: &[LogEntry], base: Zxid, peer_last: Zxid, disk: &DiskView<'_>) -> SyncPlan {
    if peer_last < base {
        return plan_from_disk(base, peer_last, disk);
    }
    if peer_last == base {
        return SyncPlan::Diff { from_index: 0 };
    }
    match find(log, peer_last) {
        // Same zxid ⇒ same prefix: the learner just lacks our suffix.
        Ok(i) => SyncPlan::Diff { from_index: i + 1 },
        Err(insert_at) => {
            // The learner logged `peer_last`, which we never had. The entries
            // it shares with us end at our newest zxid below it, provided that
            // one is in the same epoch: the learner got both from the one
            // leader of that epoch. Across epochs we cannot tell, so SNAP.
            // Before our first logged txn, the shared prefix would end at
            // `base`, where the in-memory log starts.
            let prev = match insert_at.checked_sub(1) {
                Some(i) => log[i].zxid,
                None if base > 0 => base,
                None => return SyncPlan::Snap,
            };
            if zxid_epoch(prev) == zxid_epoch(peer_last) {
                SyncPlan::Trunc {
                    to: prev,
                    from_index: insert_at,
                }
            } else {
                SyncPlan::Snap
            }
        }
    }
}

/// A learner older than the in-memory log (`peer_last < base`).
fn plan_from_disk(base: Zxid, peer_last: Zxid, disk: &DiskView<'_>) -> SyncPlan {
    let ours = disk.history.holds(peer_last) || (peer_last == 0 && disk.floor == 0);
    let small = disk
        .history
        .bytes_after(peer_last)
        .is_some_and(|bytes| bytes <= disk.max_bytes);
    if peer_last >= disk.floor && ours && small {
        SyncPlan::DiffFromDisk {
            upto: base,
            from_index: 0,
        }
    } else {
        SyncPlan::Snap
    }
}

/// True when `next` may directly follow `last` in a log: the next counter of
/// the same epoch, or the first txn of a later epoch.
pub fn follows(last: Zxid, next: Zxid) -> bool {
    if zxid_epoch(next) == zxid_epoch(last) {
        zxid_counter(next) == zxid_counter(last).wrapping_add(1) && zxid_counter(next) != 0
    } else {
        zxid_epoch(next) > zxid_epoch(last) && zxid_counter(next) == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quorum::types::make_zxid;
    use bytes::Bytes;

    fn log(zxids: &[(u32, u32)]) -> Vec<LogEntry> {
        zxids
            .iter()
            .map(|&(e, c)| LogEntry {
                zxid: make_zxid(e, c),
                payload: Bytes::new(),
            })
            .collect()
    }

    /// A history of epoch 1, txns 1..=count of `len` bytes each.
    fn history(count: u32, len: usize) -> LogHistory {
        let mut h = LogHistory::default();
        for c in 1..=count {
            h.record(make_zxid(1, c), len);
        }
        h
    }

    fn no_disk(h: &LogHistory) -> DiskView<'_> {
        DiskView {
            floor: 0,
            history: h,
            max_bytes: 0,
        }
    }

    fn plan(l: &[LogEntry], base: Zxid, peer_last: Zxid) -> SyncPlan {
        plan_sync(l, base, peer_last, &no_disk(&LogHistory::default()))
    }

    #[test]
    fn learner_at_our_last_zxid_gets_an_empty_diff() {
        let l = log(&[(1, 1), (1, 2)]);
        assert_eq!(
            plan(&l, 0, make_zxid(1, 2)),
            SyncPlan::Diff { from_index: 2 }
        );
    }

    #[test]
    fn learner_with_a_prefix_gets_the_rest_as_diff() {
        let l = log(&[(1, 1), (1, 2), (2, 1)]);
        assert_eq!(
            plan(&l, 0, make_zxid(1, 1)),
            SyncPlan::Diff { from_index: 1 }
        );
        assert_eq!(plan(&l, 0, 0), SyncPlan::Diff { from_index: 0 });
    }

    #[test]
    fn learner_with_an_extra_txn_in_the_same_epoch_is_truncated() {
        let l = log(&[(1, 1), (1, 2), (2, 1)]);
        assert_eq!(
            plan(&l, 0, make_zxid(1, 3)),
            SyncPlan::Trunc {
                to: make_zxid(1, 2),
                from_index: 2
            }
        );
    }

    #[test]
    fn learner_diverged_across_an_epoch_gets_snap() {
        let l = log(&[(1, 1), (3, 1)]);
        assert_eq!(plan(&l, 0, make_zxid(2, 1)), SyncPlan::Snap);
    }

    #[test]
    fn learner_anywhere_in_the_in_memory_log_gets_diff() {
        let l = log(&[(1, 5), (1, 6)]);
        let base = make_zxid(1, 4);
        assert_eq!(plan(&l, base, base), SyncPlan::Diff { from_index: 0 });
        assert_eq!(
            plan(&l, base, make_zxid(1, 5)),
            SyncPlan::Diff { from_index: 1 }
        );
    }

    #[test]
    fn learner_past_an_empty_log_in_the_snapshot_epoch_is_truncated_to_it() {
        let base = make_zxid(1, 4);
        assert_eq!(
            plan(&[], base, make_zxid(1, 7)),
            SyncPlan::Trunc {
                to: base,
                from_index: 0
            }
        );
    }

    #[test]
    fn learner_behind_memory_gets_diff_from_disk_while_the_logs_are_small() {
        // 10,000 txns of 100 bytes; memory holds those after 1:9900.
        let h = history(10_000, 100);
        let l: Vec<LogEntry> = (9_901..=10_000)
            .map(|c| log(&[(1, c)])[0].clone())
            .collect();
        let base = make_zxid(1, 9_900);
        let disk = DiskView {
            floor: 0,
            history: &h,
            max_bytes: 600_000,
        };
        assert_eq!(
            plan_sync(&l, base, make_zxid(1, 5_000), &disk),
            SyncPlan::DiffFromDisk {
                upto: base,
                from_index: 0
            },
            "500 kB of logs against a 600 kB limit"
        );
        assert_eq!(
            plan_sync(&l, base, make_zxid(1, 1_000), &disk),
            SyncPlan::Snap,
            "900 kB of logs is more than the snapshot x the factor"
        );
    }

    #[test]
    fn learner_behind_the_oldest_snapshot_or_with_a_history_we_never_logged_gets_snap() {
        let h = history(1000, 1);
        let base = make_zxid(1, 900);
        let disk = DiskView {
            floor: make_zxid(1, 300),
            history: &h,
            max_bytes: u64::MAX,
        };
        assert_eq!(
            plan_sync(&[], base, make_zxid(1, 200), &disk),
            SyncPlan::Snap
        );
        assert_eq!(plan_sync(&[], base, make_zxid(0, 0), &disk), SyncPlan::Snap);
        let other_epoch = make_zxid(2, 5);
        let disk = DiskView { floor: 0, ..disk };
        assert_eq!(
            plan_sync(&[], make_zxid(3, 1), other_epoch, &disk),
            SyncPlan::Snap
        );
        assert!(matches!(
            plan_sync(&[], base, make_zxid(1, 400), &disk),
            SyncPlan::DiffFromDisk { .. }
        ));
    }

    #[test]
    fn zxids_follow_within_and_across_epochs() {
        assert!(follows(make_zxid(1, 1), make_zxid(1, 2)));
        assert!(!follows(make_zxid(1, 1), make_zxid(1, 3)));
        assert!(follows(make_zxid(1, 9), make_zxid(3, 1)));
        assert!(!follows(make_zxid(1, 9), make_zxid(3, 2)));
        assert!(follows(0, make_zxid(1, 1)));
    }
}
