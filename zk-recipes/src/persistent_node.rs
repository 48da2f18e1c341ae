//! `PersistentNode` (RECIPES.md §B15): keeps one node alive for the
//! lifetime of the object, typically an ephemeral that must survive
//! session loss.
//!
//! * Created at start (parents as containers, protected if asked). A node
//!   already there (`NodeExists`) is taken over and given our data.
//! * An `exists` watch re-creates it when it is deleted; every
//!   (re)connection re-creates it if missing.
//! * Re-creation reuses the first name: a sequential node comes back
//!   under its recorded sequence as a plain name (EPHEMERAL_SEQUENTIAL →
//!   EPHEMERAL, PERSISTENT_SEQUENTIAL → PERSISTENT).
//! * `close` deletes it (guaranteed), except the node of a
//!   [`PersistentTtlNode`](crate::ttl_node::PersistentTtlNode).
//!
//! Also [`GroupMember`] (§B16): a persistent ephemeral member node plus a
//! cache of the group.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use zk_client::{CreateMode, EventType};

use crate::cache::{CuratorCache, CuratorCacheEvent, Events};
use crate::connection::ConnectionState;
use crate::error::{Error, Result};
use crate::framework::Curator;
use crate::paths::{join, node_name, parent};

/// Pause before retrying a failed create.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// The mode used to re-create a node under its recorded name.
fn plain_mode(mode: CreateMode) -> CreateMode {
    match mode {
        CreateMode::EphemeralSequential => CreateMode::Ephemeral,
        CreateMode::PersistentSequential => CreateMode::Persistent,
        CreateMode::PersistentSequentialWithTtl => CreateMode::PersistentWithTtl,
        other => other,
    }
}

#[derive(Debug)]
struct Shared {
    curator: Curator,
    path: String,
    mode: CreateMode,
    protected: bool,
    /// For the TTL modes.
    ttl: Option<Duration>,
    /// False for a [`PersistentTtlNode`]'s node, which must outlive us.
    delete_on_close: bool,
    data: Mutex<Bytes>,
    /// The node's real name once created (with prefix / sequence).
    actual: watch::Sender<Option<String>>,
    closed: watch::Sender<bool>,
}

/// A node kept alive in the background.
///
/// ```no_run
/// # async fn demo(curator: zk_recipes::Curator) -> zk_recipes::Result<()> {
/// use std::time::Duration;
/// use zk_client::CreateMode;
/// use zk_recipes::PersistentNode;
/// let mode = CreateMode::Ephemeral;
/// let node = PersistentNode::start(&curator, "/members/node-1", mode, false, &b"up"[..])?;
/// node.wait_for_initial_create(Duration::from_secs(10)).await;
/// // Re-created after a session loss until closed.
/// node.close().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct PersistentNode {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl PersistentNode {
    /// Starts keeping `path` alive with `data` in `mode` (TTL modes need
    /// [`start_with_ttl`](Self::start_with_ttl)).
    pub fn start(
        curator: &Curator,
        path: &str,
        mode: CreateMode,
        protected: bool,
        data: impl Into<Bytes>,
    ) -> Result<PersistentNode> {
        if mode.is_ttl() {
            return Err(Error::InvalidArgument(
                "TTL modes need start_with_ttl".into(),
            ));
        }
        Ok(Self::spawn(
            curator,
            path,
            mode,
            protected,
            None,
            true,
            data.into(),
        ))
    }

    /// Starts keeping `path` alive in a TTL mode (`PersistentWithTtl` or
    /// `PersistentSequentialWithTtl`, unprotected) with time-to-live `ttl`.
    pub fn start_with_ttl(
        curator: &Curator,
        path: &str,
        mode: CreateMode,
        ttl: Duration,
        data: impl Into<Bytes>,
    ) -> Result<PersistentNode> {
        if !mode.is_ttl() {
            return Err(Error::InvalidArgument(format!(
                "{mode:?} is not a TTL mode"
            )));
        }
        Ok(Self::spawn(
            curator,
            path,
            mode,
            false,
            Some(ttl),
            true,
            data.into(),
        ))
    }

    /// A TTL node that [`close`](Self::close) leaves in place (for
    /// [`PersistentTtlNode`](crate::ttl_node::PersistentTtlNode)).
    pub(crate) fn spawn_kept(
        curator: &Curator,
        path: &str,
        mode: CreateMode,
        ttl: Duration,
        data: Bytes,
    ) -> PersistentNode {
        Self::spawn(curator, path, mode, false, Some(ttl), false, data)
    }

    fn spawn(
        curator: &Curator,
        path: &str,
        mode: CreateMode,
        protected: bool,
        ttl: Option<Duration>,
        delete_on_close: bool,
        data: Bytes,
    ) -> PersistentNode {
        let shared = Arc::new(Shared {
            curator: curator.clone(),
            path: path.to_string(),
            mode,
            protected,
            ttl,
            delete_on_close,
            data: Mutex::new(data),
            actual: watch::Sender::new(None),
            closed: watch::Sender::new(false),
        });
        let states = curator.subscribe_states();
        let task = curator.spawn(shared.clone().run(states));
        PersistentNode { shared, task }
    }

    /// The node's path once created.
    pub fn actual_path(&self) -> Option<String> {
        self.shared.actual.borrow().clone()
    }

    /// The node's path, `None` until first created.
    pub(crate) fn created(&self) -> watch::Receiver<Option<String>> {
        self.shared.actual.subscribe()
    }

    /// Waits for the first create; false on timeout.
    pub async fn wait_for_initial_create(&self, timeout: Duration) -> bool {
        let mut actual = self.shared.actual.subscribe();
        tokio::time::timeout(timeout, actual.wait_for(Option::is_some))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Changes the data (written now and on every re-creation).
    pub async fn set_data(&self, data: impl Into<Bytes>) -> Result<()> {
        let data = data.into();
        *self.shared.data.lock().unwrap_or_else(|e| e.into_inner()) = data.clone();
        let Some(path) = self.actual_path() else {
            return Err(Error::InvalidArgument(
                "the node was not created yet".into(),
            ));
        };
        self.shared
            .curator
            .with_retry(|client| {
                let (path, data) = (path.clone(), data.clone());
                async move { client.set_data(&path, &data, None).await.map(drop) }
            })
            .await
    }

    /// Stops and deletes the node.
    pub async fn close(mut self) -> Result<()> {
        self.shared.closed.send_replace(true);
        let _ = (&mut self.task).await;
        match self.actual_path() {
            Some(path) if self.shared.delete_on_close && !self.shared.curator.is_closed() => {
                self.shared.curator.delete_guaranteed(&path).await
            }
            _ => Ok(()),
        }
    }
}

impl Drop for PersistentNode {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Shared {
    fn data(&self) -> Bytes {
        self.data.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Creates the node (or takes over an existing one) and returns its
    /// path.
    async fn create(&self) -> Result<String> {
        let data = self.data();
        let recorded = self.actual.borrow().clone();
        let created = match (&recorded, self.ttl) {
            (Some(path), Some(ttl)) => {
                self.curator
                    .create_ttl(path, &data, plain_mode(self.mode), ttl)
                    .await
            }
            (None, Some(ttl)) => {
                self.curator
                    .create_ttl(&self.path, &data, self.mode, ttl)
                    .await
            }
            (Some(path), None) => {
                self.curator
                    .create(path, &data, plain_mode(self.mode))
                    .await
            }
            (None, None) if self.protected => {
                let parent_path = parent(&self.path).unwrap_or("/");
                self.curator
                    .create_protected(parent_path, node_name(&self.path), &data, self.mode)
                    .await
            }
            (None, None) => self.curator.create(&self.path, &data, self.mode).await,
        };
        match created {
            Ok(path) => Ok(path),
            Err(e) if e.is_node_exists() => {
                let path = recorded.unwrap_or_else(|| self.path.clone());
                // Maybe a node of an earlier session of ours: make it ours.
                self.curator
                    .with_retry(|client| {
                        let (path, data) = (path.clone(), data.clone());
                        async move { client.set_data(&path, &data, None).await.map(drop) }
                    })
                    .await?;
                Ok(path)
            }
            Err(e) => Err(e),
        }
    }

    async fn run(self: Arc<Self>, mut states: broadcast::Receiver<ConnectionState>) {
        let mut closed = self.closed.subscribe();
        loop {
            let created = tokio::select! {
                r = self.create() => r,
                _ = closed.changed() => return,
            };
            let path = match created {
                Ok(path) => path,
                Err(Error::Closed) => return,
                Err(e) => {
                    tracing::warn!(%e, path = %self.path, "persistent node not created");
                    tokio::time::sleep(RETRY_PAUSE).await;
                    continue;
                }
            };
            self.actual.send_replace(Some(path.clone()));
            // Watch it until it goes or a reconnection asks for a check.
            loop {
                let watched = self
                    .curator
                    .with_retry(|client| {
                        let path = path.clone();
                        async move { client.exists_and_watch(&path).await }
                    })
                    .await;
                let watch = match watched {
                    Ok((Some(_), watch)) => watch,
                    Ok((None, _)) => break,
                    Err(Error::Closed) => return,
                    Err(_) => break,
                };
                let recreate = tokio::select! {
                    event = watch => event.event_type == EventType::NodeDeleted,
                    state = states.recv() => match state {
                        Ok(ConnectionState::Reconnected) => true,
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => false,
                        Err(broadcast::error::RecvError::Closed) => return,
                    },
                    _ = closed.changed() => return,
                };
                if recreate {
                    break;
                }
            }
        }
    }
}

/// A member of a group (§B16): an ephemeral `membership_path/<id>` kept
/// alive, plus a cache of every member.
///
/// ```no_run
/// # async fn demo(curator: zk_recipes::Curator) -> zk_recipes::Result<()> {
/// use zk_recipes::GroupMember;
/// let (member, _events) = GroupMember::start(&curator, "/groups/api", "node-1", None)?;
/// println!("{:?}", member.current_members().keys().collect::<Vec<_>>());
/// member.close().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct GroupMember {
    id: String,
    payload: Bytes,
    node: PersistentNode,
    cache: CuratorCache,
    membership_path: String,
}

impl GroupMember {
    /// Joins with `payload` (default: the framework's default data).
    pub fn start(
        curator: &Curator,
        membership_path: &str,
        id: &str,
        payload: Option<Bytes>,
    ) -> Result<(GroupMember, Events<CuratorCacheEvent>)> {
        let payload = payload.unwrap_or_else(|| curator.default_data());
        let node = PersistentNode::start(
            curator,
            &join(membership_path, id),
            CreateMode::Ephemeral,
            false,
            payload.clone(),
        )?;
        let (cache, events) = CuratorCache::start(curator, membership_path);
        Ok((
            GroupMember {
                id: id.to_string(),
                payload,
                node,
                cache,
                membership_path: membership_path.to_string(),
            },
            events,
        ))
    }

    /// Member id → payload, always including this member.
    pub fn current_members(&self) -> BTreeMap<String, Bytes> {
        let mut members: BTreeMap<String, Bytes> = self
            .cache
            .current_data()
            .into_values()
            .filter(|child| parent(&child.path) == Some(self.membership_path.as_str()))
            .map(|child| (node_name(&child.path).to_string(), child.data))
            .collect();
        members
            .entry(self.id.clone())
            .or_insert_with(|| self.payload.clone());
        members
    }

    /// Leaves the group.
    pub async fn close(self) -> Result<()> {
        self.cache.close().await;
        self.node.close().await
    }
}
