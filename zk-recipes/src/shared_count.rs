//! `SharedCount` (RECIPES.md §B13): an `i32` in a persistent node as
//! 4 big-endian bytes (the format kazoo's `Counter(support_curator=True)`
//! and Curator share). A typed view over [`SharedValue`], which owns the
//! watch and refresh machinery.

use bytes::Bytes;
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::framework::Curator;
use crate::shared_value::{Codec, SharedValue, VersionedValue};

fn encode(value: &i32) -> Bytes {
    Bytes::copy_from_slice(&value.to_be_bytes())
}

fn decode(path: &str, data: &[u8]) -> Result<i32> {
    let bytes: [u8; 4] = data.try_into().map_err(|_| Error::Corrupt {
        path: path.to_string(),
        reason: format!("{} bytes, a count has 4", data.len()),
    })?;
    Ok(i32::from_be_bytes(bytes))
}

const COUNT: Codec<i32> = Codec { encode, decode };

/// A shared `i32` counter.
///
/// ```no_run
/// # async fn demo(curator: zk_recipes::Curator) -> zk_recipes::Result<()> {
/// use zk_recipes::SharedCount;
/// let count = SharedCount::start(&curator, "/shared/workers", 0).await?;
/// let seen = count.versioned();
/// // Succeeds only if nobody changed it since `seen`.
/// count.try_set_count(seen, 5).await?;
/// count.close().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct SharedCount {
    value: SharedValue<i32>,
}

impl SharedCount {
    /// Starts: creates the node with `seed` if absent (parents as
    /// containers), reads it, and keeps the local view fresh.
    pub async fn start(curator: &Curator, path: &str, seed: i32) -> Result<SharedCount> {
        let value = SharedValue::start_with(curator, path, seed, COUNT).await?;
        Ok(SharedCount { value })
    }

    /// The local view of the count.
    pub fn count(&self) -> i32 {
        self.value.value()
    }

    /// The value with the version it was read at.
    pub fn versioned(&self) -> VersionedValue {
        self.value.versioned()
    }

    /// Changes of the local view.
    pub fn changes(&self) -> watch::Receiver<VersionedValue> {
        self.value.changes()
    }

    /// Sets the count unconditionally.
    pub async fn set_count(&self, value: i32) -> Result<()> {
        self.value.set_value(value).await
    }

    /// Sets the count only if nobody changed it since `previous` (which
    /// must be the current local view); false otherwise.
    pub async fn try_set_count(&self, previous: VersionedValue, value: i32) -> Result<bool> {
        self.value.try_set_value(previous, value).await
    }

    /// Stops watching the value.
    pub async fn close(self) {
        self.value.close().await
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

    #[test]
    fn encoding_a_count_round_trips() {
        assert_eq!(&encode(&258)[..], &[0, 0, 1, 2]);
        assert_eq!(decode("/c", &encode(&i32::MIN)).unwrap(), i32::MIN);
    }
}
