//! Lock revocation (RECIPES.md §B6): a cooperative request to give a lock
//! up, carried in the lock node's data.
//!
//! A revocable lock ([`InterProcessMutex::make_revocable`], also on each
//! half of the read/write lock) creates its node with **empty** data and,
//! while held, keeps a data watch on it. Anyone may call
//! [`Revoker::attempt_revoke`], which writes the ASCII bytes `__REVOKE__`
//! into the node; the holder's stream then yields a
//! [`RevocationRequest`], and the holder decides whether to release.
//!
//! Curator watches from the moment the node is created; here the watch
//! starts once the lock is held and begins with a read, so a request made
//! while the contender was still waiting is delivered as soon as it holds
//! the lock (asking a waiter to release a lock it does not hold yet would
//! have no effect anyway).
//!
//! [`InterProcessMutex::make_revocable`]: crate::lock::InterProcessMutex::make_revocable

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::framework::Curator;

/// The data that asks a holder to release (Curator's `REVOKE_MESSAGE`).
pub const REVOKE_MESSAGE: &[u8] = b"__REVOKE__";

/// Someone asked the holder of the lock node `path` to release it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationRequest {
    /// The lock node the request was written to.
    pub path: String,
}

/// Asks lock holders to release.
///
/// ```no_run
/// # async fn demo(curator: zk_recipes::Curator) -> zk_recipes::Result<()> {
/// use futures::StreamExt;
/// use zk_recipes::{InterProcessMutex, Revoker};
/// let lock = InterProcessMutex::new(&curator, "/locks/job");
/// let mut requests = lock.make_revocable();
/// let guard = lock.acquire().await?;
/// // Elsewhere: Revoker::attempt_revoke(&curator, guard.path()).await?;
/// if requests.next().await.is_some() {
///     guard.release().await?; // honour the request
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Revoker;

impl Revoker {
    /// Writes the revocation message into `lock_node_path` (a node from
    /// `participant_nodes` or a guard's `path`). A node that is already
    /// gone is not an error: its holder released.
    pub async fn attempt_revoke(curator: &Curator, lock_node_path: &str) -> Result<()> {
        curator
            .with_retry(|client| {
                let path = lock_node_path.to_string();
                async move {
                    match client.set_data(&path, REVOKE_MESSAGE, None).await {
                        Ok(_) | Err(zk_client::Error::NoNode) => Ok(()),
                        Err(e) => Err(e),
                    }
                }
            })
            .await
    }
}

/// Aborts the watching task when the hold ends.
#[derive(Debug)]
pub(crate) struct RevocationWatch(JoinHandle<()>);

impl Drop for RevocationWatch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts watching `path` (our held lock node) for revocation requests.
pub(crate) fn watch_for_revocation(
    curator: &Curator,
    path: &str,
    requests: mpsc::UnboundedSender<RevocationRequest>,
) -> RevocationWatch {
    RevocationWatch(curator.spawn(revocation_loop(curator.clone(), path.to_string(), requests)))
}

/// Pause after a failed read before trying again.
const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(500);

/// Reads the node with a watch, reports `__REVOKE__` once per write of it
/// (by `mzxid`), and reads again whenever the watch fires. Ends when the
/// node is gone, the framework closes or nobody listens any more.
async fn revocation_loop(
    curator: Curator,
    path: String,
    requests: mpsc::UnboundedSender<RevocationRequest>,
) {
    let mut reported_mzxid = None;
    while !requests.is_closed() {
        let read = curator
            .with_retry(|client| {
                let path = path.clone();
                async move {
                    match client.get_data_and_watch(&path).await {
                        Ok(read) => Ok(Some(read)),
                        Err(zk_client::Error::NoNode) => Ok(None),
                        Err(e) => Err(e),
                    }
                }
            })
            .await;
        let (data, stat, watch) = match read {
            Ok(Some(read)) => read,
            Ok(None) | Err(Error::Closed) => return,
            Err(e) => {
                tracing::debug!(%path, %e, "revocation watch read failed; retrying");
                tokio::time::sleep(RETRY_PAUSE).await;
                continue;
            }
        };
        if is_revocation(&data) && reported_mzxid != Some(stat.mzxid) {
            reported_mzxid = Some(stat.mzxid);
            let request = RevocationRequest { path: path.clone() };
            if requests.send(request).is_err() {
                return;
            }
        }
        tokio::select! {
            _ = watch => {}
            _ = curator.closed() => return,
        }
    }
}

/// Whether node data is the revocation message.
pub(crate) fn is_revocation(data: &[u8]) -> bool {
    data == REVOKE_MESSAGE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_message_asks_for_revocation() {
        assert!(is_revocation(b"__REVOKE__"));
        assert!(!is_revocation(b""));
        assert!(!is_revocation(b"__REVOKE__ "));
        assert!(!is_revocation(b"__revoke__"));
    }
}
