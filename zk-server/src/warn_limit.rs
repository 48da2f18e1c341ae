//! Warnings a client can trigger at will (oversized packets, unknown auth
//! schemes) must reach the operator without letting one client flood the
//! log. A [`WarnLimit`] lets the first occurrence through, then at most
//! one per interval, and reports how many it held back in between.
//!
//! (h7's module: helper h3 is adding `log_limit.rs` for the same need in
//! net/; once both are merged, one should absorb the other.)

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The pure state: when the last warning went out and how many were held
/// back since.
#[derive(Debug, Default)]
pub struct Limiter {
    last: Option<Instant>,
    suppressed: u64,
}

impl Limiter {
    /// `Some(n)`: log now, mentioning the `n` occurrences held back since
    /// the previous line. `None`: hold this one back.
    pub fn admit(&mut self, now: Instant, interval: Duration) -> Option<u64> {
        match self.last {
            Some(last) if now.saturating_duration_since(last) < interval => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// A shared limiter for one kind of warning (use it as a `static`).
#[derive(Debug)]
pub struct WarnLimit {
    interval: Duration,
    state: Mutex<Limiter>,
}

impl WarnLimit {
    pub const fn new(interval: Duration) -> Self {
        WarnLimit {
            interval,
            state: Mutex::new(Limiter {
                last: None,
                suppressed: 0,
            }),
        }
    }

    /// See [`Limiter::admit`], at the current time.
    pub fn admit(&self) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.admit(Instant::now(), self.interval)
    }
}

/// At most one line per kind and interval.
const INTERVAL: Duration = Duration::from_secs(10);
static OVERSIZED_FRAME: WarnLimit = WarnLimit::new(INTERVAL);
static UNKNOWN_AUTH_SCHEME: WarnLimit = WarnLimit::new(INTERVAL);
static TLS_HANDSHAKE: WarnLimit = WarnLimit::new(INTERVAL);

/// A TLS handshake on the secure client port failed or timed out.
pub fn tls_handshake_failed(remote: std::net::SocketAddr, error: &dyn std::fmt::Display) {
    if let Some(held_back) = TLS_HANDSHAKE.admit() {
        tracing::warn!(%remote, held_back, "TLS handshake failed: {error}");
    }
}

/// A client sent a frame longer than `jute.maxbuffer` (or a negative
/// length); its connection is closed, as Apache's "Len error".
pub fn oversized_frame(conn_id: u64, error: &dyn std::fmt::Display) {
    if let Some(held_back) = OVERSIZED_FRAME.admit() {
        tracing::warn!(
            conn_id,
            held_back,
            "closing a connection that sent an oversized packet: {error} \
             (raise jute.maxbuffer if the client is legitimate)"
        );
    }
}

/// addAuth with a scheme no provider serves (Apache: "No authentication
/// provider for scheme").
pub fn unknown_auth_scheme(remote: std::net::SocketAddr, scheme: &str, available: &[&str]) {
    if let Some(held_back) = UNKNOWN_AUTH_SCHEME.admit() {
        tracing::warn!(
            %remote,
            held_back,
            "no authentication provider for scheme '{scheme}' (available: {}); closing",
            available.join(", ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_warning_passes_then_one_per_interval_with_the_held_back_count() {
        let mut l = Limiter::default();
        let t0 = Instant::now();
        let sec = Duration::from_secs(1);
        assert_eq!(l.admit(t0, sec), Some(0));
        assert_eq!(l.admit(t0 + Duration::from_millis(10), sec), None);
        assert_eq!(l.admit(t0 + Duration::from_millis(900), sec), None);
        assert_eq!(l.admit(t0 + Duration::from_millis(1001), sec), Some(2));
        assert_eq!(l.admit(t0 + Duration::from_millis(2500), sec), Some(0));
    }
}
