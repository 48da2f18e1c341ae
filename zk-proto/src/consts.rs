//! The numbers of the protocol: opcodes, error codes, create modes, watch
//! modes, event types, session states and permissions (WIRE.md §6, §10, §11).

use crate::jute::DecodeError;

/// Declares an `i32`-coded enumeration with conversions both ways.
macro_rules! int_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident as $what:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $value:expr ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(i32)]
        pub enum $name {
            $( $(#[$vmeta])* $variant = $value ),*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The number on the wire.
            pub const fn code(self) -> i32 {
                self as i32
            }

            /// The variant for a wire number, if there is one.
            pub const fn from_code(code: i32) -> Option<Self> {
                match code {
                    $( $value => Some($name::$variant), )*
                    _ => None,
                }
            }
        }

        impl TryFrom<i32> for $name {
            type Error = DecodeError;
            fn try_from(code: i32) -> Result<Self, DecodeError> {
                Self::from_code(code).ok_or(DecodeError::UnknownValue {
                    what: $what,
                    value: code.into(),
                })
            }
        }

        impl From<$name> for i32 {
            fn from(v: $name) -> i32 {
                v as i32
            }
        }
    };
}
pub(crate) use int_enum;

int_enum! {
    /// `ZooDefs.OpCode`: the `type` of a request header (and of a txn header).
    pub enum OpCode as "opcode" {
        Notification = 0,
        Create = 1,
        Delete = 2,
        Exists = 3,
        GetData = 4,
        SetData = 5,
        GetAcl = 6,
        SetAcl = 7,
        GetChildren = 8,
        Sync = 9,
        Ping = 11,
        GetChildren2 = 12,
        Check = 13,
        Multi = 14,
        Create2 = 15,
        Reconfig = 16,
        CheckWatches = 17,
        RemoveWatches = 18,
        CreateContainer = 19,
        DeleteContainer = 20,
        CreateTtl = 21,
        MultiRead = 22,
        Auth = 100,
        SetWatches = 101,
        Sasl = 102,
        GetEphemerals = 103,
        GetAllChildrenNumber = 104,
        SetWatches2 = 105,
        AddWatch = 106,
        WhoAmI = 107,
        CreateSession = -10,
        CloseSession = -11,
        Error = -1,
    }
}

impl OpCode {
    /// Ops that change state and therefore go through the leader and get a
    /// zxid (even when they fail). `sync` is ordered by the leader but logs
    /// nothing, so it is not one of them.
    pub const fn is_write(self) -> bool {
        matches!(
            self,
            OpCode::Create
                | OpCode::Create2
                | OpCode::CreateContainer
                | OpCode::CreateTtl
                | OpCode::Delete
                | OpCode::DeleteContainer
                | OpCode::SetData
                | OpCode::SetAcl
                | OpCode::Check
                | OpCode::Multi
                | OpCode::Reconfig
                | OpCode::CreateSession
                | OpCode::CloseSession
        )
    }
}

int_enum! {
    /// `KeeperException.Code`: the `err` of a reply header.
    pub enum ErrorCode as "error code" {
        Ok = 0,
        SystemError = -1,
        RuntimeInconsistency = -2,
        DataInconsistency = -3,
        ConnectionLoss = -4,
        MarshallingError = -5,
        Unimplemented = -6,
        OperationTimeout = -7,
        BadArguments = -8,
        UnknownSession = -12,
        NewConfigNoQuorum = -13,
        ReconfigInProgress = -14,
        ApiError = -100,
        NoNode = -101,
        NoAuth = -102,
        BadVersion = -103,
        NoChildrenForEphemerals = -108,
        NodeExists = -110,
        NotEmpty = -111,
        SessionExpired = -112,
        InvalidCallback = -113,
        InvalidAcl = -114,
        AuthFailed = -115,
        SessionMoved = -118,
        NotReadOnly = -119,
        EphemeralOnLocalSession = -120,
        NoWatcher = -121,
        RequestTimeout = -122,
        ReconfigDisabled = -123,
        SessionClosedRequireSaslAuth = -124,
        QuotaExceeded = -125,
        ThrottledOp = -127,
    }
}

impl ErrorCode {
    /// The text Java's `KeeperException.getCodeMessage` gives, so messages
    /// read the same as Apache's (`KeeperErrorCode = <text>`).
    pub const fn message(self) -> &'static str {
        match self {
            ErrorCode::Ok => "ok",
            ErrorCode::SystemError => "SystemError",
            ErrorCode::RuntimeInconsistency => "RuntimeInconsistency",
            ErrorCode::DataInconsistency => "DataInconsistency",
            ErrorCode::ConnectionLoss => "ConnectionLoss",
            ErrorCode::MarshallingError => "MarshallingError",
            ErrorCode::Unimplemented => "Unimplemented",
            ErrorCode::OperationTimeout => "OperationTimeout",
            ErrorCode::BadArguments => "BadArguments",
            ErrorCode::UnknownSession => "Unknown error UNKNOWNSESSION",
            ErrorCode::NewConfigNoQuorum => "NewConfigNoQuorum",
            ErrorCode::ReconfigInProgress => "ReconfigInProgress",
            ErrorCode::ApiError => "APIError",
            ErrorCode::NoNode => "NoNode",
            ErrorCode::NoAuth => "NoAuth",
            ErrorCode::BadVersion => "BadVersion",
            ErrorCode::NoChildrenForEphemerals => "NoChildrenForEphemerals",
            ErrorCode::NodeExists => "NodeExists",
            ErrorCode::NotEmpty => "Directory not empty",
            ErrorCode::SessionExpired => "Session expired",
            ErrorCode::InvalidCallback => "Invalid callback",
            ErrorCode::InvalidAcl => "InvalidACL",
            ErrorCode::AuthFailed => "AuthFailed",
            ErrorCode::SessionMoved => "Session moved",
            ErrorCode::NotReadOnly => "Not a read-only call",
            ErrorCode::EphemeralOnLocalSession => "Ephemeral node on local session",
            ErrorCode::NoWatcher => "No such watcher",
            ErrorCode::RequestTimeout => "Unknown error REQUESTTIMEOUT",
            ErrorCode::ReconfigDisabled => "Reconfig is disabled",
            ErrorCode::SessionClosedRequireSaslAuth => {
                "Session closed because client failed to authenticate"
            }
            ErrorCode::QuotaExceeded => "Quota has exceeded",
            ErrorCode::ThrottledOp => "Op throttled due to high load",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeeperErrorCode = {}", self.message())
    }
}

int_enum! {
    /// `CreateMode`: the `flags` of a create request.
    pub enum CreateMode as "create mode" {
        Persistent = 0,
        Ephemeral = 1,
        PersistentSequential = 2,
        EphemeralSequential = 3,
        Container = 4,
        PersistentWithTtl = 5,
        PersistentSequentialWithTtl = 6,
    }
}

impl CreateMode {
    pub const fn is_ephemeral(self) -> bool {
        matches!(
            self,
            CreateMode::Ephemeral | CreateMode::EphemeralSequential
        )
    }

    pub const fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl
        )
    }

    pub const fn is_container(self) -> bool {
        matches!(self, CreateMode::Container)
    }

    pub const fn is_ttl(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl
        )
    }

    /// The opcode the Java client uses for a create that wants the Stat back:
    /// `createContainer` for containers, `createTTL` for TTL modes, else `create2`.
    pub const fn create_opcode(self) -> OpCode {
        if self.is_container() {
            OpCode::CreateContainer
        } else if self.is_ttl() {
            OpCode::CreateTtl
        } else {
            OpCode::Create2
        }
    }
}

int_enum! {
    /// `AddWatchMode`: the `mode` of an addWatch request.
    pub enum AddWatchMode as "add-watch mode" {
        Persistent = 0,
        PersistentRecursive = 1,
    }
}

int_enum! {
    /// `Watcher.WatcherType`: the `type` of checkWatches / removeWatches.
    /// `Persistent` and `PersistentRecursive` are 3.9 additions.
    pub enum WatcherType as "watcher type" {
        Children = 1,
        Data = 2,
        Any = 3,
        Persistent = 4,
        PersistentRecursive = 5,
    }
}

int_enum! {
    /// `Watcher.Event.EventType`.
    pub enum EventType as "event type" {
        None = -1,
        NodeCreated = 1,
        NodeDeleted = 2,
        NodeDataChanged = 3,
        NodeChildrenChanged = 4,
        DataWatchRemoved = 5,
        ChildWatchRemoved = 6,
        PersistentWatchRemoved = 7,
    }
}

int_enum! {
    /// `Watcher.Event.KeeperState`.
    pub enum KeeperState as "keeper state" {
        Unknown = -1,
        Disconnected = 0,
        NoSyncConnected = 1,
        SyncConnected = 3,
        AuthFailed = 4,
        ConnectedReadOnly = 5,
        SaslAuthenticated = 6,
        Closed = 7,
        Expired = -112,
    }
}

/// `ZooDefs.Perms`: an ACL entry's permission bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Perms(pub i32);

impl Perms {
    pub const READ: Perms = Perms(1);
    pub const WRITE: Perms = Perms(2);
    pub const CREATE: Perms = Perms(4);
    pub const DELETE: Perms = Perms(8);
    pub const ADMIN: Perms = Perms(16);
    pub const ALL: Perms = Perms(31);

    pub const fn contains(self, other: Perms) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn union(self, other: Perms) -> Perms {
        Perms(self.0 | other.0)
    }
}

impl std::ops::BitOr for Perms {
    type Output = Perms;
    fn bitor(self, rhs: Perms) -> Perms {
        self.union(rhs)
    }
}

/// zkCli's letters, in the order it prints them (`cdrwa`).
impl std::fmt::Display for Perms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (bit, letter) in [
            (Perms::CREATE, 'c'),
            (Perms::DELETE, 'd'),
            (Perms::READ, 'r'),
            (Perms::WRITE, 'w'),
            (Perms::ADMIN, 'a'),
        ] {
            if self.contains(bit) {
                write!(f, "{letter}")?;
            }
        }
        Ok(())
    }
}

/// Special xids (WIRE.md §5).
pub mod xid {
    /// Server to client: a watch notification.
    pub const NOTIFICATION: i32 = -1;
    /// Both ways: a ping and its reply.
    pub const PING: i32 = -2;
    /// Both ways: an auth packet and its reply.
    pub const AUTH: i32 = -4;
    /// The placeholder xid older clients (and the C client) use for setWatches.
    pub const SET_WATCHES: i32 = -8;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_opcode_round_trips_through_its_number() {
        for op in OpCode::ALL {
            assert_eq!(OpCode::try_from(op.code()).unwrap(), *op);
        }
        assert!(OpCode::try_from(10).is_err());
    }

    #[test]
    fn error_code_display_matches_keeper_exception_text() {
        assert_eq!(
            ErrorCode::NotEmpty.to_string(),
            "KeeperErrorCode = Directory not empty"
        );
        assert_eq!(ErrorCode::from_code(-125), Some(ErrorCode::QuotaExceeded));
        assert_eq!(ErrorCode::from_code(-9), None);
    }

    #[test]
    fn create_modes_map_to_the_java_client_opcodes() {
        assert_eq!(
            CreateMode::Container.create_opcode(),
            OpCode::CreateContainer
        );
        assert_eq!(
            CreateMode::PersistentSequentialWithTtl.create_opcode(),
            OpCode::CreateTtl
        );
        assert_eq!(
            CreateMode::EphemeralSequential.create_opcode(),
            OpCode::Create2
        );
        assert!(CreateMode::try_from(9).is_err());
    }

    #[test]
    fn perms_print_in_zkcli_order() {
        assert_eq!(Perms::ALL.to_string(), "cdrwa");
        assert_eq!((Perms::READ | Perms::ADMIN).to_string(), "ra");
    }
}
