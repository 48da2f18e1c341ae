//! `InterProcessMultiLock` (RECIPES.md §B7): several mutexes taken as one.
//! Acquire in list order; if one cannot be had, release the ones already
//! held in reverse order and report the failure. Release is in reverse
//! order too. No layout of its own; avoiding deadlock is the caller's job
//! (every process must list the paths in the same order).

use std::time::Duration;

use crate::error::{Error, Result};
use crate::fence::Fence;
use crate::framework::Curator;
use crate::lock::mutex::{InterProcessMutex, MutexGuard};

/// A set of [`InterProcessMutex`]es held all together or not at all.
///
/// ```no_run
/// # async fn demo(curator: zk_recipes::Curator) -> zk_recipes::Result<()> {
/// use zk_client::Op;
/// use zk_recipes::{multi_fenced, InterProcessMultiLock};
/// let locks = InterProcessMultiLock::new(&curator, &["/locks/a", "/locks/b"]);
/// let guard = locks.acquire().await?;
/// multi_fenced(&guard.fences(), &[Op::set_data("/shared", b"both", None)]).await?;
/// guard.release().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct InterProcessMultiLock {
    locks: Vec<InterProcessMutex>,
}

/// Proof of holding every lock; [`release`](Self::release) it (dropping it
/// releases each lock in the background).
#[derive(Debug)]
#[must_use = "dropping the guard releases the locks"]
pub struct MultiLockGuard {
    /// In acquisition order.
    guards: Vec<MutexGuard>,
}

impl InterProcessMultiLock {
    /// One mutex per path, acquired in the given order.
    pub fn new(curator: &Curator, paths: &[&str]) -> Self {
        Self::from_mutexes(
            paths
                .iter()
                .map(|path| InterProcessMutex::new(curator, path))
                .collect(),
        )
    }

    /// The given mutexes, acquired in the given order.
    pub fn from_mutexes(locks: Vec<InterProcessMutex>) -> Self {
        InterProcessMultiLock { locks }
    }

    /// Waits as long as it takes for every lock.
    pub async fn acquire(&self) -> Result<MultiLockGuard> {
        match self.acquire_each(None).await? {
            Some(guard) => Ok(guard),
            None => Err(Error::ConnectionLost("acquiring the locks")),
        }
    }

    /// Gives each lock up to `timeout` (as Curator does, so the whole call
    /// may take up to one timeout per lock); `None` when one of them could
    /// not be had in time, with none left held.
    pub async fn try_acquire(&self, timeout: Duration) -> Result<Option<MultiLockGuard>> {
        self.acquire_each(Some(timeout)).await
    }

    async fn acquire_each(&self, timeout: Option<Duration>) -> Result<Option<MultiLockGuard>> {
        let mut held = MultiLockGuard { guards: Vec::new() };
        for lock in &self.locks {
            let attempt = match timeout {
                Some(timeout) => lock.try_acquire(timeout).await,
                None => lock.acquire().await.map(Some),
            };
            match attempt {
                Ok(Some(guard)) => held.guards.push(guard),
                Ok(None) => {
                    held.release().await?;
                    return Ok(None);
                }
                Err(e) => {
                    // The original failure matters more than a rollback
                    // error; dropped guards still release in the background.
                    let _ = held.release().await;
                    return Err(e);
                }
            }
        }
        Ok(Some(held))
    }

    /// True while this handle holds every lock.
    pub fn is_acquired(&self) -> bool {
        self.locks.iter().all(InterProcessMutex::is_acquired)
    }
}

impl MultiLockGuard {
    /// The fence of every lock held, in acquisition order; write through
    /// all of them with [`multi_fenced`](crate::fence::multi_fenced).
    pub fn fences(&self) -> Vec<&Fence> {
        self.guards.iter().map(MutexGuard::fence).collect()
    }

    /// The lock nodes held, in acquisition order.
    pub fn paths(&self) -> Vec<&str> {
        self.guards.iter().map(MutexGuard::path).collect()
    }

    /// Releases every lock in reverse order; all are attempted, the first
    /// error is returned.
    pub async fn release(mut self) -> Result<()> {
        let mut first_error = None;
        while let Some(guard) = self.guards.pop() {
            if let Err(e) = guard.release().await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
