//! `InterProcessMutex` (RECIPES.md §B2): a fair, re-entrant distributed
//! lock on Curator's layout `path/_c_<uuid>-lock-<seq>`.
//!
//! Re-entrancy is **per handle**: Java ties it to a thread, an async task
//! has no stable identity, so here the [`InterProcessMutex`] value is the
//! owner. While a handle holds the lock, `acquire` on that same handle
//! succeeds at once and returns one more guard; the node is deleted when
//! the last guard is released. Give every contending task its own handle
//! (handles are cheap: [`InterProcessMutex::new`] does no I/O).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, Mutex as AsyncMutex};
use zk_client::CreateMode;

use crate::cache::Events;
use crate::error::{Error, Result};
use crate::framework::Curator;
use crate::lock::internals::{LockDriver, LockInternals, StandardDriver};
use crate::lock::revocation::{watch_for_revocation, RevocationRequest, RevocationWatch};
use crate::paths::{join, sort_key};

/// Curator's lock name for the mutex family.
pub const LOCK_NAME: &str = "lock-";

#[derive(Debug)]
struct Held {
    path: String,
    guards: usize,
    /// Watching our node for revocation requests (revocable locks only);
    /// dropping the hold stops it.
    _revocation: Option<RevocationWatch>,
}

#[derive(Debug)]
pub(crate) struct MutexShared {
    internals: LockInternals,
    /// Our node and live guard count while held. Held across the whole
    /// acquire (only when not held yet), so two tasks on one handle never
    /// create two nodes.
    held: AsyncMutex<Option<Held>>,
    /// For a read lock: the write half of the same read/write lock, whose
    /// holder gets the read lock at once (downgrade, §B5).
    downgrade_from: Option<Arc<MutexShared>>,
    /// Where revocation requests go, once made revocable (§B6).
    revocation: std::sync::Mutex<Option<mpsc::UnboundedSender<RevocationRequest>>>,
}

impl MutexShared {
    /// Our node while held (without waiting on an acquire in progress).
    fn held_path(&self) -> Option<String> {
        self.held
            .try_lock()
            .ok()
            .and_then(|held| held.as_ref().map(|h| h.path.clone()))
    }

    async fn release_one(&self) -> Result<()> {
        let path = {
            let mut held = self.held.lock().await;
            match held.as_mut() {
                None => return Err(Error::InvalidArgument("the lock is not held".into())),
                Some(h) if h.guards > 1 => {
                    h.guards -= 1;
                    return Ok(());
                }
                Some(_) => held.take().map(|h| h.path).unwrap_or_default(),
            }
        };
        self.internals.curator.delete_guaranteed(&path).await
    }

    fn revocation_sink(&self) -> Option<mpsc::UnboundedSender<RevocationRequest>> {
        self.revocation
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The internals our node is created with: a revocable lock's node
    /// carries empty data, so only `__REVOKE__` can ever be read there.
    fn internals_for_create(&self) -> LockInternals {
        let mut internals = self.internals.clone();
        if self.revocation_sink().is_some() {
            internals.data = Bytes::new();
        }
        internals
    }

    /// The write holder's read node: plain ephemeral, named after the
    /// write node's sequence so it sorts right next to it.
    async fn create_downgraded(&self, write_path: &str) -> Result<String> {
        let seq = sort_key(
            crate::paths::node_name(write_path),
            self.internals.driver.sort_names(),
        );
        let name = format!("{}{seq}", self.internals.lock_name);
        self.internals
            .curator
            .create_protected(
                &self.internals.base_path,
                &name,
                &self.internals_for_create().data,
                CreateMode::Ephemeral,
            )
            .await
    }
}

/// A distributed re-entrant mutex; see the module docs for re-entrancy.
#[derive(Debug)]
pub struct InterProcessMutex {
    shared: Arc<MutexShared>,
}

/// Proof of holding the lock. Call [`release`](Self::release); dropping it
/// releases in the background.
#[derive(Debug)]
#[must_use = "dropping the guard releases the lock"]
pub struct MutexGuard {
    shared: Arc<MutexShared>,
    path: String,
    released: bool,
}

impl InterProcessMutex {
    /// A mutex at `path` whose node carries the framework's default data.
    pub fn new(curator: &Curator, path: &str) -> Self {
        Self::with_data(curator, path, curator.default_data())
    }

    /// A mutex whose node carries `data` (LeaderSelector puts its id here).
    pub fn with_data(curator: &Curator, path: &str, data: impl Into<Bytes>) -> Self {
        let driver = StandardDriver {
            sort_names: vec![LOCK_NAME],
            max_leases: 1,
        };
        Self::from_parts(
            curator,
            path,
            LOCK_NAME,
            Arc::new(driver),
            data.into(),
            None,
        )
    }

    pub(crate) fn from_parts(
        curator: &Curator,
        path: &str,
        lock_name: &'static str,
        driver: Arc<dyn LockDriver>,
        data: Bytes,
        downgrade_from: Option<&InterProcessMutex>,
    ) -> Self {
        InterProcessMutex {
            shared: Arc::new(MutexShared {
                internals: LockInternals {
                    curator: curator.clone(),
                    base_path: path.to_string(),
                    lock_name,
                    driver,
                    data,
                },
                held: AsyncMutex::new(None),
                downgrade_from: downgrade_from.map(|m| m.shared.clone()),
                revocation: std::sync::Mutex::new(None),
            }),
        }
    }

    /// Waits as long as it takes.
    pub async fn acquire(&self) -> Result<MutexGuard> {
        match self.acquire_inner(None).await? {
            Some(guard) => Ok(guard),
            None => Err(Error::ConnectionLost("acquiring the lock")),
        }
    }

    /// Waits at most `timeout`; `None` when it passed (no node is left).
    pub async fn try_acquire(&self, timeout: Duration) -> Result<Option<MutexGuard>> {
        self.acquire_inner(Some(timeout)).await
    }

    async fn acquire_inner(&self, timeout: Option<Duration>) -> Result<Option<MutexGuard>> {
        let acquire = async {
            let mut held = self.shared.held.lock().await;
            if let Some(h) = held.as_mut() {
                h.guards += 1;
                return Ok::<_, Error>(Some(h.path.clone()));
            }
            let write_path = self
                .shared
                .downgrade_from
                .as_ref()
                .and_then(|w| w.held_path());
            let path = match write_path {
                Some(write_path) => Some(self.shared.create_downgraded(&write_path).await?),
                None => self.shared.internals_for_create().attempt(timeout).await?,
            };
            if let Some(path) = &path {
                let revocation = self
                    .shared
                    .revocation_sink()
                    .map(|sink| watch_for_revocation(&self.shared.internals.curator, path, sink));
                *held = Some(Held {
                    path: path.clone(),
                    guards: 1,
                    _revocation: revocation,
                });
            }
            Ok(path)
        };
        // The local wait counts against the timeout too.
        let path = match timeout {
            Some(t) => tokio::time::timeout(t, acquire).await.unwrap_or(Ok(None))?,
            None => acquire.await?,
        };
        Ok(path.map(|path| MutexGuard {
            shared: self.shared.clone(),
            path,
            released: false,
        }))
    }

    /// Makes the lock revocable (RECIPES.md §B6; call before acquiring):
    /// its node is created with empty data and, while held, watched for
    /// [`Revoker::attempt_revoke`](crate::lock::Revoker::attempt_revoke).
    /// The returned stream yields one request per revocation attempt; it
    /// is up to the holder to release. A second call replaces the stream.
    pub fn make_revocable(&self) -> Events<RevocationRequest> {
        let (tx, events) = Events::channel();
        *self
            .shared
            .revocation
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(tx);
        events
    }

    /// True while this handle holds the lock.
    pub fn is_acquired(&self) -> bool {
        self.shared.held_path().is_some()
    }

    /// Every contender's node, in lock order (full paths).
    pub async fn participant_nodes(&self) -> Result<Vec<String>> {
        let internals = &self.shared.internals;
        let sorted = internals.sorted_children().await?;
        Ok(sorted
            .iter()
            .filter(|name| name.contains(internals.lock_name))
            .map(|name| join(&internals.base_path, name))
            .collect())
    }
}

impl MutexGuard {
    /// Our lock node.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Releases this hold; the node is deleted (guaranteed) when the
    /// handle's last guard goes.
    pub async fn release(mut self) -> Result<()> {
        self.released = true;
        self.shared.release_one().await
    }
}

impl Drop for MutexGuard {
    fn drop(&mut self) {
        if !self.released {
            let shared = self.shared.clone();
            crate::framework::spawn_detached(async move {
                if let Err(e) = shared.release_one().await {
                    tracing::warn!(%e, "background lock release failed");
                }
            });
        }
    }
}
