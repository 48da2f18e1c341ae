//! `ServiceCache` (RECIPES.md §B17): the instances of one service, kept in
//! memory by a [`PathChildrenCache`] on `basePath/<serviceName>`, with
//! Curator's listener shape: "the cache changed" plus connection states.
//! Nodes whose JSON cannot be read are left out (and logged).

use std::collections::BTreeMap;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::cache::{ChildData, Events, PathChildrenCache, PathChildrenEvent, StartMode};
use crate::discovery::instance::ServiceInstance;
use crate::framework::Curator;
use crate::paths::join;

/// What a [`ServiceCache`] observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceCacheEvent {
    /// An instance was added, changed or removed.
    CacheChanged,
    /// The first read of the instances finished.
    Initialized,
    /// The connection is Suspended; the list may be stale.
    ConnectionSuspended,
    /// Reconnected; the list is refreshed.
    ConnectionReconnected,
    /// The session is Lost; the list is refreshed on the new one.
    ConnectionLost,
}

/// The instances of one service, kept up to date.
#[derive(Debug)]
pub struct ServiceCache {
    children: PathChildrenCache,
    forward: JoinHandle<()>,
}

impl ServiceCache {
    /// Starts caching the instances of `name` under `base_path`.
    pub fn start(
        curator: &Curator,
        base_path: &str,
        name: &str,
    ) -> (ServiceCache, Events<ServiceCacheEvent>) {
        let (children, child_events) = PathChildrenCache::start(
            curator,
            &join(base_path, name),
            StartMode::PostInitializedEvent,
        );
        let (tx, events) = Events::channel();
        let forward = curator.spawn(forward(child_events, tx));
        (ServiceCache { children, forward }, events)
    }

    /// Every readable cached instance, in node-name order.
    pub fn instances(&self) -> Vec<ServiceInstance> {
        parse_instances(&self.children.current_data())
    }

    /// Stops the cache; the event stream ends.
    pub async fn close(self) {
        self.children.close().await;
        // The child stream has ended, so the forwarder finishes.
        let _ = self.forward.await;
    }
}

/// Maps the children cache's events to the service cache's.
async fn forward(
    mut child_events: Events<PathChildrenEvent>,
    tx: mpsc::UnboundedSender<ServiceCacheEvent>,
) {
    while let Some(event) = child_events.next().await {
        if tx.send(service_event(&event)).is_err() {
            return;
        }
    }
}

fn service_event(event: &PathChildrenEvent) -> ServiceCacheEvent {
    match event {
        PathChildrenEvent::ChildAdded(_)
        | PathChildrenEvent::ChildUpdated(_)
        | PathChildrenEvent::ChildRemoved(_) => ServiceCacheEvent::CacheChanged,
        PathChildrenEvent::Initialized(_) => ServiceCacheEvent::Initialized,
        PathChildrenEvent::ConnectionSuspended => ServiceCacheEvent::ConnectionSuspended,
        PathChildrenEvent::ConnectionReconnected => ServiceCacheEvent::ConnectionReconnected,
        PathChildrenEvent::ConnectionLost => ServiceCacheEvent::ConnectionLost,
    }
}

/// The readable instances among cached nodes, in node-name order.
pub(crate) fn parse_instances(nodes: &BTreeMap<String, ChildData>) -> Vec<ServiceInstance> {
    nodes
        .values()
        .filter_map(|node| match ServiceInstance::from_json(&node.data) {
            Ok(instance) => Some(instance),
            Err(reason) => {
                tracing::warn!(path = %node.path, %reason, "unreadable service instance skipped");
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use zk_client::Stat;

    fn node(path: &str, data: Vec<u8>) -> (String, ChildData) {
        let name = crate::paths::node_name(path).to_string();
        let child = ChildData {
            path: path.to_string(),
            stat: Stat::default(),
            data: Bytes::from(data),
        };
        (name, child)
    }

    #[test]
    fn unreadable_instances_are_left_out() {
        let good = ServiceInstance::new("api").with_id("a");
        let nodes: BTreeMap<String, ChildData> = [
            node("/s/api/a", good.to_json()),
            node("/s/api/b", b"not json".to_vec()),
        ]
        .into_iter()
        .collect();
        assert_eq!(parse_instances(&nodes), [good]);
    }

    #[test]
    fn every_child_change_is_a_cache_change() {
        let (_, child) = node("/s/api/a", Vec::new());
        for event in [
            PathChildrenEvent::ChildAdded(child.clone()),
            PathChildrenEvent::ChildUpdated(child.clone()),
            PathChildrenEvent::ChildRemoved(child),
        ] {
            assert_eq!(service_event(&event), ServiceCacheEvent::CacheChanged);
        }
    }
}
