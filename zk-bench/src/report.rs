//! What a run produced, as JSON (`--json`) or a plain-text table.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::failover::Outage;
use crate::stats::SeriesSummary;

/// The result of one run. Latencies in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub workload: String,
    pub connect: String,
    pub sessions: usize,
    pub in_flight: usize,
    pub value_size: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_ratio: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watchers: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    pub warmup_s: f64,
    pub measured_s: f64,
    /// The headline: requests (or fan-outs, or sessions) per second.
    pub throughput_per_s: f64,
    /// The headline latency series.
    pub latency: SeriesSummary,
    /// Every series recorded (per op type, or the fan-out breakdown).
    pub series: Vec<SeriesSummary>,
    pub errors: BTreeMap<String, u64>,
    /// CPU used by the load generator during the measured window, in
    /// percent of one core.
    pub client_cpu_percent: Option<f64>,
    /// `failover` only: the error streaks seen, in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outages: Option<Vec<Outage>>,
}

impl Report {
    pub fn to_json(&self) -> String {
        // A struct of numbers, strings and string-keyed maps always
        // serializes.
        serde_json::to_string_pretty(self).expect("report serializes")
    }

    /// A human-readable table.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} against {}: {} sessions x {} in flight, {} B values, {:.1} s measured after {:.1} s warm-up",
            self.workload,
            self.connect,
            self.sessions,
            self.in_flight,
            self.value_size,
            self.measured_s,
            self.warmup_s
        );
        if let Some(r) = self.read_ratio {
            let _ = writeln!(out, "read ratio {r}%");
        }
        if let Some(w) = self.watchers {
            let _ = writeln!(out, "{w} watchers");
        }
        let _ = writeln!(
            out,
            "{:<20} {:>10} {:>11} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "series", "count", "per second", "mean us", "p50 us", "p99 us", "p999 us", "max us"
        );
        // The headline first, then the other series (the headline may be
        // one of them: do not print it twice).
        let rest = self.series.iter().filter(|s| s.name != self.latency.name);
        for s in std::iter::once(&self.latency).chain(rest) {
            let _ = writeln!(
                out,
                "{:<20} {:>10} {:>11.1} {:>9.0} {:>9} {:>9} {:>9} {:>9}",
                s.name, s.count, s.per_second, s.mean_us, s.p50_us, s.p99_us, s.p999_us, s.max_us
            );
        }
        if self.errors.is_empty() {
            let _ = writeln!(out, "errors: none");
        } else {
            for (text, n) in &self.errors {
                let _ = writeln!(out, "errors: {n} x {text}");
            }
        }
        if let Some(cpu) = self.client_cpu_percent {
            let _ = writeln!(out, "load generator CPU: {cpu:.0}% of one core");
        }
        for o in self.outages.iter().flatten() {
            let gap = o.gap_us().map_or("writes never resumed".to_string(), |us| {
                format!("{:.1} ms without a write", us as f64 / 1000.0)
            });
            let _ = writeln!(
                out,
                "outage at unix {:.3} s: {} errors, {}",
                o.first_error_unix_us as f64 / 1e6,
                o.errors,
                gap
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(name: &str) -> SeriesSummary {
        SeriesSummary {
            name: name.into(),
            count: 10,
            per_second: 5.0,
            mean_us: 100.0,
            p50_us: 90,
            p99_us: 300,
            p999_us: 400,
            max_us: 500,
        }
    }

    fn report() -> Report {
        Report {
            workload: "read".into(),
            connect: "127.0.0.1:2181".into(),
            sessions: 2,
            in_flight: 1,
            value_size: 1024,
            read_ratio: None,
            watchers: None,
            count: None,
            warmup_s: 0.0,
            measured_s: 2.0,
            throughput_per_s: 5.0,
            latency: series("all"),
            series: vec![series("getData")],
            errors: BTreeMap::new(),
            client_cpu_percent: Some(12.0),
            outages: None,
        }
    }

    #[test]
    fn json_carries_the_headline_numbers_and_omits_unused_options() {
        let json: serde_json::Value = serde_json::from_str(&report().to_json()).expect("json");
        assert_eq!(json["throughput_per_s"], 5.0);
        assert_eq!(json["latency"]["p99_us"], 300);
        assert_eq!(json["series"][0]["name"], "getData");
        assert!(json.get("read_ratio").is_none());
    }

    #[test]
    fn table_has_a_row_per_series_and_lists_errors() {
        let mut r = report();
        r.errors.insert("ConnectionLoss".into(), 3);
        let table = r.to_table();
        assert!(table.lines().any(|l| l.starts_with("all ")));
        assert!(table.lines().any(|l| l.starts_with("getData ")));
        assert!(table.contains("errors: 3 x ConnectionLoss"));
    }

    #[test]
    fn outages_appear_in_json_and_table_only_when_measured() {
        let plain: serde_json::Value = serde_json::from_str(&report().to_json()).expect("json");
        assert!(plain.get("outages").is_none());
        let mut r = report();
        r.outages = Some(vec![Outage {
            last_ack_unix_us: Some(1_000_000),
            first_error_unix_us: 1_001_000,
            first_ack_unix_us: Some(1_501_000),
            errors: 7,
            stragglers: 0,
        }]);
        let json: serde_json::Value = serde_json::from_str(&r.to_json()).expect("json");
        assert_eq!(json["outages"][0]["first_ack_unix_us"], 1_501_000);
        assert!(r.to_table().contains("7 errors, 501.0 ms without a write"));
    }
}
