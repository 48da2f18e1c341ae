//! `LeaderSelector` (RECIPES.md §B8): an election on an
//! [`InterProcessMutex`] at `path` (nodes `_c_<uuid>-lock-<seq>`, data =
//! the participant id, or the default data when none is set). Leadership
//! lasts exactly as long as the leader future runs; then the mutex is
//! released (in the background, so the next election can start at once).
//!
//! Cancellation is Rust's interrupt: when the connection enters an error
//! state under the framework's [`ErrorPolicy`](crate::ErrorPolicy)
//! (Suspended or Lost by default) the leader future — or the wait to
//! acquire — is dropped. With auto-requeue the participant then queues for
//! the next election; without it, it waits for [`LeaderSelector::requeue`].
//!
//! Each leadership is a term with a [`Fence`] on the mutex node (see
//! [`LeaderSelectorBuilder::start_fenced`] and
//! [`LeaderSelector::transitions`]).

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{broadcast, watch, Notify};
use tokio::task::JoinHandle;

use crate::cache::Events;
use crate::connection::ConnectionState;
use crate::error::Result;
use crate::fence::{Fence, LossReason};
use crate::framework::Curator;
use crate::leader::participants::{participants, Participant};
use crate::leader::transitions::{LeadershipEvent, Transitions};
use crate::lock::mutex::{InterProcessMutex, LOCK_NAME};

/// Settings for a [`LeaderSelector`].
#[derive(Debug, Clone)]
pub struct LeaderSelectorBuilder {
    curator: Curator,
    path: String,
    id: Option<String>,
    auto_requeue: bool,
}

impl LeaderSelectorBuilder {
    /// The participant id (node data). Default: the framework's default
    /// data.
    pub fn id(mut self, id: &str) -> Self {
        self.id = Some(id.to_string());
        self
    }

    /// Queue for another election after every leadership (Curator's
    /// `autoRequeue()`).
    pub fn auto_requeue(mut self, on: bool) -> Self {
        self.auto_requeue = on;
        self
    }

    /// Starts electing; `lead` runs each time this participant wins and
    /// leadership ends when its future completes (or is cancelled).
    pub fn start<F, Fut>(self, mut lead: F) -> LeaderSelector
    where
        F: FnMut(Curator) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.start_fenced(move |curator, _fence| lead(curator))
    }

    /// As [`start`](Self::start), and `lead` also gets the term's
    /// [`Fence`]: its token and fenced writes, refused by the server once
    /// this participant's mutex node is gone.
    pub fn start_fenced<F, Fut>(self, lead: F) -> LeaderSelector
    where
        F: FnMut(Curator, Fence) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let data = match &self.id {
            Some(id) => Bytes::from(id.clone().into_bytes()),
            None => self.curator.default_data(),
        };
        let shared = Arc::new(Shared {
            curator: self.curator.clone(),
            path: self.path.clone(),
            data,
            auto_requeue: self.auto_requeue,
            leader: watch::Sender::new(false),
            leaderships: watch::Sender::new(0),
            transitions: Transitions::default(),
            requeue: Notify::new(),
            interrupt: Notify::new(),
            closed: watch::Sender::new(false),
        });
        let task = self.curator.spawn(shared.clone().run(lead));
        LeaderSelector { shared, task }
    }
}

#[derive(Debug)]
struct Shared {
    curator: Curator,
    path: String,
    data: Bytes,
    auto_requeue: bool,
    leader: watch::Sender<bool>,
    /// How many times this participant has led.
    leaderships: watch::Sender<u64>,
    transitions: Transitions,
    requeue: Notify,
    interrupt: Notify,
    closed: watch::Sender<bool>,
}

/// A running selector; [`close`](Self::close) it to leave.
///
/// ```no_run
/// # async fn demo(curator: zk_recipes::Curator) -> zk_recipes::Result<()> {
/// use zk_recipes::LeaderSelector;
/// let selector = LeaderSelector::builder(&curator, "/election/compactor")
///     .id("node-1")
///     .auto_requeue(true)
///     .start_fenced(|_curator, fence| async move {
///         // Leadership lasts while this future runs; writes are fenced.
///         let _ = fence.set_data("/compactor/owner", b"node-1", None).await;
///     });
/// selector.close().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct LeaderSelector {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl LeaderSelector {
    /// A selector builder for the election at `path`.
    pub fn builder(curator: &Curator, path: &str) -> LeaderSelectorBuilder {
        LeaderSelectorBuilder {
            curator: curator.clone(),
            path: path.to_string(),
            id: None,
            auto_requeue: false,
        }
    }

    /// True while the leader future runs.
    pub fn has_leadership(&self) -> bool {
        *self.shared.leader.borrow()
    }

    /// The latest leadership value (true while the leader future runs);
    /// see [`transitions`](Self::transitions) for every change.
    pub fn leadership(&self) -> watch::Receiver<bool> {
        self.shared.leader.subscribe()
    }

    /// Every leadership change from now on, in order (starting with
    /// `IsLeader` if leading now); ends when the selector is closed.
    pub fn transitions(&self) -> Events<LeadershipEvent> {
        self.shared.transitions.subscribe()
    }

    /// The fence of the current term, while leading.
    pub fn fence(&self) -> Option<Fence> {
        self.shared.transitions.current()
    }

    /// How many leaderships this participant has had, as it changes.
    pub fn leadership_count(&self) -> watch::Receiver<u64> {
        self.shared.leaderships.subscribe()
    }

    /// Queues one more election (needed without auto-requeue).
    pub fn requeue(&self) {
        self.shared.requeue.notify_one();
    }

    /// Cancels the current leadership, if leading.
    pub fn interrupt_leadership(&self) {
        if self.has_leadership() {
            self.shared.interrupt.notify_one();
        }
    }

    /// Everybody in the election, in order (asks ZooKeeper).
    pub async fn participants(&self) -> Result<Vec<Participant>> {
        participants(&self.shared.curator, &self.shared.path, LOCK_NAME).await
    }

    /// The current leader according to ZooKeeper.
    pub async fn leader(&self) -> Result<Option<Participant>> {
        Ok(self.participants().await?.into_iter().next())
    }

    /// Stops electing: cancels leadership and releases the mutex.
    pub async fn close(mut self) {
        self.shared.closed.send_replace(true);
        let _ = (&mut self.task).await;
        self.shared.transitions.close(LossReason::Released);
    }
}

impl Drop for LeaderSelector {
    fn drop(&mut self) {
        self.shared.closed.send_replace(true);
    }
}

/// Resolves at the first state the error policy calls an error.
async fn error_state(curator: &Curator, states: &mut broadcast::Receiver<ConnectionState>) {
    loop {
        match states.recv().await {
            Ok(state) if curator.error_policy().is_error(state) => return,
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

impl Shared {
    async fn run<F, Fut>(self: Arc<Self>, mut lead: F)
    where
        F: FnMut(Curator, Fence) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut closed = self.closed.subscribe();
        loop {
            if *closed.borrow() {
                return;
            }
            // A fresh handle per election: the previous one may still be
            // releasing in the background, and re-entering it would let
            // this participant lead again without queueing.
            let mutex = InterProcessMutex::with_data(&self.curator, &self.path, self.data.clone());
            let mut states = self.curator.subscribe_states();
            let acquired = tokio::select! {
                r = mutex.acquire() => Some(r),
                _ = error_state(&self.curator, &mut states) => None,
                _ = closed.changed() => return,
            };
            match acquired {
                Some(Ok(guard)) => {
                    let fence = guard.fence().clone();
                    self.transitions.elected(fence.clone());
                    self.leader.send_replace(true);
                    self.leaderships.send_modify(|n| *n += 1);
                    let stop = tokio::select! {
                        _ = lead(self.curator.clone(), fence) => false,
                        _ = error_state(&self.curator, &mut states) => false,
                        _ = self.interrupt.notified() => false,
                        _ = closed.changed() => true,
                    };
                    self.leader.send_replace(false);
                    self.transitions.deposed(LossReason::Released);
                    if stop {
                        let _ = guard.release().await;
                        return;
                    }
                    // Release in the background: the next election need
                    // not wait for the delete.
                    self.curator.spawn_detached(async move {
                        if let Err(e) = guard.release().await {
                            tracing::warn!(%e, "leader release failed");
                        }
                    });
                }
                Some(Err(e)) => {
                    if self.curator.is_closed() {
                        return;
                    }
                    tracing::debug!(%e, "election attempt failed");
                }
                // Cancelled while waiting: the acquire cleaned its node up.
                None => {}
            }
            if !self.auto_requeue {
                tokio::select! {
                    _ = self.requeue.notified() => {}
                    _ = closed.changed() => return,
                }
            }
        }
    }
}
