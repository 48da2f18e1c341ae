//! Rate-limited warnings.
//!
//! A warning that a misbehaving peer can trigger at will (a refused
//! connection, an oversized reply, a malformed peer message) must not turn
//! the log into the bottleneck: one loop of refused connections used to
//! write 867 KB/s of identical lines. A [`RateLimit`] lets the first
//! occurrence through, then at most one per interval, and tells the caller
//! how many it held back in between so the next line can say so.
//!
//! ```
//! use std::time::Duration;
//! use zk_server::log_limit::RateLimit;
//!
//! static REFUSED: RateLimit = RateLimit::new(Duration::from_secs(10));
//! if let Some(suppressed) = REFUSED.allow() {
//!     eprintln!("connection refused ({suppressed} similar messages suppressed)");
//! }
//! ```

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lets one event through per interval; counts the others.
#[derive(Debug)]
pub struct RateLimit {
    interval: Duration,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimit {
    /// A limit of one event per `interval` (usable in a `static`).
    pub const fn new(interval: Duration) -> Self {
        RateLimit {
            interval,
            state: Mutex::new(State {
                last: None,
                suppressed: 0,
            }),
        }
    }

    /// `Some(n)` when this occurrence should be logged, `n` being how many
    /// were held back since the last logged one; `None` to stay quiet.
    pub fn allow(&self) -> Option<u64> {
        self.allow_at(Instant::now())
    }

    /// [`RateLimit::allow`] at a given time (for tests).
    pub fn allow_at(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let due = !matches!(
            state.last,
            Some(last) if now.saturating_duration_since(last) < self.interval
        );
        if due {
            state.last = Some(now);
            Some(std::mem::take(&mut state.suppressed))
        } else {
            state.suppressed += 1;
            None
        }
    }
}

/// Logs a warning through a [`RateLimit`], appending the number of
/// suppressed repeats when there were any.
#[macro_export]
macro_rules! warn_limited {
    ($limit:expr, $($arg:tt)+) => {
        if let Some(suppressed) = $limit.allow() {
            if suppressed == 0 {
                tracing::warn!($($arg)+);
            } else {
                tracing::warn!(suppressed, $($arg)+);
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_occurrence_is_logged() {
        let limit = RateLimit::new(Duration::from_secs(10));
        assert_eq!(limit.allow_at(Instant::now()), Some(0));
    }

    #[test]
    fn repeats_within_the_interval_are_counted_and_reported_with_the_next() {
        let limit = RateLimit::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(limit.allow_at(t0), Some(0));
        for i in 1..=5 {
            assert_eq!(limit.allow_at(t0 + Duration::from_secs(i)), None);
        }
        assert_eq!(limit.allow_at(t0 + Duration::from_secs(10)), Some(5));
        assert_eq!(limit.allow_at(t0 + Duration::from_secs(11)), None);
        assert_eq!(limit.allow_at(t0 + Duration::from_secs(25)), Some(1));
    }
}
