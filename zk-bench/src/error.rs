//! What can stop a benchmark run.

use std::time::Duration;

/// A run failed before it could produce numbers. Individual request
/// errors during the measured window are counted, not raised.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("cannot connect to {connect}: {source}")]
    Connect {
        connect: String,
        #[source]
        source: zk_client::Error,
    },
    #[error("setting up {path}: {source}")]
    Setup {
        path: String,
        #[source]
        source: zk_client::Error,
    },
    #[error("watch fan-out stalled: {what} took longer than {limit:?}")]
    Stalled { what: &'static str, limit: Duration },
    #[error("invalid option: {0}")]
    Option(String),
}
