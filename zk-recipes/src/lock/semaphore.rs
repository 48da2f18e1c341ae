//! `InterProcessSemaphoreV2` and `InterProcessSemaphoreMutex`
//! (RECIPES.md §B3–§B4). Layout under `path`:
//!
//! * `path/locks/` – a mutex serialising acquirers (so waiters queue FIFO);
//! * `path/leases/_c_<uuid>-lease-<seq>` – one ephemeral node per held
//!   lease.
//!
//! A lease is held once the number of lease nodes is at most `max_leases`.
//! `max_leases` is a convention: every client must pass the same number.

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use zk_client::CreateMode;

use crate::error::{Error, Result};
use crate::fence::{Fence, LossReason};
use crate::framework::Curator;
use crate::lock::internals::{sleep_until_opt, NodeGuard};
use crate::lock::mutex::InterProcessMutex;
use crate::paths::{join, node_name};

/// Curator's name for lease nodes.
pub const LEASE_NAME: &str = "lease-";

/// A counting semaphore shared by every process using the same path and
/// `max_leases`.
///
/// ```no_run
/// # async fn demo(curator: zk_recipes::Curator) -> zk_recipes::Result<()> {
/// use std::time::Duration;
/// use zk_recipes::InterProcessSemaphoreV2;
/// let semaphore = InterProcessSemaphoreV2::new(&curator, "/semaphores/db", 3);
/// let lease = semaphore.acquire().await?;
/// println!("lease {} with token {}", lease.path(), lease.token());
/// lease.release().await?;
/// if let Some(leases) = semaphore.try_acquire(2, Duration::from_secs(1)).await? {
///     for lease in leases {
///         lease.release().await?;
///     }
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct InterProcessSemaphoreV2 {
    curator: Curator,
    leases_path: String,
    max_leases: usize,
    lock: InterProcessMutex,
    data: Bytes,
}

/// One held lease: [`release`](Self::release) it; dropping it releases in
/// the background.
#[derive(Debug)]
#[must_use = "dropping the lease releases it"]
pub struct Lease {
    curator: Curator,
    path: String,
    fence: Fence,
    released: bool,
}

impl Lease {
    /// The lease node.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The lease node's data.
    pub async fn data(&self) -> Result<Bytes> {
        let path = self.path.clone();
        self.curator
            .with_retry(|client| {
                let path = path.clone();
                async move { client.get_data(&path).await.map(|(data, _)| data) }
            })
            .await
    }

    /// Deletes the lease node (guaranteed).
    /// The lease's fence: token (the lease node's czxid) and fenced
    /// writes, refused once the lease node is gone.
    pub fn fence(&self) -> &Fence {
        &self.fence
    }

    /// The fencing token (the lease node's czxid).
    pub fn token(&self) -> i64 {
        self.fence.token()
    }

    /// Resolves when the lease is lost or released; see [`Fence::lost`].
    pub async fn lost(&self) -> LossReason {
        self.fence.lost().await
    }

    /// Releases the lease: its node is deleted (guaranteed).
    pub async fn release(mut self) -> Result<()> {
        self.released = true;
        self.fence.end(LossReason::Released);
        self.curator.delete_guaranteed(&self.path).await
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.released {
            self.fence.end(LossReason::Released);
            self.curator
                .delete_in_background(std::mem::take(&mut self.path));
        }
    }
}

impl InterProcessSemaphoreV2 {
    /// Lease nodes carry the framework's default data.
    pub fn new(curator: &Curator, path: &str, max_leases: usize) -> Self {
        Self::with_data(curator, path, max_leases, curator.default_data())
    }

    /// Lease nodes carry `data` (Curator's `setNodeData`).
    pub fn with_data(
        curator: &Curator,
        path: &str,
        max_leases: usize,
        data: impl Into<Bytes>,
    ) -> Self {
        InterProcessSemaphoreV2 {
            curator: curator.clone(),
            leases_path: join(path, "leases"),
            max_leases,
            lock: InterProcessMutex::new(curator, &join(path, "locks")),
            data: data.into(),
        }
    }

    /// One lease, waiting as long as it takes.
    pub async fn acquire(&self) -> Result<Lease> {
        let mut leases = self.acquire_inner(1, None).await?;
        leases
            .pop()
            .ok_or(Error::ConnectionLost("acquiring a lease"))
    }

    /// `qty` leases within `timeout` (all or none: on timeout the ones
    /// already held are returned).
    pub async fn try_acquire(&self, qty: usize, timeout: Duration) -> Result<Option<Vec<Lease>>> {
        let leases = self.acquire_inner(qty, Some(timeout)).await?;
        Ok((leases.len() == qty).then_some(leases))
    }

    async fn acquire_inner(&self, qty: usize, timeout: Option<Duration>) -> Result<Vec<Lease>> {
        if qty == 0 || qty > self.max_leases {
            return Err(Error::InvalidArgument(format!(
                "cannot take {qty} of {} leases",
                self.max_leases
            )));
        }
        let started = Instant::now();
        let deadline = timeout.map(|t| started + t);
        let mut leases = Vec::with_capacity(qty);
        while leases.len() < qty {
            match self.acquire_one(started, deadline).await? {
                Some(lease) => leases.push(lease),
                None => {
                    for lease in leases {
                        lease.release().await?;
                    }
                    return Ok(Vec::new());
                }
            }
        }
        Ok(leases)
    }

    /// One lease under the internal mutex; `None` on timeout.
    async fn acquire_one(
        &self,
        started: Instant,
        deadline: Option<Instant>,
    ) -> Result<Option<Lease>> {
        let guard = match deadline {
            Some(at) => {
                let left = at.saturating_duration_since(Instant::now());
                match self.lock.try_acquire(left).await? {
                    Some(guard) => guard,
                    None => return Ok(None),
                }
            }
            None => self.lock.acquire().await?,
        };
        let result = self.lease_under_lock(started, deadline).await;
        // The internal mutex goes whatever happened.
        guard.release().await?;
        result
    }

    async fn lease_under_lock(
        &self,
        started: Instant,
        deadline: Option<Instant>,
    ) -> Result<Option<Lease>> {
        let mut retries = 0;
        loop {
            let path = self
                .curator
                .create_protected(
                    &self.leases_path,
                    LEASE_NAME,
                    &self.data,
                    CreateMode::EphemeralSequential,
                )
                .await?;
            let node = NodeGuard::new(&self.curator, path.clone());
            match self.wait_for_room(&path, deadline).await {
                Ok(true) => {
                    let fence = match Fence::for_node(&self.curator, &path).await {
                        Ok(fence) => fence,
                        // Not ours after all (an earlier session's): retry.
                        Err(Error::NodeVanished(gone)) => {
                            drop(node);
                            let Some(sleep) = self.curator.retry_policy().next_sleep(
                                retries,
                                started.elapsed(),
                                &mut rand::thread_rng(),
                            ) else {
                                return Err(Error::NodeVanished(gone));
                            };
                            tokio::time::sleep(sleep).await;
                            retries += 1;
                            continue;
                        }
                        Err(e) => return Err(e),
                    };
                    return Ok(Some(Lease {
                        curator: self.curator.clone(),
                        path: node.disarm(),
                        fence,
                        released: false,
                    }));
                }
                Ok(false) => {
                    node.disarm();
                    self.curator.delete_guaranteed(&path).await?;
                    return Ok(None);
                }
                Err(Error::NodeVanished(gone)) => {
                    drop(node);
                    let sleep = self.curator.retry_policy().next_sleep(
                        retries,
                        started.elapsed(),
                        &mut rand::thread_rng(),
                    );
                    let Some(sleep) = sleep else {
                        return Err(Error::NodeVanished(gone));
                    };
                    tokio::time::sleep(sleep).await;
                    retries += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// True once the lease count is within bounds, false on timeout.
    async fn wait_for_room(&self, our_path: &str, deadline: Option<Instant>) -> Result<bool> {
        let our_name = node_name(our_path).to_string();
        loop {
            let leases_path = self.leases_path.clone();
            let (children, watch) = self
                .curator
                .with_retry(|client| {
                    let leases_path = leases_path.clone();
                    async move { client.get_children_and_watch(&leases_path).await }
                })
                .await
                .map_err(|e| match e {
                    e if e.is_no_node() => Error::NodeVanished(our_path.to_string()),
                    e => e,
                })?;
            if !children.contains(&our_name) {
                return Err(Error::NodeVanished(our_path.to_string()));
            }
            if children.len() <= self.max_leases {
                return Ok(true);
            }
            tokio::select! {
                _ = watch => {}
                _ = sleep_until_opt(deadline) => return Ok(false),
                _ = self.curator.closed() => return Err(Error::Closed),
            }
        }
    }

    /// The nodes of the currently held leases (names).
    pub async fn participant_nodes(&self) -> Result<Vec<String>> {
        let leases_path = self.leases_path.clone();
        self.curator
            .with_retry(|client| {
                let leases_path = leases_path.clone();
                async move {
                    match client.get_children(&leases_path).await {
                        Err(zk_client::Error::NoNode) => Ok(Vec::new()),
                        other => other,
                    }
                }
            })
            .await
    }
}

/// A non-re-entrant mutex: a semaphore with one lease (§B3). It may be
/// released from any task.
///
/// ```no_run
/// # async fn demo(curator: zk_recipes::Curator) -> zk_recipes::Result<()> {
/// use zk_recipes::InterProcessSemaphoreMutex;
/// let lock = InterProcessSemaphoreMutex::new(&curator, "/locks/report");
/// let guard = lock.acquire().await?;
/// guard.release().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct InterProcessSemaphoreMutex {
    semaphore: InterProcessSemaphoreV2,
}

/// Holding an [`InterProcessSemaphoreMutex`].
#[derive(Debug)]
#[must_use = "dropping the guard releases the lock"]
pub struct SemaphoreGuard {
    lease: Lease,
}

impl SemaphoreGuard {
    /// The lease node.
    pub fn path(&self) -> &str {
        self.lease.path()
    }

    /// Releases the lock: the lease node is deleted (guaranteed).
    pub async fn release(self) -> Result<()> {
        self.lease.release().await
    }

    /// The hold's fence; see [`Lease::fence`].
    pub fn fence(&self) -> &Fence {
        self.lease.fence()
    }

    /// The fencing token; see [`Lease::token`].
    pub fn token(&self) -> i64 {
        self.lease.token()
    }

    /// Resolves when the hold is lost or released; see [`Fence::lost`].
    pub async fn lost(&self) -> LossReason {
        self.lease.lost().await
    }
}

impl InterProcessSemaphoreMutex {
    /// A semaphore mutex at `path` (no I/O until used).
    pub fn new(curator: &Curator, path: &str) -> Self {
        InterProcessSemaphoreMutex {
            semaphore: InterProcessSemaphoreV2::new(curator, path, 1),
        }
    }

    /// Waits as long as it takes.
    pub async fn acquire(&self) -> Result<SemaphoreGuard> {
        Ok(SemaphoreGuard {
            lease: self.semaphore.acquire().await?,
        })
    }

    /// Waits at most `timeout`; `None` when it passed.
    pub async fn try_acquire(&self, timeout: Duration) -> Result<Option<SemaphoreGuard>> {
        let leases = self.semaphore.try_acquire(1, timeout).await?;
        Ok(leases
            .and_then(|mut l| l.pop())
            .map(|lease| SemaphoreGuard { lease }))
    }
}
