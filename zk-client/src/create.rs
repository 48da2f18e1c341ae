//! Options of a create, as one builder instead of a growing family of
//! `create*` calls: mode, ACL, TTL, whether to return the Stat, null data.

use std::time::Duration;

use zk_proto::{Acl, CreateMode, Stat};

/// How to create a node; see [`Client::create_with`](crate::Client::create_with).
///
/// ```
/// use std::time::Duration;
/// use zk_client::{CreateMode, CreateOptions, CREATOR_ALL_ACL};
/// let options = CreateOptions::new(CreateMode::PersistentWithTtl)
///     .acl(&CREATOR_ALL_ACL)
///     .ttl(Duration::from_secs(60))
///     .with_stat();
/// assert_eq!(options.mode(), CreateMode::PersistentWithTtl);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateOptions {
    pub(crate) mode: CreateMode,
    pub(crate) acl: Vec<Acl>,
    pub(crate) ttl: Option<Duration>,
    pub(crate) stat: bool,
    pub(crate) null_data: bool,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions::new(CreateMode::Persistent)
    }
}

impl CreateOptions {
    /// `mode`, the open ACL, no TTL, no Stat, the given data.
    pub fn new(mode: CreateMode) -> Self {
        CreateOptions {
            mode,
            acl: crate::OPEN_ACL_UNSAFE.clone(),
            ttl: None,
            stat: false,
            null_data: false,
        }
    }

    /// The node's ACL (default: the open ACL).
    pub fn acl(mut self, acl: &[Acl]) -> Self {
        self.acl = acl.to_vec();
        self
    }

    /// The TTL of a TTL mode (required for those, refused for others).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Return the new node's Stat (opcode create2; TTL and container
    /// creates always return it).
    pub fn with_stat(mut self) -> Self {
        self.stat = true;
        self
    }

    /// Create with null data (wire length -1), whatever data is passed:
    /// reads with `get_data_opt` then return `None`.
    pub fn null_data(mut self) -> Self {
        self.null_data = true;
        self
    }

    /// The create mode.
    pub fn mode(&self) -> CreateMode {
        self.mode
    }
}

/// What a create returns: the path (with any sequence suffix) and the
/// Stat when it was asked for (or came anyway).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The created path, with any sequence suffix.
    pub path: String,
    /// The new node's Stat, when asked for or returned anyway.
    pub stat: Option<Stat>,
}
