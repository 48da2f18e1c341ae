//! The writer task's side of fail-stop (crate::fail_stop): how it notices
//! a durability error and what it does then.

use super::Pipeline;
use crate::fail_stop::FailStop;

impl Pipeline {
    /// The txn log writer stopped: with the error it reported, or (its
    /// durability notices closed) without one.
    pub(super) fn txn_log_failed(&mut self) {
        let why = match self.log_failure.borrow().as_ref() {
            Some(failure) => failure.to_string(),
            None => "the txn log writer stopped".to_string(),
        };
        self.fail(FailStop::TxnLog(why));
    }

    /// Records a durability error: from now on nothing is acknowledged
    /// (the run loop stops at its next turn; the ensemble outputs still
    /// queued are dropped by `run_quorum_outputs`).
    pub(super) fn fail(&mut self, why: FailStop) {
        self.metrics()
            .add(crate::metrics::Counter::UnrecoverableError, 1);
        self.shared.health.fail(why);
        // No reply may follow: drop what waited for the log, and close
        // every client now rather than at the next turn of the loop.
        self.in_flight.clear();
        self.close_all_connections();
    }

    /// The member failed: close every client, stop the log thread (what it
    /// still writes is never acknowledged) and end the writer task. The
    /// `Server` stops listening and the peer links; the binary exits.
    pub(super) async fn stop_failed(&mut self) {
        self.in_flight.clear();
        self.queues.clear();
        self.close_all_connections();
        self.stop_snapshots().await;
        self.close_log().await;
    }
}
