//! `LeaderLatch` (RECIPES.md §B9): every participant keeps a protected
//! ephemeral-sequential node `path/_c_<uuid>-latch-<seq>` holding its id;
//! the first node in sequence order leads. Followers watch only their
//! immediate predecessor. Leadership is a flag that lasts until close or a
//! connection problem:
//!
//! * Suspended → not leader if the error policy says so; Lost → not leader;
//! * Connected/Reconnected → re-check (a new node only if ours is gone);
//! * before claiming leadership, our node's `ephemeralOwner` must be the
//!   current session (no adopting an expired session's node).
//!
//! Every change is also a [`LeadershipEvent`] on
//! [`transitions`](LeaderLatch::transitions), in order and never collapsed;
//! each term comes with a [`Fence`] on our latch node (its czxid as the
//! token; fenced writes that the server refuses once the node is gone).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use zk_client::{CreateMode, Stat, Watch};

use crate::cache::Events;
use crate::connection::ConnectionState;
use crate::error::{Error, Result};
use crate::fence::{Fence, LossReason};
use crate::framework::Curator;
use crate::leader::participants::{participants, Participant};
use crate::leader::transitions::{LeadershipEvent, Transitions};
use crate::paths::{join, node_name, sorted_by_sequence};

/// Curator's lock name for latch nodes.
pub const LATCH_NAME: &str = "latch-";

/// Pause after an unexpected error before trying again.
const ERROR_PAUSE: Duration = Duration::from_millis(500);

#[derive(Debug)]
struct Shared {
    curator: Curator,
    path: String,
    id: String,
    leader: watch::Sender<bool>,
    transitions: Transitions,
    our_path: Mutex<Option<String>>,
    closed: watch::Sender<bool>,
}

/// A running latch; [`close`](Self::close) it to leave the election.
///
/// ```no_run
/// # async fn demo(curator: zk_recipes::Curator) -> zk_recipes::Result<()> {
/// use futures::StreamExt;
/// use zk_recipes::{LeaderLatch, LeadershipEvent};
/// let latch = LeaderLatch::start(&curator, "/election/scheduler", "node-1");
/// let mut transitions = latch.transitions();
/// while let Some(event) = transitions.next().await {
///     match event {
///         LeadershipEvent::IsLeader(fence) => println!("leading, token {}", fence.token()),
///         LeadershipEvent::NotLeader => println!("following"),
///     }
/// }
/// latch.close().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct LeaderLatch {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

/// What a connection state asks of the latch loop.
enum Step {
    Recheck,
    Wait,
    Stop,
}

/// Where a check of the children leaves us.
enum Check {
    /// We lead: a watch on our node, its stat and the session it was read
    /// on.
    Leader(Watch, Stat, i64),
    Follower(Watch),
    /// Our node is gone or not ours: make a new one.
    Reset,
    /// The predecessor vanished between listing and watching.
    Again,
}

impl LeaderLatch {
    /// Joins the election at `path` with `id` as node data, in the
    /// background.
    pub fn start(curator: &Curator, path: &str, id: &str) -> LeaderLatch {
        let shared = Arc::new(Shared {
            curator: curator.clone(),
            path: path.to_string(),
            id: id.to_string(),
            leader: watch::Sender::new(false),
            transitions: Transitions::default(),
            our_path: Mutex::new(None),
            closed: watch::Sender::new(false),
        });
        // Subscribe before spawning so no state posted meanwhile is missed.
        let states = curator.subscribe_states();
        let task = curator.spawn(shared.clone().run(states));
        LeaderLatch { shared, task }
    }

    /// True while this participant leads (and the latch is open).
    pub fn has_leadership(&self) -> bool {
        *self.shared.leader.borrow() && !*self.shared.closed.borrow()
    }

    /// The latest leadership value (true = leader), starting with the
    /// current one. A latest-value channel: a quick true → false → true
    /// can read as "still true"; use [`transitions`](Self::transitions) to
    /// see every change.
    pub fn leadership(&self) -> watch::Receiver<bool> {
        self.shared.leader.subscribe()
    }

    /// Every leadership change from now on, in order (starting with
    /// `IsLeader` if leading now); ends when the latch is closed.
    pub fn transitions(&self) -> Events<LeadershipEvent> {
        self.shared.transitions.subscribe()
    }

    /// The fence of the current term, while leading.
    pub fn fence(&self) -> Option<Fence> {
        self.shared.transitions.current()
    }

    /// Waits until this participant leads (a term that began and ended
    /// while waiting counts too); false when `timeout` passes first.
    pub async fn await_leadership(&self, timeout: Duration) -> bool {
        use futures::StreamExt;
        let mut events = self.transitions();
        let elected = async {
            while let Some(event) = events.next().await {
                if event.is_leader() {
                    return true;
                }
            }
            false
        };
        tokio::time::timeout(timeout, elected)
            .await
            .unwrap_or(false)
    }

    /// Our current node, if created.
    pub fn our_path(&self) -> Option<String> {
        self.shared
            .our_path
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// This participant's id (its node data).
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// Everybody in the election, in order (asks ZooKeeper).
    pub async fn participants(&self) -> Result<Vec<Participant>> {
        participants(&self.shared.curator, &self.shared.path, LATCH_NAME).await
    }

    /// The current leader according to ZooKeeper (may briefly disagree
    /// with the local flags).
    pub async fn leader(&self) -> Result<Option<Participant>> {
        Ok(self.participants().await?.into_iter().next())
    }

    /// Leaves the election: no more leadership, our node deleted
    /// (guaranteed). Listeners see leadership false.
    pub async fn close(mut self) -> Result<()> {
        self.shared.closed.send_replace(true);
        let _ = (&mut self.task).await;
        self.shared.leader.send_replace(false);
        self.shared.transitions.close(LossReason::Released);
        let ours = self
            .shared
            .our_path
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        match ours {
            Some(path) if !self.shared.curator.is_closed() => {
                self.shared.curator.delete_guaranteed(&path).await
            }
            _ => Ok(()),
        }
    }
}

impl Drop for LeaderLatch {
    fn drop(&mut self) {
        // Dropped without close: stop and leave the node to the session.
        self.task.abort();
        self.shared.transitions.close(LossReason::Released);
    }
}

impl Shared {
    /// Leadership ends (if it was ours).
    fn set_follower(&self, reason: LossReason) {
        self.transitions.deposed(reason);
        self.leader
            .send_if_modified(|current| std::mem::replace(current, false));
    }

    /// We lead on our node, read with `stat` on `session`. A term already
    /// running on the same node goes on (a re-check after a reconnect).
    fn set_leader(&self, our_path: &str, stat: &Stat, session: i64) -> Result<()> {
        let same_term = self
            .transitions
            .current()
            .is_some_and(|f| f.path() == our_path && f.token() == stat.czxid && !f.is_lost());
        if !same_term {
            let fence = Fence::start(&self.curator, our_path, stat, session)?;
            self.transitions.elected(fence);
        }
        self.leader
            .send_if_modified(|current| !std::mem::replace(current, true));
        Ok(())
    }

    fn current_path(&self) -> Option<String> {
        self.our_path
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_our_path(&self, path: Option<String>) -> Option<String> {
        std::mem::replace(
            &mut *self.our_path.lock().unwrap_or_else(|e| e.into_inner()),
            path,
        )
    }

    async fn run(self: Arc<Self>, mut states: broadcast::Receiver<ConnectionState>) {
        let mut closed = self.closed.subscribe();
        'reset: loop {
            self.set_follower(LossReason::NodeDeleted);
            if let Some(old) = self.set_our_path(None) {
                self.curator.delete_in_background(old);
            }
            let created = tokio::select! {
                r = self.curator.create_protected(
                    &self.path,
                    LATCH_NAME,
                    self.id.as_bytes(),
                    CreateMode::EphemeralSequential,
                ) => r,
                _ = closed.changed() => return,
            };
            match created {
                Ok(path) => {
                    self.set_our_path(Some(path));
                }
                Err(Error::Closed) => return,
                Err(e) => {
                    tracing::warn!(%e, path = %self.path, "latch node not created");
                    tokio::time::sleep(ERROR_PAUSE).await;
                    continue 'reset;
                }
            }
            loop {
                // States are handled while checking too, so a drop during a
                // check still clears the flag at once.
                let check = tokio::select! {
                    c = self.check() => c,
                    state = states.recv() => match self.on_state(state) {
                        Step::Stop => return,
                        Step::Recheck | Step::Wait => continue,
                    },
                    _ = closed.changed() => return,
                };
                let mut watch = match check {
                    Ok(Check::Leader(watch, stat, session)) => {
                        let Some(our_path) = self.current_path() else {
                            continue 'reset;
                        };
                        if self.set_leader(&our_path, &stat, session).is_err() {
                            continue 'reset;
                        }
                        watch
                    }
                    Ok(Check::Follower(watch)) => {
                        self.set_follower(LossReason::NodeDeleted);
                        watch
                    }
                    Ok(Check::Reset) => continue 'reset,
                    Ok(Check::Again) => continue,
                    Err(Error::Closed) => return,
                    Err(e) => {
                        tracing::debug!(%e, "latch check failed");
                        tokio::time::sleep(ERROR_PAUSE).await;
                        continue;
                    }
                };
                // Wait for the watch or a state that calls for a re-check.
                loop {
                    tokio::select! {
                        _ = &mut watch => break,
                        state = states.recv() => match self.on_state(state) {
                            Step::Stop => return,
                            Step::Recheck => break,
                            Step::Wait => {}
                        },
                        _ = closed.changed() => return,
                    }
                }
            }
        }
    }

    /// Reacts to a connection state: error states clear the flag,
    /// (re)connections call for a re-check.
    fn on_state(&self, state: Result<ConnectionState, broadcast::error::RecvError>) -> Step {
        match state {
            Ok(ConnectionState::Connected | ConnectionState::Reconnected) => Step::Recheck,
            Ok(state) if self.curator.error_policy().is_error(state) => {
                self.set_follower(LossReason::SessionEnded);
                Step::Wait
            }
            Ok(_) => Step::Wait,
            Err(broadcast::error::RecvError::Lagged(_)) => Step::Recheck,
            Err(broadcast::error::RecvError::Closed) => Step::Stop,
        }
    }

    /// Lists the contenders and decides our role.
    async fn check(&self) -> Result<Check> {
        let Some(our_path) = self.current_path() else {
            return Ok(Check::Reset);
        };
        let base = self.path.clone();
        let children = self
            .curator
            .with_retry(|client| {
                let base = base.clone();
                async move {
                    match client.get_children(&base).await {
                        Ok(children) => Ok(Some(children)),
                        // The latch directory vanished (container reaped).
                        Err(zk_client::Error::NoNode) => Ok(None),
                        Err(e) => Err(e),
                    }
                }
            })
            .await?;
        let Some(children) = children else {
            return Ok(Check::Reset);
        };
        let sorted = sorted_by_sequence(children, &[LATCH_NAME]);
        let Some(ours) = sorted.iter().position(|c| c == node_name(&our_path)) else {
            return Ok(Check::Reset);
        };
        if ours == 0 {
            // Ours must belong to this session; watching it also tells us
            // when somebody deletes it.
            let (stat, watch, session) = self
                .curator
                .with_retry(|client| {
                    let path = our_path.clone();
                    async move {
                        let (stat, watch) = client.exists_and_watch(&path).await?;
                        Ok((stat, watch, client.session_id()))
                    }
                })
                .await?;
            return Ok(match stat {
                Some(stat) if stat.ephemeral_owner == session => {
                    Check::Leader(watch, stat, session)
                }
                _ => Check::Reset,
            });
        }
        let predecessor = join(&self.path, &sorted[ours - 1]);
        let watch = self
            .curator
            .with_retry(|client| {
                let predecessor = predecessor.clone();
                async move {
                    match client.get_data_and_watch(&predecessor).await {
                        Ok((_, _, watch)) => Ok(Some(watch)),
                        Err(zk_client::Error::NoNode) => Ok(None),
                        Err(e) => Err(e),
                    }
                }
            })
            .await?;
        Ok(watch.map_or(Check::Again, Check::Follower))
    }
}
