//! `InterProcessMutex` (RECIPES.md §B2): a fair distributed lock on
//! Curator's layout `path/_c_<uuid>-lock-<seq>`.
//!
//! **Not re-entrant by default.** Curator's mutex is re-entrant per
//! *thread*: the thread that holds it may acquire it again. An async task
//! has no stable identity (it moves between threads, and many tasks share
//! one thread), and a per-handle rule would let two tasks sharing one
//! handle through an `Arc` both "hold" the lock at once. So here a second
//! `acquire` on a handle that is held waits until the hold is released,
//! exactly as a second handle would; the lock protects tasks from each
//! other, not only processes.
//!
//! Re-entry is explicit, through the guard: code that holds a
//! [`MutexGuard`] and calls something that needs the lock passes it
//! [`MutexGuard::reenter`], a second guard on the same hold. The node is
//! deleted when the last guard of the hold is released.
//!
//! Every guard carries the hold's [`Fence`]: a fencing token and fenced
//! writes (see [`crate::fence`]).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use zk_client::CreateMode;

use crate::cache::Events;
use crate::error::{Error, Result};
use crate::fence::{Fence, LossReason};
use crate::framework::Curator;
use crate::lock::internals::{LockDriver, LockInternals, StandardDriver};
use crate::lock::revocation::{watch_for_revocation, RevocationRequest, RevocationWatch};
use crate::paths::{join, sort_key};

/// Curator's lock name for the mutex family.
pub const LOCK_NAME: &str = "lock-";

#[derive(Debug)]
struct Held {
    fence: Fence,
    /// Live guards of this hold (more than one only through `reenter`).
    guards: usize,
    /// Watching our node for revocation requests (revocable locks only);
    /// dropping the hold stops it.
    _revocation: Option<RevocationWatch>,
    /// This handle's one permit: the next acquire on the handle waits for
    /// it, so a hold is never shared by accident.
    _permit: OwnedSemaphorePermit,
}

#[derive(Debug)]
pub(crate) struct MutexShared {
    internals: LockInternals,
    /// One hold per handle at a time: an acquire takes the permit before
    /// creating a node, and the hold keeps it until the last guard goes.
    permit: Arc<Semaphore>,
    /// Our hold while held.
    held: std::sync::Mutex<Option<Held>>,
    /// For a read lock: the write half of the same read/write lock, whose
    /// holder gets the read lock at once (downgrade, §B5).
    downgrade_from: Option<Arc<MutexShared>>,
    /// Where revocation requests go, once made revocable (§B6).
    revocation: std::sync::Mutex<Option<mpsc::UnboundedSender<RevocationRequest>>>,
}

impl MutexShared {
    fn held(&self) -> std::sync::MutexGuard<'_, Option<Held>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Our node while held.
    fn held_path(&self) -> Option<String> {
        self.held().as_ref().map(|h| h.fence.path().to_string())
    }

    /// One more guard on the current hold.
    fn add_guard(&self) -> Result<Fence> {
        match self.held().as_mut() {
            Some(h) => {
                h.guards += 1;
                Ok(h.fence.clone())
            }
            None => Err(Error::InvalidArgument("the lock is not held".into())),
        }
    }

    async fn release_one(&self) -> Result<()> {
        let hold = {
            let mut held = self.held();
            match held.as_mut() {
                None => return Err(Error::InvalidArgument("the lock is not held".into())),
                Some(h) if h.guards > 1 => {
                    h.guards -= 1;
                    return Ok(());
                }
                Some(_) => held.take(),
            }
        };
        let Some(hold) = hold else { return Ok(()) };
        hold.fence.end(LossReason::Released);
        let deleted = self
            .internals
            .curator
            .delete_guaranteed(hold.fence.path())
            .await;
        // The permit goes with `hold`, after the delete: the next local
        // acquire queues behind nobody.
        drop(hold);
        deleted
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
    async fn create_downgraded(&self, write_path: &str) -> Result<Fence> {
        let seq = sort_key(
            crate::paths::node_name(write_path),
            self.internals.driver.sort_names(),
        );
        let name = format!("{}{seq}", self.internals.lock_name);
        let curator = &self.internals.curator;
        let path = curator
            .create_protected(
                &self.internals.base_path,
                &name,
                &self.internals_for_create().data,
                CreateMode::Ephemeral,
            )
            .await?;
        let node = crate::lock::internals::NodeGuard::new(curator, path.clone());
        let fence = Fence::for_node(curator, &path).await?;
        node.disarm();
        Ok(fence)
    }
}

/// A distributed mutex, not re-entrant; see the module docs.
///
/// ```no_run
/// # async fn demo(curator: zk_recipes::Curator) -> zk_recipes::Result<()> {
/// use zk_recipes::InterProcessMutex;
/// let lock = InterProcessMutex::new(&curator, "/locks/orders");
/// let guard = lock.acquire().await?;
/// // Writes through the fence apply only while we still hold the lock.
/// guard.fence().set_data("/orders/next", b"42", None).await?;
/// let nested = guard.reenter()?; // explicit re-entry: same hold
/// nested.release().await?;
/// guard.release().await?;
/// # Ok(())
/// # }
/// ```
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
    fence: Fence,
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
                permit: Arc::new(Semaphore::new(1)),
                held: std::sync::Mutex::new(None),
                downgrade_from: downgrade_from.map(|m| m.shared.clone()),
                revocation: std::sync::Mutex::new(None),
            }),
        }
    }

    /// Waits as long as it takes. While this handle is held (by any task),
    /// waits for that hold to be released first: see the module docs.
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
            let permit = self
                .shared
                .permit
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| Error::Closed)?;
            let write_path = self
                .shared
                .downgrade_from
                .as_ref()
                .and_then(|w| w.held_path());
            let fence = match write_path {
                Some(write_path) => Some(self.shared.create_downgraded(&write_path).await?),
                None => self.shared.internals_for_create().attempt(timeout).await?,
            };
            if let Some(fence) = &fence {
                let revocation = self.shared.revocation_sink().map(|sink| {
                    watch_for_revocation(&self.shared.internals.curator, fence.path(), sink)
                });
                *self.shared.held() = Some(Held {
                    fence: fence.clone(),
                    guards: 1,
                    _revocation: revocation,
                    _permit: permit,
                });
            }
            Ok::<_, Error>(fence)
        };
        // The local wait counts against the timeout too.
        let fence = match timeout {
            Some(t) => tokio::time::timeout(t, acquire).await.unwrap_or(Ok(None))?,
            None => acquire.await?,
        };
        Ok(fence.map(|fence| MutexGuard {
            shared: self.shared.clone(),
            fence,
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

    /// True while this handle holds the lock (through any task).
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
        self.fence.path()
    }

    /// The hold's fence: token, fenced writes, loss notice.
    pub fn fence(&self) -> &Fence {
        &self.fence
    }

    /// The fencing token (our node's czxid): greater for every later
    /// holder of this lock.
    pub fn token(&self) -> i64 {
        self.fence.token()
    }

    /// Resolves when the hold is lost (node deleted, session ended,
    /// framework closed) or released; see [`Fence::lost`].
    pub async fn lost(&self) -> LossReason {
        self.fence.lost().await
    }

    /// Re-enters the lock: a second guard on this same hold, for code
    /// that needs the lock while its caller already holds it. The node is
    /// deleted when the last guard is released. This is the only way to
    /// re-enter; `acquire` on a held handle waits instead.
    pub fn reenter(&self) -> Result<MutexGuard> {
        let fence = self.shared.add_guard()?;
        Ok(MutexGuard {
            shared: self.shared.clone(),
            fence,
            released: false,
        })
    }

    /// Releases this guard; the node is deleted (guaranteed) when the
    /// hold's last guard goes.
    pub async fn release(mut self) -> Result<()> {
        self.released = true;
        self.shared.release_one().await
    }
}

impl Drop for MutexGuard {
    fn drop(&mut self) {
        if !self.released {
            let shared = self.shared.clone();
            let curator = shared.internals.curator.clone();
            curator.spawn_detached(async move {
                if let Err(e) = shared.release_one().await {
                    tracing::warn!(%e, "background lock release failed");
                }
            });
        }
    }
}
