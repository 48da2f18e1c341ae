//! The queue family (RECIPES.md §B12) on Curator's layout: items are
//! `path/queue-…<seq>` persistent-sequential nodes whose data uses
//! Curator's framing (so Java producers and consumers interoperate).
//! [`DistributedQueue`] is FIFO; [`DistributedPriorityQueue`],
//! [`DistributedDelayQueue`] and [`DistributedIdQueue`] differ only in
//! how items are named and ordered (see [`naming`]).
//!
//! Two ways to consume:
//! * [`DistributedQueue::take`] — at most once: read the item, delete it
//!   with its version, then hand it out (a consumer that dies afterwards
//!   loses it). Cancel-safe within the process: the read-and-delete runs
//!   in a task of its own, so if the `take` future is dropped after the
//!   server deleted an item, the item is kept in this handle's buffer and
//!   the next `take` returns it.
//! * [`DistributedQueue::consume_next`] (needs a lock path) — at least
//!   once: lock the item with an ephemeral `lockPath/<item>`, run the
//!   consumer, delete the item on success or requeue it (delete + create
//!   at the back under the same name prefix, in one transaction) on
//!   failure.

pub mod naming;
mod variants;

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::sync::{Mutex as AsyncMutex, Notify};
use zk_client::{CreateMode, Op};

use crate::error::{Error, Result};
use crate::framework::{ensure_containers, Curator};
use crate::paths::join;

pub use naming::{QueueKind, QUEUE_PREFIX};
pub use variants::{DistributedDelayQueue, DistributedIdQueue, DistributedPriorityQueue};

const FRAME_VERSION: i32 = 0x0001_0001;
const ITEM_OPCODE: u8 = 0x01;
const EOF_OPCODE: u8 = 0x02;

/// Curator's `ItemSerializer` framing of one or more items.
pub fn encode_items(items: &[&[u8]]) -> Bytes {
    let size = 5 + items.iter().map(|i| 5 + i.len()).sum::<usize>();
    let mut out = BytesMut::with_capacity(size);
    out.put_i32(FRAME_VERSION);
    for item in items {
        out.put_u8(ITEM_OPCODE);
        out.put_i32(i32::try_from(item.len()).unwrap_or(i32::MAX));
        out.put_slice(item);
    }
    out.put_u8(EOF_OPCODE);
    out.freeze()
}

/// The items in a framed node, or why the bytes are not a valid frame.
pub fn decode_items(mut data: &[u8]) -> std::result::Result<Vec<Bytes>, String> {
    if data.remaining() < 4 {
        return Err("shorter than the version".into());
    }
    let version = data.get_i32();
    if version != FRAME_VERSION {
        return Err(format!("unknown version {version:#x}"));
    }
    let mut items = Vec::new();
    loop {
        if !data.has_remaining() {
            return Err("no end marker".into());
        }
        match data.get_u8() {
            EOF_OPCODE => return Ok(items),
            ITEM_OPCODE => {
                if data.remaining() < 4 {
                    return Err("truncated item length".into());
                }
                let len = usize::try_from(data.get_i32()).map_err(|_| "negative length")?;
                if data.remaining() < len {
                    return Err("truncated item".into());
                }
                items.push(Bytes::copy_from_slice(&data[..len]));
                data.advance(len);
            }
            other => return Err(format!("unknown opcode {other:#x}")),
        }
    }
}

/// Items already deleted from the server but not yet handed out, and a
/// wake-up for a `take` waiting while a dropped `take`'s task fills it.
#[derive(Debug, Default)]
struct Buffered {
    items: Mutex<VecDeque<Bytes>>,
    filled: Notify,
}

type Buffer = Arc<Buffered>;

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A distributed FIFO queue of byte items.
///
/// ```no_run
/// # async fn demo(curator: zk_recipes::Curator) -> zk_recipes::Result<()> {
/// use zk_recipes::DistributedQueue;
/// let queue = DistributedQueue::new(&curator, "/queues/emails");
/// queue.put(b"to: a@example.com").await?;
/// let item = queue.take().await?;
/// println!("{item:?}");
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct DistributedQueue {
    curator: Curator,
    path: String,
    lock_path: Option<String>,
    kind: QueueKind,
    /// One `take` at a time per handle, so items leave in order.
    taker: AsyncMutex<()>,
    buffered: Buffer,
}

impl DistributedQueue {
    /// A queue at `path` (no I/O until used).
    pub fn new(curator: &Curator, path: &str) -> Self {
        Self::of_kind(curator, path, QueueKind::Plain)
    }

    pub(crate) fn of_kind(curator: &Curator, path: &str, kind: QueueKind) -> Self {
        DistributedQueue {
            curator: curator.clone(),
            path: path.to_string(),
            lock_path: None,
            kind,
            taker: AsyncMutex::new(()),
            buffered: Arc::default(),
        }
    }

    /// Enables lock safety with item locks under `lock_path`.
    pub fn with_lock_path(mut self, lock_path: &str) -> Self {
        self.lock_path = Some(lock_path.to_string());
        self
    }

    /// The queue's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Adds one item.
    pub async fn put(&self, item: &[u8]) -> Result<()> {
        self.put_multi(&[item]).await
    }

    /// Adds several items in one node (consumed together).
    pub async fn put_multi(&self, items: &[&[u8]]) -> Result<()> {
        self.put_named(QUEUE_PREFIX, items).await
    }

    /// Adds an item node named `prefix<seq>`.
    pub(crate) async fn put_named(&self, prefix: &str, items: &[&[u8]]) -> Result<()> {
        let data = encode_items(items);
        let item_path = join(&self.path, prefix);
        self.curator
            .create(&item_path, &data, CreateMode::PersistentSequential)
            .await
            .map(drop)
    }

    /// The item node names in consumption order, and a watch on the list.
    pub(crate) async fn items(&self) -> Result<(Vec<String>, zk_client::Watch)> {
        let path = self.path.clone();
        let (names, watch) = self
            .curator
            .with_retry(|client| {
                let path = path.clone();
                let acls = self.curator.acls();
                async move {
                    match client.get_children_and_watch(&path).await {
                        Err(zk_client::Error::NoNode) => {
                            ensure_containers(&client, &path, &acls).await?;
                            client.get_children_and_watch(&path).await
                        }
                        other => other,
                    }
                }
            })
            .await?;
        Ok((naming::ordered(self.kind, names), watch))
    }

    /// How long until the first not-yet-due item is due (delay queues).
    fn next_due_in(&self, names: &[String], now_ms: u64) -> Option<Duration> {
        if self.kind != QueueKind::Delay {
            return None;
        }
        names
            .iter()
            .filter_map(|n| naming::due_epoch_ms(n))
            .filter(|due| *due > now_ms)
            .min()
            .map(|due| Duration::from_millis(due - now_ms))
    }

    /// Waits for a change of the item list, the next due time, or close.
    async fn wait_for_items(
        &self,
        names: &[String],
        watch: zk_client::Watch,
        now_ms: u64,
    ) -> Result<()> {
        let due = self.next_due_in(names, now_ms);
        let due_sleep = async move {
            match due {
                Some(wait) => tokio::time::sleep(wait).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = watch => Ok(()),
            _ = due_sleep => Ok(()),
            _ = self.buffered.filled.notified() => Ok(()),
            _ = self.curator.closed() => Err(Error::Closed),
        }
    }

    fn pop_buffered(&self) -> Option<Bytes> {
        self.buffered
            .items
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
    }

    /// Takes the next item, waiting while the queue is empty (at most
    /// once: the item is deleted before it is returned). Cancel-safe: see
    /// the module documentation.
    pub async fn take(&self) -> Result<Bytes> {
        let _turn = self.taker.lock().await;
        loop {
            if let Some(item) = self.pop_buffered() {
                return Ok(item);
            }
            let (names, watch) = self.items().await?;
            let now_ms = now_epoch_ms();
            let mut took = false;
            for name in names
                .iter()
                .filter(|n| naming::is_due(self.kind, n, now_ms))
            {
                if self.take_node(name).await? {
                    took = true;
                    break;
                }
            }
            if !took {
                self.wait_for_items(&names, watch, now_ms).await?;
            }
        }
    }

    /// Reads and deletes one item node into the buffer; false when another
    /// consumer got it first. The work runs in its own task so that a
    /// dropped `take` cannot lose an item the server already deleted.
    async fn take_node(&self, name: &str) -> Result<bool> {
        let task = self.curator.spawn(take_into_buffer(
            self.curator.clone(),
            join(&self.path, name),
            self.buffered.clone(),
        ));
        task.await.map_err(|_| Error::Closed)?
    }

    /// Lock-safe consumption of the next item: `consume` gets the item's
    /// payloads; on `Ok` the item is deleted, on `Err` it is requeued at
    /// the back. Waits while the queue is empty.
    pub async fn consume_next<F, Fut, E>(
        &self,
        mut consume: F,
    ) -> Result<std::result::Result<(), E>>
    where
        F: FnMut(Vec<Bytes>) -> Fut,
        Fut: Future<Output = std::result::Result<(), E>>,
    {
        let Some(lock_path) = self.lock_path.clone() else {
            return Err(Error::InvalidArgument(
                "lock safety needs a lock path".into(),
            ));
        };
        loop {
            let (names, watch) = self.items().await?;
            let now_ms = now_epoch_ms();
            for name in names
                .iter()
                .filter(|n| naming::is_due(self.kind, n, now_ms))
            {
                let lock = join(&lock_path, name);
                if !self.try_lock_item(&lock).await? {
                    continue;
                }
                let outcome = self.process_locked(name, &mut consume).await;
                // The item lock goes whatever happened.
                self.curator.delete_guaranteed(&lock).await?;
                match outcome? {
                    Some(result) => return Ok(result),
                    None => continue,
                }
            }
            self.wait_for_items(&names, watch, now_ms).await?;
        }
    }

    /// Creates the ephemeral item lock; false when someone else holds it.
    async fn try_lock_item(&self, lock: &str) -> Result<bool> {
        let data = self.curator.default_data();
        match self
            .curator
            .create(lock, &data, CreateMode::Ephemeral)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.is_node_exists() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Runs the consumer on a locked item; `None` if the item was gone.
    async fn process_locked<F, Fut, E>(
        &self,
        name: &str,
        consume: &mut F,
    ) -> Result<Option<std::result::Result<(), E>>>
    where
        F: FnMut(Vec<Bytes>) -> Fut,
        Fut: Future<Output = std::result::Result<(), E>>,
    {
        let item_path = join(&self.path, name);
        let read = self
            .curator
            .with_retry(|client| {
                let item_path = item_path.clone();
                async move {
                    match client.get_data(&item_path).await {
                        Ok((data, _)) => Ok(Some(data)),
                        Err(zk_client::Error::NoNode) => Ok(None),
                        Err(e) => Err(e),
                    }
                }
            })
            .await?;
        let Some(data) = read else { return Ok(None) };
        let items = decode_or_drop(&item_path, &data);
        let result = consume(items).await;
        if result.is_ok() {
            self.curator.delete_guaranteed(&item_path).await?;
        } else {
            self.requeue(&item_path, naming::requeue_prefix(name), &data)
                .await?;
        }
        Ok(Some(result))
    }

    /// Moves an item to the back of the queue in one transaction, keeping
    /// its name prefix (priority, due time or id).
    async fn requeue(&self, item_path: &str, prefix: &str, data: &[u8]) -> Result<()> {
        let back = join(&self.path, prefix);
        self.curator
            .with_retry(|client| {
                let ops = [
                    Op::delete(item_path, None),
                    Op::create(
                        &back,
                        data,
                        &self.curator.acl_for(&back),
                        CreateMode::PersistentSequential,
                    ),
                ];
                async move {
                    match client.multi(&ops).await {
                        Ok(_) | Err(zk_client::Error::NoNode) => Ok(()),
                        Err(e) => Err(e),
                    }
                }
            })
            .await
    }

    /// How many item nodes are waiting.
    pub async fn len(&self) -> Result<usize> {
        Ok(self.items().await?.0.len())
    }

    /// True when no item node is waiting.
    pub async fn is_empty(&self) -> Result<bool> {
        Ok(self.len().await? == 0)
    }
}

/// The body of [`DistributedQueue::take_node`]: get the item, delete that
/// version, buffer its payloads. NoNode / BadVersion mean another consumer
/// took it.
async fn take_into_buffer(curator: Curator, item_path: String, buffer: Buffer) -> Result<bool> {
    let taken = curator
        .with_retry(|client| {
            let item_path = item_path.clone();
            async move {
                let (data, stat) = match client.get_data(&item_path).await {
                    Ok(read) => read,
                    Err(zk_client::Error::NoNode) => return Ok(None),
                    Err(e) => return Err(e),
                };
                match client.delete(&item_path, Some(stat.version)).await {
                    Ok(()) => Ok(Some(data)),
                    Err(zk_client::Error::NoNode | zk_client::Error::BadVersion) => Ok(None),
                    Err(e) => Err(e),
                }
            }
        })
        .await?;
    let Some(data) = taken else { return Ok(false) };
    let items = decode_or_drop(&item_path, &data);
    buffer
        .items
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend(items);
    // A permit is kept if no `take` waits now: the next wait returns at
    // once and finds the items.
    buffer.filled.notify_one();
    Ok(true)
}

/// The payloads of an item node; a corrupt node yields none (it has been
/// removed, as Curator drops corrupt items).
fn decode_or_drop(item_path: &str, data: &[u8]) -> Vec<Bytes> {
    decode_items(data).unwrap_or_else(|reason| {
        tracing::error!(%item_path, %reason, "corrupt queue item dropped");
        Vec::new()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_round_trip_through_curators_framing() {
        let frame = encode_items(&[b"one", b"", b"three"]);
        assert_eq!(&frame[..5], &[0x00, 0x01, 0x00, 0x01, 0x01]);
        assert_eq!(*frame.last().unwrap(), 0x02);
        assert_eq!(
            decode_items(&frame).unwrap(),
            vec![Bytes::from("one"), Bytes::new(), Bytes::from("three")]
        );
    }

    #[test]
    fn corrupt_frames_are_rejected() {
        assert!(decode_items(b"").is_err());
        assert!(decode_items(&[0, 1, 0, 2, 2]).is_err(), "wrong version");
        assert!(
            decode_items(&[0, 1, 0, 1, 1, 0, 0, 0, 9, b'x']).is_err(),
            "truncated"
        );
        assert!(decode_items(&[0, 1, 0, 1, 7]).is_err(), "unknown opcode");
        assert!(decode_items(&[0, 1, 0, 1]).is_err(), "no end marker");
    }
}
