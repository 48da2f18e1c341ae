//! What a peer knows of its logged history beyond the in-memory window,
//! in a size that does not grow with the number of txns: the last zxid of
//! each epoch (so it can tell whether a learner's zxid is one it logged),
//! and sampled byte offsets (so it can tell how much a DIFF from the log
//! files would send, for Apache's rule: DIFF from the logs only while they
//! are smaller than the snapshot × `snapshotSizeFactor`).
//!
//! Samples older than the largest DIFF the rule could allow are dropped
//! ([`LogHistory::prune`]), so the history stays within the state's size
//! divided by the sampling step.

use std::collections::{BTreeMap, VecDeque};

use super::types::{zxid_epoch, Epoch, Zxid};

/// A sample is taken after this many bytes ...
const MARK_BYTES: u64 = 64 * 1024;
/// ... or this many txns since the previous one, whichever comes first.
const MARK_TXNS: u64 = 1000;

/// The shape of the logged history (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogHistory {
    /// The last logged zxid of each epoch the log holds.
    epoch_ends: BTreeMap<Epoch, Zxid>,
    /// Bytes of every txn recorded.
    total_bytes: u64,
    /// (zxid, bytes recorded before it), oldest first.
    marks: VecDeque<(Zxid, u64)>,
    since_mark: (u64, u64),
}

impl LogHistory {
    /// Notes a logged txn of `len` bytes (in zxid order).
    pub fn record(&mut self, zxid: Zxid, len: usize) {
        let (txns, bytes) = self.since_mark;
        if self.marks.is_empty() || txns >= MARK_TXNS || bytes >= MARK_BYTES {
            self.marks.push_back((zxid, self.total_bytes));
            self.since_mark = (0, 0);
        }
        let len = len as u64;
        self.since_mark.0 += 1;
        self.since_mark.1 += len;
        self.total_bytes += len;
        self.epoch_ends.insert(zxid_epoch(zxid), zxid);
    }

    /// Every txn after `to` was dropped from the log (TRUNC).
    pub fn truncate(&mut self, to: Zxid) {
        self.epoch_ends
            .retain(|_, end| *end <= to || zxid_epoch(*end) == zxid_epoch(to));
        if let Some(end) = self.epoch_ends.get_mut(&zxid_epoch(to)) {
            *end = (*end).min(to);
        }
        self.marks.retain(|(z, _)| *z <= to);
        // The byte count stays: an over-estimate only makes DIFFs rarer.
    }

    /// True when the log holds `zxid`: within each epoch a log is a prefix
    /// of that epoch's proposals, so a zxid up to our last of its epoch is
    /// one we logged (ZAB's log matching).
    pub fn holds(&self, zxid: Zxid) -> bool {
        self.epoch_ends
            .get(&zxid_epoch(zxid))
            .is_some_and(|end| zxid <= *end)
    }

    /// At least the bytes logged after `zxid`; `None` when that is older
    /// than every sample (too old to say).
    pub fn bytes_after(&self, zxid: Zxid) -> Option<u64> {
        let (_, before) = self.marks.iter().rev().find(|(z, _)| *z <= zxid)?;
        Some(self.total_bytes - before)
    }

    /// Drops what no DIFF of at most `max_bytes` can need, and the epochs
    /// that end before `floor` (older history is gone from the files).
    pub fn prune(&mut self, max_bytes: u64, floor: Zxid) {
        while self.marks.len() > 1 && self.total_bytes - self.marks[1].1 > max_bytes {
            self.marks.pop_front();
        }
        while self.marks.len() > 1 && self.marks[1].0 <= floor {
            self.marks.pop_front();
        }
        self.epoch_ends
            .retain(|e, end| *end >= floor || *e == zxid_epoch(floor));
    }

    /// Samples held (for tests of the bound).
    pub fn samples(&self) -> usize {
        self.marks.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quorum::types::make_zxid;

    fn history(epochs: &[(Epoch, u32)], len: usize) -> LogHistory {
        let mut h = LogHistory::default();
        for &(e, count) in epochs {
            for c in 1..=count {
                h.record(make_zxid(e, c), len);
            }
        }
        h
    }

    #[test]
    fn a_zxid_up_to_the_end_of_its_epoch_is_held() {
        let h = history(&[(1, 5), (3, 2)], 10);
        assert!(h.holds(make_zxid(1, 5)));
        assert!(h.holds(make_zxid(3, 1)));
        assert!(!h.holds(make_zxid(1, 6)), "past our end of epoch 1");
        assert!(!h.holds(make_zxid(2, 1)), "an epoch we never logged");
    }

    #[test]
    fn truncation_forgets_what_followed() {
        let mut h = history(&[(1, 5), (2, 3)], 10);
        h.truncate(make_zxid(1, 3));
        assert!(h.holds(make_zxid(1, 3)));
        assert!(!h.holds(make_zxid(1, 4)));
        assert!(!h.holds(make_zxid(2, 1)));
    }

    #[test]
    fn bytes_after_a_zxid_are_never_under_counted() {
        let h = history(&[(1, 5000)], 100);
        let after = h.bytes_after(make_zxid(1, 4000)).unwrap();
        assert!(after >= 1000 * 100, "{after}");
        assert!(after <= (1000 + MARK_TXNS) * 100, "{after}");
    }

    #[test]
    fn pruning_keeps_the_samples_within_the_largest_diff() {
        let mut h = history(&[(1, 100_000)], 100);
        let before = h.samples();
        h.prune(1_000_000, 0);
        assert!(h.samples() < before);
        assert!(h.samples() <= 1_000_000 / MARK_BYTES as usize + 2);
        assert_eq!(h.bytes_after(make_zxid(1, 10)), None, "too old to DIFF");
        assert!(h.bytes_after(make_zxid(1, 99_990)).is_some());
    }
}
