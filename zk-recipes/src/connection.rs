//! Curator's connection states (RECIPES.md §A1), derived from the client's
//! session events by a pure state machine: events and the current time go
//! in, the states to post come out.

use std::time::{Duration, Instant};

/// What recipes react to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionState {
    /// The first successful connection of this framework instance (once).
    Connected,
    /// The connection is gone; the session may still be alive.
    Suspended,
    /// Connected again after Suspended, Lost or ReadOnly.
    Reconnected,
    /// The session is gone, or believed gone (suspended for a whole
    /// session timeout).
    Lost,
    /// Connected to a read-only server.
    ReadOnly,
}

impl ConnectionState {
    /// Curator's `isConnected()`.
    pub fn is_connected(self) -> bool {
        matches!(
            self,
            ConnectionState::Connected | ConnectionState::Reconnected | ConnectionState::ReadOnly
        )
    }
}

/// Which states a recipe treats as "stop what you are doing".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorPolicy {
    /// Suspended and Lost are errors (Curator's default).
    #[default]
    Standard,
    /// Only Lost is an error: leadership survives a blip.
    SessionOnly,
}

impl ErrorPolicy {
    /// Whether `state` counts as an error under this policy.
    pub fn is_error(self, state: ConnectionState) -> bool {
        match self {
            ErrorPolicy::Standard => {
                matches!(state, ConnectionState::Suspended | ConnectionState::Lost)
            }
            ErrorPolicy::SessionOnly => state == ConnectionState::Lost,
        }
    }
}

/// The session events the state machine consumes (mapped from the client's
/// session-state stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEvent {
    /// A session is established with a read/write server.
    Connected {
        /// The session.
        session_id: i64,
        /// The negotiated session timeout.
        timeout: Duration,
    },
    /// A session is established with a read-only server.
    ConnectedReadOnly {
        /// The session.
        session_id: i64,
        /// The negotiated session timeout.
        timeout: Duration,
    },
    /// The connection dropped; the session may live on.
    Disconnected,
    /// The session ended (expired, closed or refused).
    Expired,
}

/// Derives [`ConnectionState`]s from [`SessionEvent`]s and time.
#[derive(Debug, Clone)]
pub struct ConnectionStateMachine {
    current: Option<ConnectionState>,
    session_id: Option<i64>,
    /// The negotiated timeout once known, else the configured one.
    session_timeout: Duration,
    /// Curator's `simulatedSessionExpirationPercent`.
    expiry_percent: u32,
    suspended_since: Option<Instant>,
}

impl ConnectionStateMachine {
    /// A machine for a requested session timeout of `configured_timeout`.
    pub fn new(configured_timeout: Duration) -> Self {
        ConnectionStateMachine {
            current: None,
            session_id: None,
            session_timeout: configured_timeout,
            expiry_percent: 100,
            suspended_since: None,
        }
    }

    /// Lost is posted after this percentage of the session timeout spent
    /// suspended (100 by default; 0 turns simulated expiry off).
    pub fn with_expiry_percent(mut self, percent: u32) -> Self {
        self.expiry_percent = percent;
        self
    }

    /// The last state posted, if any.
    pub fn current(&self) -> Option<ConnectionState> {
        self.current
    }

    /// Consumes one session event; returns the states to post, in order.
    pub fn on_event(&mut self, event: SessionEvent, now: Instant) -> Vec<ConnectionState> {
        let mut posted = Vec::new();
        match event {
            SessionEvent::Connected {
                session_id,
                timeout,
            }
            | SessionEvent::ConnectedReadOnly {
                session_id,
                timeout,
            } => {
                self.session_timeout = timeout;
                self.suspended_since = None;
                let new_session = self.session_id.is_some_and(|old| old != session_id);
                self.session_id = Some(session_id);
                if new_session {
                    self.post(ConnectionState::Lost, &mut posted);
                }
                let next = if matches!(event, SessionEvent::ConnectedReadOnly { .. }) {
                    ConnectionState::ReadOnly
                } else if self.current.is_none() {
                    ConnectionState::Connected
                } else {
                    ConnectionState::Reconnected
                };
                self.post(next, &mut posted);
            }
            SessionEvent::Disconnected => {
                if !matches!(
                    self.current,
                    Some(ConnectionState::Suspended | ConnectionState::Lost) | None
                ) {
                    self.suspended_since = Some(now);
                    self.post(ConnectionState::Suspended, &mut posted);
                }
            }
            SessionEvent::Expired => {
                self.suspended_since = None;
                self.post(ConnectionState::Lost, &mut posted);
            }
        }
        posted
    }

    /// When the suspension turns into a simulated Lost, if it does.
    pub fn lost_deadline(&self) -> Option<Instant> {
        if self.expiry_percent == 0 {
            return None;
        }
        let since = self.suspended_since?;
        let budget = self.session_timeout * self.expiry_percent / 100;
        Some(since + budget)
    }

    /// Posts Lost when the client has been suspended for the session
    /// timeout: it cannot hear the server's Expired while partitioned, but
    /// its session is gone by now. The caller must then start a new session.
    pub fn on_tick(&mut self, now: Instant) -> Option<ConnectionState> {
        let deadline = self.lost_deadline()?;
        if now < deadline {
            return None;
        }
        self.suspended_since = None;
        let mut posted = Vec::new();
        self.post(ConnectionState::Lost, &mut posted);
        posted.pop()
    }

    fn post(&mut self, state: ConnectionState, posted: &mut Vec<ConnectionState>) {
        if self.current != Some(state) {
            self.current = Some(state);
            posted.push(state);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConnectionState::*;

    const T: Duration = Duration::from_secs(10);

    fn connected(id: i64) -> SessionEvent {
        SessionEvent::Connected {
            session_id: id,
            timeout: T,
        }
    }

    #[test]
    fn connected_is_posted_once_and_later_connections_are_reconnected() {
        let now = Instant::now();
        let mut m = ConnectionStateMachine::new(T);
        assert_eq!(m.on_event(connected(1), now), vec![Connected]);
        assert_eq!(m.on_event(SessionEvent::Disconnected, now), vec![Suspended]);
        assert_eq!(m.on_event(connected(1), now), vec![Reconnected]);
    }

    #[test]
    fn repeated_states_are_suppressed() {
        let now = Instant::now();
        let mut m = ConnectionStateMachine::new(T);
        m.on_event(connected(1), now);
        m.on_event(SessionEvent::Disconnected, now);
        assert!(m.on_event(SessionEvent::Disconnected, now).is_empty());
    }

    #[test]
    fn expiry_is_lost_then_a_new_session_is_reconnected() {
        let now = Instant::now();
        let mut m = ConnectionStateMachine::new(T);
        m.on_event(connected(1), now);
        m.on_event(SessionEvent::Disconnected, now);
        assert_eq!(m.on_event(SessionEvent::Expired, now), vec![Lost]);
        assert_eq!(m.on_event(connected(2), now), vec![Reconnected]);
    }

    #[test]
    fn a_new_session_seen_without_expiry_posts_lost_first() {
        let now = Instant::now();
        let mut m = ConnectionStateMachine::new(T);
        m.on_event(connected(1), now);
        m.on_event(SessionEvent::Disconnected, now);
        assert_eq!(m.on_event(connected(2), now), vec![Lost, Reconnected]);
    }

    #[test]
    fn suspended_for_a_session_timeout_becomes_lost() {
        let start = Instant::now();
        let mut m = ConnectionStateMachine::new(T);
        m.on_event(connected(1), start);
        m.on_event(SessionEvent::Disconnected, start);
        assert_eq!(m.on_tick(start + T - Duration::from_millis(1)), None);
        assert_eq!(m.on_tick(start + T), Some(Lost));
        assert_eq!(m.on_tick(start + T * 2), None, "Lost is posted once");
    }

    #[test]
    fn simulated_expiry_uses_the_negotiated_timeout_and_percent() {
        let start = Instant::now();
        let mut m = ConnectionStateMachine::new(T).with_expiry_percent(50);
        m.on_event(
            SessionEvent::Connected {
                session_id: 1,
                timeout: Duration::from_secs(4),
            },
            start,
        );
        m.on_event(SessionEvent::Disconnected, start);
        assert_eq!(m.lost_deadline(), Some(start + Duration::from_secs(2)));
    }

    #[test]
    fn read_only_then_read_write_is_reconnected() {
        let now = Instant::now();
        let mut m = ConnectionStateMachine::new(T);
        let ro = SessionEvent::ConnectedReadOnly {
            session_id: 1,
            timeout: T,
        };
        assert_eq!(m.on_event(ro, now), vec![ReadOnly]);
        assert_eq!(m.on_event(connected(1), now), vec![Reconnected]);
    }

    #[test]
    fn error_policies_differ_on_suspended() {
        assert!(ErrorPolicy::Standard.is_error(Suspended));
        assert!(!ErrorPolicy::SessionOnly.is_error(Suspended));
        assert!(ErrorPolicy::SessionOnly.is_error(Lost));
        assert!(!ErrorPolicy::Standard.is_error(Reconnected));
    }
}
