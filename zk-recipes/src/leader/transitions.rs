//! Leadership as a sequence of transitions (Curator's
//! `LeaderLatchListener.isLeader` / `notLeader`): every change is
//! delivered to every subscriber in order, so a short true → false → true
//! flip is seen as three events, never collapsed into "still true".

use std::sync::Mutex;

use tokio::sync::mpsc::UnboundedSender;

use crate::cache::Events;
use crate::fence::{Fence, LossReason};

/// One change of this participant's leadership.
#[derive(Debug, Clone)]
pub enum LeadershipEvent {
    /// This participant leads, until the next `NotLeader`. The fence (its
    /// token and fenced writes) is valid for this term only.
    IsLeader(Fence),
    /// This participant no longer leads.
    NotLeader,
}

impl LeadershipEvent {
    /// True for `IsLeader`.
    pub fn is_leader(&self) -> bool {
        matches!(self, LeadershipEvent::IsLeader(_))
    }
}

/// The current term and everybody listening.
#[derive(Debug, Default)]
pub(crate) struct Transitions {
    inner: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    current: Option<Fence>,
    subscribers: Vec<UnboundedSender<LeadershipEvent>>,
}

impl State {
    fn publish(&mut self, event: LeadershipEvent) {
        self.subscribers.retain(|tx| tx.send(event.clone()).is_ok());
    }
}

impl Transitions {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new term begins (ending any current one first).
    pub(crate) fn elected(&self, fence: Fence) {
        let mut state = self.state();
        if let Some(old) = state.current.take() {
            old.end(LossReason::Released);
            state.publish(LeadershipEvent::NotLeader);
        }
        state.current = Some(fence.clone());
        state.publish(LeadershipEvent::IsLeader(fence));
    }

    /// The current term, if any, ends for `reason`.
    pub(crate) fn deposed(&self, reason: LossReason) {
        let mut state = self.state();
        if let Some(old) = state.current.take() {
            old.end(reason);
            state.publish(LeadershipEvent::NotLeader);
        }
    }

    pub(crate) fn current(&self) -> Option<Fence> {
        self.state().current.clone()
    }

    /// Every transition from now on, starting with `IsLeader` when a term
    /// is current.
    pub(crate) fn subscribe(&self) -> Events<LeadershipEvent> {
        let (tx, events) = Events::channel();
        let mut state = self.state();
        if let Some(fence) = &state.current {
            let _ = tx.send(LeadershipEvent::IsLeader(fence.clone()));
        }
        state.subscribers.push(tx);
        events
    }

    /// Ends the feed for everybody (after a final `NotLeader` if leading).
    pub(crate) fn close(&self, reason: LossReason) {
        self.deposed(reason);
        self.state().subscribers.clear();
    }
}
