//! The named-item queues of RECIPES.md §B12: a [`DistributedQueue`] whose
//! item names carry a priority, a due time or an id (formats in
//! [`super::naming`]). Consumption (`take`, `consume_next`) is the plain
//! queue's, in each variant's order.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use std::future::Future;

use super::naming::{self, QueueKind};
use super::DistributedQueue;
use crate::error::Result;
use crate::framework::Curator;
use crate::paths::join;

/// Forwards the consuming half of the queue API to the inner queue.
macro_rules! consuming_api {
    () => {
        /// Enables lock safety with item locks under `lock_path`.
        pub fn with_lock_path(mut self, lock_path: &str) -> Self {
            self.queue = self.queue.with_lock_path(lock_path);
            self
        }

        /// Takes the next item in this queue's order (see
        /// [`DistributedQueue::take`]).
        pub async fn take(&self) -> Result<Bytes> {
            self.queue.take().await
        }

        /// Lock-safe consumption (see [`DistributedQueue::consume_next`]).
        pub async fn consume_next<F, Fut, E>(
            &self,
            consume: F,
        ) -> Result<std::result::Result<(), E>>
        where
            F: FnMut(Vec<Bytes>) -> Fut,
            Fut: Future<Output = std::result::Result<(), E>>,
        {
            self.queue.consume_next(consume).await
        }

        /// How many item nodes are waiting (due or not).
        pub async fn len(&self) -> Result<usize> {
            self.queue.len().await
        }

        /// True when no item node is waiting.
        pub async fn is_empty(&self) -> Result<bool> {
            self.queue.is_empty().await
        }
    };
}

/// Items come out lowest priority value first (Curator's
/// `DistributedPriorityQueue`); equal priorities in arrival order.
///
/// ```no_run
/// # async fn demo(curator: zk_recipes::Curator) -> zk_recipes::Result<()> {
/// use zk_recipes::DistributedPriorityQueue;
/// let queue = DistributedPriorityQueue::new(&curator, "/queues/jobs");
/// queue.put(b"urgent", -10).await?;
/// queue.put(b"later", 10).await?;
/// assert_eq!(&queue.take().await?[..], b"urgent");
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct DistributedPriorityQueue {
    queue: DistributedQueue,
}

impl DistributedPriorityQueue {
    /// A priority queue at `path` (no I/O until used).
    pub fn new(curator: &Curator, path: &str) -> Self {
        DistributedPriorityQueue {
            queue: DistributedQueue::of_kind(curator, path, QueueKind::Priority),
        }
    }

    /// Adds `item` with `priority` (lower is taken sooner).
    pub async fn put(&self, item: &[u8], priority: i32) -> Result<()> {
        self.put_multi(&[item], priority).await
    }

    /// Puts several items as one node at `priority`.
    pub async fn put_multi(&self, items: &[&[u8]], priority: i32) -> Result<()> {
        let prefix = naming::priority_prefix(priority);
        self.queue.put_named(&prefix, items).await
    }

    consuming_api!();
}

/// Items are not handed out before their due time, then earliest due
/// first (Curator's `DistributedDelayQueue`). Due times are wall-clock
/// epoch milliseconds, so producers' and consumers' clocks must agree.
///
/// ```no_run
/// # async fn demo(curator: zk_recipes::Curator) -> zk_recipes::Result<()> {
/// use std::time::Duration;
/// use zk_recipes::DistributedDelayQueue;
/// let queue = DistributedDelayQueue::new(&curator, "/queues/reminders");
/// queue.put_after(b"ping", Duration::from_secs(60)).await?;
/// let due = queue.take().await?; // waits until it is due
/// println!("{due:?}");
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct DistributedDelayQueue {
    queue: DistributedQueue,
}

impl DistributedDelayQueue {
    /// A delay queue at `path` (no I/O until used).
    pub fn new(curator: &Curator, path: &str) -> Self {
        DistributedDelayQueue {
            queue: DistributedQueue::of_kind(curator, path, QueueKind::Delay),
        }
    }

    /// Adds `item`, due at `due` (the past means now).
    pub async fn put_at(&self, item: &[u8], due: SystemTime) -> Result<()> {
        let due_ms = due
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.queue
            .put_named(&naming::delay_prefix(due_ms), &[item])
            .await
    }

    /// Adds `item`, due `delay` from now.
    pub async fn put_after(&self, item: &[u8], delay: Duration) -> Result<()> {
        self.put_at(item, SystemTime::now() + delay).await
    }

    consuming_api!();
}

/// Items carry an id by which they can be removed before consumption
/// (Curator's `DistributedIdQueue`); taken in arrival order.
///
/// ```no_run
/// # async fn demo(curator: zk_recipes::Curator) -> zk_recipes::Result<()> {
/// use zk_recipes::DistributedIdQueue;
/// let queue = DistributedIdQueue::new(&curator, "/queues/tasks");
/// queue.put(b"resize image", "task-17").await?;
/// println!("{:?}", queue.take().await?);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct DistributedIdQueue {
    curator: Curator,
    queue: DistributedQueue,
}

impl DistributedIdQueue {
    /// An id queue at `path` (no I/O until used).
    pub fn new(curator: &Curator, path: &str) -> Self {
        DistributedIdQueue {
            curator: curator.clone(),
            queue: DistributedQueue::of_kind(curator, path, QueueKind::Id),
        }
    }

    /// Adds `item` under `id` (`/` and `|` in the id become `_`).
    pub async fn put(&self, item: &[u8], id: &str) -> Result<()> {
        self.queue.put_named(&naming::id_prefix(id), &[item]).await
    }

    /// Deletes every waiting item with `id`; returns how many went.
    pub async fn remove(&self, id: &str) -> Result<usize> {
        let wanted = naming::id_prefix(id);
        let wanted = wanted
            .strip_prefix(naming::QUEUE_PREFIX)
            .and_then(|w| w.strip_prefix('|'))
            .and_then(|w| w.strip_suffix('|'))
            .unwrap_or_default()
            .to_string();
        let (names, _) = self.queue.items().await?;
        let mut removed = 0;
        for name in names
            .iter()
            .filter(|n| naming::item_id(n) == Some(wanted.as_str()))
        {
            let item_path = join(self.queue.path(), name);
            let existed = self
                .curator
                .with_retry(|client| {
                    let item_path = item_path.clone();
                    async move {
                        match client.delete(&item_path, None).await {
                            Ok(()) => Ok(true),
                            // Consumed or removed by someone else first.
                            Err(zk_client::Error::NoNode) => Ok(false),
                            Err(e) => Err(e),
                        }
                    }
                })
                .await?;
            removed += usize::from(existed);
        }
        Ok(removed)
    }

    consuming_api!();
}
