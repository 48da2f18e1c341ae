//! Session states and the feed of state changes.

use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use futures::Stream;
use tokio::sync::{mpsc, watch};
use zk_proto::KeeperState;

/// Where the session stands, as the caller sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionState {
    /// Before the first session is established.
    Connecting,
    /// A session is established with a read/write server.
    Connected,
    /// Connected to a read-only server (only with `read_only(true)`).
    ConnectedReadOnly,
    /// The connection dropped; the client is reconnecting and the session
    /// may still be alive.
    Disconnected,
    /// The server said the session is gone. Final.
    Expired,
    /// The server refused our credentials. Final.
    AuthFailed,
    /// The client was closed. Final.
    Closed,
}

impl SessionState {
    /// Expired, AuthFailed and Closed never change again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            SessionState::Expired | SessionState::AuthFailed | SessionState::Closed
        )
    }

    /// Connected or ConnectedReadOnly.
    pub fn is_connected(self) -> bool {
        matches!(
            self,
            SessionState::Connected | SessionState::ConnectedReadOnly
        )
    }

    /// The `KeeperState` a Java watcher would see for this state.
    pub fn keeper_state(self) -> KeeperState {
        match self {
            SessionState::Connecting | SessionState::Disconnected => KeeperState::Disconnected,
            SessionState::Connected => KeeperState::SyncConnected,
            SessionState::ConnectedReadOnly => KeeperState::ConnectedReadOnly,
            SessionState::Expired => KeeperState::Expired,
            SessionState::AuthFailed => KeeperState::AuthFailed,
            SessionState::Closed => KeeperState::Closed,
        }
    }
}

/// The current state plus everybody who asked for the feed. Changes are
/// published by the connection task only, so every subscriber sees the
/// same order.
#[derive(Debug)]
pub(crate) struct StateHub {
    current: watch::Sender<SessionState>,
    subscribers: Mutex<Vec<mpsc::UnboundedSender<SessionState>>>,
}

impl StateHub {
    pub(crate) fn new() -> StateHub {
        StateHub {
            current: watch::Sender::new(SessionState::Connecting),
            subscribers: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn get(&self) -> SessionState {
        *self.current.borrow()
    }

    pub(crate) fn watcher(&self) -> watch::Receiver<SessionState> {
        self.current.subscribe()
    }

    /// Publishes `state` unless it is already current or a final state was
    /// reached.
    pub(crate) fn set(&self, state: SessionState) {
        let mut subscribers = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        let previous = self.get();
        if previous == state || previous.is_terminal() {
            return;
        }
        self.current.send_replace(state);
        subscribers.retain(|tx| tx.send(state).is_ok());
        if state.is_terminal() {
            // Dropping the senders ends every feed after the final state.
            subscribers.clear();
        }
    }

    /// A feed starting with the current state.
    pub(crate) fn subscribe(&self) -> StateStream {
        let mut subscribers = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        // Feeds dropped since the last change (finished or cancelled
        // waits) go now, so many short waits do not pile up.
        subscribers.retain(|tx| !tx.is_closed());
        let (tx, rx) = mpsc::unbounded_channel();
        let current = self.get();
        let _ = tx.send(current);
        if !current.is_terminal() {
            subscribers.push(tx);
        }
        StateStream { rx }
    }
}

/// Every session state change, starting with the state at subscription;
/// ends after a final state.
#[derive(Debug)]
pub struct StateStream {
    rx: mpsc::UnboundedReceiver<SessionState>,
}

impl Stream for StateStream {
    type Item = SessionState;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<SessionState>> {
        self.rx.poll_recv(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn feed_starts_with_the_current_state_and_ends_after_a_final_one() {
        let hub = StateHub::new();
        let stream = hub.subscribe();
        hub.set(SessionState::Connected);
        hub.set(SessionState::Connected);
        hub.set(SessionState::Disconnected);
        hub.set(SessionState::Expired);
        hub.set(SessionState::Connected);
        let seen: Vec<_> = stream.collect().await;
        assert_eq!(
            seen,
            [
                SessionState::Connecting,
                SessionState::Connected,
                SessionState::Disconnected,
                SessionState::Expired
            ]
        );
        assert_eq!(hub.get(), SessionState::Expired);
    }

    #[test]
    fn dropped_feeds_do_not_pile_up() {
        let hub = StateHub::new();
        for _ in 0..100 {
            drop(hub.subscribe());
        }
        let _live = hub.subscribe();
        assert_eq!(hub.subscribers.lock().unwrap().len(), 1);
    }
}
