//! `DistributedAtomicLong` and `DistributedAtomicInteger` (RECIPES.md
//! §B14): an `i64` as 8 big-endian bytes or an `i32` as 4, changed
//! optimistically: read data and version, compute, write
//! with that version (or create when absent), and on a lost race
//! (BadVersion / NodeExists / NoNode) try again under the given retry
//! policy. Callers must check [`AtomicValue::succeeded`].
//!
//! With a [`PromotedToLock`], an operation whose optimistic tries ran out
//! takes an [`InterProcessMutex`] at the promoted path (waiting at most
//! its `max_lock_time`) and repeats the versioned loop under it, with the
//! promoted retry policy: contenders that all promote then queue on the
//! lock instead of racing. Writers that do not promote can still win a
//! race, so the versioned write stays.

use std::marker::PhantomData;
use std::time::Duration;

use zk_client::CreateMode;

use crate::error::{Error, Result};
use crate::framework::{create_with_parents, Curator};
use crate::lock::InterProcessMutex;
use crate::retry::RetryPolicy;

/// A number stored by a distributed atomic: its byte form and arithmetic.
pub trait AtomicNumber:
    Copy + Default + PartialEq + Eq + std::fmt::Debug + Send + Sync + 'static
{
    /// Bytes on the node (big-endian, fixed width).
    const WIDTH: usize;
    /// Curator's name for the type, for error messages.
    const NAME: &'static str;
    /// The big-endian bytes Curator stores.
    fn to_bytes(self) -> Vec<u8>;
    /// `None` when `bytes` has the wrong width.
    fn from_bytes(bytes: &[u8]) -> Option<Self>;
    /// `self + delta`, wrapping on overflow as Java does.
    fn wrapping_add(self, delta: Self) -> Self;
    /// The value 1.
    fn one() -> Self;
    /// `-self`, wrapping on overflow as Java does.
    fn wrapping_neg(self) -> Self;
}

impl AtomicNumber for i64 {
    const WIDTH: usize = 8;
    const NAME: &'static str = "a long";
    fn to_bytes(self) -> Vec<u8> {
        self.to_be_bytes().to_vec()
    }
    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(i64::from_be_bytes)
    }
    fn wrapping_add(self, delta: Self) -> Self {
        i64::wrapping_add(self, delta)
    }
    fn one() -> Self {
        1
    }
    fn wrapping_neg(self) -> Self {
        i64::wrapping_neg(self)
    }
}

impl AtomicNumber for i32 {
    const WIDTH: usize = 4;
    const NAME: &'static str = "an integer";
    fn to_bytes(self) -> Vec<u8> {
        self.to_be_bytes().to_vec()
    }
    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(i32::from_be_bytes)
    }
    fn wrapping_add(self, delta: Self) -> Self {
        i32::wrapping_add(self, delta)
    }
    fn one() -> Self {
        1
    }
    fn wrapping_neg(self) -> Self {
        i32::wrapping_neg(self)
    }
}

/// The outcome of an atomic operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtomicValue<T = i64> {
    /// True when the operation was applied.
    pub succeeded: bool,
    /// The value before (0 when the node was absent).
    pub pre: T,
    /// The value after (equal to `pre` when not applied).
    pub post: T,
    /// Optimistic tries, without the lock.
    pub tries: u32,
    /// Tries made while holding the promoted lock (0 when not promoted).
    pub promoted_tries: u32,
}

/// The lock an atomic falls back to when optimism fails (Curator's
/// `PromotedToLock`).
#[derive(Debug, Clone)]
pub struct PromotedToLock {
    /// Where the [`InterProcessMutex`] lives.
    pub path: String,
    /// How long to wait for the lock; `None` waits as long as it takes.
    pub max_lock_time: Option<Duration>,
    /// Retries of lost races while holding the lock.
    pub retry: RetryPolicy,
}

impl PromotedToLock {
    /// Promote to the lock at `path`, waiting at most `max_lock_time`
    /// for it (forever with `None`), retrying lost races with `retry`.
    pub fn new(path: &str, max_lock_time: Option<Duration>, retry: RetryPolicy) -> Self {
        PromotedToLock {
            path: path.to_string(),
            max_lock_time,
            retry,
        }
    }
}

/// The end of one versioned loop.
#[derive(Debug, Clone, Copy)]
struct Attempt<T> {
    succeeded: bool,
    pre: T,
    post: T,
    tries: u32,
}

fn decode<T: AtomicNumber>(path: &str, data: &[u8]) -> Result<T> {
    T::from_bytes(data).ok_or_else(|| Error::Corrupt {
        path: path.to_string(),
        reason: format!("{} bytes, {} has {}", data.len(), T::NAME, T::WIDTH),
    })
}

/// A distributed number of type `T` (see the aliases).
///
/// ```no_run
/// # async fn demo(curator: zk_recipes::Curator) -> zk_recipes::Result<()> {
/// use zk_recipes::{DistributedAtomicLong, RetryPolicy};
/// let counter = DistributedAtomicLong::new(&curator, "/counters/visits", RetryPolicy::default());
/// let outcome = counter.increment().await?;
/// if outcome.succeeded {
///     println!("{} -> {}", outcome.pre, outcome.post);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct DistributedAtomicValue<T> {
    curator: Curator,
    path: String,
    retry: RetryPolicy,
    promoted: Option<PromotedToLock>,
    number: PhantomData<fn() -> T>,
}

/// A distributed `i64` (8 bytes).
pub type DistributedAtomicLong = DistributedAtomicValue<i64>;

/// A distributed `i32` (4 bytes; the same bytes as `SharedCount` and
/// kazoo's Curator-compatible `Counter`).
pub type DistributedAtomicInteger = DistributedAtomicValue<i32>;

/// The node's value and version; `None` when absent.
type Current<T> = Option<(T, i32)>;

impl<T: AtomicNumber> DistributedAtomicValue<T> {
    /// `retry` governs retries after lost races (not connection errors,
    /// which the framework's policy handles).
    pub fn new(curator: &Curator, path: &str, retry: RetryPolicy) -> Self {
        DistributedAtomicValue {
            curator: curator.clone(),
            path: path.to_string(),
            retry,
            promoted: None,
            number: PhantomData,
        }
    }

    /// Falls back to `promoted` when the optimistic tries run out.
    pub fn with_promoted_lock(mut self, promoted: PromotedToLock) -> Self {
        self.promoted = Some(promoted);
        self
    }

    async fn current(&self) -> Result<Current<T>> {
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
    pub async fn get(&self) -> Result<Option<T>> {
        Ok(self.current().await?.map(|(value, _)| value))
    }

    /// Writes `new` if the node is still at `seen`; false on a lost race.
    async fn write_if(&self, seen: Current<T>, new: T) -> Result<bool> {
        let path = self.path.clone();
        let bytes = new.to_bytes();
        self.curator
            .with_retry(|client| {
                let (path, bytes) = (path.clone(), bytes.clone());
                let acls = self.curator.acls();
                async move {
                    let written = match seen {
                        Some((_, version)) => client
                            .set_data(&path, &bytes, Some(version))
                            .await
                            .map(drop),
                        None => create_with_parents(
                            &client,
                            &path,
                            &bytes,
                            CreateMode::Persistent,
                            &acls,
                        )
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

    /// Applies `f` to the current value (0 when absent): optimistically,
    /// then under the promoted lock if one is set and optimism failed.
    async fn apply(&self, f: impl Fn(T) -> T) -> Result<AtomicValue<T>> {
        let optimistic = self.versioned_loop(&f, &self.retry).await?;
        let mut value = AtomicValue {
            succeeded: optimistic.succeeded,
            pre: optimistic.pre,
            post: optimistic.post,
            tries: optimistic.tries,
            promoted_tries: 0,
        };
        let Some(promoted) = self.promoted.as_ref().filter(|_| !optimistic.succeeded) else {
            return Ok(value);
        };
        let mutex = InterProcessMutex::new(&self.curator, &promoted.path);
        let guard = match promoted.max_lock_time {
            Some(limit) => mutex.try_acquire(limit).await?,
            None => Some(mutex.acquire().await?),
        };
        // The lock was not ours in time: report the optimistic failure.
        let Some(guard) = guard else {
            return Ok(value);
        };
        let locked = self.versioned_loop(&f, &promoted.retry).await;
        guard.release().await?;
        let locked = locked?;
        value.succeeded = locked.succeeded;
        value.pre = locked.pre;
        value.post = locked.post;
        value.promoted_tries = locked.tries;
        Ok(value)
    }

    /// Read, compute, versioned write; on a lost race try again while
    /// `retry` allows.
    async fn versioned_loop(&self, f: &impl Fn(T) -> T, retry: &RetryPolicy) -> Result<Attempt<T>> {
        let started = tokio::time::Instant::now();
        let mut tries = 0;
        loop {
            let seen = self.current().await?;
            let pre = seen.map_or(T::default(), |(value, _)| value);
            let post = f(pre);
            tries += 1;
            if self.write_if(seen, post).await? {
                return Ok(Attempt {
                    succeeded: true,
                    pre,
                    post,
                    tries,
                });
            }
            let sleep = retry.next_sleep(tries - 1, started.elapsed(), &mut rand::thread_rng());
            match sleep {
                Some(sleep) => tokio::time::sleep(sleep).await,
                None => {
                    return Ok(Attempt {
                        succeeded: false,
                        pre,
                        post: pre,
                        tries,
                    })
                }
            }
        }
    }

    /// Adds `delta`.
    pub async fn add(&self, delta: T) -> Result<AtomicValue<T>> {
        self.apply(|v| v.wrapping_add(delta)).await
    }

    /// Subtracts `delta`.
    pub async fn subtract(&self, delta: T) -> Result<AtomicValue<T>> {
        self.add(delta.wrapping_neg()).await
    }

    /// Adds one.
    pub async fn increment(&self) -> Result<AtomicValue<T>> {
        self.add(T::one()).await
    }

    /// Subtracts one.
    pub async fn decrement(&self) -> Result<AtomicValue<T>> {
        self.subtract(T::one()).await
    }

    /// Sets `new` (optimistically, with retries).
    pub async fn try_set(&self, new: T) -> Result<AtomicValue<T>> {
        self.apply(|_| new).await
    }

    /// Sets `new` only if the value is `expected` (no retry).
    pub async fn compare_and_set(&self, expected: T, new: T) -> Result<AtomicValue<T>> {
        let seen = self.current().await?;
        let pre = seen.map_or(T::default(), |(value, _)| value);
        let succeeded = pre == expected && self.write_if(seen, new).await?;
        Ok(AtomicValue {
            succeeded,
            pre,
            post: if succeeded { new } else { pre },
            tries: 1,
            promoted_tries: 0,
        })
    }

    /// Sets `new` whatever the current value (creating the node).
    pub async fn force_set(&self, new: T) -> Result<()> {
        let path = self.path.clone();
        let bytes = new.to_bytes();
        self.curator
            .with_retry(|client| {
                let (path, bytes) = (path.clone(), bytes.clone());
                let acls = self.curator.acls();
                async move {
                    match client.set_data(&path, &bytes, None).await {
                        Err(zk_client::Error::NoNode) => create_with_parents(
                            &client,
                            &path,
                            &bytes,
                            CreateMode::Persistent,
                            &acls,
                        )
                        .await
                        .map(drop),
                        other => other.map(drop),
                    }
                }
            })
            .await
    }

    /// Creates the node with `value` if absent; false if it existed.
    pub async fn initialize(&self, value: T) -> Result<bool> {
        self.write_if(None, value).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longs_are_eight_big_endian_bytes() {
        assert_eq!(decode::<i64>("/n", &[0, 0, 0, 0, 0, 0, 1, 0]).unwrap(), 256);
        assert!(matches!(
            decode::<i64>("/n", &[1, 2, 3, 4]),
            Err(Error::Corrupt { .. })
        ));
    }

    #[test]
    fn integers_are_four_big_endian_bytes() {
        assert_eq!(decode::<i32>("/n", &[0xff, 0xff, 0xff, 0xfe]).unwrap(), -2);
        assert_eq!(7i32.to_bytes(), [0, 0, 0, 7]);
        assert!(matches!(
            decode::<i32>("/n", &[0, 0, 0, 0, 0, 0, 0, 1]),
            Err(Error::Corrupt { .. })
        ));
    }
}
