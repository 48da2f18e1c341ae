//! Sessions and the bench subtree: connecting the pool, creating the
//! nodes a workload needs before it starts, removing them afterwards.

use std::time::Duration;

use futures::stream::{self, StreamExt};
use zk_client::{Acl, Client, CreateMode, Error, SessionState};

use crate::error::BenchError;
use crate::workload::ancestors_and_self;

/// Opens `n` sessions, all at once.
pub async fn connect_pool(
    connect: &str,
    n: usize,
    session_timeout: Duration,
) -> Result<Vec<Client>, BenchError> {
    let attempts = (0..n).map(|_| connect_one(connect, session_timeout));
    futures::future::try_join_all(attempts).await
}

/// How long a session may take to be established.
const CONNECT_LIMIT: Duration = Duration::from_secs(10);

/// Opens one session.
///
/// Built on `start` + `wait_for_state` rather than `ClientBuilder::connect`
/// because the latter's future is not `Send` (it holds a watch guard across
/// an await), and churn loops run on spawned tasks.
pub async fn connect_one(connect: &str, session_timeout: Duration) -> Result<Client, BenchError> {
    let failed = |source| BenchError::Connect {
        connect: connect.to_string(),
        source,
    };
    let client = Client::builder(connect)
        .session_timeout(session_timeout)
        .start()
        .map_err(failed)?;
    let reached = tokio::time::timeout(
        CONNECT_LIMIT,
        client.wait_for_state(|s| s.is_connected() || s.is_terminal()),
    )
    .await;
    match reached {
        Ok(state) if state.is_connected() => Ok(client),
        Ok(state) => Err(failed(match state {
            SessionState::Expired => Error::SessionExpired,
            SessionState::AuthFailed => Error::AuthFailed,
            _ => Error::Closed,
        })),
        Err(_) => {
            let _ = client.close().await;
            Err(failed(Error::Timeout))
        }
    }
}

/// Closes every session (errors ignored: the run is over).
pub async fn close_all(clients: &[Client]) {
    futures::future::join_all(clients.iter().map(|c| c.close())).await;
}

/// Creates `path` and its missing ancestors as empty persistent nodes.
pub async fn ensure_path(client: &Client, path: &str) -> Result<(), BenchError> {
    for node in ancestors_and_self(path) {
        match client
            .create(&node, b"", &Acl::open_unsafe(), CreateMode::Persistent)
            .await
        {
            Ok(_) | Err(Error::NodeExists) => {}
            Err(source) => return Err(BenchError::Setup { path: node, source }),
        }
    }
    Ok(())
}

/// Creates every path in `paths` with `data`, `concurrency` at a time,
/// spread over the sessions. A node that already exists is fine.
pub async fn create_all(
    clients: &[Client],
    paths: Vec<String>,
    data: &[u8],
    concurrency: usize,
) -> Result<(), BenchError> {
    let results: Vec<Result<(), BenchError>> = stream::iter(paths.into_iter().enumerate())
        .map(|(i, path)| {
            let client = &clients[i % clients.len()];
            async move {
                match client
                    .create(&path, data, &Acl::open_unsafe(), CreateMode::Persistent)
                    .await
                {
                    Ok(_) | Err(Error::NodeExists) => Ok(()),
                    Err(source) => Err(BenchError::Setup { path, source }),
                }
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    results.into_iter().collect()
}

/// Deletes `path` and everything below it. Children are listed level by
/// level and deleted deepest first, many at a time.
pub async fn delete_tree(
    clients: &[Client],
    path: &str,
    concurrency: usize,
) -> Result<(), BenchError> {
    let mut levels: Vec<Vec<String>> = vec![vec![path.to_string()]];
    while let Some(last) = levels.last() {
        let mut next = Vec::new();
        for parent in last {
            match clients[0].get_children(parent).await {
                Ok(children) => next.extend(children.into_iter().map(|c| format!("{parent}/{c}"))),
                Err(Error::NoNode) => {}
                Err(source) => {
                    return Err(BenchError::Setup {
                        path: parent.clone(),
                        source,
                    })
                }
            }
        }
        if next.is_empty() {
            break;
        }
        levels.push(next);
    }
    for level in levels.into_iter().rev() {
        delete_all(clients, level, concurrency).await?;
    }
    Ok(())
}

async fn delete_all(
    clients: &[Client],
    paths: Vec<String>,
    concurrency: usize,
) -> Result<(), BenchError> {
    let results: Vec<Result<(), BenchError>> = stream::iter(paths.into_iter().enumerate())
        .map(|(i, path)| {
            let client = &clients[i % clients.len()];
            async move {
                match client.delete(&path, None).await {
                    Ok(()) | Err(Error::NoNode) => Ok(()),
                    Err(source) => Err(BenchError::Setup { path, source }),
                }
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    results.into_iter().collect()
}

/// Whether a worker should give up on its session after `error`.
pub fn is_terminal(error: &Error) -> bool {
    matches!(
        error,
        Error::Closed | Error::SessionExpired | Error::AuthFailed | Error::Timeout
    )
}
