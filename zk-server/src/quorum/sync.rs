//! Learner synchronisation decisions (ZAB.md §5.3) and log-shape rules, as
//! pure functions over a log.
//!
//! Logs obey ZAB's log-matching property: if two logs hold the same zxid,
//! they agree on everything up to it; and each epoch's part of a log is a
//! prefix `1..=k` of that epoch's proposals. The decisions below rely on it.

use super::types::{zxid_counter, zxid_epoch, LogEntry, Zxid};

/// How a leader brings a learner whose last zxid is `peer_last` up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPlan {
    /// The learner's log is a prefix of ours: send the entries from this
    /// index of our log on.
    Diff { from_index: usize },
    /// The learner has txns we lack, all in the epoch of `to`: it must drop
    /// everything after `to`, then receive our entries from `from_index`.
    Trunc { to: Zxid, from_index: usize },
    /// Too far behind, or diverged across an epoch boundary: send the whole
    /// committed state.
    Snap,
}

/// Position of `zxid` in a zxid-ordered log.
pub fn find(log: &[LogEntry], zxid: Zxid) -> Result<usize, usize> {
    log.binary_search_by_key(&zxid, |e| e.zxid)
}

/// The oldest zxid a learner may have for a DIFF: the leader keeps only the
/// newest `window` txns at hand (commitLogCount), and none before `base`,
/// the snapshot its log continues.
fn diff_floor(log: &[LogEntry], base: Zxid, window: usize) -> Zxid {
    if log.len() <= window {
        base
    } else {
        log[log.len() - window - 1].zxid
    }
}

/// Decides DIFF, TRUNC or SNAP for a learner at `peer_last` (ZAB.md §5.3),
/// given our log: the txns after `base` (the snapshot it continues; 0 for
/// the whole history).
pub fn plan_sync(log: &[LogEntry], base: Zxid, peer_last: Zxid, window: usize) -> SyncPlan {
    let floor = diff_floor(log, base, window);
    if peer_last < floor {
        // The txns after it are no longer at hand (purged or out of the
        // window): only our state can bring it up to date.
        return SyncPlan::Snap;
    }
    if peer_last == base {
        return SyncPlan::Diff { from_index: 0 };
    }
    match find(log, peer_last) {
        // Same zxid ⇒ same prefix: the learner just lacks our suffix.
        Ok(i) if peer_last >= floor => SyncPlan::Diff { from_index: i + 1 },
        Ok(_) => SyncPlan::Snap,
        Err(insert_at) => {
            // The learner logged `peer_last`, which we never had. The entries
            // it shares with us end at our newest zxid below it, provided that
            // one is in the same epoch: the learner got both from the one
            // leader of that epoch. Across epochs we cannot tell, so SNAP.
            // Before our first logged txn, the shared prefix would end at
            // `base`, the snapshot point.
            let prev = match insert_at.checked_sub(1) {
                Some(i) => log[i].zxid,
                None if base > 0 => base,
                None => return SyncPlan::Snap,
            };
            if zxid_epoch(prev) == zxid_epoch(peer_last) && prev >= floor {
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

    #[test]
    fn learner_at_our_last_zxid_gets_an_empty_diff() {
        let l = log(&[(1, 1), (1, 2)]);
        assert_eq!(
            plan_sync(&l, 0, make_zxid(1, 2), 500),
            SyncPlan::Diff { from_index: 2 }
        );
    }

    #[test]
    fn learner_with_a_prefix_gets_the_rest_as_diff() {
        let l = log(&[(1, 1), (1, 2), (2, 1)]);
        assert_eq!(
            plan_sync(&l, 0, make_zxid(1, 1), 500),
            SyncPlan::Diff { from_index: 1 }
        );
        assert_eq!(plan_sync(&l, 0, 0, 500), SyncPlan::Diff { from_index: 0 });
    }

    #[test]
    fn learner_with_an_extra_txn_in_the_same_epoch_is_truncated() {
        let l = log(&[(1, 1), (1, 2), (2, 1)]);
        assert_eq!(
            plan_sync(&l, 0, make_zxid(1, 3), 500),
            SyncPlan::Trunc {
                to: make_zxid(1, 2),
                from_index: 2
            }
        );
    }

    #[test]
    fn learner_diverged_across_an_epoch_gets_snap() {
        let l = log(&[(1, 1), (3, 1)]);
        assert_eq!(plan_sync(&l, 0, make_zxid(2, 1), 500), SyncPlan::Snap);
    }

    #[test]
    fn learner_older_than_the_diff_window_gets_snap() {
        let l = log(&[(1, 1), (1, 2), (1, 3), (1, 4)]);
        assert_eq!(plan_sync(&l, 0, make_zxid(1, 1), 2), SyncPlan::Snap);
        assert_eq!(plan_sync(&l, 0, 0, 2), SyncPlan::Snap);
        assert_eq!(
            plan_sync(&l, 0, make_zxid(1, 2), 2),
            SyncPlan::Diff { from_index: 2 }
        );
    }

    #[test]
    fn learner_before_the_snapshot_our_log_continues_gets_snap() {
        let l = log(&[(1, 5), (1, 6)]);
        let base = make_zxid(1, 4);
        assert_eq!(plan_sync(&l, base, make_zxid(1, 3), 500), SyncPlan::Snap);
        assert_eq!(plan_sync(&l, base, 0, 500), SyncPlan::Snap);
    }

    #[test]
    fn learner_at_the_snapshot_point_or_after_gets_diff() {
        let l = log(&[(1, 5), (1, 6)]);
        let base = make_zxid(1, 4);
        assert_eq!(
            plan_sync(&l, base, base, 500),
            SyncPlan::Diff { from_index: 0 }
        );
        assert_eq!(
            plan_sync(&l, base, make_zxid(1, 5), 500),
            SyncPlan::Diff { from_index: 1 }
        );
    }

    #[test]
    fn learner_past_an_empty_log_in_the_snapshot_epoch_is_truncated_to_it() {
        let base = make_zxid(1, 4);
        assert_eq!(
            plan_sync(&[], base, make_zxid(1, 7), 500),
            SyncPlan::Trunc {
                to: base,
                from_index: 0
            }
        );
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
