//! Service discovery on curator-x-discovery's layout (RECIPES.md §B17):
//! instances are nodes `basePath/<serviceName>/<instanceId>` holding the
//! instance's JSON ([`ServiceInstance`]); parents are containers. The node
//! mode follows the instance's [`ServiceType`].
//!
//! Registration creates the node, and on NodeExists deletes and creates it
//! again (so watchers fire). Every local registration is made again on
//! each reconnection, since ephemeral instances die with a lost session.
//!
//! Not built: `ServiceCache` / `ServiceProvider` (query on demand instead).

pub mod instance;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use crate::connection::ConnectionState;
use crate::error::{Error, Result};
use crate::framework::{create_with_parents, delete_quietly, Curator};
use crate::paths::join;

pub use instance::{ServiceInstance, ServiceType};

#[derive(Debug)]
struct Shared {
    curator: Curator,
    base_path: String,
    /// Our registrations by node path.
    registered: Mutex<BTreeMap<String, ServiceInstance>>,
}

/// Registers this process's instances and queries everyone's.
#[derive(Debug)]
pub struct ServiceDiscovery {
    shared: Arc<Shared>,
    closed: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl ServiceDiscovery {
    /// Starts discovery under `base_path` (nothing is created until the
    /// first registration).
    pub fn start(curator: &Curator, base_path: &str) -> ServiceDiscovery {
        let shared = Arc::new(Shared {
            curator: curator.clone(),
            base_path: base_path.to_string(),
            registered: Mutex::new(BTreeMap::new()),
        });
        let (closed, closed_rx) = watch::channel(false);
        let task = tokio::spawn(
            shared
                .clone()
                .reregister_on_reconnect(curator.subscribe_states(), closed_rx),
        );
        ServiceDiscovery {
            shared,
            closed,
            task,
        }
    }

    /// The node path of `instance`.
    pub fn instance_path(&self, instance: &ServiceInstance) -> String {
        join(&join(&self.shared.base_path, &instance.name), &instance.id)
    }

    /// Registers `instance` (replacing a node already at its path); it is
    /// registered again after every reconnection until unregistered.
    pub async fn register(&self, instance: &ServiceInstance) -> Result<()> {
        let path = self.instance_path(instance);
        self.shared.write(&path, instance).await?;
        self.shared
            .registered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path, instance.clone());
        Ok(())
    }

    /// Writes new data for a registered instance.
    pub async fn update(&self, instance: &ServiceInstance) -> Result<()> {
        let path = self.instance_path(instance);
        let data = instance.to_json();
        self.shared
            .curator
            .with_retry(|client| {
                let (path, data) = (path.clone(), data.clone());
                async move { client.set_data(&path, &data, None).await.map(drop) }
            })
            .await?;
        self.shared
            .registered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path, instance.clone());
        Ok(())
    }

    /// Removes `instance` (a missing node is fine).
    pub async fn unregister(&self, instance: &ServiceInstance) -> Result<()> {
        let path = self.instance_path(instance);
        self.shared
            .registered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&path);
        self.shared.curator.delete_guaranteed(&path).await
    }

    /// Every service name (empty when nothing was ever registered).
    pub async fn query_for_names(&self) -> Result<Vec<String>> {
        let mut names = self.shared.children(&self.shared.base_path).await?;
        names.sort();
        Ok(names)
    }

    /// Every readable instance of `name`; unreadable nodes are skipped
    /// (logged), as are instances deleted while we read.
    pub async fn query_for_instances(&self, name: &str) -> Result<Vec<ServiceInstance>> {
        let service = join(&self.shared.base_path, name);
        let mut ids = self.shared.children(&service).await?;
        ids.sort();
        let mut instances = Vec::new();
        for id in ids {
            if let Some(instance) = self.query_for_instance(name, &id).await? {
                instances.push(instance);
            }
        }
        Ok(instances)
    }

    /// One instance, `None` when absent or unreadable.
    pub async fn query_for_instance(
        &self,
        name: &str,
        id: &str,
    ) -> Result<Option<ServiceInstance>> {
        let path = join(&join(&self.shared.base_path, name), id);
        let read = self
            .shared
            .curator
            .with_retry(|client| {
                let path = path.clone();
                async move {
                    match client.get_data(&path).await {
                        Ok((data, _)) => Ok(Some(data)),
                        Err(zk_client::Error::NoNode) => Ok(None),
                        Err(e) => Err(e),
                    }
                }
            })
            .await?;
        Ok(
            read.and_then(|data| match ServiceInstance::from_json(&data) {
                Ok(instance) => Some(instance),
                Err(reason) => {
                    tracing::warn!(%path, %reason, "unreadable service instance skipped");
                    None
                }
            }),
        )
    }

    /// Stops re-registering and unregisters every local instance.
    pub async fn close(self) -> Result<()> {
        self.closed.send_replace(true);
        let _ = self.task.await;
        let paths: Vec<String> = std::mem::take(
            &mut *self
                .shared
                .registered
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        )
        .into_keys()
        .collect();
        for path in paths {
            self.shared.curator.delete_guaranteed(&path).await?;
        }
        Ok(())
    }
}

impl Shared {
    /// Create; on NodeExists delete and create again.
    async fn write(&self, path: &str, instance: &ServiceInstance) -> Result<()> {
        let data = instance.to_json();
        let mode = instance.service_type.create_mode();
        self.curator
            .with_retry(|client| {
                let (path, data) = (path.to_string(), data.clone());
                async move {
                    match create_with_parents(&client, &path, &data, mode).await {
                        Err(zk_client::Error::NodeExists) => {
                            delete_quietly(&client, &path).await?;
                            create_with_parents(&client, &path, &data, mode).await
                        }
                        other => other,
                    }
                }
            })
            .await
            .map(drop)
    }

    /// Children of `path`; a missing node has none.
    async fn children(&self, path: &str) -> Result<Vec<String>> {
        self.curator
            .with_retry(|client| {
                let path = path.to_string();
                async move {
                    match client.get_children(&path).await {
                        Err(zk_client::Error::NoNode) => Ok(Vec::new()),
                        other => other,
                    }
                }
            })
            .await
    }

    async fn reregister_on_reconnect(
        self: Arc<Self>,
        mut states: broadcast::Receiver<ConnectionState>,
        mut closed: watch::Receiver<bool>,
    ) {
        loop {
            let state = tokio::select! {
                state = states.recv() => state,
                _ = closed.changed() => return,
            };
            match state {
                Ok(ConnectionState::Connected | ConnectionState::Reconnected)
                | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            }
            let registered: Vec<(String, ServiceInstance)> = self
                .registered
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|(p, i)| (p.clone(), i.clone()))
                .collect();
            for (path, instance) in registered {
                match self.write(&path, &instance).await {
                    Ok(()) => {}
                    Err(Error::Closed) => return,
                    Err(e) => tracing::warn!(%path, %e, "re-registration failed"),
                }
            }
        }
    }
}
