//! Fail-stop on durability errors (DESIGN.md "Fail-stop"): a member that
//! could not write its txn log, a snapshot or an epoch file, could not cut
//! or reopen its log, or was handed state it cannot decode, stops rather
//! than go on with a state it cannot vouch for. It acknowledges nothing
//! more (no reply, no ACK, no ACKEPOCH), closes its clients and its peer
//! links, `ruok` stops answering `imok`, and the `zk-server` binary exits
//! with [`FailStop::exit_code`] so a supervisor restarts it. A restart
//! recovers from what is on disk, which holds every acknowledged write.
//!
//! A full disk (ENOSPC) is handled the same way: the restarted process
//! fails again at its start-up snapshot until space is freed, then serves.
//! One rule for every write error is simpler to trust than a degraded
//! read-only mode that would have to prove it resumes correctly.

use tokio::sync::watch;

/// Why a member stopped itself. Errors are kept as text so the value can
/// be shared (cloned) with every part that reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FailStop {
    /// Appending to or syncing the txn log failed.
    #[error("txn log write failed: {0}")]
    TxnLog(String),
    /// A txn to persist found no open txn log.
    #[error("no open txn log to persist zxid {zxid:#x}")]
    LogGone { zxid: i64 },
    /// Reopening the txn log after TRUNC or SNAP failed.
    #[error("reopening the txn log failed: {0}")]
    ReopenLog(String),
    #[error("writing snapshot {zxid:#x} failed: {error}")]
    Snapshot { zxid: i64, error: String },
    #[error("writing {file} = {epoch} failed: {error}")]
    EpochFile {
        file: &'static str,
        epoch: u32,
        error: String,
    },
    #[error("truncating the txn log to {zxid:#x} failed: {error}")]
    Truncate { zxid: i64, error: String },
    #[error("reloading the database from disk failed: {0}")]
    Reload(String),
    /// A committed txn whose bytes do not decode: skipping it would fork
    /// this member's state from the ensemble's.
    #[error("committed txn {zxid:#x} does not decode: {error}")]
    UndecodableTxn { zxid: i64, error: String },
    #[error("the leader's snapshot at {zxid:#x} does not decode: {error}")]
    UndecodableSnapshot { zxid: i64, error: String },
    #[error("installing the leader's snapshot at {zxid:#x} failed: {error}")]
    InstallSnapshot { zxid: i64, error: String },
}

impl FailStop {
    /// The process exit code, Apache's `ExitCode` where it has one:
    /// 10 (TXNLOG_ERROR_TAKING_SNAPSHOT) for a snapshot, 13
    /// (QUORUM_PACKET_ERROR) for what the leader sent or asked (TRUNC,
    /// SNAP, a committed txn), 1 (UNEXPECTED_ERROR) for the rest.
    pub fn exit_code(&self) -> u8 {
        match self {
            FailStop::Snapshot { .. } => 10,
            FailStop::Truncate { .. }
            | FailStop::Reload(_)
            | FailStop::UndecodableTxn { .. }
            | FailStop::UndecodableSnapshot { .. }
            | FailStop::InstallSnapshot { .. } => 13,
            FailStop::TxnLog(_)
            | FailStop::LogGone { .. }
            | FailStop::ReopenLog(_)
            | FailStop::EpochFile { .. } => 1,
        }
    }
}

/// Whether the member is still fit to serve; shared by the writer task,
/// the snapshot tasks, the connections (`ruok`) and [`crate::Server`].
#[derive(Debug)]
pub(crate) struct Health {
    failure: watch::Sender<Option<FailStop>>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            failure: watch::channel(None).0,
        }
    }
}

impl Health {
    /// Records the failure (the first one wins) and logs it.
    pub(crate) fn fail(&self, why: FailStop) {
        self.failure.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            tracing::error!(exit_code = why.exit_code(), "fail-stop: {why}");
            *current = Some(why);
            true
        });
    }

    pub(crate) fn is_failed(&self) -> bool {
        self.failure.borrow().is_some()
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<Option<FailStop>> {
        self.failure.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_is_the_one_reported() {
        let health = Health::default();
        assert!(!health.is_failed());
        health.fail(FailStop::TxnLog("disk".into()));
        health.fail(FailStop::Reload("later".into()));
        assert_eq!(
            *health.subscribe().borrow(),
            Some(FailStop::TxnLog("disk".into()))
        );
    }

    #[test]
    fn exit_codes_follow_apaches() {
        let snap = FailStop::Snapshot {
            zxid: 1,
            error: "x".into(),
        };
        assert_eq!(snap.exit_code(), 10);
        assert_eq!(FailStop::Reload("x".into()).exit_code(), 13);
        assert_eq!(FailStop::TxnLog("x".into()).exit_code(), 1);
    }
}
