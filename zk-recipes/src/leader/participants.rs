//! Reading who takes part in an election: each contender's node data is
//! its participant id (UTF-8); the first node in order leads (§B8, §B9).

use crate::error::Result;
use crate::framework::Curator;
use crate::paths::{join, sorted_by_sequence};

/// One contender of an election.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    /// The participant id (the node data).
    pub id: String,
    /// True for the first node in sequence order.
    pub is_leader: bool,
}

/// Contenders under `path`, sorted by `lock_name`; unreadable (vanished)
/// nodes are skipped, and the first readable one is the leader.
pub(crate) async fn participants(
    curator: &Curator,
    path: &str,
    lock_name: &'static str,
) -> Result<Vec<Participant>> {
    let base = path.to_string();
    let children = curator
        .with_retry(|client| {
            let base = base.clone();
            async move {
                match client.get_children(&base).await {
                    Err(zk_client::Error::NoNode) => Ok(Vec::new()),
                    other => other,
                }
            }
        })
        .await?;
    let mut found = Vec::new();
    for name in sorted_by_sequence(children, &[lock_name]) {
        let node = join(path, &name);
        let data = curator
            .with_retry(|client| {
                let node = node.clone();
                async move {
                    match client.get_data(&node).await {
                        Ok((data, _)) => Ok(Some(data)),
                        Err(zk_client::Error::NoNode) => Ok(None),
                        Err(e) => Err(e),
                    }
                }
            })
            .await?;
        if let Some(data) = data {
            found.push(Participant {
                id: String::from_utf8_lossy(&data).into_owned(),
                is_leader: found.is_empty(),
            });
        }
    }
    Ok(found)
}
