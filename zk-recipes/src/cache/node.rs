//! `NodeCache` (RECIPES.md §B10.1): one node's data, kept in sync by an
//! `exists` watch (which fires on creation, data change and deletion).
//! The stream yields the node's new state (`None` = absent) each time the
//! cached value actually changes; every (re)connection re-reads it.

use std::sync::{Arc, RwLock};

use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

use crate::cache::watches::{next_fired, ArmedWatches};
use crate::cache::{ChildData, Events};
use crate::connection::ConnectionState;
use crate::error::{Error, Result};
use crate::framework::{ensure_containers, Curator};
use crate::paths::parent;

#[derive(Debug)]
struct Shared {
    curator: Curator,
    path: String,
    data: RwLock<Option<ChildData>>,
    closed: watch::Sender<bool>,
}

/// A running single-node cache.
///
/// ```no_run
/// # async fn demo(curator: zk_recipes::Curator) -> zk_recipes::Result<()> {
/// use futures::StreamExt;
/// use zk_recipes::NodeCache;
/// let (cache, mut events) = NodeCache::start(&curator, "/config/feature-flags");
/// while let Some(node) = events.next().await {
///     println!("now {:?}", node.map(|n| n.data));
/// }
/// cache.close().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct NodeCache {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl NodeCache {
    /// Starts caching `path` (its missing parents are made containers).
    pub fn start(curator: &Curator, path: &str) -> (NodeCache, Events<Option<ChildData>>) {
        let shared = Arc::new(Shared {
            curator: curator.clone(),
            path: path.to_string(),
            data: RwLock::new(None),
            closed: watch::Sender::new(false),
        });
        let (tx, events) = Events::channel();
        let states = curator.subscribe_states();
        let task = curator.spawn(shared.clone().run(tx, states));
        (NodeCache { shared, task }, events)
    }

    /// The node as last seen (`None` while it does not exist).
    pub fn current_data(&self) -> Option<ChildData> {
        self.shared
            .data
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Stops caching: the events stream ends.
    pub async fn close(mut self) {
        self.shared.closed.send_replace(true);
        let _ = (&mut self.task).await;
    }
}

impl Drop for NodeCache {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Shared {
    async fn run(
        self: Arc<Self>,
        tx: mpsc::UnboundedSender<Option<ChildData>>,
        mut states: broadcast::Receiver<ConnectionState>,
    ) {
        let mut closed = self.closed.subscribe();
        let mut watches = ArmedWatches::<()>::new();
        if let Some(parent_path) = parent(&self.path) {
            let parent_path = parent_path.to_string();
            let made = self
                .curator
                .with_retry(|client| {
                    let parent_path = parent_path.clone();
                    let acls = self.curator.acls();
                    async move { ensure_containers(&client, &parent_path, &acls).await }
                })
                .await;
            if made == Err(Error::Closed) {
                return;
            }
        }
        let mut result = self.reset(&mut watches, &tx).await;
        loop {
            match result {
                Err(Error::Closed) => return,
                Err(e) => tracing::debug!(%e, "node cache read failed; retrying on reconnect"),
                Ok(()) => {}
            }
            result = tokio::select! {
                ((), generation, event) = next_fired(&mut watches) => {
                    match watches.fired(&(), generation, event) {
                        Some(_) => self.reset(&mut watches, &tx).await,
                        None => Ok(()),
                    }
                }
                state = states.recv() => match state {
                    Ok(state) if state.is_connected() => self.reset(&mut watches, &tx).await,
                    Ok(_) => Ok(()),
                    Err(broadcast::error::RecvError::Lagged(_)) => self.reset(&mut watches, &tx).await,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = closed.changed() => return,
            };
        }
    }

    /// Re-reads the node, arming the exists watch if needed, and reports a
    /// change.
    async fn reset(
        &self,
        watches: &mut ArmedWatches<()>,
        tx: &mpsc::UnboundedSender<Option<ChildData>>,
    ) -> Result<()> {
        let generation = self.curator.generation();
        let arm = !watches.is_armed(&(), generation);
        let path = self.path.clone();
        let (read, watch) = self
            .curator
            .with_retry(|client| {
                let path = path.clone();
                async move {
                    let watch = if arm {
                        Some(client.exists_and_watch(&path).await?.1)
                    } else {
                        None
                    };
                    match client.get_data(&path).await {
                        Ok((data, stat)) => Ok((Some((data, stat)), watch)),
                        Err(zk_client::Error::NoNode) => Ok((None, watch)),
                        Err(e) => Err(e),
                    }
                }
            })
            .await?;
        if let Some(watch) = watch {
            watches.arm((), generation, watch);
        }
        let fresh = read.map(|(data, stat)| ChildData {
            path: self.path.clone(),
            stat,
            data,
        });
        let mut cached = self.data.write().unwrap_or_else(|e| e.into_inner());
        if *cached != fresh {
            *cached = fresh.clone();
            let _ = tx.send(fresh);
        }
        Ok(())
    }
}
