//! The measured window, and timing one request into a [`Recorder`].

use std::future::Future;
use std::time::{Duration, Instant};

use crate::stats::Recorder;

/// Warm-up runs from the start to `measure_from`; samples count only when
/// their request *started* inside [measure_from, end).
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub measure_from: Instant,
    pub end: Instant,
}

impl Window {
    /// A window starting now: `warmup` of unmeasured load, then `duration`.
    pub fn starting_now(warmup: Duration, duration: Duration) -> Window {
        let measure_from = Instant::now() + warmup;
        Window {
            measure_from,
            end: measure_from + duration,
        }
    }

    pub fn is_over(&self) -> bool {
        Instant::now() >= self.end
    }

    pub fn counts(&self, started: Instant) -> bool {
        started >= self.measure_from && started < self.end
    }

    pub fn measured(&self) -> Duration {
        self.end - self.measure_from
    }
}

/// Runs `request`, records its latency under `series` (errors by text),
/// and hands back its result.
pub async fn timed<T, E: ToString>(
    recorder: &mut Recorder,
    window: &Window,
    series: &'static str,
    request: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let started = Instant::now();
    let result = request.await;
    if window.counts(started) {
        match &result {
            Ok(_) => recorder.record(series, started.elapsed()),
            Err(e) => recorder.error(e.to_string()),
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_started_during_warmup_do_not_count() {
        let w = Window::starting_now(Duration::from_secs(60), Duration::from_secs(1));
        assert!(!w.counts(Instant::now()));
        assert!(w.counts(w.measure_from));
        assert!(!w.counts(w.end));
        assert_eq!(w.measured(), Duration::from_secs(1));
    }
}
