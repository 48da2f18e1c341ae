//! Caches (RECIPES.md §B10) as streams of observed state transitions.
//!
//! ZooKeeper watches are one-shot and carry no data, persistent watches
//! are not replayed for a disconnected interval, and a new session has no
//! watches at all. So every cache here is a state synchroniser: its
//! events are differences between successive snapshots it read, not an
//! exact log (a node created and deleted between two reads is never
//! seen). After every (re)connection a cache re-reads everything it holds
//! and says so with an explicit marker event.

pub mod children;
pub mod curator_cache;
pub mod node;
pub mod tree;
mod watches;

use bytes::Bytes;
use zk_client::Stat;

pub use children::{PathChildrenCache, PathChildrenEvent, StartMode};
pub use curator_cache::{CuratorCache, CuratorCacheEvent};
pub use node::NodeCache;
pub use tree::{TreeCache, TreeCacheBuilder, TreeCacheEvent};

/// One cached node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildData {
    /// The node's full path.
    pub path: String,
    /// Its stat when read.
    pub stat: Stat,
    /// Its data when read (empty when data is not cached).
    pub data: Bytes,
}

/// A stream of cache events; ends when the cache is closed.
#[derive(Debug)]
pub struct Events<T> {
    rx: tokio::sync::mpsc::UnboundedReceiver<T>,
}

impl<T> Events<T> {
    pub(crate) fn channel() -> (tokio::sync::mpsc::UnboundedSender<T>, Events<T>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (tx, Events { rx })
    }
}

impl<T> futures::Stream for Events<T> {
    type Item = T;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<T>> {
        self.rx.poll_recv(cx)
    }
}
