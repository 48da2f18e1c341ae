//! Apache ZooKeeper 3.8's `ServerMetrics`, for the metrics that mean
//! something for this server: the same names, the same kinds (counter,
//! basic summary, advanced summary with percentiles) and the same units
//! (milliseconds for times, counts and bytes otherwise), so that `mntr`,
//! the AdminServer's `monitor` and the Prometheus endpoint read as
//! Apache's do and existing dashboards and alerts keep working.
//!
//! Each server has its own [`Metrics`] (tests run several in one process).
//! Recording is an atomic add or an uncontended mutex: cheap enough for the
//! writer task. What Apache measures inside machinery we do not have
//! (the JVM, its request-processor queues, Netty, response caches) is not
//! invented here; `docs/`-style list in [`OMITTED`].

pub mod prometheus;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// A counter (Apache `metricsContext.getCounter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// Bytes of client requests read (frames with their length prefix).
    BytesReceived,
    /// Handshakes (ConnectRequests) received.
    ConnectionRequest,
    /// Sessions expired by the session tracker.
    StaleSessionsExpired,
    /// Failures that stop the server from serving (txn log).
    UnrecoverableError,
    /// AdminServer requests served over plain HTTP.
    InsecureAdmin,
    /// Bytes of replies and notifications queued to clients.
    ResponseBytes,
}

impl Counter {
    pub const ALL: &'static [Counter] = &[
        Counter::BytesReceived,
        Counter::ConnectionRequest,
        Counter::StaleSessionsExpired,
        Counter::UnrecoverableError,
        Counter::InsecureAdmin,
        Counter::ResponseBytes,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Counter::BytesReceived => "bytes_received_count",
            Counter::ConnectionRequest => "connection_request_count",
            Counter::StaleSessionsExpired => "stale_sessions_expired",
            Counter::UnrecoverableError => "unrecoverable_error_count",
            Counter::InsecureAdmin => "insecure_admin_count",
            Counter::ResponseBytes => "response_bytes",
        }
    }
}

/// Apache's `DetailLevel`: basic summaries report avg/min/max/count/sum,
/// advanced ones percentiles too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Basic,
    Advanced,
}

/// A summary (Apache `metricsContext.getSummary`). Times in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Summary {
    /// Request-to-reply time of reads (and pings, syncs), as Apache's.
    ReadLatency,
    /// Request-to-reply time of writes (a txn was logged).
    UpdateLatency,
    /// Serialising and writing a snapshot file.
    SnapshotTime,
    /// Loading the database at start (snapshot + log replay).
    DbInitTime,
    StartupTxnsLoaded,
    /// Watchers triggered by one change, per event type.
    NodeCreatedWatchCount,
    NodeDeletedWatchCount,
    NodeChangedWatchCount,
    NodeChildrenWatchCount,
    /// Preparing a write (ACL checks, txn building).
    PrepProcessTime,
    /// Serving a read from the tree.
    ReadFinalProcTime,
    /// Applying a durable txn to the tree.
    WriteFinalProcTime,
    /// Preparing a closeSession txn.
    CloseSessionPrepTime,
}

impl Summary {
    pub const ALL: &'static [Summary] = &[
        Summary::ReadLatency,
        Summary::UpdateLatency,
        Summary::SnapshotTime,
        Summary::DbInitTime,
        Summary::StartupTxnsLoaded,
        Summary::NodeCreatedWatchCount,
        Summary::NodeDeletedWatchCount,
        Summary::NodeChangedWatchCount,
        Summary::NodeChildrenWatchCount,
        Summary::PrepProcessTime,
        Summary::ReadFinalProcTime,
        Summary::WriteFinalProcTime,
        Summary::CloseSessionPrepTime,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Summary::ReadLatency => "readlatency",
            Summary::UpdateLatency => "updatelatency",
            Summary::SnapshotTime => "snapshottime",
            Summary::DbInitTime => "dbinittime",
            Summary::StartupTxnsLoaded => "startup_txns_loaded",
            Summary::NodeCreatedWatchCount => "node_created_watch_count",
            Summary::NodeDeletedWatchCount => "node_deleted_watch_count",
            Summary::NodeChangedWatchCount => "node_changed_watch_count",
            Summary::NodeChildrenWatchCount => "node_children_watch_count",
            Summary::PrepProcessTime => "prep_process_time",
            Summary::ReadFinalProcTime => "read_final_proc_time_ms",
            Summary::WriteFinalProcTime => "write_final_proc_time_ms",
            Summary::CloseSessionPrepTime => "close_session_prep_time",
        }
    }

    /// As declared in Apache's `ServerMetrics`.
    pub fn level(self) -> Level {
        match self {
            Summary::ReadLatency
            | Summary::UpdateLatency
            | Summary::ReadFinalProcTime
            | Summary::WriteFinalProcTime
            | Summary::CloseSessionPrepTime => Level::Advanced,
            _ => Level::Basic,
        }
    }
}

/// Apache 3.8 `mntr` keys we deliberately do not report, and why. The
/// `tests/ops_metrics.rs` comparison with a running Apache checks that
/// every Apache key is either ours or listed here.
pub const OMITTED: &[(&str, &str)] = &[
    ("jvm_pause_time_ms", "no JVM, no GC pauses"),
    ("outstanding_tls_handshake", "no TLS on the client port yet"),
    (
        "non_mtls_remote_conn_count",
        "TLS connections without a client certificate: no TLS yet",
    ),
    (
        "non_mtls_local_conn_count",
        "TLS connections without a client certificate: no TLS yet",
    ),
    ("tls_handshake_exceeded", "no TLS on the client port yet"),
    ("netty_queued_buffer_capacity", "no Netty"),
    ("connection_drop_count", "no connection-drop probability"),
    (
        "connection_revalidate_count",
        "no session revalidation (no local sessions)",
    ),
    (
        "revalidate_count",
        "no session revalidation (no local sessions)",
    ),
    (
        "connection_token_deficit",
        "no connection throttling token bucket",
    ),
    ("response_packet_cache_hits", "no serialized-response cache"),
    (
        "response_packet_cache_misses",
        "no serialized-response cache",
    ),
    (
        "response_packet_get_children_cache_hits",
        "no serialized-response cache",
    ),
    (
        "response_packet_get_children_cache_misses",
        "no serialized-response cache",
    ),
    (
        "add_dead_watcher_stall_time",
        "watches are dropped at once, no dead-watcher cleaner",
    ),
    (
        "dead_watchers_queued",
        "watches are dropped at once, no dead-watcher cleaner",
    ),
    (
        "dead_watchers_cleared",
        "watches are dropped at once, no dead-watcher cleaner",
    ),
    (
        "dead_watchers_cleaner_latency",
        "watches are dropped at once, no dead-watcher cleaner",
    ),
    (
        "watch_bytes",
        "Apache's estimate of its own watch-table objects",
    ),
    (
        "digest_mismatches_count",
        "no digest checks between members",
    ),
    ("ensemble_auth_success", "no quorum SASL"),
    ("ensemble_auth_fail", "no quorum SASL"),
    ("ensemble_auth_skip", "no quorum SASL"),
    (
        "prep_processor_queue_time_ms",
        "no PrepRequestProcessor queue: one writer task",
    ),
    (
        "prep_processor_queue_size",
        "no PrepRequestProcessor queue: one writer task",
    ),
    (
        "prep_processor_request_queued",
        "no PrepRequestProcessor queue: one writer task",
    ),
    (
        "outstanding_changes_queued",
        "outstanding changes are internal to db::prep",
    ),
    (
        "outstanding_changes_removed",
        "outstanding changes are internal to db::prep",
    ),
    (
        "proposal_process_time",
        "ensemble internals not yet instrumented",
    ),
    ("requests_in_session_queue", "CommitProcessor internals"),
    ("pending_session_queue_size", "CommitProcessor internals"),
    (
        "reads_after_write_in_session_queue",
        "CommitProcessor internals",
    ),
    (
        "reads_issued_from_session_queue",
        "CommitProcessor internals",
    ),
    ("session_queues_drained", "CommitProcessor internals"),
    (
        "time_waiting_empty_pool_in_commit_processor_read_ms",
        "CommitProcessor internals",
    ),
    (
        "write_batch_time_in_commit_processor",
        "CommitProcessor internals",
    ),
    (
        "concurrent_request_processing_in_commit_processor",
        "CommitProcessor internals",
    ),
    ("read_commit_proc_req_queued", "CommitProcessor internals"),
    ("write_commit_proc_req_queued", "CommitProcessor internals"),
    ("commit_commit_proc_req_queued", "CommitProcessor internals"),
    ("request_commit_queued", "CommitProcessor internals"),
    ("read_commit_proc_issued", "CommitProcessor internals"),
    ("write_commit_proc_issued", "CommitProcessor internals"),
    ("read_commitproc_time_ms", "CommitProcessor internals"),
    ("write_commitproc_time_ms", "CommitProcessor internals"),
    ("commit_process_time", "CommitProcessor internals"),
    (
        "requests_not_forwarded_to_commit_processor",
        "CommitProcessor internals",
    ),
    ("local_write_committed_time_ms", "CommitProcessor internals"),
    (
        "server_write_committed_time_ms",
        "CommitProcessor internals",
    ),
    ("om_proposal_process_time_ms", "observer-master internals"),
    ("om_commit_process_time_ms", "observer-master internals"),
    (
        "skip_learner_request_to_next_processor_count",
        "learner-processor internals",
    ),
    (
        "learner_request_processor_queue_size",
        "learner-processor internals",
    ),
    (
        "sync_processor_queue_and_flush_time_ms",
        "SyncRequestProcessor internals",
    ),
    (
        "sync_processor_queue_size",
        "SyncRequestProcessor internals",
    ),
    (
        "sync_processor_request_queued",
        "SyncRequestProcessor internals",
    ),
    (
        "sync_processor_queue_time_ms",
        "SyncRequestProcessor internals",
    ),
    (
        "sync_processor_queue_flush_time_ms",
        "SyncRequestProcessor internals",
    ),
    ("sync_process_time", "SyncRequestProcessor internals"),
    (
        "sync_processor_batch_size",
        "the txn log's batches are not yet reported per batch",
    ),
    (
        "fsynctime",
        "the txn-log thread does not yet report fsync durations",
    ),
    (
        "fsync_threshold_exceed_count",
        "the txn-log thread does not yet report fsync durations",
    ),
    (
        "request_throttle_queue_time_ms",
        "no RequestThrottler (back-pressure is per connection)",
    ),
    (
        "request_throttle_wait_count",
        "no RequestThrottler (back-pressure is per connection)",
    ),
    (
        "throttled_ops",
        "no RequestThrottler (back-pressure is per connection)",
    ),
    (
        "stale_requests",
        "no RequestThrottler (back-pressure is per connection)",
    ),
    (
        "stale_requests_dropped",
        "no RequestThrottler (back-pressure is per connection)",
    ),
    (
        "stale_replies",
        "no RequestThrottler (back-pressure is per connection)",
    ),
    (
        "large_requests_rejected",
        "no largeRequestMaxBytes limit (jute.maxbuffer closes)",
    ),
    (
        "sessionless_connections_expired",
        "not yet counted by the connection tasks",
    ),
    (
        "unsuccessful_handshake",
        "not yet counted by the connection tasks",
    ),
    (
        "cnxn_closed_without_zk_server_running",
        "not yet counted by the connection tasks",
    ),
    (
        "socket_closing_time",
        "not yet counted by the connection tasks",
    ),
    (
        "unavailable_time",
        "ensemble internals not yet instrumented",
    ),
    (
        "leader_unavailable_time",
        "ensemble internals not yet instrumented",
    ),
    ("election_time", "ensemble internals not yet instrumented"),
    ("looking_count", "ensemble internals not yet instrumented"),
    ("diff_count", "ensemble internals not yet instrumented"),
    ("proposal_count", "ensemble internals not yet instrumented"),
    (
        "quit_leading_due_to_disloyal_voter",
        "ensemble internals not yet instrumented",
    ),
    (
        "learner_proposal_received_count",
        "ensemble internals not yet instrumented",
    ),
    (
        "learner_commit_received_count",
        "ensemble internals not yet instrumented",
    ),
    (
        "follower_sync_time",
        "ensemble internals not yet instrumented",
    ),
    (
        "observer_sync_time",
        "ensemble internals not yet instrumented",
    ),
    (
        "inflight_snap_count",
        "ensemble internals not yet instrumented",
    ),
    (
        "inflight_diff_count",
        "ensemble internals not yet instrumented",
    ),
    (
        "propagation_latency",
        "ensemble internals not yet instrumented",
    ),
    (
        "proposal_latency",
        "ensemble internals not yet instrumented",
    ),
    (
        "proposal_ack_creation_latency",
        "ensemble internals not yet instrumented",
    ),
    (
        "commit_propagation_latency",
        "ensemble internals not yet instrumented",
    ),
    (
        "quorum_ack_latency",
        "ensemble internals not yet instrumented",
    ),
    ("ack_latency", "ensemble internals not yet instrumented"),
    (
        "learner_handler_qp_size",
        "ensemble internals not yet instrumented",
    ),
    (
        "learner_handler_qp_time_ms",
        "ensemble internals not yet instrumented",
    ),
    (
        "startup_txns_load_time",
        "recovery is timed as a whole: dbinittime",
    ),
    (
        "startup_snap_load_time",
        "recovery is timed as a whole: dbinittime",
    ),
    (
        "read_per_namespace",
        "request sizes are not known past the connection task",
    ),
    (
        "write_per_namespace",
        "request sizes are not known past the connection task",
    ),
];

/// How many samples an advanced summary keeps for its percentiles (a
/// uniform reservoir, as Apache's; memory does not grow with traffic).
const RESERVOIR: usize = 1028;

#[derive(Debug, Clone, Default)]
struct SummaryData {
    count: u64,
    sum: i64,
    min: i64,
    max: i64,
    /// Advanced summaries only.
    samples: Vec<i64>,
}

impl SummaryData {
    fn observe(&mut self, value: i64, level: Level) {
        if self.count == 0 || value < self.min {
            self.min = value;
        }
        if self.count == 0 || value > self.max {
            self.max = value;
        }
        self.count += 1;
        self.sum = self.sum.saturating_add(value);
        if level == Level::Advanced {
            if self.samples.len() < RESERVOIR {
                self.samples.push(value);
            } else {
                // Algorithm R: keep each of the `count` values seen with
                // equal probability.
                let slot = rand::random::<u64>() % self.count;
                if let Some(s) = self.samples.get_mut(slot as usize) {
                    *s = value;
                }
            }
        }
    }

    /// Apache's `AvgMinMaxCounter.getAvg`: 4 decimals.
    fn avg(&self) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        ((self.sum as f64 / self.count as f64) * 10_000.0).round() / 10_000.0
    }

    /// The `q` quantile of the reservoir (Dropwizard's snapshot: the value
    /// at position q·(n+1), interpolated), truncated to a long as Apache's
    /// `AvgMinMaxPercentileCounter` prints it.
    fn quantile(&self, q: f64) -> Option<f64> {
        if self.samples.is_empty() {
            return None;
        }
        let mut sorted = self.samples.clone();
        sorted.sort_unstable();
        let pos = q * (sorted.len() + 1) as f64;
        let index = pos.floor() as usize;
        if index < 1 {
            return Some(sorted[0] as f64);
        }
        if index >= sorted.len() {
            return Some(sorted[sorted.len() - 1] as f64);
        }
        let lower = sorted[index - 1] as f64;
        let upper = sorted[index] as f64;
        Some(lower + (pos - pos.floor()) * (upper - lower))
    }
}

/// One server's counters and summaries.
#[derive(Debug)]
pub struct Metrics {
    counters: Vec<AtomicU64>,
    summaries: Vec<Mutex<SummaryData>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            counters: Counter::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
            summaries: Summary::ALL
                .iter()
                .map(|_| Mutex::new(SummaryData::default()))
                .collect(),
        }
    }
}

/// A summary's numbers at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct SummarySnapshot {
    pub count: u64,
    pub sum: i64,
    pub min: i64,
    pub max: i64,
    pub avg: f64,
    /// (q, value) for the advanced percentiles 0.5, 0.95, 0.99, 0.999.
    pub percentiles: Vec<(f64, Option<f64>)>,
}

/// The percentiles Apache's mntr prints for an advanced summary.
pub const MNTR_PERCENTILES: &[(f64, &str)] =
    &[(0.5, "p50"), (0.95, "p95"), (0.99, "p99"), (0.999, "p999")];

impl Metrics {
    pub fn add(&self, counter: Counter, n: u64) {
        self.counters[counter as usize].fetch_add(n, Ordering::Relaxed);
    }

    pub fn counter(&self, counter: Counter) -> u64 {
        self.counters[counter as usize].load(Ordering::Relaxed)
    }

    pub fn observe(&self, summary: Summary, value: i64) {
        self.lock(summary).observe(value, summary.level());
    }

    /// Observes a duration in whole milliseconds.
    pub fn observe_ms(&self, summary: Summary, elapsed: std::time::Duration) {
        self.observe(summary, elapsed.as_millis() as i64);
    }

    fn lock(&self, summary: Summary) -> std::sync::MutexGuard<'_, SummaryData> {
        self.summaries[summary as usize]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    pub fn summary(&self, summary: Summary) -> SummarySnapshot {
        self.summary_with(summary, MNTR_PERCENTILES.iter().map(|(q, _)| *q))
    }

    /// The snapshot with the given quantiles (Prometheus uses others).
    pub fn summary_with(
        &self,
        summary: Summary,
        quantiles: impl Iterator<Item = f64>,
    ) -> SummarySnapshot {
        let data = self.lock(summary);
        let percentiles = if summary.level() == Level::Advanced {
            quantiles.map(|q| (q, data.quantile(q))).collect()
        } else {
            Vec::new()
        };
        SummarySnapshot {
            count: data.count,
            sum: data.sum,
            min: if data.count == 0 { 0 } else { data.min },
            max: if data.count == 0 { 0 } else { data.max },
            avg: data.avg(),
            percentiles,
        }
    }

    /// `srst` / `stat_reset`: Apache resets every metric with the server
    /// stats.
    pub fn reset(&self) {
        for c in &self.counters {
            c.store(0, Ordering::Relaxed);
        }
        for s in Summary::ALL {
            *self.lock(*s) = SummaryData::default();
        }
    }

    /// The mntr lines of these metrics, as Apache's DefaultMetricsProvider
    /// prints them: counters by name; summaries as avg_, min_, max_, cnt_,
    /// sum_ and, when advanced, p50_, p95_, p99_, p999_.
    pub fn mntr_entries(&self) -> Vec<(String, crate::admin::Metric)> {
        use crate::admin::Metric;
        let mut out = Vec::new();
        for c in Counter::ALL {
            out.push((c.name().to_string(), Metric::Int(self.counter(*c) as i64)));
        }
        for s in Summary::ALL {
            let snap = self.summary(*s);
            let name = s.name();
            out.push((format!("avg_{name}"), Metric::Double(snap.avg)));
            out.push((format!("min_{name}"), Metric::Int(snap.min)));
            out.push((format!("max_{name}"), Metric::Int(snap.max)));
            out.push((format!("cnt_{name}"), Metric::Int(snap.count as i64)));
            out.push((format!("sum_{name}"), Metric::Int(snap.sum)));
            for ((_, value), (_, prefix)) in snap.percentiles.iter().zip(MNTR_PERCENTILES) {
                let v = value.map_or(0, |v| v as i64);
                out.push((format!("{prefix}_{name}"), Metric::Int(v)));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_summary_reads_as_apaches_zeroes() {
        let m = Metrics::default();
        let s = m.summary(Summary::ReadLatency);
        assert_eq!((s.count, s.sum, s.min, s.max, s.avg), (0, 0, 0, 0, 0.0));
        assert!(s.percentiles.iter().all(|(_, v)| v.is_none()));
    }

    #[test]
    fn summaries_track_count_sum_min_max_and_a_four_decimal_average() {
        let m = Metrics::default();
        for v in [1, 2, 2] {
            m.observe(Summary::SnapshotTime, v);
        }
        let s = m.summary(Summary::SnapshotTime);
        assert_eq!((s.count, s.sum, s.min, s.max), (3, 5, 1, 2));
        assert_eq!(s.avg, 1.6667);
        assert!(s.percentiles.is_empty(), "basic summaries have none");
    }

    #[test]
    fn advanced_percentiles_come_from_a_bounded_reservoir() {
        let m = Metrics::default();
        for v in 1..=10_000 {
            m.observe(Summary::ReadLatency, v);
        }
        let s = m.summary(Summary::ReadLatency);
        let p50 = s.percentiles[0].1.unwrap();
        assert!((3000.0..7000.0).contains(&p50), "{p50}");
        assert_eq!(m.lock(Summary::ReadLatency).samples.len(), RESERVOIR);
        let small = Metrics::default();
        for v in [1, 2, 3, 4] {
            small.observe(Summary::ReadLatency, v);
        }
        assert_eq!(
            small.summary(Summary::ReadLatency).percentiles[0].1,
            Some(2.5)
        );
    }

    #[test]
    fn mntr_entries_use_apaches_prefixes_and_reset_clears_them() {
        let m = Metrics::default();
        m.add(Counter::BytesReceived, 40);
        m.observe(Summary::UpdateLatency, 3);
        let keys: Vec<String> = m.mntr_entries().into_iter().map(|(k, _)| k).collect();
        for k in [
            "bytes_received_count",
            "avg_updatelatency",
            "p999_updatelatency",
            "cnt_dbinittime",
        ] {
            assert!(keys.iter().any(|x| x == k), "{k}");
        }
        assert!(!keys.iter().any(|x| x == "p50_dbinittime"));
        m.reset();
        assert_eq!(m.counter(Counter::BytesReceived), 0);
        assert_eq!(m.summary(Summary::UpdateLatency).count, 0);
    }

    #[test]
    fn no_metric_is_both_reported_and_listed_as_omitted() {
        let ours: Vec<&str> = Counter::ALL
            .iter()
            .map(|c| c.name())
            .chain(Summary::ALL.iter().map(|s| s.name()))
            .collect();
        for (name, _) in OMITTED {
            assert!(!ours.contains(name), "{name}");
        }
    }
}
