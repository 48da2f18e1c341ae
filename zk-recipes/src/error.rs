//! The recipes' error type, and which ZooKeeper errors are worth a retry.

use crate::retry::Retriable;

/// Result of every recipe call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a recipe call failed with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A ZooKeeper operation failed (after the retry policy gave up, for
    /// retriable errors).
    #[error(transparent)]
    Zk(#[from] zk_client::Error),
    /// The framework (or the recipe) was closed.
    #[error("the recipe framework is closed")]
    Closed,
    /// Our own sequential node disappeared while we waited (session expired
    /// or someone deleted it) and the retry policy did not allow a restart.
    #[error("our node {0} vanished")]
    NodeVanished(String),
    /// A node held bytes the recipe cannot read.
    #[error("corrupt data at {path}: {reason}")]
    Corrupt {
        /// The node.
        path: String,
        /// What is wrong with its bytes.
        reason: String,
    },
    /// The caller asked for something the recipe cannot do.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The connection went away (an error state under the error policy)
    /// while the recipe needed it.
    #[error("lost the connection while {0}")]
    ConnectionLost(&'static str),
    /// A fenced write was refused by the server: the lock or leadership
    /// node `path` it was fenced on is gone, so nothing was written.
    #[error("fenced write refused: the hold on {path} is gone")]
    Fenced {
        /// The holder's node the write was fenced on.
        path: String,
    },
    /// Built outside a tokio runtime without one given to the builder.
    #[error("no tokio runtime: build inside one or pass CuratorBuilder::runtime")]
    NoRuntime,
}

impl Error {
    /// True for `Zk(NoNode)`.
    pub fn is_no_node(&self) -> bool {
        matches!(self, Error::Zk(zk_client::Error::NoNode))
    }

    /// True for `Zk(NodeExists)`.
    pub fn is_node_exists(&self) -> bool {
        matches!(self, Error::Zk(zk_client::Error::NodeExists))
    }
}

impl Retriable for zk_client::Error {
    /// Curator's set (CONNECTIONLOSS, OPERATIONTIMEOUT, SESSIONMOVED,
    /// SESSIONEXPIRED), plus this client's own "no reply in time" and "no
    /// session yet" errors, which mean the same thing as a connection loss.
    fn is_retriable(&self) -> bool {
        use zk_client::Error as E;
        matches!(
            self,
            E::ConnectionLoss
                | E::OperationTimeout
                | E::SessionMoved
                | E::SessionExpired
                | E::RequestTimeout
                | E::Timeout
        )
    }
}

impl Retriable for Error {
    fn is_retriable(&self) -> bool {
        match self {
            Error::Zk(e) => e.is_retriable(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zk_client::Error as Zk;

    #[test]
    fn connection_and_session_errors_are_retriable() {
        for e in [
            Zk::ConnectionLoss,
            Zk::OperationTimeout,
            Zk::SessionMoved,
            Zk::SessionExpired,
        ] {
            assert!(e.is_retriable(), "{e}");
            assert!(Error::Zk(e).is_retriable());
        }
    }

    #[test]
    fn answers_from_the_server_are_not_retriable() {
        for e in [
            Zk::NoNode,
            Zk::NodeExists,
            Zk::BadVersion,
            Zk::NotEmpty,
            Zk::NoAuth,
        ] {
            assert!(!e.is_retriable(), "{e}");
        }
        assert!(!Error::Closed.is_retriable());
    }
}
