//! `TreeCache` (RECIPES.md §B10.3): a whole subtree, kept in sync with
//! one-shot watches only, so it works on servers without persistent
//! watches. Every cached node carries a data watch (getData) and, above
//! the maximum depth, a child watch (getChildren); a missing root is
//! watched with `exists` and built again when it appears.
//!
//! Rules (a state synchroniser, as every cache here):
//! * a data watch → re-read that node (NoNode removes it and everything
//!   under it); a child watch → re-list that node's children, remove the
//!   gone ones (deepest first) and read the new ones (in name order);
//! * `NodeUpdated` only when the node's `mzxid` grew: an older read is
//!   stale and ignored, an equal one is the same state;
//! * a watch for a node no longer cached is ignored (it belonged to a
//!   node already removed), except for the root;
//! * Suspended / Lost only emit the connection event and keep the data;
//!   Connected / Reconnected (and a lagging state feed) re-read every
//!   node from the root — missed changes come out as Added / Updated /
//!   Removed — then emit `ConnectionReconnected`. Lost clears the
//!   initialized flag, so `Initialized` follows again once that re-read
//!   is done (CURATOR-296).
//!
//! All work runs on one task, so reads and events are strictly ordered.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use zk_client::Stat;

use crate::cache::watches::{next_fired, ArmedWatches};
use crate::cache::{ChildData, Events};
use crate::connection::ConnectionState;
use crate::error::{Error, Result};
use crate::framework::Curator;
use crate::paths::{join, parent};

/// What the cache observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeCacheEvent {
    /// A node appeared.
    NodeAdded(ChildData),
    /// A node's data or stat changed.
    NodeUpdated {
        /// As cached before.
        old: ChildData,
        /// As read now.
        new: ChildData,
    },
    /// A node was deleted.
    NodeRemoved(ChildData),
    /// The first full read finished (again after a Lost, once the cache
    /// has re-read the tree).
    Initialized,
    /// The connection is Suspended; the cache may be stale.
    ConnectionSuspended,
    /// Posted after the re-read that follows a (re)connection: the cache
    /// then holds the server's state as of that read.
    ConnectionReconnected,
    /// The session is Lost; the cache is refreshed on the new one.
    ConnectionLost,
}

/// Options for a [`TreeCache`]; see [`TreeCache::builder`].
#[derive(Debug, Clone)]
pub struct TreeCacheBuilder {
    curator: Curator,
    root: String,
    max_depth: usize,
    cache_data: bool,
}

impl TreeCacheBuilder {
    /// How deep below the root to cache: 0 is the root alone, 1 the root
    /// and its children, … (default: unlimited).
    pub fn max_depth(mut self, depth: usize) -> Self {
        self.max_depth = depth;
        self
    }

    /// Whether node data is kept (default true); without it, nodes are
    /// cached with their stats and empty data.
    pub fn cache_data(mut self, cache: bool) -> Self {
        self.cache_data = cache;
        self
    }

    /// Starts the cache; the first events are the existing nodes as
    /// `NodeAdded` (parents before children), then `Initialized`.
    pub fn start(self) -> (TreeCache, Events<TreeCacheEvent>) {
        let shared = Arc::new(Shared {
            curator: self.curator.clone(),
            root: self.root,
            max_depth: self.max_depth,
            cache_data: self.cache_data,
            nodes: RwLock::new(BTreeMap::new()),
            closed: watch::Sender::new(false),
        });
        let (tx, events) = Events::channel();
        let states = self.curator.subscribe_states();
        let task = self.curator.spawn(shared.clone().run(tx, states));
        (TreeCache { shared, task }, events)
    }
}

#[derive(Debug)]
struct Shared {
    curator: Curator,
    root: String,
    max_depth: usize,
    cache_data: bool,
    /// Every cached node by full path, the root included.
    nodes: RwLock<BTreeMap<String, ChildData>>,
    closed: watch::Sender<bool>,
}

/// A running tree cache; events come from the [`Events`] returned when
/// it starts.
///
/// ```no_run
/// # async fn demo(curator: zk_recipes::Curator) -> zk_recipes::Result<()> {
/// use futures::StreamExt;
/// use zk_recipes::TreeCache;
/// let (cache, mut events) = TreeCache::builder(&curator, "/config").max_depth(2).start();
/// if let Some(event) = events.next().await {
///     println!("{event:?}");
/// }
/// println!("{} nodes cached", cache.current_data().len());
/// cache.close().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct TreeCache {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl TreeCache {
    /// Options for a cache of the subtree at `root`.
    pub fn builder(curator: &Curator, root: &str) -> TreeCacheBuilder {
        TreeCacheBuilder {
            curator: curator.clone(),
            root: root.to_string(),
            max_depth: usize::MAX,
            cache_data: true,
        }
    }

    /// A cache of the whole subtree at `root` with default options.
    pub fn start(curator: &Curator, root: &str) -> (TreeCache, Events<TreeCacheEvent>) {
        Self::builder(curator, root).start()
    }

    /// Every cached node by full path (the root included, when it exists).
    pub fn current_data(&self) -> BTreeMap<String, ChildData> {
        self.shared.snapshot()
    }

    /// One cached node.
    pub fn current_node(&self, path: &str) -> Option<ChildData> {
        self.shared.cached(path)
    }

    /// The cached children of `path` by name; `None` when `path` itself
    /// is not cached.
    pub fn current_children(&self, path: &str) -> Option<BTreeMap<String, ChildData>> {
        let nodes = self.shared.nodes.read().unwrap_or_else(|e| e.into_inner());
        nodes.get(path)?;
        Some(
            nodes
                .iter()
                .filter(|(p, _)| parent(p) == Some(path) && p.as_str() != path)
                .map(|(p, node)| (crate::paths::node_name(p).to_string(), node.clone()))
                .collect(),
        )
    }

    /// Stops the cache; the event stream ends.
    pub async fn close(mut self) {
        self.shared.closed.send_replace(true);
        let _ = (&mut self.task).await;
    }
}

impl Drop for TreeCache {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Which one-shot watch a node holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    /// getData on a cached node.
    Data(String),
    /// getChildren on a cached node.
    Children(String),
    /// exists on the missing root.
    RootExists,
}

/// How many levels `path` lies below `root` (0 for the root itself), or
/// `None` when it is not in the subtree.
pub(crate) fn depth_below(root: &str, path: &str) -> Option<usize> {
    if path == root {
        return Some(0);
    }
    let rest = if root == "/" {
        path.strip_prefix('/')?
    } else {
        path.strip_prefix(root)?.strip_prefix('/')?
    };
    if rest.is_empty() {
        return None;
    }
    Some(rest.split('/').count())
}

/// The paths of `nodes` at or below `path`, deepest first (reverse order
/// puts every descendant before its ancestor).
fn subtree_deepest_first<'a>(nodes: impl Iterator<Item = &'a String>, path: &str) -> Vec<String> {
    let mut found: Vec<String> = nodes
        .filter(|p| depth_below(path, p).is_some())
        .cloned()
        .collect();
    found.sort();
    found.reverse();
    found
}

/// What a fresh read means for a cached node (pure: the `mzxid` rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Added,
    Updated,
    /// Same state, or a stale read older than what we hold.
    Unchanged,
}

fn classify(old: Option<&Stat>, new: &Stat) -> Change {
    match old {
        None => Change::Added,
        Some(old) if new.mzxid > old.mzxid => Change::Updated,
        Some(_) => Change::Unchanged,
    }
}

/// The running state of the cache task.
struct Sync<'a> {
    shared: &'a Shared,
    tx: mpsc::UnboundedSender<TreeCacheEvent>,
    watches: ArmedWatches<Key>,
    initialized: bool,
}

impl Shared {
    async fn run(
        self: Arc<Self>,
        tx: mpsc::UnboundedSender<TreeCacheEvent>,
        mut states: broadcast::Receiver<ConnectionState>,
    ) {
        let mut closed = self.closed.subscribe();
        let mut sync = Sync {
            shared: &self,
            tx,
            watches: ArmedWatches::new(),
            initialized: false,
        };
        let first = tokio::select! {
            r = sync.resync() => r,
            _ = closed.changed() => return,
        };
        match first {
            Ok(()) => sync.mark_initialized(),
            Err(e) => tracing::debug!(%e, "initial tree read failed; waiting for a connection"),
        }
        loop {
            let result = tokio::select! {
                (key, generation, event) = next_fired(&mut sync.watches) => {
                    match sync.watches.fired(&key, generation, event) {
                        Some(_) => sync.on_watch(key).await,
                        None => Ok(()),
                    }
                }
                state = states.recv() => match state {
                    Ok(ConnectionState::Suspended) => {
                        sync.emit(TreeCacheEvent::ConnectionSuspended);
                        Ok(())
                    }
                    Ok(ConnectionState::Lost) => {
                        sync.initialized = false;
                        sync.emit(TreeCacheEvent::ConnectionLost);
                        Ok(())
                    }
                    Ok(ConnectionState::Connected | ConnectionState::Reconnected) => {
                        let r = sync.resync().await;
                        if r.is_ok() {
                            sync.emit(TreeCacheEvent::ConnectionReconnected);
                            sync.mark_initialized();
                        }
                        r
                    }
                    Ok(ConnectionState::ReadOnly) => Ok(()),
                    Err(broadcast::error::RecvError::Lagged(_)) => sync.resync().await,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = closed.changed() => return,
            };
            match result {
                Err(Error::Closed) => return,
                Err(e) => tracing::debug!(%e, "tree cache read failed; re-reading on reconnect"),
                Ok(()) => {}
            }
            if sync.tx.is_closed() {
                return;
            }
        }
    }

    fn snapshot(&self) -> BTreeMap<String, ChildData> {
        self.nodes.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn cached(&self, path: &str) -> Option<ChildData> {
        self.nodes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(path)
            .cloned()
    }

    fn store(&self, node: ChildData) -> Option<ChildData> {
        self.nodes
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(node.path.clone(), node)
    }

    /// Removes `path` and everything below it; returns the removed nodes,
    /// deepest first.
    fn remove_subtree(&self, path: &str) -> Vec<ChildData> {
        let mut nodes = self.nodes.write().unwrap_or_else(|e| e.into_inner());
        subtree_deepest_first(nodes.keys(), path)
            .into_iter()
            .filter_map(|p| nodes.remove(&p))
            .collect()
    }

    /// The cached direct children of `path`, full paths.
    fn cached_children(&self, path: &str) -> Vec<String> {
        self.nodes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .filter(|p| p.as_str() != path && parent(p) == Some(path))
            .cloned()
            .collect()
    }

    fn depth(&self, path: &str) -> Option<usize> {
        depth_below(&self.root, path).filter(|d| *d <= self.max_depth)
    }
}

/// What one node read asks the walk to do next.
type Next = Vec<String>;

impl Sync<'_> {
    fn emit(&self, event: TreeCacheEvent) {
        // A dropped stream is fine: the cache still serves current_data.
        let _ = self.tx.send(event);
    }

    fn mark_initialized(&mut self) {
        if !self.initialized {
            self.initialized = true;
            self.emit(TreeCacheEvent::Initialized);
        }
    }

    /// Re-reads every node from the root (after a (re)connection).
    async fn resync(&mut self) -> Result<()> {
        let root = self.shared.root.clone();
        self.walk(root, true).await
    }

    async fn on_watch(&mut self, key: Key) -> Result<()> {
        match key {
            Key::RootExists => {
                let root = self.shared.root.clone();
                self.walk(root, false).await
            }
            Key::Data(path) => {
                if !self.is_live(&path) {
                    return Ok(());
                }
                self.walk(path, false).await
            }
            Key::Children(path) => {
                if !self.is_live(&path) {
                    return Ok(());
                }
                let fresh = self.sync_children(&path, false).await?;
                for child in fresh {
                    self.walk(child, false).await?;
                }
                Ok(())
            }
        }
    }

    /// A watch on a node we no longer hold belonged to a removed node.
    fn is_live(&self, path: &str) -> bool {
        path == self.shared.root || self.shared.cached(path).is_some()
    }

    /// Reads `start` and then, depth first in name order, the nodes the
    /// reads discover (every node below when `force`).
    async fn walk(&mut self, start: String, force: bool) -> Result<()> {
        let mut pending = vec![start];
        // Bounded: each step is a server read; a root that keeps flapping
        // is read again at most this many extra times per walk.
        let mut root_retries = 3;
        while let Some(path) = pending.pop() {
            let next = self.sync_node(&path, force).await?;
            if next.first() == Some(&path) {
                if root_retries == 0 {
                    continue;
                }
                root_retries -= 1;
            }
            pending.extend(next.into_iter().rev());
        }
        Ok(())
    }

    /// Reads one node's data (arming its data watch); a new node (or any,
    /// when `force`) also has its children listed. Returns the children to
    /// read next, or the root itself when it reappeared while we armed
    /// its `exists` watch.
    async fn sync_node(&mut self, path: &str, force: bool) -> Result<Next> {
        let Some(depth) = self.shared.depth(path) else {
            return Ok(Vec::new());
        };
        let generation = self.shared.curator.generation();
        let key = Key::Data(path.to_string());
        let arm = !self.watches.is_armed(&key, generation);
        let read = self
            .shared
            .curator
            .with_retry(|client| {
                let path = path.to_string();
                async move {
                    let read = if arm {
                        client
                            .get_data_and_watch(&path)
                            .await
                            .map(|(data, stat, watch)| (data, stat, Some(watch)))
                    } else {
                        client
                            .get_data(&path)
                            .await
                            .map(|(data, stat)| (data, stat, None))
                    };
                    match read {
                        Ok(read) => Ok(Some(read)),
                        Err(zk_client::Error::NoNode) => Ok(None),
                        Err(e) => Err(e),
                    }
                }
            })
            .await?;
        let Some((data, stat, watch)) = read else {
            return self.gone(path).await;
        };
        if let Some(watch) = watch {
            self.watches.arm(key, generation, watch);
        }
        let fresh = ChildData {
            path: path.to_string(),
            stat,
            data: if self.shared.cache_data {
                data
            } else {
                Bytes::new()
            },
        };
        let old = self.shared.cached(path);
        let change = classify(old.as_ref().map(|o| &o.stat), &fresh.stat);
        match (change, old) {
            (Change::Added, _) => {
                self.shared.store(fresh.clone());
                self.emit(TreeCacheEvent::NodeAdded(fresh));
            }
            (Change::Updated, Some(old)) => {
                self.shared.store(fresh.clone());
                self.emit(TreeCacheEvent::NodeUpdated { old, new: fresh });
            }
            _ => {}
        }
        if depth < self.shared.max_depth && (force || change == Change::Added) {
            return self.sync_children(path, force).await;
        }
        Ok(Vec::new())
    }

    /// Lists `path`'s children (arming its child watch), removes the cached
    /// ones that are gone, and returns the ones to read: the new ones, or
    /// all when `force`.
    async fn sync_children(&mut self, path: &str, force: bool) -> Result<Next> {
        let generation = self.shared.curator.generation();
        let key = Key::Children(path.to_string());
        let arm = !self.watches.is_armed(&key, generation);
        let listed = self
            .shared
            .curator
            .with_retry(|client| {
                let path = path.to_string();
                async move {
                    let listed = if arm {
                        client
                            .get_children_and_watch(&path)
                            .await
                            .map(|(names, watch)| (names, Some(watch)))
                    } else {
                        client.get_children(&path).await.map(|names| (names, None))
                    };
                    match listed {
                        Ok(listed) => Ok(Some(listed)),
                        Err(zk_client::Error::NoNode) => Ok(None),
                        Err(e) => Err(e),
                    }
                }
            })
            .await?;
        let Some((mut names, watch)) = listed else {
            return self.gone(path).await;
        };
        if let Some(watch) = watch {
            self.watches.arm(key, generation, watch);
        }
        names.sort();
        let listed: Vec<String> = names.iter().map(|name| join(path, name)).collect();
        for cached in self.shared.cached_children(path) {
            if !listed.contains(&cached) {
                self.remove(&cached);
            }
        }
        Ok(listed
            .into_iter()
            .filter(|child| force || self.shared.cached(child).is_none())
            .collect())
    }

    fn remove(&self, path: &str) {
        for node in self.shared.remove_subtree(path) {
            self.emit(TreeCacheEvent::NodeRemoved(node));
        }
    }

    /// `path` does not exist: drop it and its subtree; a missing root is
    /// watched with `exists` (if it is back already, read it again).
    async fn gone(&mut self, path: &str) -> Result<Next> {
        self.remove(path);
        if path != self.shared.root {
            return Ok(Vec::new());
        }
        let generation = self.shared.curator.generation();
        if self.watches.is_armed(&Key::RootExists, generation) {
            return Ok(Vec::new());
        }
        let (stat, watch) = self
            .shared
            .curator
            .with_retry(|client| {
                let path = path.to_string();
                async move { client.exists_and_watch(&path).await }
            })
            .await?;
        self.watches.arm(Key::RootExists, generation, watch);
        Ok(match stat {
            Some(_) => vec![path.to_string()],
            None => Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_levels_below_the_root() {
        assert_eq!(depth_below("/a", "/a"), Some(0));
        assert_eq!(depth_below("/a", "/a/b"), Some(1));
        assert_eq!(depth_below("/a", "/a/b/c"), Some(2));
        assert_eq!(depth_below("/", "/x/y"), Some(2));
        assert_eq!(depth_below("/", "/"), Some(0));
    }

    #[test]
    fn paths_outside_the_root_have_no_depth() {
        assert_eq!(depth_below("/a", "/ab"), None);
        assert_eq!(depth_below("/a", "/b/a"), None);
        assert_eq!(depth_below("/a/b", "/a"), None);
    }

    #[test]
    fn a_subtree_is_removed_descendants_first() {
        let paths: Vec<String> = ["/t", "/t/a", "/t/a/x", "/t/b", "/ta", "/u"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let order = subtree_deepest_first(paths.iter(), "/t");
        assert_eq!(order, ["/t/b", "/t/a/x", "/t/a", "/t"]);
    }

    fn stat(mzxid: i64) -> Stat {
        Stat {
            mzxid,
            ..Stat::default()
        }
    }

    #[test]
    fn an_update_needs_a_newer_mzxid() {
        assert_eq!(classify(None, &stat(5)), Change::Added);
        assert_eq!(classify(Some(&stat(5)), &stat(6)), Change::Updated);
        assert_eq!(classify(Some(&stat(5)), &stat(5)), Change::Unchanged);
    }

    #[test]
    fn a_stale_read_is_ignored() {
        assert_eq!(classify(Some(&stat(9)), &stat(7)), Change::Unchanged);
    }
}
