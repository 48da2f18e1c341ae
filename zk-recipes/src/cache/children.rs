//! `PathChildrenCache` (RECIPES.md §B10.2): the direct children of one
//! path, with their data, kept in sync by a child watch on the path and a
//! data watch per child.
//!
//! * `ChildUpdated` only when a child's `mzxid` changed (so a delete and
//!   re-create while we were away is still an update).
//! * Suspended / Lost only emit the connection event: the cached data is
//!   kept. Connected / Reconnected re-read every child (the missed changes
//!   come out as Added / Updated / Removed) and emit
//!   `ConnectionReconnected`.
//! * The cached path itself is made a container; if it vanishes the cache
//!   makes it again.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use zk_client::EventType;

use crate::cache::watches::{next_fired, ArmedWatches};
use crate::cache::{ChildData, Events};
use crate::connection::ConnectionState;
use crate::error::{Error, Result};
use crate::framework::{ensure_containers, Curator};
use crate::paths::join;

/// What the cache observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathChildrenEvent {
    /// A child appeared.
    ChildAdded(ChildData),
    /// A child's data or stat changed.
    ChildUpdated(ChildData),
    /// A child was deleted.
    ChildRemoved(ChildData),
    /// The first full read finished (with `StartMode::PostInitializedEvent`);
    /// carries the children at that point.
    Initialized(Vec<ChildData>),
    /// The connection is Suspended; the cache may be stale.
    ConnectionSuspended,
    /// Reconnected; the cache is refreshed.
    ConnectionReconnected,
    /// The session is Lost; the cache is refreshed on the new one.
    ConnectionLost,
}

/// How the initial children are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartMode {
    /// Initial children arrive as `ChildAdded`.
    #[default]
    Normal,
    /// As `Normal`, then one `Initialized` event.
    PostInitializedEvent,
}

#[derive(Debug)]
struct Shared {
    curator: Curator,
    path: String,
    data: RwLock<BTreeMap<String, ChildData>>,
    closed: watch::Sender<bool>,
}

/// A running cache; events come from the [`Events`] returned by
/// [`start`](Self::start).
///
/// ```no_run
/// # async fn demo(curator: zk_recipes::Curator) -> zk_recipes::Result<()> {
/// use futures::StreamExt;
/// use zk_recipes::{PathChildrenCache, PathChildrenEvent, StartMode};
/// let (cache, mut events) =
///     PathChildrenCache::start(&curator, "/workers", StartMode::PostInitializedEvent);
/// while let Some(event) = events.next().await {
///     if let PathChildrenEvent::ChildAdded(child) = event {
///         println!("worker {} joined", child.path);
///     }
/// }
/// cache.close().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct PathChildrenCache {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

/// Watches: the children of the path (key `None`) or one child's data.
type Key = Option<String>;

impl PathChildrenCache {
    /// Starts caching the children of `path`, in the background.
    pub fn start(
        curator: &Curator,
        path: &str,
        mode: StartMode,
    ) -> (PathChildrenCache, Events<PathChildrenEvent>) {
        let shared = Arc::new(Shared {
            curator: curator.clone(),
            path: path.to_string(),
            data: RwLock::new(BTreeMap::new()),
            closed: watch::Sender::new(false),
        });
        let (tx, events) = Events::channel();
        let states = curator.subscribe_states();
        let task = curator.spawn(shared.clone().run(tx, states, mode));
        (PathChildrenCache { shared, task }, events)
    }

    /// Every cached child, by name.
    pub fn current_data(&self) -> BTreeMap<String, ChildData> {
        self.shared
            .data
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// One cached child by name.
    pub fn current_child(&self, name: &str) -> Option<ChildData> {
        self.shared
            .data
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// Stops the cache; the event stream ends.
    pub async fn close(mut self) {
        self.shared.closed.send_replace(true);
        let _ = (&mut self.task).await;
    }
}

impl Drop for PathChildrenCache {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The running state of the cache task.
struct Sync<'a> {
    shared: &'a Shared,
    tx: mpsc::UnboundedSender<PathChildrenEvent>,
    watches: ArmedWatches<Key>,
}

impl Shared {
    async fn run(
        self: Arc<Self>,
        tx: mpsc::UnboundedSender<PathChildrenEvent>,
        mut states: broadcast::Receiver<ConnectionState>,
        mode: StartMode,
    ) {
        let mut closed = self.closed.subscribe();
        let mut sync = Sync {
            shared: &self,
            tx,
            watches: ArmedWatches::new(),
        };
        let first = tokio::select! {
            r = sync.refresh(true) => r,
            _ = closed.changed() => return,
        };
        if let Err(e) = first {
            tracing::debug!(%e, "initial children read failed; waiting for a connection");
        }
        if mode == StartMode::PostInitializedEvent {
            let initial = self.snapshot().into_values().collect();
            sync.emit(PathChildrenEvent::Initialized(initial));
        }
        loop {
            let result = tokio::select! {
                (key, generation, event) = next_fired(&mut sync.watches) => {
                    match sync.watches.fired(&key, generation, event) {
                        Some(event) => sync.on_watch(key, event.event_type).await,
                        None => Ok(()),
                    }
                }
                state = states.recv() => match state {
                    Ok(ConnectionState::Suspended) => {
                        sync.emit(PathChildrenEvent::ConnectionSuspended);
                        Ok(())
                    }
                    Ok(ConnectionState::Lost) => {
                        sync.emit(PathChildrenEvent::ConnectionLost);
                        Ok(())
                    }
                    Ok(ConnectionState::Connected | ConnectionState::Reconnected) => {
                        let r = sync.refresh(true).await;
                        sync.emit(PathChildrenEvent::ConnectionReconnected);
                        r
                    }
                    Ok(ConnectionState::ReadOnly) => Ok(()),
                    Err(broadcast::error::RecvError::Lagged(_)) => sync.refresh(true).await,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = closed.changed() => return,
            };
            match result {
                Err(Error::Closed) => return,
                Err(e) => tracing::debug!(%e, "cache refresh failed; retrying on reconnect"),
                Ok(()) => {}
            }
            if sync.tx.is_closed() {
                return;
            }
        }
    }

    fn snapshot(&self) -> BTreeMap<String, ChildData> {
        self.data.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn cached(&self, name: &str) -> Option<ChildData> {
        self.data
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    fn store(&self, name: &str, child: Option<ChildData>) -> Option<ChildData> {
        let mut data = self.data.write().unwrap_or_else(|e| e.into_inner());
        match child {
            Some(child) => data.insert(name.to_string(), child),
            None => data.remove(name),
        }
    }
}

impl Sync<'_> {
    fn emit(&self, event: PathChildrenEvent) {
        // A dropped stream is fine: the cache still serves current_data.
        let _ = self.tx.send(event);
    }

    async fn on_watch(&mut self, key: Key, event: EventType) -> Result<()> {
        match (key, event) {
            (None, _) => self.refresh(false).await,
            (Some(name), EventType::NodeDeleted) => {
                self.remove(&name);
                Ok(())
            }
            (Some(name), _) => self.reload(&name).await,
        }
    }

    fn remove(&self, name: &str) {
        if let Some(old) = self.shared.store(name, None) {
            self.emit(PathChildrenEvent::ChildRemoved(old));
        }
    }

    /// Lists the children (arming the child watch if needed) and diffs
    /// them against the cache; `force` re-reads every child.
    async fn refresh(&mut self, force: bool) -> Result<()> {
        let curator = &self.shared.curator;
        let path = self.shared.path.clone();
        let generation = curator.generation();
        let arm = !self.watches.is_armed(&None, generation);
        let (names, watch) = curator
            .with_retry(|client| {
                let path = path.clone();
                let acls = curator.acls();
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
                        // The path vanished (a reaped container): make it again.
                        Err(zk_client::Error::NoNode) => {
                            ensure_containers(&client, &path, &acls).await?;
                            let (names, watch) = client.get_children_and_watch(&path).await?;
                            Ok((names, Some(watch)))
                        }
                        other => other,
                    }
                }
            })
            .await?;
        if let Some(watch) = watch {
            self.watches.arm(None, generation, watch);
        }
        let names: BTreeSet<String> = names.into_iter().collect();
        let gone: Vec<String> = self
            .shared
            .snapshot()
            .into_keys()
            .filter(|name| !names.contains(name))
            .collect();
        for name in gone {
            self.remove(&name);
        }
        for name in &names {
            if force || self.shared.cached(name).is_none() {
                self.reload(name).await?;
            }
        }
        Ok(())
    }

    /// Re-reads one child (arming its data watch if needed).
    async fn reload(&mut self, name: &str) -> Result<()> {
        let curator = &self.shared.curator;
        let child_path = join(&self.shared.path, name);
        let generation = curator.generation();
        let key = Some(name.to_string());
        let arm = !self.watches.is_armed(&key, generation);
        let read = curator
            .with_retry(|client| {
                let child_path = child_path.clone();
                async move {
                    let read = if arm {
                        client
                            .get_data_and_watch(&child_path)
                            .await
                            .map(|(data, stat, watch)| (data, stat, Some(watch)))
                    } else {
                        client
                            .get_data(&child_path)
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
            self.remove(name);
            return Ok(());
        };
        if let Some(watch) = watch {
            self.watches.arm(key, generation, watch);
        }
        let fresh = ChildData {
            path: child_path,
            stat,
            data,
        };
        match self.shared.store(name, Some(fresh.clone())) {
            None => self.emit(PathChildrenEvent::ChildAdded(fresh)),
            Some(old) if old.stat.mzxid != fresh.stat.mzxid => {
                self.emit(PathChildrenEvent::ChildUpdated(fresh))
            }
            Some(_) => {}
        }
        Ok(())
    }
}
