//! The machinery shared by the mutex, the read/write lock halves and the
//! leader selector (Curator's `LockInternals`, RECIPES.md §B1): create a
//! protected ephemeral-sequential node, sort all children by sequence, and
//! either hold the lock or watch exactly one earlier node (no herd).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use zk_client::CreateMode;

use crate::error::{Error, Result};
use crate::fence::Fence;
use crate::framework::Curator;
use crate::paths::{join, node_name, sorted_by_sequence};

/// What the sorted contenders mean for us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Turn {
    Acquired,
    /// Wait until this child (a name under the lock path) goes away.
    WaitFor(String),
}

/// Decides whose turn it is (Curator's `LockInternalsDriver`).
pub(crate) trait LockDriver: std::fmt::Debug + Send + Sync {
    /// Every lock name contenders are sorted by.
    fn sort_names(&self) -> &[&'static str];
    /// Our turn given the sorted children and our index among them.
    fn turn(&self, sorted: &[String], ours: usize) -> Turn;
}

/// Held while fewer than `max_leases` contenders precede us; otherwise
/// wait for the one `max_leases` places ahead.
#[derive(Debug, Clone)]
pub(crate) struct StandardDriver {
    pub sort_names: Vec<&'static str>,
    pub max_leases: usize,
}

impl LockDriver for StandardDriver {
    fn sort_names(&self) -> &[&'static str] {
        &self.sort_names
    }

    fn turn(&self, sorted: &[String], ours: usize) -> Turn {
        if ours < self.max_leases {
            Turn::Acquired
        } else {
            Turn::WaitFor(sorted[ours - self.max_leases].clone())
        }
    }
}

/// One lock path with one node-naming and turn rule.
#[derive(Debug, Clone)]
pub(crate) struct LockInternals {
    pub curator: Curator,
    pub base_path: String,
    /// The name our node is created with (after the protection prefix).
    pub lock_name: &'static str,
    pub driver: Arc<dyn LockDriver>,
    pub data: Bytes,
}

/// Deletes our node in the background if dropped while armed, so a
/// cancelled or failed acquire never leaves a node that blocks others.
pub(crate) struct NodeGuard {
    curator: Curator,
    path: Option<String>,
}

impl NodeGuard {
    pub(crate) fn new(curator: &Curator, path: String) -> NodeGuard {
        NodeGuard {
            curator: curator.clone(),
            path: Some(path),
        }
    }

    /// Keeps the node; returns its path.
    pub(crate) fn disarm(mut self) -> String {
        self.path.take().unwrap_or_default()
    }
}

impl Drop for NodeGuard {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            self.curator.delete_in_background(path);
        }
    }
}

/// Waits until `deadline` (forever when `None`).
pub(crate) async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => futures::future::pending().await,
    }
}

impl LockInternals {
    /// The children of the lock path in lock order (empty if the path is
    /// missing).
    pub async fn sorted_children(&self) -> Result<Vec<String>> {
        let base = self.base_path.clone();
        let children = self
            .curator
            .with_retry(|client| {
                let base = base.clone();
                async move {
                    match client.get_children(&base).await {
                        Err(zk_client::Error::NoNode) => Ok(Vec::new()),
                        other => other,
                    }
                }
            })
            .await?;
        Ok(sorted_by_sequence(children, self.driver.sort_names()))
    }

    /// Acquires: `Ok(Some(fence on our node))`, or `Ok(None)` when
    /// `timeout` passed first (our node is then deleted). A vanished node
    /// restarts with a new one while the retry policy allows.
    pub async fn attempt(&self, timeout: Option<Duration>) -> Result<Option<Fence>> {
        let started = Instant::now();
        let deadline = timeout.map(|t| started + t);
        let mut retries = 0;
        loop {
            let path = self
                .curator
                .create_protected(
                    &self.base_path,
                    self.lock_name,
                    &self.data,
                    CreateMode::EphemeralSequential,
                )
                .await?;
            let guard = NodeGuard::new(&self.curator, path.clone());
            match self.wait_for_turn(&path, deadline).await {
                Ok(Some(fence)) => {
                    guard.disarm();
                    return Ok(Some(fence));
                }
                Ok(None) => {
                    guard.disarm();
                    self.curator.delete_guaranteed(&path).await?;
                    return Ok(None);
                }
                Err(Error::NodeVanished(gone)) => {
                    drop(guard);
                    let sleep = self.curator.retry_policy().next_sleep(
                        retries,
                        started.elapsed(),
                        &mut rand::thread_rng(),
                    );
                    match sleep {
                        Some(sleep) => tokio::time::sleep(sleep).await,
                        None => return Err(Error::NodeVanished(gone)),
                    }
                    retries += 1;
                }
                Err(e) => {
                    guard.disarm();
                    self.curator.delete_guaranteed(&path).await?;
                    return Err(e);
                }
            }
        }
    }

    /// The acquire loop for our node: its fence when acquired, `None` on
    /// timeout.
    async fn wait_for_turn(
        &self,
        our_path: &str,
        deadline: Option<Instant>,
    ) -> Result<Option<Fence>> {
        let our_name = node_name(our_path).to_string();
        loop {
            if self.curator.is_closed() {
                return Err(Error::Closed);
            }
            let sorted = self.sorted_children().await?;
            let Some(ours) = sorted.iter().position(|c| *c == our_name) else {
                return Err(Error::NodeVanished(our_path.to_string()));
            };
            match self.driver.turn(&sorted, ours) {
                Turn::Acquired => return self.verify_owner(our_path).await.map(Some),
                Turn::WaitFor(name) => {
                    let watched = join(&self.base_path, &name);
                    // getData, not exists: no watch is left behind on a
                    // node that is already gone.
                    let result = self
                        .curator
                        .with_retry(|client| {
                            let watched = watched.clone();
                            async move {
                                match client.get_data_and_watch(&watched).await {
                                    Ok((_, _, watch)) => Ok(Some(watch)),
                                    Err(zk_client::Error::NoNode) => Ok(None),
                                    Err(e) => Err(e),
                                }
                            }
                        })
                        .await?;
                    let Some(watch) = result else { continue };
                    tokio::select! {
                        _ = watch => {}
                        _ = sleep_until_opt(deadline) => return Ok(None),
                        _ = self.curator.closed() => return Err(Error::Closed),
                    }
                }
            }
        }
    }

    /// Our node must belong to the current session: a node left by an
    /// expired session can still be listed for a moment after we moved to
    /// a new one (CURATOR-604), and holding the lock through it would let
    /// two owners in. The same read gives the fence its token.
    async fn verify_owner(&self, our_path: &str) -> Result<Fence> {
        Fence::for_node(&self.curator, our_path).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_mutex_contender_waits_for_its_immediate_predecessor() {
        let driver = StandardDriver {
            sort_names: vec!["lock-"],
            max_leases: 1,
        };
        let sorted = names(&["a-lock-01", "b-lock-02", "c-lock-03"]);
        assert_eq!(driver.turn(&sorted, 0), Turn::Acquired);
        assert_eq!(driver.turn(&sorted, 2), Turn::WaitFor("b-lock-02".into()));
    }

    #[test]
    fn with_n_leases_a_contender_waits_n_places_ahead() {
        let driver = StandardDriver {
            sort_names: vec!["lock-"],
            max_leases: 2,
        };
        let sorted = names(&["a", "b", "c", "d"]);
        assert_eq!(driver.turn(&sorted, 1), Turn::Acquired);
        assert_eq!(driver.turn(&sorted, 3), Turn::WaitFor("b".into()));
    }
}
