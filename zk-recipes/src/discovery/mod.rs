//! Service discovery on curator-x-discovery's layout (RECIPES.md §B17):
//! instances are nodes `basePath/<serviceName>/<instanceId>` holding the
//! instance's JSON ([`ServiceInstance`]); parents are containers. The node
//! mode follows the instance's [`ServiceType`].
//!
//! Registration creates the node, and on NodeExists deletes and creates it
//! again (so watchers fire). Every local registration is made again on
//! each reconnection, since ephemeral instances die with a lost session.
//! A DYNAMIC_SEQUENTIAL instance lives at `<instanceId><seq>`: the path
//! the server gave it is recorded and used to update, unregister and
//! re-register it (a re-registration keeps the node while our session
//! still owns it, and otherwise creates a new one).
//!
//! [`ServiceCache`] keeps one service's instances in memory and
//! [`ServiceProvider`] picks one of them by a [`ProviderStrategy`].

pub mod cache;
pub mod instance;
pub mod provider;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use crate::connection::ConnectionState;
use crate::error::{Error, Result};
use crate::framework::{create_with_parents, delete_quietly, Curator};
use crate::paths::join;

pub use cache::{ServiceCache, ServiceCacheEvent};
pub use instance::{ServiceInstance, ServiceType};
pub use provider::{DownInstancePolicy, ProviderStrategy, ServiceProvider, ServiceProviderBuilder};

/// One of our registrations: the instance and the node the server holds
/// it in.
#[derive(Debug, Clone)]
struct Registration {
    path: String,
    instance: ServiceInstance,
}

/// Registrations are keyed by service name and instance id.
type InstanceKey = (String, String);

fn key_of(instance: &ServiceInstance) -> InstanceKey {
    (instance.name.clone(), instance.id.clone())
}

#[derive(Debug)]
struct Shared {
    curator: Curator,
    base_path: String,
    /// Our registrations.
    registered: Mutex<BTreeMap<InstanceKey, Registration>>,
}

/// Registers this process's instances and queries everyone's.
///
/// ```no_run
/// # async fn demo(curator: zk_recipes::Curator) -> zk_recipes::Result<()> {
/// use zk_recipes::{ServiceDiscovery, ServiceInstance};
/// let discovery = ServiceDiscovery::start(&curator, "/discovery");
/// let me = ServiceInstance::new("api").with_address("10.0.0.7").with_port(8080);
/// discovery.register(&me).await?;
/// for instance in discovery.query_for_instances("api").await? {
///     println!("{:?}:{:?}", instance.address, instance.port);
/// }
/// discovery.close().await?;
/// # Ok(())
/// # }
/// ```
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
        let task = curator.spawn(
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

    /// The node path of `instance` (for DYNAMIC_SEQUENTIAL, the prefix the
    /// server appends the sequence to; see
    /// [`registered_path`](Self::registered_path)).
    pub fn instance_path(&self, instance: &ServiceInstance) -> String {
        self.shared.instance_path(instance)
    }

    /// The node our registration of `instance` lives in, if registered.
    pub fn registered_path(&self, instance: &ServiceInstance) -> Option<String> {
        self.shared.registered_path(&key_of(instance))
    }

    /// Registers `instance` (replacing a node already at its path); it is
    /// registered again after every reconnection until unregistered.
    pub async fn register(&self, instance: &ServiceInstance) -> Result<()> {
        let key = key_of(instance);
        let previous = self.shared.registered_path(&key);
        let path = self.shared.write(instance, previous.as_deref()).await?;
        self.shared
            .registered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                key,
                Registration {
                    path,
                    instance: instance.clone(),
                },
            );
        Ok(())
    }

    /// Writes new data for a registered instance.
    pub async fn update(&self, instance: &ServiceInstance) -> Result<()> {
        let key = key_of(instance);
        let path = self
            .shared
            .registered_path(&key)
            .unwrap_or_else(|| self.instance_path(instance));
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
            .insert(
                key,
                Registration {
                    path,
                    instance: instance.clone(),
                },
            );
        Ok(())
    }

    /// Removes `instance` (a missing node is fine).
    pub async fn unregister(&self, instance: &ServiceInstance) -> Result<()> {
        let registration = self
            .shared
            .registered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key_of(instance));
        let path = registration
            .map(|r| r.path)
            .unwrap_or_else(|| self.instance_path(instance));
        self.shared.curator.delete_guaranteed(&path).await
    }

    /// A cache of `name`'s instances under this discovery's base path.
    pub fn service_cache(
        &self,
        name: &str,
    ) -> (ServiceCache, crate::cache::Events<ServiceCacheEvent>) {
        ServiceCache::start(&self.shared.curator, &self.shared.base_path, name)
    }

    /// A provider of `name`'s instances; see [`ServiceProviderBuilder`].
    pub fn service_provider(&self, name: &str) -> ServiceProviderBuilder {
        ServiceProvider::builder(&self.shared.curator, &self.shared.base_path, name)
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
        .into_values()
        .map(|r| r.path)
        .collect();
        for path in paths {
            self.shared.curator.delete_guaranteed(&path).await?;
        }
        Ok(())
    }
}

impl Shared {
    fn instance_path(&self, instance: &ServiceInstance) -> String {
        join(&join(&self.base_path, &instance.name), &instance.id)
    }

    fn registered_path(&self, key: &InstanceKey) -> Option<String> {
        self.registered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .map(|r| r.path.clone())
    }

    /// Writes `instance` and returns the node holding it. A fixed path:
    /// create, on NodeExists delete and create again. A sequential one:
    /// keep `previous` while this session owns it (just new data), else
    /// drop it and create a new sequential node.
    async fn write(&self, instance: &ServiceInstance, previous: Option<&str>) -> Result<String> {
        let data = instance.to_json();
        let mode = instance.service_type.create_mode();
        let path = self.instance_path(instance);
        let sequential = mode == zk_client::CreateMode::EphemeralSequential;
        self.curator
            .with_retry(|client| {
                let (path, data) = (path.clone(), data.clone());
                let previous = previous.map(str::to_string);
                let acls = self.curator.acls();
                async move {
                    if !sequential {
                        return match create_with_parents(&client, &path, &data, mode, &acls).await {
                            Err(zk_client::Error::NodeExists) => {
                                delete_quietly(&client, &path).await?;
                                create_with_parents(&client, &path, &data, mode, &acls).await
                            }
                            other => other,
                        };
                    }
                    if let Some(previous) = previous {
                        match client.exists(&previous).await? {
                            Some(stat) if stat.ephemeral_owner == client.session_id() => {
                                client.set_data(&previous, &data, None).await?;
                                return Ok(previous);
                            }
                            Some(_) => delete_quietly(&client, &previous).await?,
                            None => {}
                        }
                    }
                    create_with_parents(&client, &path, &data, mode, &acls).await
                }
            })
            .await
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

    /// Records the node a re-registration wrote, unless the instance was
    /// unregistered or registered anew meanwhile (then the node we just
    /// wrote is not ours to keep).
    fn record_rewrite(&self, key: &InstanceKey, old_path: &str, path: String) {
        let mut registered = self.registered.lock().unwrap_or_else(|e| e.into_inner());
        match registered.get_mut(key) {
            Some(r) if r.path == old_path => r.path = path,
            Some(r) if r.path == path => {}
            _ => {
                drop(registered);
                self.curator.delete_in_background(path);
            }
        }
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
            let registered: Vec<(InstanceKey, Registration)> = self
                .registered
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|(k, r)| (k.clone(), r.clone()))
                .collect();
            for (key, old) in registered {
                match self.write(&old.instance, Some(&old.path)).await {
                    Ok(path) => self.record_rewrite(&key, &old.path, path),
                    Err(Error::Closed) => return,
                    Err(e) => tracing::warn!(path = %old.path, %e, "re-registration failed"),
                }
            }
        }
    }
}
