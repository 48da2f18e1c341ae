//! `PersistentTtlNode` (RECIPES.md §B15): "an ephemeral that survives
//! session loss". The node at `path` is a PERSISTENT_WITH_TTL node kept by
//! a [`PersistentNode`] and never deleted by us; a child `path/touch`
//! (PERSISTENT_WITH_TTL too) is rewritten every `ttl / touch_factor`. The
//! server TTL-deletes only childless nodes not modified within their TTL,
//! so the node lives while this process touches it and disappears about a
//! TTL (plus the server's reaper interval) after it stops. Needs a server
//! with TTL nodes enabled (`extendedTypesEnabled`).

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use zk_client::CreateMode;

use crate::error::{Error, Result};
use crate::framework::Curator;
use crate::paths::join;
use crate::persistent_node::PersistentNode;

/// Curator's default name of the touched child.
pub const DEFAULT_TOUCH_NAME: &str = "touch";

/// Curator's default: touch twice per TTL.
pub const DEFAULT_TOUCH_FACTOR: u32 = 2;

/// A TTL node kept alive by touching a child. Dropping it stops the
/// toucher too (its `closed` channel closes).
///
/// ```no_run
/// # async fn demo(curator: zk_recipes::Curator) -> zk_recipes::Result<()> {
/// use std::time::Duration;
/// use zk_recipes::PersistentTtlNode;
/// let ttl = Duration::from_secs(30);
/// let node = PersistentTtlNode::start(&curator, "/alive/node-1", ttl, &b""[..])?;
/// node.wait_for_initial_create(Duration::from_secs(10)).await;
/// node.close().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct PersistentTtlNode {
    node: PersistentNode,
    touch_path: String,
    closed: watch::Sender<bool>,
    toucher: JoinHandle<()>,
}

impl PersistentTtlNode {
    /// Starts keeping `path` alive with `data`, touched every `ttl / 2`.
    pub fn start(
        curator: &Curator,
        path: &str,
        ttl: Duration,
        data: impl Into<Bytes>,
    ) -> Result<PersistentTtlNode> {
        Self::start_with(
            curator,
            path,
            ttl,
            data,
            DEFAULT_TOUCH_NAME,
            DEFAULT_TOUCH_FACTOR,
        )
    }

    /// As [`start`](Self::start) with the child's name and the number of
    /// touches per TTL chosen.
    pub fn start_with(
        curator: &Curator,
        path: &str,
        ttl: Duration,
        data: impl Into<Bytes>,
        touch_name: &str,
        touch_factor: u32,
    ) -> Result<PersistentTtlNode> {
        if touch_factor == 0 || ttl.is_zero() {
            return Err(Error::InvalidArgument(
                "the TTL and the touch factor must be positive".into(),
            ));
        }
        let node = PersistentNode::spawn_kept(
            curator,
            path,
            CreateMode::PersistentWithTtl,
            ttl,
            data.into(),
        );
        let touch_path = join(path, touch_name);
        let (closed, closed_rx) = watch::channel(false);
        let toucher = curator.spawn(touch_loop(
            node.created(),
            curator.clone(),
            touch_path.clone(),
            ttl,
            ttl / touch_factor,
            closed_rx,
        ));
        Ok(PersistentTtlNode {
            node,
            touch_path,
            closed,
            toucher,
        })
    }

    /// The kept node's path once created.
    pub fn actual_path(&self) -> Option<String> {
        self.node.actual_path()
    }

    /// The touched child's path.
    pub fn touch_path(&self) -> &str {
        &self.touch_path
    }

    /// Waits for the first create of the node; false on timeout.
    pub async fn wait_for_initial_create(&self, timeout: Duration) -> bool {
        self.node.wait_for_initial_create(timeout).await
    }

    /// Stops touching. Nothing is deleted: the server lets the node and
    /// its child expire on their TTL.
    pub async fn close(mut self) -> Result<()> {
        self.closed.send_replace(true);
        let _ = (&mut self.toucher).await;
        self.node.close().await
    }
}

/// Once the node exists, rewrites `touch_path` every `every`, creating it
/// as a TTL node when missing. (Not before: creating the child first would
/// make its parent a container instead of a TTL node.) Errors are logged
/// and retried on the next tick: a missed touch only brings expiry closer.
async fn touch_loop(
    mut created: watch::Receiver<Option<String>>,
    curator: Curator,
    touch_path: String,
    ttl: Duration,
    every: Duration,
    mut closed: watch::Receiver<bool>,
) {
    tokio::select! {
        first = created.wait_for(Option::is_some) => if first.is_err() { return },
        _ = closed.changed() => return,
    }
    loop {
        let touched = curator
            .with_retry(|client| {
                let touch_path = touch_path.clone();
                let acl = curator.acl_for(&touch_path);
                async move {
                    match client.set_data(&touch_path, &[], None).await {
                        Ok(_) => Ok(()),
                        Err(zk_client::Error::NoNode) => match client
                            .create_ttl(&touch_path, &[], &acl, CreateMode::PersistentWithTtl, ttl)
                            .await
                        {
                            // NoNode: the node itself is gone for now; the
                            // persistent node re-creates it, we touch later.
                            Ok(_)
                            | Err(zk_client::Error::NodeExists | zk_client::Error::NoNode) => {
                                Ok(())
                            }
                            Err(e) => Err(e),
                        },
                        Err(e) => Err(e),
                    }
                }
            })
            .await;
        match touched {
            Ok(()) => {}
            Err(Error::Closed) => return,
            Err(e) => tracing::warn!(%e, %touch_path, "TTL touch failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = closed.changed() => return,
        }
    }
}
