//! One error type for every call: a variant per ZooKeeper error code
//! (WIRE.md §10) plus the client-side conditions.

use zk_proto::ErrorCode;

/// Result of every client call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a call failed with.
///
/// Variants up to `ThrottledOp` are the server's `KeeperException` codes,
/// one to one (see [`Error::from_code`] and [`Error::code`]). `Timeout`,
/// `Closed`, `NoRuntime` and `Unknown` exist only on the client side; `ConnectionLoss`,
/// `SessionExpired`, `AuthFailed`, `RequestTimeout` and `BadArguments` are
/// also produced by the client itself, as the Java client does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A server-side failure with no more specific code.
    #[error("KeeperErrorCode = SystemError")]
    SystemError,
    /// In a failed `multi`: an op after the failing one, never applied.
    #[error("KeeperErrorCode = RuntimeInconsistency")]
    RuntimeInconsistency,
    /// The server found its data inconsistent.
    #[error("KeeperErrorCode = DataInconsistency")]
    DataInconsistency,
    /// The connection dropped before the reply arrived (or before the
    /// request could be sent). The request may or may not have been applied.
    #[error("KeeperErrorCode = ConnectionLoss")]
    ConnectionLoss,
    /// A request or reply could not be (de)serialised.
    #[error("KeeperErrorCode = MarshallingError")]
    MarshallingError,
    /// The server does not support the operation (e.g. containers or TTL nodes on an old server).
    #[error("KeeperErrorCode = Unimplemented")]
    Unimplemented,
    /// The server timed out the operation.
    #[error("KeeperErrorCode = OperationTimeout")]
    OperationTimeout,
    /// Rejected by the server, or by the client's own argument checks
    /// (path validation), in which case the text says why.
    #[error("KeeperErrorCode = BadArguments{}", reason_suffix(.0))]
    BadArguments(String),
    /// The server does not know the session.
    #[error("KeeperErrorCode = Unknown error UNKNOWNSESSION")]
    UnknownSession,
    /// A reconfig proposal has no quorum of the new configuration.
    #[error("KeeperErrorCode = NewConfigNoQuorum")]
    NewConfigNoQuorum,
    /// Another reconfig is running.
    #[error("KeeperErrorCode = ReconfigInProgress")]
    ReconfigInProgress,
    /// The API was used wrongly (the server's API error range).
    #[error("KeeperErrorCode = APIError")]
    ApiError,
    /// The node does not exist.
    #[error("KeeperErrorCode = NoNode")]
    NoNode,
    /// The session lacks the permission the node's ACL asks for.
    #[error("KeeperErrorCode = NoAuth")]
    NoAuth,
    /// The expected version did not match the node's.
    #[error("KeeperErrorCode = BadVersion")]
    BadVersion,
    /// Ephemeral nodes cannot have children.
    #[error("KeeperErrorCode = NoChildrenForEphemerals")]
    NoChildrenForEphemerals,
    /// A node already exists at the path.
    #[error("KeeperErrorCode = NodeExists")]
    NodeExists,
    /// The node has children, so it cannot be deleted.
    #[error("KeeperErrorCode = Directory not empty")]
    NotEmpty,
    /// The server said the session is gone; the client is finished.
    #[error("KeeperErrorCode = Session expired")]
    SessionExpired,
    /// An invalid callback was given.
    #[error("KeeperErrorCode = Invalid callback")]
    InvalidCallback,
    /// The ACL is empty or names no identity (e.g. `auth:` without credentials).
    #[error("KeeperErrorCode = InvalidACL")]
    InvalidAcl,
    /// An auth packet was refused; the client is finished.
    #[error("KeeperErrorCode = AuthFailed")]
    AuthFailed,
    /// The session moved to another server.
    #[error("KeeperErrorCode = Session moved")]
    SessionMoved,
    /// A write was sent to a read-only server.
    #[error("KeeperErrorCode = Not a read-only call")]
    NotReadOnly,
    /// Ephemeral nodes need a global session.
    #[error("KeeperErrorCode = Ephemeral node on local session")]
    EphemeralOnLocalSession,
    /// No such watch to remove or check.
    #[error("KeeperErrorCode = No such watcher")]
    NoWatcher,
    /// No reply within the builder's request timeout.
    #[error("KeeperErrorCode = Unknown error REQUESTTIMEOUT")]
    RequestTimeout,
    /// Dynamic reconfiguration is disabled on the server.
    #[error("KeeperErrorCode = Reconfig is disabled")]
    ReconfigDisabled,
    /// The server requires SASL authentication and closed the session.
    #[error("KeeperErrorCode = Session closed because client failed to authenticate")]
    SessionClosedRequireSaslAuth,
    /// The node's hard quota would be exceeded.
    #[error("KeeperErrorCode = Quota has exceeded")]
    QuotaExceeded,
    /// The server throttled the operation under load.
    #[error("KeeperErrorCode = Op throttled due to high load")]
    ThrottledOp,
    /// Client side: no session was established within the connection
    /// timeout.
    #[error("timed out establishing a session")]
    Timeout,
    /// Client side: the client was closed (or every handle dropped).
    #[error("the client is closed")]
    Closed,
    /// Client side: started outside a tokio runtime (the connection task
    /// needs one).
    #[error("no tokio runtime to run the connection task on")]
    NoRuntime,
    /// A code this client does not know.
    #[error("KeeperErrorCode = unknown error {0}")]
    Unknown(i32),
}

fn reason_suffix(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(": {reason}")
    }
}

impl Error {
    /// The error for a non-zero code from a reply header or a multi result.
    pub fn from_code(code: i32) -> Error {
        let Some(known) = ErrorCode::from_code(code) else {
            return Error::Unknown(code);
        };
        match known {
            // Ok is not an error; a caller that passes 0 has a bug, and the
            // closest honest answer is "unknown".
            ErrorCode::Ok => Error::Unknown(0),
            ErrorCode::SystemError => Error::SystemError,
            ErrorCode::RuntimeInconsistency => Error::RuntimeInconsistency,
            ErrorCode::DataInconsistency => Error::DataInconsistency,
            ErrorCode::ConnectionLoss => Error::ConnectionLoss,
            ErrorCode::MarshallingError => Error::MarshallingError,
            ErrorCode::Unimplemented => Error::Unimplemented,
            ErrorCode::OperationTimeout => Error::OperationTimeout,
            ErrorCode::BadArguments => Error::BadArguments(String::new()),
            ErrorCode::UnknownSession => Error::UnknownSession,
            ErrorCode::NewConfigNoQuorum => Error::NewConfigNoQuorum,
            ErrorCode::ReconfigInProgress => Error::ReconfigInProgress,
            ErrorCode::ApiError => Error::ApiError,
            ErrorCode::NoNode => Error::NoNode,
            ErrorCode::NoAuth => Error::NoAuth,
            ErrorCode::BadVersion => Error::BadVersion,
            ErrorCode::NoChildrenForEphemerals => Error::NoChildrenForEphemerals,
            ErrorCode::NodeExists => Error::NodeExists,
            ErrorCode::NotEmpty => Error::NotEmpty,
            ErrorCode::SessionExpired => Error::SessionExpired,
            ErrorCode::InvalidCallback => Error::InvalidCallback,
            ErrorCode::InvalidAcl => Error::InvalidAcl,
            ErrorCode::AuthFailed => Error::AuthFailed,
            ErrorCode::SessionMoved => Error::SessionMoved,
            ErrorCode::NotReadOnly => Error::NotReadOnly,
            ErrorCode::EphemeralOnLocalSession => Error::EphemeralOnLocalSession,
            ErrorCode::NoWatcher => Error::NoWatcher,
            ErrorCode::RequestTimeout => Error::RequestTimeout,
            ErrorCode::ReconfigDisabled => Error::ReconfigDisabled,
            ErrorCode::SessionClosedRequireSaslAuth => Error::SessionClosedRequireSaslAuth,
            ErrorCode::QuotaExceeded => Error::QuotaExceeded,
            ErrorCode::ThrottledOp => Error::ThrottledOp,
        }
    }

    /// The ZooKeeper code of this error; `None` for the client-only ones
    /// (`Timeout`, `Closed`).
    pub fn code(&self) -> Option<i32> {
        let code = match self {
            Error::SystemError => ErrorCode::SystemError,
            Error::RuntimeInconsistency => ErrorCode::RuntimeInconsistency,
            Error::DataInconsistency => ErrorCode::DataInconsistency,
            Error::ConnectionLoss => ErrorCode::ConnectionLoss,
            Error::MarshallingError => ErrorCode::MarshallingError,
            Error::Unimplemented => ErrorCode::Unimplemented,
            Error::OperationTimeout => ErrorCode::OperationTimeout,
            Error::BadArguments(_) => ErrorCode::BadArguments,
            Error::UnknownSession => ErrorCode::UnknownSession,
            Error::NewConfigNoQuorum => ErrorCode::NewConfigNoQuorum,
            Error::ReconfigInProgress => ErrorCode::ReconfigInProgress,
            Error::ApiError => ErrorCode::ApiError,
            Error::NoNode => ErrorCode::NoNode,
            Error::NoAuth => ErrorCode::NoAuth,
            Error::BadVersion => ErrorCode::BadVersion,
            Error::NoChildrenForEphemerals => ErrorCode::NoChildrenForEphemerals,
            Error::NodeExists => ErrorCode::NodeExists,
            Error::NotEmpty => ErrorCode::NotEmpty,
            Error::SessionExpired => ErrorCode::SessionExpired,
            Error::InvalidCallback => ErrorCode::InvalidCallback,
            Error::InvalidAcl => ErrorCode::InvalidAcl,
            Error::AuthFailed => ErrorCode::AuthFailed,
            Error::SessionMoved => ErrorCode::SessionMoved,
            Error::NotReadOnly => ErrorCode::NotReadOnly,
            Error::EphemeralOnLocalSession => ErrorCode::EphemeralOnLocalSession,
            Error::NoWatcher => ErrorCode::NoWatcher,
            Error::RequestTimeout => ErrorCode::RequestTimeout,
            Error::ReconfigDisabled => ErrorCode::ReconfigDisabled,
            Error::SessionClosedRequireSaslAuth => ErrorCode::SessionClosedRequireSaslAuth,
            Error::QuotaExceeded => ErrorCode::QuotaExceeded,
            Error::ThrottledOp => ErrorCode::ThrottledOp,
            Error::Unknown(code) => return Some(*code),
            Error::Timeout | Error::Closed | Error::NoRuntime => return None,
        };
        Some(code.code())
    }

    pub(crate) fn bad_arguments(reason: impl Into<String>) -> Error {
        Error::BadArguments(reason.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_code_round_trips_through_its_variant() {
        for code in ErrorCode::ALL.iter().filter(|c| **c != ErrorCode::Ok) {
            assert_eq!(Error::from_code(code.code()).code(), Some(code.code()));
        }
    }

    #[test]
    fn messages_read_like_the_java_client() {
        assert_eq!(Error::NoNode.to_string(), "KeeperErrorCode = NoNode");
        assert_eq!(
            Error::from_code(-111).to_string(),
            "KeeperErrorCode = Directory not empty"
        );
        assert_eq!(
            Error::bad_arguments("Path must start with / character").to_string(),
            "KeeperErrorCode = BadArguments: Path must start with / character"
        );
    }

    #[test]
    fn unknown_codes_are_kept() {
        assert_eq!(Error::from_code(-9), Error::Unknown(-9));
        assert_eq!(Error::Unknown(-9).code(), Some(-9));
    }
}
