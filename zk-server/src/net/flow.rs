//! Back-pressure between client connections and the pipeline.
//!
//! Two rules decide whether a connection's reader may take its next
//! request off the socket (docs/PERFORMANCE.md "Back-pressure"):
//!
//! * **Global outstanding limit** (`globalOutstandingLimit`, 1000 as in
//!   Apache's `ZooKeeperServer.shouldThrottle`): while more requests than
//!   the limit are read and not yet answered, server-wide, a connection that
//!   itself has a request outstanding stops reading. A connection with
//!   nothing outstanding may always send one, so every client keeps making
//!   progress however busy a flooder keeps the server.
//! * **Per-connection byte budget** (`clientMaxUnsentBytes`): while the
//!   replies queued for a connection and not yet written to its socket
//!   (plus the replies its outstanding requests are expected to make,
//!   estimated from the largest reply it was sent) pass the budget, the
//!   connection is not read. A client that does not read its replies thus
//!   stops being served instead of growing the server's memory; the writer
//!   closes it when no byte goes out for `clientStuckTimeoutMs`.
//! * **Hard cap**: what a connection is sent without asking (watch events,
//!   a persistent watch on a busy tree) does not wait for its reader, so
//!   an event that takes a connection's unsent bytes past
//!   [`HARD_CAP_FACTOR`] times the budget closes it at once: memory stays a
//!   function of the limits, not of how long a client stalls.
//!
//! The counters are shared atomics: the reader counts requests in, the
//! pipeline counts replies out (as queued, which is when Apache decrements
//! its count too), the connection's writer counts bytes written. `close`
//! returns whatever the connection still held to the global count, so a
//! request that never got an answer (its connection went away) cannot leak
//! into the limit.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use super::frames::OutFrame;
use crate::log_limit::RateLimit;
use crate::pipeline::Outbound;
use crate::warn_limited;

/// Unsent bytes past `budget × HARD_CAP_FACTOR` close the connection.
pub(crate) const HARD_CAP_FACTOR: usize = 4;

static OVER_CAP: RateLimit = RateLimit::new(std::time::Duration::from_secs(10));

/// The server-wide count of requests read and not yet answered.
#[derive(Debug)]
pub(crate) struct Admission {
    limit: usize,
    in_flight: AtomicUsize,
    /// Wakes throttled readers when the count falls below the limit.
    below_limit: Notify,
}

impl Admission {
    /// `limit == 0` disables the global rule (Apache: a limit of 0 or less
    /// is replaced by its default; we let an operator turn it off instead).
    pub fn new(limit: usize) -> Self {
        Admission {
            limit,
            in_flight: AtomicUsize::new(0),
            below_limit: Notify::new(),
        }
    }

    /// Requests read server-wide and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    fn over_limit(&self) -> bool {
        self.limit != 0 && self.in_flight() >= self.limit
    }

    fn add(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    fn sub(&self, n: usize) {
        if n == 0 {
            return;
        }
        let before = self.in_flight.fetch_sub(n, Ordering::Relaxed);
        // Throttled readers wake once the count is a quarter below the
        // limit, not at each answer: woken at the limit, a flooder would
        // take one request per wake-up and spend the server's CPU on
        // wake-ups instead of requests.
        let low = self.limit - self.limit / 4;
        if self.limit != 0 && before >= low && before - n < low {
            self.below_limit.notify_waiters();
        }
    }
}

/// What the reader should do before taking the next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gate {
    Open,
    /// Too many requests in flight server-wide.
    GlobalLimit,
    /// This connection's unsent replies are over its byte budget.
    Budget,
}

/// The pure rule: may a connection with these counters read one more
/// request?
pub(crate) fn gate(
    global_over_limit: bool,
    outstanding: usize,
    unsent: usize,
    largest_reply: usize,
    budget: usize,
) -> Gate {
    if outstanding == 0 && unsent <= budget {
        // Nothing pending of its own and its socket drains: always one more.
        return Gate::Open;
    }
    if global_over_limit && outstanding > 0 {
        return Gate::GlobalLimit;
    }
    let expected = unsent.saturating_add(outstanding.saturating_mul(largest_reply));
    if expected > budget {
        return Gate::Budget;
    }
    Gate::Open
}

/// One connection's counters, shared by its reader, its writer and the
/// pipeline.
#[derive(Debug)]
pub(crate) struct ConnFlow {
    admission: Arc<Admission>,
    budget: usize,
    outstanding: AtomicUsize,
    unsent: AtomicUsize,
    largest_reply: AtomicUsize,
    closed: AtomicBool,
    /// Wakes this connection's reader when a reply is queued or bytes go out.
    progress: Notify,
    /// Ends the connection (reader and writer) when the hard cap is passed.
    cancel: CancellationToken,
}

impl ConnFlow {
    pub fn new(admission: Arc<Admission>, budget: usize, cancel: CancellationToken) -> Self {
        ConnFlow {
            admission,
            cancel,
            budget,
            outstanding: AtomicUsize::new(0),
            unsent: AtomicUsize::new(0),
            largest_reply: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            progress: Notify::new(),
        }
    }

    /// Requests of this connection read and not yet answered.
    pub fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Relaxed)
    }

    /// Bytes queued for this connection and not yet written.
    pub fn unsent(&self) -> usize {
        self.unsent.load(Ordering::Relaxed)
    }

    pub fn gate(&self) -> Gate {
        gate(
            self.admission.over_limit(),
            self.outstanding(),
            self.unsent(),
            self.largest_reply.load(Ordering::Relaxed),
            self.budget,
        )
    }

    /// Waits until the reader may take one more request.
    pub async fn admitted(&self) {
        // The common case costs a few atomic loads: waiters are registered
        // (a lock on each Notify) only when the gate is closed.
        if self.gate() == Gate::Open {
            return;
        }
        loop {
            let global = self.admission.below_limit.notified();
            let local = self.progress.notified();
            tokio::pin!(global, local);
            // Registered before the check, so no wake-up is lost between.
            global.as_mut().enable();
            local.as_mut().enable();
            if self.gate() == Gate::Open {
                return;
            }
            tokio::select! {
                _ = global => {}
                _ = local => {}
            }
        }
    }

    /// The reader forwarded one request to the pipeline.
    pub fn request_read(&self) {
        if self.closed.load(Ordering::Relaxed) {
            return;
        }
        self.outstanding.fetch_add(1, Ordering::Relaxed);
        self.admission.add();
    }

    /// One request is done (answered, or dropped without an answer). When
    /// it was the connection's last, its reader may read again whatever
    /// the global count (an idle connection always may): wake it.
    fn request_done(&self) {
        let before = self
            .outstanding
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        if let Ok(before) = before {
            self.admission.sub(1);
            if before == 1 {
                self.progress.notify_one();
            }
        }
    }

    fn queued(&self, len: usize) {
        self.unsent.fetch_add(len, Ordering::Relaxed);
    }

    /// Counts an unrequested frame (an event), closing the connection when
    /// its unsent bytes pass the hard cap. Replies are not checked here:
    /// the reader's gate already bounds them by the budget.
    fn queued_unasked(&self, len: usize) {
        let unsent = self.unsent.fetch_add(len, Ordering::Relaxed) + len;
        let cap = self.budget.saturating_mul(HARD_CAP_FACTOR);
        if unsent > cap && !self.cancel.is_cancelled() {
            warn_limited!(
                OVER_CAP,
                "closing a connection with {unsent} unsent bytes (cap {cap}): \
                 the client does not read what it is sent"
            );
            self.cancel.cancel();
        }
    }

    /// True once the hard cap closed the connection.
    #[cfg(test)]
    fn cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// The writer put `len` bytes on the socket.
    pub fn written(&self, len: usize) {
        let _ = self
            .unsent
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(len))
            });
        self.progress.notify_one();
    }

    /// The connection is gone: what it still held leaves the global count.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        let held = self.outstanding.swap(0, Ordering::Relaxed);
        self.admission.sub(held);
        self.progress.notify_one();
    }
}

/// The pipeline's handle on a connection's outgoing queue: every frame it
/// queues is counted against the connection's budget.
#[derive(Debug, Clone)]
pub(crate) struct ConnOutput {
    tx: mpsc::UnboundedSender<Outbound>,
    flow: Arc<ConnFlow>,
}

impl ConnOutput {
    pub fn new(tx: mpsc::UnboundedSender<Outbound>, flow: Arc<ConnFlow>) -> Self {
        ConnOutput { tx, flow }
    }

    /// Queues a frame that answers no request (an event, a handshake).
    pub fn frame(&self, frame: impl Into<OutFrame>) {
        let frame = frame.into();
        self.flow.queued_unasked(frame.len());
        let _ = self.tx.send(Outbound::Frame(frame));
    }

    /// Queues the answer to one request read from this connection.
    pub fn reply(&self, frame: impl Into<OutFrame>) {
        let frame = frame.into();
        let len = frame.len();
        self.flow.largest_reply.fetch_max(len, Ordering::Relaxed);
        self.flow.queued(len);
        let _ = self.tx.send(Outbound::Frame(frame));
        self.flow.request_done();
    }

    /// A request of this connection will never be answered (its session
    /// is gone): it stops counting against the limits.
    pub fn dropped_request(&self) {
        self.flow.request_done();
    }

    /// Flush what is queued, then close the socket.
    pub fn close(&self) {
        let _ = self.tx.send(Outbound::Close);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    const BUDGET: usize = 1000;

    #[tokio::test]
    async fn throttled_readers_wake_only_a_quarter_below_the_limit() {
        let (admission, flow, out) = flow(8);
        for _ in 0..8 {
            flow.request_read();
        }
        let other = Arc::new(ConnFlow::new(
            Arc::clone(&admission),
            BUDGET,
            CancellationToken::new(),
        ));
        other.request_read();
        let waiting = {
            let other = Arc::clone(&other);
            tokio::spawn(async move { other.admitted().await })
        };
        // Let it park first (a current-thread runtime runs it on yield).
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "9 in flight, over the limit of 8");
        // Answers down to 6 (the limit's low mark) wake nobody.
        for _ in 0..3 {
            out.reply(Bytes::from_static(&[0; 4]));
        }
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "woken above the low mark");
        out.reply(Bytes::from_static(&[0; 4]));
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("woken below the low mark")
            .unwrap();
    }

    #[tokio::test]
    async fn a_throttled_reader_wakes_when_its_own_last_request_is_answered() {
        let (admission, flow, out) = flow(1);
        flow.request_read();
        flow.request_read();
        // Throttled: over the limit with requests of its own in flight.
        assert_eq!(flow.gate(), Gate::GlobalLimit);
        let _ = admission;
        let waiting = {
            let flow = Arc::clone(&flow);
            tokio::spawn(async move { flow.admitted().await })
        };
        out.reply(Bytes::from_static(&[0; 4]));
        out.reply(Bytes::from_static(&[0; 4]));
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("woken")
            .unwrap();
    }

    #[test]
    fn an_idle_connection_may_always_send_one_request() {
        assert_eq!(gate(true, 0, 0, 5000, BUDGET), Gate::Open);
    }

    #[test]
    fn the_global_limit_stops_connections_with_requests_in_flight() {
        assert_eq!(gate(true, 1, 0, 0, BUDGET), Gate::GlobalLimit);
        assert_eq!(gate(false, 1, 0, 0, BUDGET), Gate::Open);
    }

    #[test]
    fn unsent_bytes_over_the_budget_stop_reading() {
        assert_eq!(gate(false, 0, BUDGET + 1, 0, BUDGET), Gate::Budget);
        assert_eq!(gate(false, 0, BUDGET, 0, BUDGET), Gate::Open);
    }

    #[test]
    fn outstanding_requests_count_at_the_largest_reply_seen() {
        // Three requests that may each make a 300-byte reply fit; four do not.
        assert_eq!(gate(false, 3, 0, 300, BUDGET), Gate::Open);
        assert_eq!(gate(false, 4, 0, 300, BUDGET), Gate::Budget);
    }

    fn flow(limit: usize) -> (Arc<Admission>, Arc<ConnFlow>, ConnOutput) {
        let admission = Arc::new(Admission::new(limit));
        let flow = Arc::new(ConnFlow::new(
            Arc::clone(&admission),
            BUDGET,
            CancellationToken::new(),
        ));
        let (tx, rx) = mpsc::unbounded_channel();
        std::mem::forget(rx);
        let out = ConnOutput::new(tx, Arc::clone(&flow));
        (admission, flow, out)
    }

    #[test]
    fn a_reply_releases_its_request_and_counts_its_bytes_until_written() {
        let (admission, flow, out) = flow(10);
        flow.request_read();
        assert_eq!((admission.in_flight(), flow.outstanding()), (1, 1));
        out.reply(Bytes::from_static(&[0; 40]));
        assert_eq!((admission.in_flight(), flow.outstanding()), (0, 0));
        assert_eq!(flow.unsent(), 40);
        flow.written(40);
        assert_eq!(flow.unsent(), 0);
    }

    #[test]
    fn closing_returns_unanswered_requests_to_the_global_count_once() {
        let (admission, flow, out) = flow(10);
        flow.request_read();
        flow.request_read();
        flow.close();
        assert_eq!(admission.in_flight(), 0);
        // A late reply after the close must not count twice.
        out.reply(Bytes::from_static(&[0; 4]));
        assert_eq!(admission.in_flight(), 0);
        flow.request_read();
        assert_eq!(
            admission.in_flight(),
            0,
            "a closed connection reads nothing"
        );
    }

    #[tokio::test]
    async fn a_throttled_reader_wakes_when_the_global_count_drops() {
        let (admission, flow, out) = flow(2);
        flow.request_read();
        let other = Arc::new(ConnFlow::new(
            Arc::clone(&admission),
            BUDGET,
            CancellationToken::new(),
        ));
        other.request_read();
        assert_eq!(other.gate(), Gate::GlobalLimit);
        let waiting = {
            let other = Arc::clone(&other);
            tokio::spawn(async move { other.admitted().await })
        };
        out.reply(Bytes::from_static(&[0; 4]));
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("woken")
            .unwrap();
    }

    #[test]
    fn events_past_the_hard_cap_close_the_connection() {
        let (_, flow, out) = flow(10);
        out.frame(Bytes::from(vec![0; BUDGET * HARD_CAP_FACTOR]));
        assert!(!flow.cancelled(), "at the cap");
        out.frame(Bytes::from_static(&[0]));
        assert!(flow.cancelled(), "past the cap");
    }
}
