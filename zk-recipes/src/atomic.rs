//! `DistributedAtomicLong` (RECIPES.md §B14): an `i64` as 8 big-endian
//! bytes, changed optimistically: read data and version, compute, write
//! with that version (or create when absent), and on a lost race
//! (BadVersion / NodeExists / NoNode) try again under the given retry
//! policy. Callers must check [`AtomicValue::succeeded`].
//!
//! Not implemented: Curator's `PromotedToLock` fallback.

use zk_client::CreateMode;

use crate::error::{Error, Result};
use crate::framework::{create_with_parents, Curator};
use crate::retry::RetryPolicy;

/// The outcome of an atomic operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtomicValue {
    pub succeeded: bool,
    /// The value before (0 when the node was absent).
    pub pre: i64,
    pub post: i64,
    pub tries: u32,
}

fn decode(path: &str, data: &[u8]) -> Result<i64> {
    let bytes: [u8; 8] = data.try_into().map_err(|_| Error::Corrupt {
        path: path.to_string(),
        reason: format!("{} bytes, a long has 8", data.len()),
    })?;
    Ok(i64::from_be_bytes(bytes))
}

/// A distributed `i64`.
#[derive(Debug, Clone)]
pub struct DistributedAtomicLong {
    curator: Curator,
    path: String,
    retry: RetryPolicy,
}

/// The node's value and version; `None` when absent.
type Current = Option<(i64, i32)>;

impl DistributedAtomicLong {
    /// `retry` governs retries after lost races (not connection errors,
    /// which the framework's policy handles).
    pub fn new(curator: &Curator, path: &str, retry: RetryPolicy) -> Self {
        DistributedAtomicLong {
            curator: curator.clone(),
            path: path.to_string(),
            retry,
        }
    }

    async fn current(&self) -> Result<Current> {
        let path = self.path.clone();
        let read = self
            .curator
            .with_retry(|client| {
                let path = path.clone();
                async move {
                    match client.get_data(&path).await {
                        Ok(read) => Ok(Some(read)),
                        Err(zk_client::Error::NoNode) => Ok(None),
                        Err(e) => Err(e),
                    }
                }
            })
            .await?;
        read.map(|(data, stat)| Ok((decode(&self.path, &data)?, stat.version)))
            .transpose()
    }

    /// The value, `None` when the node does not exist.
    pub async fn get(&self) -> Result<Option<i64>> {
        Ok(self.current().await?.map(|(value, _)| value))
    }

    /// Writes `new` if the node is still at `seen`; false on a lost race.
    async fn write_if(&self, seen: Current, new: i64) -> Result<bool> {
        let path = self.path.clone();
        let bytes = new.to_be_bytes();
        self.curator
            .with_retry(|client| {
                let path = path.clone();
                async move {
                    let written = match seen {
                        Some((_, version)) => client
                            .set_data(&path, &bytes, Some(version))
                            .await
                            .map(drop),
                        None => create_with_parents(&client, &path, &bytes, CreateMode::Persistent)
                            .await
                            .map(drop),
                    };
                    match written {
                        Ok(()) => Ok(true),
                        Err(
                            zk_client::Error::BadVersion
                            | zk_client::Error::NodeExists
                            | zk_client::Error::NoNode,
                        ) => Ok(false),
                        Err(e) => Err(e),
                    }
                }
            })
            .await
    }

    /// Applies `f` to the current value (0 when absent) optimistically.
    async fn apply(&self, f: impl Fn(i64) -> i64) -> Result<AtomicValue> {
        let started = tokio::time::Instant::now();
        let mut tries = 0;
        loop {
            let seen = self.current().await?;
            let pre = seen.map_or(0, |(value, _)| value);
            let post = f(pre);
            tries += 1;
            if self.write_if(seen, post).await? {
                return Ok(AtomicValue {
                    succeeded: true,
                    pre,
                    post,
                    tries,
                });
            }
            let sleep =
                self.retry
                    .next_sleep(tries - 1, started.elapsed(), &mut rand::thread_rng());
            match sleep {
                Some(sleep) => tokio::time::sleep(sleep).await,
                None => {
                    return Ok(AtomicValue {
                        succeeded: false,
                        pre,
                        post: pre,
                        tries,
                    })
                }
            }
        }
    }

    pub async fn add(&self, delta: i64) -> Result<AtomicValue> {
        self.apply(|v| v.wrapping_add(delta)).await
    }

    pub async fn increment(&self) -> Result<AtomicValue> {
        self.add(1).await
    }

    pub async fn decrement(&self) -> Result<AtomicValue> {
        self.add(-1).await
    }

    /// Sets `new` (optimistically, with retries).
    pub async fn try_set(&self, new: i64) -> Result<AtomicValue> {
        self.apply(|_| new).await
    }

    /// Sets `new` only if the value is `expected` (no retry).
    pub async fn compare_and_set(&self, expected: i64, new: i64) -> Result<AtomicValue> {
        let seen = self.current().await?;
        let pre = seen.map_or(0, |(value, _)| value);
        let succeeded = pre == expected && self.write_if(seen, new).await?;
        Ok(AtomicValue {
            succeeded,
            pre,
            post: if succeeded { new } else { pre },
            tries: 1,
        })
    }

    /// Sets `new` whatever the current value (creating the node).
    pub async fn force_set(&self, new: i64) -> Result<()> {
        let path = self.path.clone();
        let bytes = new.to_be_bytes();
        self.curator
            .with_retry(|client| {
                let path = path.clone();
                async move {
                    match client.set_data(&path, &bytes, None).await {
                        Err(zk_client::Error::NoNode) => {
                            create_with_parents(&client, &path, &bytes, CreateMode::Persistent)
                                .await
                                .map(drop)
                        }
                        other => other.map(drop),
                    }
                }
            })
            .await
    }

    /// Creates the node with `value` if absent; false if it existed.
    pub async fn initialize(&self, value: i64) -> Result<bool> {
        self.write_if(None, value).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longs_are_eight_big_endian_bytes() {
        assert_eq!(decode("/n", &[0, 0, 0, 0, 0, 0, 1, 0]).unwrap(), 256);
        assert!(matches!(
            decode("/n", &[1, 2, 3, 4]),
            Err(Error::Corrupt { .. })
        ));
    }
}
