//! Where the writer task feeds `metrics` (Apache's ServerMetrics names):
//! small helpers so the pipeline's code paths stay one line each.

use std::time::Instant;

use zk_proto::WatcherEvent;

use super::Pipeline;
use crate::db::ConnId;
use crate::metrics::{Counter, Summary};

impl Pipeline {
    pub(super) fn metrics(&self) -> &crate::metrics::Metrics {
        &self.shared.metrics
    }

    /// A reply queued `arrived` after its request came in.
    pub(super) fn record_reply(&self, is_write: bool, arrived: Instant, bytes: usize) {
        let latency = if is_write {
            Summary::UpdateLatency
        } else {
            Summary::ReadLatency
        };
        self.metrics().observe_ms(latency, arrived.elapsed());
        self.metrics().add(Counter::ResponseBytes, bytes as u64);
    }

    /// How many watchers one change triggered, per event type (Apache
    /// records one observation per triggered path and type).
    pub(super) fn record_triggered_watches(&self, events: &[(ConnId, WatcherEvent)]) {
        let mut i = 0;
        while i < events.len() {
            let first = &events[i].1;
            let same = events[i..]
                .iter()
                .take_while(|(_, e)| e.event_type == first.event_type && e.path == first.path)
                .count();
            let summary = match first.event_type {
                1 => Some(Summary::NodeCreatedWatchCount),
                2 => Some(Summary::NodeDeletedWatchCount),
                3 => Some(Summary::NodeChangedWatchCount),
                4 => Some(Summary::NodeChildrenWatchCount),
                _ => None,
            };
            if let Some(summary) = summary {
                self.metrics().observe(summary, same as i64);
            }
            i += same;
        }
    }
}
