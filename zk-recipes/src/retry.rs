//! Retry policies (Curator's `RetryPolicy` family, RECIPES.md §A2) and the
//! loop that applies one to an operation.
//!
//! A policy only decides: given how many retries have happened and how long
//! the operation has been going, sleep this long and try again, or give up.
//! Which errors are worth retrying is the error's business ([`Retriable`]).

use std::future::Future;
use std::time::Duration;

use rand::Rng;

/// Errors that say whether trying again could help. Curator retries
/// CONNECTIONLOSS, OPERATIONTIMEOUT, SESSIONMOVED and SESSIONEXPIRED and
/// nothing else.
pub trait Retriable {
    /// True when the failed operation is worth another try.
    fn is_retriable(&self) -> bool;
}

/// Exponential backoff never doubles more than this many times (Curator's cap).
const MAX_EXPONENT_RETRIES: u32 = 29;

/// When to retry a failed operation, and after how long a sleep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryPolicy {
    /// Sleep `base × r` with r random in [1, 2^(retry+1)), up to
    /// `max_retries` times (at most 29), each sleep at most `max_sleep`.
    ExponentialBackoff {
        /// The sleep unit.
        base: Duration,
        /// How many retries.
        max_retries: u32,
        /// The longest single sleep.
        max_sleep: Duration,
    },
    /// `n` retries with a fixed sleep between them.
    NTimes {
        /// How many retries.
        n: u32,
        /// The sleep between tries.
        sleep: Duration,
    },
    /// Retry with a fixed sleep while less than `max_elapsed` has passed.
    UntilElapsed {
        /// How long retrying may go on.
        max_elapsed: Duration,
        /// The sleep between tries.
        sleep: Duration,
    },
    /// Retry forever with a fixed sleep.
    Forever {
        /// The sleep between tries.
        interval: Duration,
    },
    /// Never retry.
    Never,
}

impl RetryPolicy {
    /// `ExponentialBackoffRetry(base, maxRetries)`: no cap on a single sleep.
    pub fn exponential_backoff(base: Duration, max_retries: u32) -> Self {
        RetryPolicy::ExponentialBackoff {
            base,
            max_retries: max_retries.min(MAX_EXPONENT_RETRIES),
            max_sleep: Duration::MAX,
        }
    }

    /// `BoundedExponentialBackoffRetry(base, maxSleep, maxRetries)`.
    pub fn bounded_exponential_backoff(
        base: Duration,
        max_sleep: Duration,
        max_retries: u32,
    ) -> Self {
        RetryPolicy::ExponentialBackoff {
            base,
            max_retries: max_retries.min(MAX_EXPONENT_RETRIES),
            max_sleep,
        }
    }

    /// `RetryNTimes(n, sleep)`.
    pub fn n_times(n: u32, sleep: Duration) -> Self {
        RetryPolicy::NTimes { n, sleep }
    }

    /// `RetryOneTime(sleep)`.
    pub fn one_time(sleep: Duration) -> Self {
        RetryPolicy::NTimes { n: 1, sleep }
    }

    /// `RetryUntilElapsed(maxElapsed, sleep)`.
    pub fn until_elapsed(max_elapsed: Duration, sleep: Duration) -> Self {
        RetryPolicy::UntilElapsed { max_elapsed, sleep }
    }

    /// `RetryForever(interval)`.
    pub fn forever(interval: Duration) -> Self {
        RetryPolicy::Forever { interval }
    }

    /// The sleep before retry number `retry_count` (0 for the first retry)
    /// when `elapsed` has passed since the first attempt, or `None` to give
    /// up.
    pub fn next_sleep(
        &self,
        retry_count: u32,
        elapsed: Duration,
        rng: &mut impl Rng,
    ) -> Option<Duration> {
        match *self {
            RetryPolicy::ExponentialBackoff {
                base,
                max_retries,
                max_sleep,
            } => {
                if retry_count >= max_retries {
                    return None;
                }
                let ceiling = 1u64 << (retry_count + 1).min(MAX_EXPONENT_RETRIES + 1);
                let factor = rng.gen_range(1..ceiling.max(2));
                let sleep = base.saturating_mul(u32::try_from(factor).unwrap_or(u32::MAX));
                Some(sleep.min(max_sleep))
            }
            RetryPolicy::NTimes { n, sleep } => (retry_count < n).then_some(sleep),
            RetryPolicy::UntilElapsed { max_elapsed, sleep } => {
                (elapsed < max_elapsed).then_some(sleep)
            }
            RetryPolicy::Forever { interval } => Some(interval),
            RetryPolicy::Never => None,
        }
    }

    /// Runs `op` until it succeeds, fails with an error that is not
    /// retriable, or the policy gives up; the last error is returned.
    pub async fn call<T, E, F, Fut>(&self, mut op: F) -> Result<T, E>
    where
        E: Retriable,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let started = tokio::time::Instant::now();
        let mut retry_count = 0;
        loop {
            match op().await {
                Ok(value) => return Ok(value),
                Err(err) if !err.is_retriable() => return Err(err),
                Err(err) => {
                    let sleep =
                        self.next_sleep(retry_count, started.elapsed(), &mut rand::thread_rng());
                    match sleep {
                        None => return Err(err),
                        Some(sleep) => {
                            tracing::debug!(
                                retry_count,
                                ?sleep,
                                "retrying after a retriable error"
                            );
                            tokio::time::sleep(sleep).await;
                            retry_count += 1;
                        }
                    }
                }
            }
        }
    }
}

impl Default for RetryPolicy {
    /// Curator's usual choice: exponential backoff from 1 s, 3 retries.
    fn default() -> Self {
        RetryPolicy::exponential_backoff(Duration::from_secs(1), 3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use std::sync::atomic::{AtomicU32, Ordering};

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn exponential_sleeps_stay_within_the_doubling_window() {
        let policy = RetryPolicy::exponential_backoff(MS * 10, 5);
        let mut rng = StdRng::seed_from_u64(7);
        for retry in 0..5 {
            for _ in 0..100 {
                let sleep = policy.next_sleep(retry, Duration::ZERO, &mut rng).unwrap();
                assert!(sleep >= MS * 10);
                assert!(sleep < MS * 10 * (1 << (retry + 1)));
            }
        }
        assert_eq!(policy.next_sleep(5, Duration::ZERO, &mut rng), None);
    }

    #[test]
    fn bounded_backoff_never_sleeps_past_its_bound() {
        let policy = RetryPolicy::bounded_exponential_backoff(MS * 100, MS * 150, 10);
        let mut rng = StdRng::seed_from_u64(1);
        for retry in 0..10 {
            assert!(policy.next_sleep(retry, Duration::ZERO, &mut rng).unwrap() <= MS * 150);
        }
    }

    #[test]
    fn exponential_retries_are_capped_at_29() {
        assert_eq!(
            RetryPolicy::exponential_backoff(MS, 100),
            RetryPolicy::ExponentialBackoff {
                base: MS,
                max_retries: 29,
                max_sleep: Duration::MAX
            }
        );
    }

    #[test]
    fn n_times_and_one_time_count_retries() {
        let mut rng = StdRng::seed_from_u64(0);
        let three = RetryPolicy::n_times(3, MS);
        assert_eq!(three.next_sleep(2, Duration::ZERO, &mut rng), Some(MS));
        assert_eq!(three.next_sleep(3, Duration::ZERO, &mut rng), None);
        assert_eq!(
            RetryPolicy::one_time(MS).next_sleep(1, Duration::ZERO, &mut rng),
            None
        );
    }

    #[test]
    fn until_elapsed_stops_at_the_deadline() {
        let mut rng = StdRng::seed_from_u64(0);
        let policy = RetryPolicy::until_elapsed(MS * 50, MS);
        assert_eq!(policy.next_sleep(1000, MS * 49, &mut rng), Some(MS));
        assert_eq!(policy.next_sleep(0, MS * 50, &mut rng), None);
    }

    #[derive(Debug, PartialEq)]
    enum FakeError {
        Transient,
        Permanent,
    }

    impl Retriable for FakeError {
        fn is_retriable(&self) -> bool {
            *self == FakeError::Transient
        }
    }

    #[tokio::test(start_paused = true)]
    async fn call_retries_transient_errors_until_success() {
        let attempts = AtomicU32::new(0);
        let result = RetryPolicy::n_times(5, MS)
            .call(|| async {
                if attempts.fetch_add(1, Ordering::SeqCst) < 3 {
                    Err(FakeError::Transient)
                } else {
                    Ok("done")
                }
            })
            .await;
        assert_eq!(result, Ok("done"));
        assert_eq!(attempts.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn call_returns_permanent_errors_at_once() {
        let attempts = AtomicU32::new(0);
        let result: Result<(), _> = RetryPolicy::forever(MS)
            .call(|| async {
                attempts.fetch_add(1, Ordering::SeqCst);
                Err(FakeError::Permanent)
            })
            .await;
        assert_eq!(result, Err(FakeError::Permanent));
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn call_gives_up_with_the_last_error_when_the_policy_does() {
        let attempts = AtomicU32::new(0);
        let result: Result<(), _> = RetryPolicy::n_times(2, MS)
            .call(|| async {
                attempts.fetch_add(1, Ordering::SeqCst);
                Err(FakeError::Transient)
            })
            .await;
        assert_eq!(result, Err(FakeError::Transient));
        assert_eq!(attempts.load(Ordering::SeqCst), 3);
    }
}
