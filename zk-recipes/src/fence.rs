//! Fencing for locks and leadership: a [`Fence`] is what a holder gets with
//! the lock (or with a leadership term) to act safely after a pause.
//!
//! A process that pauses (GC, VM stall, SIGSTOP) past its session timeout
//! keeps believing it holds the lock while another process already does.
//! No client-side flag can prevent that, so a fence offers two things the
//! server checks instead of the holder:
//!
//! * a **token**: the `czxid` of the holder's node. For one lock path every
//!   later holder's token is greater, since a contender only gets its turn
//!   once every earlier node is gone, and a node created later gets a
//!   greater zxid. External stores can refuse writes carrying a token
//!   smaller than the largest they have seen.
//! * **fenced writes** ([`Fence::multi`], [`Fence::set_data`]): a
//!   transaction that starts with a check on the holder's node, so the
//!   ZooKeeper server applies the write only while that node exists. Once
//!   the session expired (the server deleted the ephemeral node) or the
//!   node was deleted, the whole transaction fails and nothing is written:
//!   [`Error::Fenced`].
//!
//! The check is an existence check (`check(path, -1)`): the holder's node
//! name is sequential and carries a random protection prefix, so no later
//! node can ever have the same path; its data may change (a revocation
//! request writes `__REVOKE__` into it) without the holder losing it.
//!
//! [`Fence::lost`] resolves when the holder loses what the fence stands
//! for: the node was deleted, the session ended (connection state Lost, or
//! the framework moved to a new session), the framework was closed, or the
//! holder released it. It is advisory (a paused process sees it late); the
//! fenced write is the guarantee.

use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use zk_client::{KeeperState, Op, OpResult, Stat};

use crate::connection::ConnectionState;
use crate::error::{Error, Result};
use crate::framework::Curator;

/// Why a fence's holder lost what it held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LossReason {
    /// The holder released the lock or stepped down.
    Released,
    /// The holder's node is gone (deleted by someone, or by the server
    /// when the session expired).
    NodeDeleted,
    /// The session that owns the node ended, or the connection state went
    /// Lost (the node may outlive the process's knowledge of it only until
    /// the server expires the session).
    SessionEnded,
    /// The framework was closed.
    Closed,
}

/// The proof of a hold that the server can check; cheap to clone. See the
/// module docs.
///
/// ```no_run
/// # async fn demo(curator: zk_recipes::Curator) -> zk_recipes::Result<()> {
/// use zk_client::Op;
/// use zk_recipes::{Error, InterProcessMutex};
/// let guard = InterProcessMutex::new(&curator, "/locks/ledger").acquire().await?;
/// let fence = guard.fence().clone();
/// match fence.multi(&[Op::set_data("/ledger/head", b"entry-9", None)]).await {
///     Ok(_) => println!("written under token {}", fence.token()),
///     // The lock was lost (e.g. our session expired during a pause): nothing written.
///     Err(Error::Fenced { path }) => println!("fenced out: {path} is gone"),
///     Err(e) => return Err(e),
/// }
/// guard.release().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Fence {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    curator: Curator,
    path: String,
    token: i64,
    session_id: i64,
    lost: Arc<watch::Sender<Option<LossReason>>>,
    monitor: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = self
            .monitor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            task.abort();
        }
    }
}

/// The outcome of a transaction whose first ops are the checks of the
/// fences on `paths`: `Fenced` when one of those checks failed, else the
/// first failing op's own error, else the results after the checks.
pub(crate) fn fenced_outcome(paths: &[&str], results: Vec<OpResult>) -> Result<Vec<OpResult>> {
    let failed_check = results
        .iter()
        .zip(paths)
        .find(|(result, _)| matches!(result, OpResult::Error(_)));
    if let Some((_, path)) = failed_check {
        return Err(Error::Fenced {
            path: path.to_string(),
        });
    }
    match results.iter().find_map(OpResult::error) {
        Some(e) => Err(e.clone().into()),
        None => Ok(results.into_iter().skip(paths.len()).collect()),
    }
}

/// Runs `ops` as one transaction that applies only while every fence's
/// node exists (several locks held together, e.g. an
/// [`InterProcessMultiLock`](crate::InterProcessMultiLock)); see
/// [`Fence::multi`]. All fences must belong to one framework.
pub async fn multi_fenced(fences: &[&Fence], ops: &[Op]) -> Result<Vec<OpResult>> {
    let Some(first) = fences.first() else {
        return Err(Error::InvalidArgument("no fence to write through".into()));
    };
    // A hold known to be over (released, or its loss seen) is refused
    // here: after a release the node may live on for a moment while it is
    // deleted in the background, and the holder must not write through it.
    if let Some(lost) = fences.iter().find(|f| f.is_lost()) {
        return Err(Error::Fenced {
            path: lost.path().to_string(),
        });
    }
    let mut all: Vec<Op> = fences.iter().map(|f| f.check_op()).collect();
    all.extend_from_slice(ops);
    let client = first.inner.curator.connected_client_or_loss().await?;
    let results = client.multi_results(&all).await?;
    let paths: Vec<&str> = fences.iter().map(|f| f.path()).collect();
    fenced_outcome(&paths, results)
}

impl Fence {
    /// A fence on `path`, our node, whose stat was read on session
    /// `session_id`. Fails with `NodeVanished` when the node is not an
    /// ephemeral of that session (a stale node left by an earlier one).
    pub(crate) fn start(
        curator: &Curator,
        path: &str,
        stat: &Stat,
        session_id: i64,
    ) -> Result<Fence> {
        if stat.ephemeral_owner != session_id {
            return Err(Error::NodeVanished(path.to_string()));
        }
        let lost = Arc::new(watch::Sender::new(None));
        let inner = Arc::new(Inner {
            curator: curator.clone(),
            path: path.to_string(),
            token: stat.czxid,
            session_id,
            lost: lost.clone(),
            monitor: Mutex::new(None),
        });
        // Subscribe before spawning: a Lost posted meanwhile is not missed.
        let states = curator.subscribe_states();
        let generation = curator.generation();
        let task = curator.spawn(monitor(
            curator.clone(),
            path.to_string(),
            stat.czxid,
            session_id,
            generation,
            states,
            lost,
        ));
        *inner.monitor.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        Ok(Fence { inner })
    }

    /// Reads our node's stat on the current session and fences on it.
    pub(crate) async fn for_node(curator: &Curator, path: &str) -> Result<Fence> {
        let (stat, session) = curator
            .with_retry(|client| {
                let path = path.to_string();
                async move { Ok((client.exists(&path).await?, client.session_id())) }
            })
            .await?;
        match stat {
            Some(stat) => Fence::start(curator, path, &stat, session),
            None => Err(Error::NodeVanished(path.to_string())),
        }
    }

    /// The fencing token: the holder node's czxid, increasing from one
    /// holder to the next on the same lock path.
    pub fn token(&self) -> i64 {
        self.inner.token
    }

    /// The holder's node.
    pub fn path(&self) -> &str {
        &self.inner.path
    }

    /// The session that owns the holder's node.
    pub fn session_id(&self) -> i64 {
        self.inner.session_id
    }

    /// The check that guards a fenced transaction: the holder's node still
    /// exists. Put it first in your own `multi` if you run one yourself.
    pub fn check_op(&self) -> Op {
        Op::check(&self.inner.path, -1)
    }

    /// Runs `ops` as one transaction that applies only while the holder's
    /// node exists; returns the results of `ops` (the check's own result
    /// left out). [`Error::Fenced`] when the hold is gone, in which case
    /// nothing was written: refused here when the loss is already known,
    /// by the server's check otherwise (the case of a paused holder). Sent
    /// once, without retry: after a connection loss the outcome is
    /// unknown, as for any `multi`.
    pub async fn multi(&self, ops: &[Op]) -> Result<Vec<OpResult>> {
        multi_fenced(&[self], ops).await
    }

    /// `set_data` fenced by the hold: see [`multi`](Self::multi).
    pub async fn set_data(&self, path: &str, data: &[u8], version: Option<i32>) -> Result<Stat> {
        let results = self.multi(&[Op::set_data(path, data, version)]).await?;
        match results.into_iter().next() {
            Some(OpResult::SetData { stat }) => Ok(stat),
            _ => Err(zk_client::Error::MarshallingError.into()),
        }
    }

    /// True once the hold is known to be lost.
    pub fn is_lost(&self) -> bool {
        self.inner.lost.borrow().is_some()
    }

    /// Why the hold was lost, once it is.
    pub fn loss_reason(&self) -> Option<LossReason> {
        *self.inner.lost.borrow()
    }

    /// Resolves when the hold is lost, with the reason (at once if it
    /// already is). Cancel-safe; any number of callers may wait.
    pub async fn lost(&self) -> LossReason {
        let mut lost = self.inner.lost.subscribe();
        let reason = lost.wait_for(Option::is_some).await.map(|r| *r);
        match reason {
            Ok(Some(reason)) => reason,
            // The sender lives in `inner`, which we hold: unreachable, but
            // a closed feed can only mean the hold is over.
            _ => LossReason::Closed,
        }
    }

    /// Marks the hold lost (first reason wins) and stops watching it.
    pub(crate) fn end(&self, reason: LossReason) {
        mark(&self.inner.lost, reason);
        if let Some(task) = self
            .inner
            .monitor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            task.abort();
        }
    }
}

fn mark(lost: &watch::Sender<Option<LossReason>>, reason: LossReason) {
    lost.send_if_modified(|current| {
        if current.is_some() {
            return false;
        }
        *current = Some(reason);
        true
    });
}

/// Watches the hold until it is lost, then records why.
async fn monitor(
    curator: Curator,
    path: String,
    token: i64,
    session_id: i64,
    generation: u64,
    mut states: broadcast::Receiver<ConnectionState>,
    lost: Arc<watch::Sender<Option<LossReason>>>,
) {
    let reason = watch_hold(&curator, &path, token, session_id, generation, &mut states).await;
    tracing::debug!(%path, ?reason, "fence lost");
    mark(&lost, reason);
}

async fn watch_hold(
    curator: &Curator,
    path: &str,
    token: i64,
    session_id: i64,
    generation: u64,
    states: &mut broadcast::Receiver<ConnectionState>,
) -> LossReason {
    loop {
        if curator.is_closed() {
            return LossReason::Closed;
        }
        let client = curator.client();
        if curator.generation() != generation || client.session_id() != session_id {
            return LossReason::SessionEnded;
        }
        let watch = match client.exists_and_watch(path).await {
            Ok((None, _)) => return LossReason::NodeDeleted,
            // Same path, another node: ours was deleted meanwhile.
            Ok((Some(stat), _)) if stat.czxid != token => return LossReason::NodeDeleted,
            Ok((Some(_), watch)) => watch,
            Err(zk_client::Error::SessionExpired | zk_client::Error::Closed) => {
                return LossReason::SessionEnded
            }
            Err(e) => {
                // No answer now: wait for the connection to come back (or
                // be declared lost), then look again.
                tracing::debug!(%path, %e, "fence check deferred");
                match next_connection_change(curator, states).await {
                    Some(reason) => return reason,
                    None => continue,
                }
            }
        };
        // Until the node changes (look again), the session ends, or the
        // connection is declared lost. A mere disconnection keeps the
        // watch, which the client re-registers on reconnect.
        tokio::select! {
            event = watch => {
                if ends_session(event.state) {
                    return LossReason::SessionEnded;
                }
            }
            // Reconnected: the node may have gone meanwhile without an
            // event reaching us, so look again either way.
            change = next_connection_change(curator, states) => {
                if let Some(reason) = change {
                    return reason;
                }
            }
        }
    }
}

/// Waits for the next connection state that matters: `Some(reason)` when
/// the hold is over, `None` when it is worth looking at the node again.
async fn next_connection_change(
    curator: &Curator,
    states: &mut broadcast::Receiver<ConnectionState>,
) -> Option<LossReason> {
    loop {
        tokio::select! {
            state = states.recv() => match state {
                Ok(ConnectionState::Lost) => return Some(LossReason::SessionEnded),
                Ok(ConnectionState::Connected | ConnectionState::Reconnected
                    | ConnectionState::ReadOnly) => return None,
                Ok(ConnectionState::Suspended) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => return None,
                Err(broadcast::error::RecvError::Closed) => return Some(LossReason::Closed),
            },
            _ = curator.closed() => return Some(LossReason::Closed),
        }
    }
}

/// Whether a watch event ends the session (as opposed to a node event).
fn ends_session(state: KeeperState) -> bool {
    matches!(
        state,
        KeeperState::Expired | KeeperState::Closed | KeeperState::AuthFailed
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_failed() -> OpResult {
        OpResult::Error(zk_client::Error::NoNode)
    }

    #[test]
    fn a_failed_check_is_reported_as_fenced_on_its_node() {
        let results = vec![
            OpResult::NotApplied,
            check_failed(),
            OpResult::Error(zk_client::Error::RuntimeInconsistency),
        ];
        assert_eq!(
            fenced_outcome(&["/a", "/b"], results),
            Err(Error::Fenced { path: "/b".into() })
        );
    }

    #[test]
    fn a_failing_write_after_passing_checks_keeps_its_own_error() {
        let results = vec![
            OpResult::NotApplied,
            OpResult::Error(zk_client::Error::BadVersion),
        ];
        assert_eq!(
            fenced_outcome(&["/a"], results),
            Err(Error::Zk(zk_client::Error::BadVersion))
        );
    }

    #[test]
    fn a_passing_transaction_returns_the_results_after_the_checks() {
        let stat = Stat::default();
        let results = vec![
            OpResult::Check,
            OpResult::Check,
            OpResult::SetData { stat: stat.clone() },
        ];
        assert_eq!(
            fenced_outcome(&["/a", "/b"], results),
            Ok(vec![OpResult::SetData { stat }])
        );
    }
}
