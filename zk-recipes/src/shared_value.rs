//! `SharedValue` (Curator's `SharedValue`, the base of RECIPES.md §B13):
//! a value in a persistent node that every participant sees. The local
//! view only moves to reads or writes with a higher `mzxid`; a data watch
//! and every (re)connection refresh it. A write either overwrites
//! (`set_value`) or is conditional on the node version the caller last
//! saw (`try_set_value`).
//!
//! The machinery is generic over how the node's bytes map to a value
//! (`Codec`), so `SharedCount` reuses it with a typed `i32` view.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use zk_client::CreateMode;

use crate::connection::ConnectionState;
use crate::error::{Error, Result};
use crate::framework::Curator;

/// A value with the node version it was read at. The default parameter
/// keeps `VersionedValue` meaning the `SharedCount` view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionedValue<T = i32> {
    /// The value.
    pub value: T,
    /// The node version it was read at.
    pub version: i32,
    /// The zxid of the write that set it.
    pub mzxid: i64,
}

/// How a shared value is stored in its node.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Codec<T> {
    pub(crate) encode: fn(&T) -> Bytes,
    /// Fails with `Error::Corrupt` on bytes that are not a `T`.
    pub(crate) decode: fn(&str, &[u8]) -> Result<T>,
}

/// Raw bytes: the node data is the value.
const RAW: Codec<Bytes> = Codec {
    encode: |value| value.clone(),
    decode: |_, data| Ok(Bytes::copy_from_slice(data)),
};

/// What a value type needs to live in a shared view and cross tasks.
pub trait SharedData: Clone + PartialEq + Send + Sync + 'static {}
impl<T: Clone + PartialEq + Send + Sync + 'static> SharedData for T {}

#[derive(Debug)]
struct Shared<T> {
    curator: Curator,
    path: String,
    codec: Codec<T>,
    view: watch::Sender<VersionedValue<T>>,
    closed: watch::Sender<bool>,
}

impl<T: SharedData> Shared<T> {
    /// Adopts `fresh` if it is newer than the local view.
    fn offer(&self, fresh: VersionedValue<T>) {
        self.view.send_if_modified(|view| {
            let newer = fresh.mzxid > view.mzxid;
            if newer {
                *view = fresh;
            }
            newer
        });
    }

    /// Reads the node and arms a data watch.
    async fn read(&self) -> Result<zk_client::Watch> {
        let path = self.path.clone();
        let (data, stat, watch) = self
            .curator
            .with_retry(|client| {
                let path = path.clone();
                async move { client.get_data_and_watch(&path).await }
            })
            .await?;
        self.offer(VersionedValue {
            value: (self.codec.decode)(&self.path, &data)?,
            version: stat.version,
            mzxid: stat.mzxid,
        });
        Ok(watch)
    }

    /// Refreshes the view whenever the watch fires or the connection
    /// comes back, until closed.
    async fn run(
        self: Arc<Self>,
        mut states: broadcast::Receiver<ConnectionState>,
        first: zk_client::Watch,
    ) {
        let mut closed = self.closed.subscribe();
        let mut watch = Some(first);
        loop {
            let refresh = tokio::select! {
                _ = async { match watch.as_mut() { Some(w) => { w.await; } None => futures::future::pending().await } } => true,
                state = states.recv() => match state {
                    Ok(state) => state.is_connected(),
                    Err(broadcast::error::RecvError::Lagged(_)) => true,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = closed.changed() => return,
            };
            if refresh {
                match self.read().await {
                    Ok(w) => watch = Some(w),
                    Err(Error::Closed) => return,
                    Err(e) => {
                        // The next reconnection retries; until then the
                        // view stays at the last value seen.
                        tracing::debug!(%e, "shared value refresh failed");
                        watch = None;
                    }
                }
            }
        }
    }
}

/// A value shared through a persistent node; raw bytes by default.
///
/// ```no_run
/// # async fn demo(curator: zk_recipes::Curator) -> zk_recipes::Result<()> {
/// use bytes::Bytes;
/// use zk_recipes::SharedValue;
/// let value = SharedValue::start(&curator, "/shared/motd", Bytes::from_static(b"hello")).await?;
/// value.set_value(Bytes::from_static(b"maintenance at 6")).await?;
/// println!("{:?}", value.value());
/// value.close().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct SharedValue<T = Bytes> {
    shared: Arc<Shared<T>>,
    task: JoinHandle<()>,
}

impl SharedValue {
    /// Starts: creates the node with `seed` if absent (parents as
    /// containers), reads it, and keeps the local view fresh.
    pub async fn start(curator: &Curator, path: &str, seed: Bytes) -> Result<SharedValue> {
        SharedValue::start_with(curator, path, seed, RAW).await
    }
}

impl<T: SharedData> SharedValue<T> {
    /// `start` for a value stored with `codec`.
    pub(crate) async fn start_with(
        curator: &Curator,
        path: &str,
        seed: T,
        codec: Codec<T>,
    ) -> Result<SharedValue<T>> {
        match curator
            .create(path, &(codec.encode)(&seed), CreateMode::Persistent)
            .await
        {
            Ok(_) => {}
            Err(e) if e.is_node_exists() => {}
            Err(e) => return Err(e),
        }
        let shared = Arc::new(Shared {
            curator: curator.clone(),
            path: path.to_string(),
            codec,
            // Never read yet: any read or write replaces it.
            view: watch::Sender::new(VersionedValue {
                value: seed,
                version: -1,
                mzxid: i64::MIN,
            }),
            closed: watch::Sender::new(false),
        });
        let states = curator.subscribe_states();
        let first = shared.read().await?;
        let task = curator.spawn(shared.clone().run(states, first));
        Ok(SharedValue { shared, task })
    }

    /// The local view of the value.
    pub fn value(&self) -> T {
        self.shared.view.borrow().value.clone()
    }

    /// The local view with the node version it was read at, to pass to
    /// [`SharedValue::try_set_value`].
    pub fn versioned(&self) -> VersionedValue<T> {
        self.shared.view.borrow().clone()
    }

    /// Changes of the local view.
    pub fn changes(&self) -> watch::Receiver<VersionedValue<T>> {
        self.shared.view.subscribe()
    }

    /// Sets the value unconditionally.
    pub async fn set_value(&self, value: T) -> Result<()> {
        let path = self.shared.path.clone();
        let data = (self.shared.codec.encode)(&value);
        let stat = self
            .shared
            .curator
            .with_retry(|client| {
                let (path, data) = (path.clone(), data.clone());
                async move { client.set_data(&path, &data, None).await }
            })
            .await?;
        self.shared.offer(VersionedValue {
            value,
            version: stat.version,
            mzxid: stat.mzxid,
        });
        Ok(())
    }

    /// Sets the value only if nobody changed it since `previous` (which
    /// must be the current local view); false otherwise, after which the
    /// local view has been refreshed for a retry.
    pub async fn try_set_value(&self, previous: VersionedValue<T>, value: T) -> Result<bool> {
        if previous.version < 0 {
            return Err(Error::InvalidArgument("the value was never read".into()));
        }
        if previous != self.versioned() {
            return Ok(false);
        }
        let path = self.shared.path.clone();
        let data = (self.shared.codec.encode)(&value);
        let result = self
            .shared
            .curator
            .with_retry(|client| {
                let (path, data) = (path.clone(), data.clone());
                async move {
                    match client.set_data(&path, &data, Some(previous.version)).await {
                        Ok(stat) => Ok(Some(stat)),
                        Err(zk_client::Error::BadVersion) => Ok(None),
                        Err(e) => Err(e),
                    }
                }
            })
            .await?;
        match result {
            Some(stat) => {
                self.shared.offer(VersionedValue {
                    value,
                    version: stat.version,
                    mzxid: stat.mzxid,
                });
                Ok(true)
            }
            None => {
                self.shared.read().await.map(drop)?;
                Ok(false)
            }
        }
    }

    /// Stops refreshing the view and waits for the refresh task to end.
    pub async fn close(mut self) {
        self.shared.closed.send_replace(true);
        let _ = (&mut self.task).await;
    }
}

impl<T> Drop for SharedValue<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_values_are_the_node_bytes_unchanged() {
        let value = Bytes::from_static(b"\x00any\xffbytes");
        assert_eq!((RAW.encode)(&value), value);
        assert_eq!((RAW.decode)("/v", &value).unwrap(), value);
        assert_eq!((RAW.decode)("/v", b"").unwrap(), Bytes::new());
    }
}
