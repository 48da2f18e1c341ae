//! `CuratorCache` (RECIPES.md §B10.4): a whole subtree, root included,
//! kept in sync by one persistent recursive watch (ZooKeeper ≥ 3.6).
//!
//! * The watch is (re)added on every connected state; after it is in
//!   place the cache rebuilds: re-read the root and every stored path,
//!   listing children of nodes that are new or whose `cversion` changed.
//!   That finds nodes created and deleted while we were away.
//! * `NodeCreated`/`NodeDataChanged` → re-read the path; `NodeDeleted` →
//!   drop it (persistent watches never send `NodeChildrenChanged`).
//! * Events: `Created`, `Changed` (the stored `version` differs),
//!   `Deleted`, and `Initialized` once after the first build. Unlike
//!   Curator, connection states are also forwarded (`Reconnected` after
//!   every rebuild), so users need not listen on the framework.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use zk_client::{AddWatchMode, EventType, PersistentWatch, WatchedEvent};

use crate::cache::{ChildData, Events};
use crate::connection::ConnectionState;
use crate::error::{Error, Result};
use crate::framework::Curator;
use crate::paths::join;

/// What the cache observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CuratorCacheEvent {
    /// A node appeared.
    Created(ChildData),
    /// Old and new data.
    Changed(ChildData, ChildData),
    /// A node was deleted.
    Deleted(ChildData),
    /// The first full build finished (once).
    Initialized,
    /// Rebuilt after a (re)connection.
    Reconnected,
    /// The connection is Suspended; the cache may be stale.
    Suspended,
    /// The session is Lost; the cache is rebuilt on the new one.
    Lost,
}

#[derive(Debug)]
struct Shared {
    curator: Curator,
    root: String,
    data: RwLock<BTreeMap<String, ChildData>>,
    closed: watch::Sender<bool>,
}

/// A running subtree cache.
///
/// ```no_run
/// # async fn demo(curator: zk_recipes::Curator) -> zk_recipes::Result<()> {
/// use futures::StreamExt;
/// use zk_recipes::CuratorCache;
/// let (cache, mut events) = CuratorCache::start(&curator, "/services");
/// if let Some(event) = events.next().await {
///     println!("{event:?}");
/// }
/// println!("{:?}", cache.get("/services"));
/// cache.close().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct CuratorCache {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl CuratorCache {
    /// Starts caching `root` and everything below it, in the background.
    pub fn start(curator: &Curator, root: &str) -> (CuratorCache, Events<CuratorCacheEvent>) {
        let shared = Arc::new(Shared {
            curator: curator.clone(),
            root: root.to_string(),
            data: RwLock::new(BTreeMap::new()),
            closed: watch::Sender::new(false),
        });
        let (tx, events) = Events::channel();
        let states = curator.subscribe_states();
        let task = curator.spawn(shared.clone().run(tx, states));
        (CuratorCache { shared, task }, events)
    }

    /// Every cached node by full path (the root included when it exists).
    pub fn current_data(&self) -> BTreeMap<String, ChildData> {
        self.shared
            .data
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The cached node at `path`, if any.
    pub fn get(&self, path: &str) -> Option<ChildData> {
        self.shared
            .data
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(path)
            .cloned()
    }

    /// Stops caching: the events stream ends.
    pub async fn close(mut self) {
        self.shared.closed.send_replace(true);
        let _ = (&mut self.task).await;
    }
}

impl Drop for CuratorCache {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn next_event(watch: &mut Option<PersistentWatch>) -> Option<WatchedEvent> {
    match watch {
        Some(stream) => stream.next().await,
        None => futures::future::pending().await,
    }
}

impl Shared {
    async fn run(
        self: Arc<Self>,
        tx: mpsc::UnboundedSender<CuratorCacheEvent>,
        mut states: broadcast::Receiver<ConnectionState>,
    ) {
        let mut closed = self.closed.subscribe();
        let mut stream: Option<PersistentWatch> = None;
        let mut initialized = false;
        let mut result = self.rewatch_and_rebuild(&mut stream, &tx).await;
        loop {
            match result {
                Err(Error::Closed) => return,
                Err(e) => tracing::debug!(%e, "cache rebuild failed; retrying on reconnect"),
                Ok(()) if !initialized => {
                    initialized = true;
                    let _ = tx.send(CuratorCacheEvent::Initialized);
                }
                Ok(()) => {}
            }
            result = tokio::select! {
                event = next_event(&mut stream) => match event {
                    Some(event) => self.on_event(event, &tx).await,
                    // The client behind it is gone; a new one will come
                    // with a connected state.
                    None => {
                        stream = None;
                        Ok(())
                    }
                },
                state = states.recv() => match state {
                    Ok(ConnectionState::Suspended) => {
                        let _ = tx.send(CuratorCacheEvent::Suspended);
                        Ok(())
                    }
                    Ok(ConnectionState::Lost) => {
                        let _ = tx.send(CuratorCacheEvent::Lost);
                        Ok(())
                    }
                    Ok(state) => {
                        let r = self.rewatch_and_rebuild(&mut stream, &tx).await;
                        if r.is_ok() && state == ConnectionState::Reconnected {
                            let _ = tx.send(CuratorCacheEvent::Reconnected);
                        }
                        r
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        self.rewatch_and_rebuild(&mut stream, &tx).await
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = closed.changed() => return,
            };
        }
    }

    fn snapshot_paths(&self) -> Vec<String> {
        self.data
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    async fn rewatch_and_rebuild(
        &self,
        stream: &mut Option<PersistentWatch>,
        tx: &mpsc::UnboundedSender<CuratorCacheEvent>,
    ) -> Result<()> {
        let root = self.root.clone();
        let added = self
            .curator
            .with_retry(|client| {
                let root = root.clone();
                async move {
                    client
                        .add_watch(&root, AddWatchMode::PersistentRecursive)
                        .await
                }
            })
            .await?;
        // Replacing the old stream drops its sink, so events are not
        // delivered twice.
        *stream = Some(added);
        let mut queue: VecDeque<String> = VecDeque::from([self.root.clone()]);
        queue.extend(self.snapshot_paths());
        self.process(queue, tx).await
    }

    async fn on_event(
        &self,
        event: WatchedEvent,
        tx: &mpsc::UnboundedSender<CuratorCacheEvent>,
    ) -> Result<()> {
        match event.event_type {
            EventType::NodeDeleted => {
                self.remove(&event.path, tx);
                Ok(())
            }
            EventType::NodeCreated | EventType::NodeDataChanged => {
                self.process(VecDeque::from([event.path]), tx).await
            }
            _ => Ok(()),
        }
    }

    fn remove(&self, path: &str, tx: &mpsc::UnboundedSender<CuratorCacheEvent>) {
        let old = self
            .data
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(path);
        if let Some(old) = old {
            let _ = tx.send(CuratorCacheEvent::Deleted(old));
        }
    }

    /// Curator's `nodeChanged` over a work queue: read each path, store
    /// it, and list the children of nodes that are new or whose children
    /// changed.
    async fn process(
        &self,
        mut queue: VecDeque<String>,
        tx: &mpsc::UnboundedSender<CuratorCacheEvent>,
    ) -> Result<()> {
        while let Some(path) = queue.pop_front() {
            let read = self
                .curator
                .with_retry(|client| {
                    let path = path.clone();
                    async move {
                        match client.get_data(&path).await {
                            Ok(read) => Ok(Some(read)),
                            Err(zk_client::Error::NoNode) => Ok(None),
                            Err(e) => Err(e),
                        }
                    }
                })
                .await?;
            let Some((data, stat)) = read else {
                self.remove(&path, tx);
                continue;
            };
            let fresh = ChildData {
                path: path.clone(),
                stat,
                data,
            };
            let old = self
                .data
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(path.clone(), fresh.clone());
            let list_children = match &old {
                None => true,
                Some(old) => old.stat.cversion != fresh.stat.cversion,
            };
            match old {
                None => {
                    let _ = tx.send(CuratorCacheEvent::Created(fresh));
                }
                Some(old) if old.stat.version != fresh.stat.version => {
                    let _ = tx.send(CuratorCacheEvent::Changed(old, fresh));
                }
                Some(_) => {}
            }
            if list_children {
                let children = self
                    .curator
                    .with_retry(|client| {
                        let path = path.clone();
                        async move {
                            match client.get_children(&path).await {
                                Err(zk_client::Error::NoNode) => Ok(Vec::new()),
                                other => other,
                            }
                        }
                    })
                    .await?;
                queue.extend(children.iter().map(|c| join(&path, c)));
            }
        }
        Ok(())
    }
}
