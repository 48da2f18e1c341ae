//! Barriers (RECIPES.md §B11).
//!
//! * [`DistributedBarrier`]: the barrier is up while the node exists.
//! * [`DistributedDoubleBarrier`]: `member_qty` members enter together and
//!   leave together; members are ephemeral `path/<uuid>` nodes and
//!   `path/ready` (persistent) marks that everybody arrived. Same names and
//!   leave protocol as Curator (and kazoo).

use std::time::Duration;

use tokio::time::Instant;
use zk_client::{CreateMode, Watch};

use crate::error::{Error, Result};
use crate::framework::{delete_quietly, Curator};
use crate::lock::internals::sleep_until_opt;
use crate::paths::{join, uuid_v4};

/// The node whose appearance lets every member of a double barrier in.
pub const READY_NODE: &str = "ready";

/// Waits for `watch`; false when `deadline` passes first.
async fn wait_watch(curator: &Curator, watch: Watch, deadline: Option<Instant>) -> Result<bool> {
    tokio::select! {
        _ = watch => Ok(true),
        _ = sleep_until_opt(deadline) => Ok(false),
        _ = curator.closed() => Err(Error::Closed),
    }
}

/// Is `path` there, plus a watch on it.
async fn exists_watch(curator: &Curator, path: &str) -> Result<(bool, Watch)> {
    curator
        .with_retry(|client| {
            let path = path.to_string();
            async move {
                let (stat, watch) = client.exists_and_watch(&path).await?;
                Ok((stat.is_some(), watch))
            }
        })
        .await
}

/// A barrier that holds everybody while its node exists.
///
/// ```no_run
/// # async fn demo(curator: zk_recipes::Curator) -> zk_recipes::Result<()> {
/// use zk_recipes::DistributedBarrier;
/// let barrier = DistributedBarrier::new(&curator, "/barriers/deploy");
/// barrier.set_barrier().await?;
/// // Others: barrier.wait_on_barrier(None).await? returns once it is removed.
/// barrier.remove_barrier().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct DistributedBarrier {
    curator: Curator,
    path: String,
}

impl DistributedBarrier {
    /// A barrier at `path` (no I/O until used).
    pub fn new(curator: &Curator, path: &str) -> Self {
        DistributedBarrier {
            curator: curator.clone(),
            path: path.to_string(),
        }
    }

    /// Raises the barrier (persistent node with the default data; already
    /// up is fine).
    pub async fn set_barrier(&self) -> Result<()> {
        let data = self.curator.default_data();
        match self
            .curator
            .create(&self.path, &data, CreateMode::Persistent)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_node_exists() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Lowers the barrier (already down is fine).
    pub async fn remove_barrier(&self) -> Result<()> {
        self.curator
            .with_retry(|client| {
                let path = self.path.clone();
                async move { delete_quietly(&client, &path).await }
            })
            .await
    }

    /// Waits until the barrier is down; false when `timeout` passes first.
    pub async fn wait_on_barrier(&self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let (up, watch) = exists_watch(&self.curator, &self.path).await?;
            if !up {
                return Ok(true);
            }
            if !wait_watch(&self.curator, watch, deadline).await? {
                return Ok(false);
            }
        }
    }
}

/// A double barrier for `member_qty` members.
///
/// ```no_run
/// # async fn demo(curator: zk_recipes::Curator) -> zk_recipes::Result<()> {
/// use std::time::Duration;
/// use zk_recipes::DistributedDoubleBarrier;
/// let barrier = DistributedDoubleBarrier::new(&curator, "/barriers/round", 3);
/// if barrier.enter(Some(Duration::from_secs(30))).await? {
///     // ... work done together ...
///     barrier.leave(Some(Duration::from_secs(30))).await?;
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct DistributedDoubleBarrier {
    curator: Curator,
    path: String,
    member_qty: usize,
    our_path: String,
    ready_path: String,
}

impl DistributedDoubleBarrier {
    /// A double barrier at `path` for `member_qty` members (no I/O until used).
    pub fn new(curator: &Curator, path: &str, member_qty: usize) -> Self {
        let our_name = uuid_v4(&mut rand::thread_rng());
        DistributedDoubleBarrier {
            curator: curator.clone(),
            path: path.to_string(),
            member_qty,
            our_path: join(path, &our_name),
            ready_path: join(path, READY_NODE),
        }
    }

    async fn children(&self) -> Result<Vec<String>> {
        self.curator
            .with_retry(|client| {
                let path = self.path.clone();
                async move {
                    match client.get_children(&path).await {
                        Err(zk_client::Error::NoNode) => Ok(Vec::new()),
                        other => other,
                    }
                }
            })
            .await
    }

    /// Joins and waits until `member_qty` members have; false on timeout.
    pub async fn enter(&self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let (mut ready, mut watch) = exists_watch(&self.curator, &self.ready_path).await?;
        let data = self.curator.default_data();
        match self
            .curator
            .create(&self.our_path, &data, CreateMode::Ephemeral)
            .await
        {
            Ok(_) => {}
            Err(e) if e.is_node_exists() => {}
            Err(e) => return Err(e),
        }
        loop {
            if ready {
                return Ok(true);
            }
            // Every child counts, `ready` included, as in Curator.
            if self.children().await?.len() >= self.member_qty {
                match self
                    .curator
                    .create(&self.ready_path, &data, CreateMode::Persistent)
                    .await
                {
                    Ok(_) => return Ok(true),
                    Err(e) if e.is_node_exists() => return Ok(true),
                    Err(e) => return Err(e),
                }
            }
            if !wait_watch(&self.curator, watch, deadline).await? {
                return Ok(false);
            }
            (ready, watch) = exists_watch(&self.curator, &self.ready_path).await?;
        }
    }

    /// Leaves and waits until every member has; false on timeout.
    pub async fn leave(&self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let our_name = crate::paths::node_name(&self.our_path).to_string();
        let mut ours_should_exist = true;
        loop {
            let mut members: Vec<String> = self
                .children()
                .await?
                .into_iter()
                .filter(|c| c != READY_NODE)
                .collect();
            members.sort();
            if members.is_empty() {
                break;
            }
            let ours = members.iter().position(|m| *m == our_name);
            if ours.is_none() && ours_should_exist {
                return Err(Error::NodeVanished(self.our_path.clone()));
            }
            if members.len() == 1 {
                if ours_should_exist {
                    self.delete_ours().await?;
                }
                break;
            }
            let (watched, delete_ours) = if ours == Some(0) {
                // The lowest waits for the highest to go.
                (members[members.len() - 1].clone(), false)
            } else {
                (members[0].clone(), ours_should_exist)
            };
            let (exists, watch) = exists_watch(&self.curator, &join(&self.path, &watched)).await?;
            if delete_ours {
                self.delete_ours().await?;
                ours_should_exist = false;
            }
            if exists && !wait_watch(&self.curator, watch, deadline).await? {
                return Ok(false);
            }
        }
        self.curator
            .with_retry(|client| {
                let ready = self.ready_path.clone();
                async move { delete_quietly(&client, &ready).await }
            })
            .await?;
        Ok(true)
    }

    async fn delete_ours(&self) -> Result<()> {
        self.curator
            .with_retry(|client| {
                let ours = self.our_path.clone();
                async move { delete_quietly(&client, &ours).await }
            })
            .await
    }
}
