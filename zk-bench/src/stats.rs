//! Latency recording: one HDR histogram per series (an op type such as
//! `getData`, or a derived latency such as fan-out), kept per worker and
//! merged at the end so workers never contend on a lock.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency recorded, in microseconds; slower samples are clamped
/// to it (and show up as a max of 60 s, which is a loud enough signal).
const MAX_MICROS: u64 = 60_000_000;
/// Three significant digits: 0.1% error at any magnitude.
const SIGFIGS: u8 = 3;

fn new_histogram() -> Histogram<u64> {
    // Bounds are constants known to be valid (1 <= low, high >= 2 * low,
    // sigfigs <= 5), so construction cannot fail.
    Histogram::new_with_bounds(1, MAX_MICROS, SIGFIGS).expect("valid histogram bounds")
}

/// Latencies and error counts, by series name.
#[derive(Debug, Default, Clone)]
pub struct Recorder {
    series: BTreeMap<&'static str, Histogram<u64>>,
    errors: BTreeMap<String, u64>,
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder::default()
    }

    /// Records one sample of `series`.
    pub fn record(&mut self, series: &'static str, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(MAX_MICROS);
        let micros = micros.clamp(1, MAX_MICROS);
        self.series
            .entry(series)
            .or_insert_with(new_histogram)
            .saturating_record(micros);
    }

    /// Counts one failed request, by error text.
    pub fn error(&mut self, error: impl ToString) {
        *self.errors.entry(error.to_string()).or_default() += 1;
    }

    /// Folds another worker's samples into this one.
    pub fn merge(&mut self, other: Recorder) {
        for (name, hist) in other.series {
            match self.series.get_mut(name) {
                // Same bounds on both sides, so adding cannot fail.
                Some(mine) => mine.add(&hist).expect("histograms share bounds"),
                None => {
                    self.series.insert(name, hist);
                }
            }
        }
        for (text, n) in other.errors {
            *self.errors.entry(text).or_default() += n;
        }
    }

    /// Samples recorded in `series`.
    pub fn count(&self, series: &str) -> u64 {
        self.series.get(series).map_or(0, |h| h.len())
    }

    /// All requests that failed.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Percentiles of every series, rates computed over `window`.
    pub fn summarize(&self, window: Duration) -> Vec<SeriesSummary> {
        self.series
            .iter()
            .map(|(name, hist)| SeriesSummary::of(name, hist, window))
            .collect()
    }

    /// Percentiles of every series merged into one ("all requests").
    pub fn summarize_all(&self, name: &'static str, window: Duration) -> SeriesSummary {
        let mut all = new_histogram();
        for hist in self.series.values() {
            all.add(hist).expect("histograms share bounds");
        }
        SeriesSummary::of(name, &all, window)
    }

    pub fn errors(&self) -> &BTreeMap<String, u64> {
        &self.errors
    }
}

/// One series, reduced to the numbers a report shows. Latencies in
/// microseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesSummary {
    pub name: String,
    pub count: u64,
    pub per_second: f64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

impl SeriesSummary {
    fn of(name: &str, hist: &Histogram<u64>, window: Duration) -> SeriesSummary {
        let secs = window.as_secs_f64();
        let count = hist.len();
        SeriesSummary {
            name: name.to_string(),
            count,
            per_second: if secs > 0.0 { count as f64 / secs } else { 0.0 },
            mean_us: if count > 0 { hist.mean() } else { 0.0 },
            p50_us: hist.value_at_quantile(0.50),
            p99_us: hist.value_at_quantile(0.99),
            p999_us: hist.value_at_quantile(0.999),
            max_us: hist.max(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn percentiles_of_a_uniform_run_are_within_histogram_precision() {
        let mut r = Recorder::new();
        for us in 1..=1000 {
            r.record("getData", micros(us));
        }
        let s = &r.summarize(Duration::from_secs(2))[0];
        assert_eq!(s.count, 1000);
        assert_eq!(s.per_second, 500.0);
        assert!((499..=501).contains(&s.p50_us), "p50 {}", s.p50_us);
        assert!((989..=991).contains(&s.p99_us), "p99 {}", s.p99_us);
        assert!((998..=1000).contains(&s.p999_us), "p999 {}", s.p999_us);
        assert_eq!(s.max_us, 1000);
    }

    #[test]
    fn merge_adds_samples_and_errors_of_both_workers() {
        let mut a = Recorder::new();
        a.record("setData", micros(10));
        a.error("ConnectionLoss");
        let mut b = Recorder::new();
        b.record("setData", micros(20));
        b.record("getData", micros(5));
        b.error("ConnectionLoss");
        a.merge(b);
        assert_eq!(a.count("setData"), 2);
        assert_eq!(a.count("getData"), 1);
        assert_eq!(a.errors().get("ConnectionLoss"), Some(&2));
        assert_eq!(a.error_count(), 2);
    }

    #[test]
    fn summarize_all_pools_every_series() {
        let mut r = Recorder::new();
        r.record("getData", micros(100));
        r.record("setData", micros(300));
        let all = r.summarize_all("all", Duration::from_secs(1));
        assert_eq!(all.count, 2);
        assert_eq!(all.max_us, 300);
    }

    #[test]
    fn sub_microsecond_and_huge_samples_are_clamped_not_dropped() {
        let mut r = Recorder::new();
        r.record("x", Duration::from_nanos(10));
        r.record("x", Duration::from_secs(3600));
        let s = &r.summarize(Duration::from_secs(1))[0];
        assert_eq!(s.count, 2);
        assert!(s.max_us >= MAX_MICROS - MAX_MICROS / 1000);
    }

    #[test]
    fn empty_window_gives_zero_rate() {
        let mut r = Recorder::new();
        r.record("x", micros(1));
        assert_eq!(r.summarize(Duration::ZERO)[0].per_second, 0.0);
    }
}
