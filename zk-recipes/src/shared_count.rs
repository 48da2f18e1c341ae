//! `SharedCount` (RECIPES.md §B13): an `i32` in a persistent node as
//! 4 big-endian bytes (the format kazoo's `Counter(support_curator=True)`
//! and Curator share). The local view only moves to reads or writes with
//! a higher `mzxid`; a data watch and every (re)connection refresh it.

use std::sync::Arc;

use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use zk_client::CreateMode;

use crate::connection::ConnectionState;
use crate::error::{Error, Result};
use crate::framework::Curator;

/// A value with the node version it was read at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionedValue {
    pub value: i32,
    pub version: i32,
    pub mzxid: i64,
}

fn decode(path: &str, data: &[u8]) -> Result<i32> {
    let bytes: [u8; 4] = data.try_into().map_err(|_| Error::Corrupt {
        path: path.to_string(),
        reason: format!("{} bytes, a count has 4", data.len()),
    })?;
    Ok(i32::from_be_bytes(bytes))
}

#[derive(Debug)]
struct Shared {
    curator: Curator,
    path: String,
    view: watch::Sender<VersionedValue>,
    closed: watch::Sender<bool>,
}

impl Shared {
    /// Adopts `fresh` if it is newer than the local view.
    fn offer(&self, fresh: VersionedValue) {
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
            value: decode(&self.path, &data)?,
            version: stat.version,
            mzxid: stat.mzxid,
        });
        Ok(watch)
    }

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
                        tracing::debug!(%e, "shared count refresh failed");
                        watch = None;
                    }
                }
            }
        }
    }
}

/// A shared `i32` counter.
#[derive(Debug)]
pub struct SharedCount {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl SharedCount {
    /// Starts: creates the node with `seed` if absent (parents as
    /// containers), reads it, and keeps the local view fresh.
    pub async fn start(curator: &Curator, path: &str, seed: i32) -> Result<SharedCount> {
        match curator
            .create(path, &seed.to_be_bytes(), CreateMode::Persistent)
            .await
        {
            Ok(_) => {}
            Err(e) if e.is_node_exists() => {}
            Err(e) => return Err(e),
        }
        let shared = Arc::new(Shared {
            curator: curator.clone(),
            path: path.to_string(),
            view: watch::Sender::new(VersionedValue {
                value: seed,
                version: -1,
                mzxid: i64::MIN,
            }),
            closed: watch::Sender::new(false),
        });
        let states = curator.subscribe_states();
        let first = shared.read().await?;
        let task = tokio::spawn(shared.clone().run(states, first));
        Ok(SharedCount { shared, task })
    }

    /// The local view of the count.
    pub fn count(&self) -> i32 {
        self.shared.view.borrow().value
    }

    pub fn versioned(&self) -> VersionedValue {
        *self.shared.view.borrow()
    }

    /// Changes of the local view.
    pub fn changes(&self) -> watch::Receiver<VersionedValue> {
        self.shared.view.subscribe()
    }

    /// Sets the count unconditionally.
    pub async fn set_count(&self, value: i32) -> Result<()> {
        let path = self.shared.path.clone();
        let stat = self
            .shared
            .curator
            .with_retry(|client| {
                let path = path.clone();
                async move { client.set_data(&path, &value.to_be_bytes(), None).await }
            })
            .await?;
        self.shared.offer(VersionedValue {
            value,
            version: stat.version,
            mzxid: stat.mzxid,
        });
        Ok(())
    }

    /// Sets the count only if nobody changed it since `previous` (which
    /// must be the current local view); false otherwise.
    pub async fn try_set_count(&self, previous: VersionedValue, value: i32) -> Result<bool> {
        if previous.version < 0 {
            return Err(Error::InvalidArgument("the value was never read".into()));
        }
        if previous != self.versioned() {
            return Ok(false);
        }
        let path = self.shared.path.clone();
        let result = self
            .shared
            .curator
            .with_retry(|client| {
                let path = path.clone();
                async move {
                    match client
                        .set_data(&path, &value.to_be_bytes(), Some(previous.version))
                        .await
                    {
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

    pub async fn close(mut self) {
        self.shared.closed.send_replace(true);
        let _ = (&mut self.task).await;
    }
}

impl Drop for SharedCount {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_four_big_endian_bytes() {
        assert_eq!(decode("/c", &[0, 0, 1, 2]).unwrap(), 258);
        assert_eq!(decode("/c", &(-5i32).to_be_bytes()).unwrap(), -5);
        assert!(matches!(decode("/c", b"12"), Err(Error::Corrupt { .. })));
    }
}
