//! The Prometheus endpoint's text, as Apache 3.8's
//! `PrometheusMetricsProvider` (Prometheus simpleclient 0.9) writes it:
//! exposition format 0.0.4, `# HELP` equal to the name, gauges and
//! counters by their plain names (no `_total` suffix in that client
//! version), summaries as `name{quantile="0.5",}` samples (0.5 for basic
//! summaries; 0.5, 0.9, 0.99 for advanced ones) plus `name_count` and
//! `name_sum`. Process facts replace the JVM exports where they mean the
//! same (`process_*`).

use std::fmt::Write as _;

use super::{Counter, Level, Metrics, Summary};

/// mntr values that Apache's `ServerMetrics` declares as counters (they
/// come from the server summary here, not from the registry).
pub const SUMMARY_COUNTERS: &[&str] = &["snap_count", "commit_count", "connection_rejected"];

/// Quantiles per detail level, as Apache registers them.
fn quantiles(level: Level) -> &'static [f64] {
    match level {
        Level::Basic => &[0.5],
        Level::Advanced => &[0.5, 0.9, 0.99],
    }
}

/// Java's `Collector.doubleToGoString`.
fn go_double(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        crate::admin::java_double(v)
    }
}

fn family(out: &mut String, name: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {name}\n# TYPE {name} {kind}");
}

/// The whole scrape: `gauges` are the server's current values (Apache's
/// registered gauges), then the counters and summaries of `metrics`, then
/// the process facts.
pub fn render(gauges: &[(&str, f64)], metrics: &Metrics, process: &[(&str, f64)]) -> String {
    let mut out = String::new();
    for (name, value) in gauges {
        let kind = if SUMMARY_COUNTERS.contains(name) {
            "counter"
        } else {
            "gauge"
        };
        family(&mut out, name, kind);
        let _ = writeln!(out, "{name} {}", go_double(*value));
    }
    for c in Counter::ALL {
        family(&mut out, c.name(), "counter");
        let _ = writeln!(
            out,
            "{} {}",
            c.name(),
            go_double(metrics.counter(*c) as f64)
        );
    }
    for s in Summary::ALL {
        let name = s.name();
        let qs = quantiles(s.level());
        let snap = metrics.summary_with(*s, qs.iter().copied());
        family(&mut out, name, "summary");
        // Basic summaries keep no samples: their median is not known.
        let values: Vec<Option<f64>> = if s.level() == Level::Advanced {
            snap.percentiles.iter().map(|(_, v)| *v).collect()
        } else {
            vec![None; qs.len()]
        };
        for (q, v) in qs.iter().zip(values) {
            let _ = writeln!(
                out,
                "{name}{{quantile=\"{q}\",}} {}",
                go_double(v.unwrap_or(f64::NAN))
            );
        }
        let _ = writeln!(out, "{name}_count {}", go_double(snap.count as f64));
        let _ = writeln!(out, "{name}_sum {}", go_double(snap.sum as f64));
    }
    for (name, value) in process {
        let kind = if name.ends_with("_total") {
            "counter"
        } else {
            "gauge"
        };
        family(&mut out, name, kind);
        let _ = writeln!(out, "{name} {}", go_double(*value));
    }
    out
}

/// `process_*` facts of this process from /proc (simpleclient_hotspot's
/// StandardExports names); empty where /proc is missing.
pub fn process_facts(start_time_secs: f64) -> Vec<(&'static str, f64)> {
    let mut out = vec![("process_start_time_seconds", start_time_secs)];
    if let Some((open, max)) = crate::admin::file_descriptor_counts() {
        out.push(("process_open_fds", open as f64));
        out.push(("process_max_fds", max as f64));
    }
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        for (key, name) in [
            ("VmSize:", "process_virtual_memory_bytes"),
            ("VmRSS:", "process_resident_memory_bytes"),
        ] {
            let kib = status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse::<f64>().ok());
            if let Some(kib) = kib {
                out.push((name, kib * 1024.0));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauges_counters_and_summaries_are_written_as_simpleclient_writes_them() {
        let m = Metrics::default();
        m.add(Counter::BytesReceived, 7);
        m.observe(Summary::ReadLatency, 2);
        let text = render(&[("znode_count", 5.0)], &m, &[]);
        assert!(text.starts_with(
            "# HELP znode_count znode_count\n# TYPE znode_count gauge\nznode_count 5.0\n"
        ));
        assert!(text.contains("# TYPE bytes_received_count counter\nbytes_received_count 7.0\n"));
        assert!(text.contains(
            "# TYPE readlatency summary\nreadlatency{quantile=\"0.5\",} 2.0\n\
             readlatency{quantile=\"0.9\",} 2.0\nreadlatency{quantile=\"0.99\",} 2.0\n\
             readlatency_count 1.0\nreadlatency_sum 2.0\n"
        ));
        assert!(text.contains("snapshottime{quantile=\"0.5\",} NaN\nsnapshottime_count 0.0\n"));
    }
}
