//! The replicated state machine (see DESIGN.md): pure, no tokio, no IO.
//!
//! [`Database`] is the facade the pipeline drives: [`Database::prepare`]
//! turns a write request into the txn to log (validating it against the
//! applied tree *and* every prepared-but-unapplied txn), [`Database::apply`]
//! applies a durable txn and says what to reply and which watch events to
//! send, and [`Database::read`] serves reads from the applied tree.
//!
//! Module map: `path` (validation), `tree` (znodes), `quota`, `acl`,
//! `watch`, `prep` (request → txn), `apply` (txn → reply + events),
//! `read`, `session` (expiry, ids, passwords), `snapshot` (body codec),
//! `fuzzy` (the body serialized in slices while the tree keeps changing).

pub mod acl;
mod acl_list;
mod apply;
pub mod fuzzy;
mod java_order;
pub mod path;
mod prep;
pub mod quota;
mod read;
pub mod session;
mod snapshot;
pub mod tree;
pub mod watch;

use std::collections::BTreeMap;

use zk_proto::{ErrorCode, Id, Response, WatcherEvent};

pub use acl_list::{AclInterner, AclList};
pub use prep::Outstanding;
pub use session::{password, SessionIdGenerator, SessionTracker};
pub use snapshot::{SnapshotLoader, SnapshotStream};
pub use tree::DataTree;
pub use watch::{WatchManager, WatchSummary};

/// A client connection, as the network layer numbers them.
pub type ConnId = u64;
/// A ZooKeeper session id.
pub type SessionId = i64;

/// Server settings that change what the state machine does. The defaults
/// are Apache's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbConfig {
    /// `zookeeper.DigestAuthenticationProvider.superDigest`:
    /// `user:base64(SHA1("user:password"))`; a client whose digest auth
    /// yields exactly this also becomes `super`.
    pub super_digest: Option<String>,
    /// `zookeeper.extendedTypesEnabled`: TTL nodes.
    pub extended_types_enabled: bool,
    /// `zookeeper.DigestAuthenticationProvider.enabled`.
    pub digest_enabled: bool,
    /// `zookeeper.skipACL=yes`: every ACL check passes.
    pub skip_acl: bool,
    /// `zookeeper.enforceQuota`: hard quotas reject creates and setData.
    pub enforce_quota: bool,
    /// `reconfigEnabled`.
    pub reconfig_enabled: bool,
    /// `znode.container.maxNeverUsedIntervalMs` (0 = never-used
    /// containers live forever).
    pub container_max_never_used_ms: i64,
    /// `authProvider.N=...SASLAuthenticationProvider`: the `sasl` ACL
    /// scheme (identities from SASL, auth/sasl.rs in the pipeline).
    pub sasl_enabled: bool,
}

impl Default for DbConfig {
    fn default() -> Self {
        DbConfig {
            super_digest: None,
            extended_types_enabled: false,
            digest_enabled: true,
            skip_acl: false,
            enforce_quota: false,
            reconfig_enabled: false,
            container_max_never_used_ms: 0,
            sasl_enabled: false,
        }
    }
}

/// Who is asking: everything ACL checks and txn headers need.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestContext {
    pub session_id: SessionId,
    pub conn_id: ConnId,
    pub xid: i32,
    /// The connection's identities: `ip:<addr>` plus every addAuth success.
    pub auth: Vec<Id>,
}

/// What applying one txn did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub zxid: i64,
    /// The reply to the request that made the txn: (session, xid, result).
    /// `None` for createSession (answered with a ConnectResponse) and for
    /// txns of session 0 (the container manager's deleteContainer). The
    /// closeSession of an expired session has a reply nobody waits for.
    pub reply: Option<(SessionId, i32, Result<Response, ErrorCode>)>,
    /// (connection, event) in firing order; all precede the reply.
    pub notifications: Vec<(ConnId, WatcherEvent)>,
    /// A session the txn created, with its timeout.
    pub session_created: Option<(SessionId, i32)>,
    /// A session the txn closed (its ephemerals are gone).
    pub session_closed: Option<SessionId>,
}

/// A read's reply and the events it fired (setWatches fires at once).
pub type ReadResult = (Result<Response, ErrorCode>, Vec<(ConnId, WatcherEvent)>);

/// Numbers for `srvr`, `mntr` and `stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbStats {
    /// As Apache counts it: the root twice (fresh server: 5).
    pub node_count: usize,
    pub watch_count: usize,
    pub ephemerals_count: usize,
    pub approximate_data_size: i64,
    pub sessions: usize,
    pub last_processed_zxid: i64,
}

/// The tree, the sessions, the watches and the prepared-but-unapplied
/// changes.
#[derive(Debug, Clone)]
pub struct Database {
    config: DbConfig,
    tree: DataTree,
    /// Sessions with their timeouts (Apache's `sessionsWithTimeouts`).
    sessions: BTreeMap<SessionId, i32>,
    watches: WatchManager,
    conn_auth: watch::ConnectionAuth,
    outstanding: Outstanding,
    last_processed_zxid: i64,
}

impl Database {
    /// A fresh database: `/`, `/zookeeper`, `/zookeeper/quota`,
    /// `/zookeeper/config`, no sessions, zxid 0.
    pub fn new(config: DbConfig) -> Self {
        let tree = DataTree::new(config.extended_types_enabled);
        Self::from_parts(config, tree, BTreeMap::new(), 0)
    }

    fn from_parts(
        config: DbConfig,
        tree: DataTree,
        sessions: BTreeMap<SessionId, i32>,
        zxid: i64,
    ) -> Self {
        Database {
            config,
            tree,
            sessions,
            watches: WatchManager::new(),
            conn_auth: watch::ConnectionAuth::default(),
            outstanding: Outstanding::default(),
            last_processed_zxid: zxid,
        }
    }

    pub fn config(&self) -> &DbConfig {
        &self.config
    }

    /// The applied tree, for inspection (admin commands, tests).
    pub fn tree(&self) -> &DataTree {
        &self.tree
    }

    pub fn watches(&self) -> &WatchManager {
        &self.watches
    }

    pub fn last_processed_zxid(&self) -> i64 {
        self.last_processed_zxid
    }

    /// addAuth: the identities to add to the connection, or AuthFailed.
    pub fn authenticate(
        &self,
        scheme: &str,
        auth: Option<&[u8]>,
        remote_ip: &str,
    ) -> Result<Vec<Id>, ErrorCode> {
        acl::authenticate(&self.config, scheme, auth, remote_ip)
    }

    /// Tells the database a connection's current identities (after
    /// addAuth), so watch delivery checks READ with them. Reads and
    /// prepares refresh this too.
    pub fn set_connection_auth(&mut self, conn: ConnId, auth: &[Id]) {
        self.conn_auth.set(conn, auth);
    }

    /// A connection closed: its watches go.
    pub fn remove_watches_of(&mut self, conn: ConnId) {
        self.watches.remove_connection(conn);
        self.conn_auth.remove(conn);
    }

    /// Sessions and their timeouts.
    pub fn sessions(&self) -> impl Iterator<Item = (SessionId, i32)> + '_ {
        self.sessions.iter().map(|(&id, &t)| (id, t))
    }

    pub fn session_exists(&self, id: SessionId) -> bool {
        self.sessions.contains_key(&id)
    }

    pub fn ephemerals_of(&self, id: SessionId) -> Vec<String> {
        self.tree.ephemerals_of(id)
    }

    /// Containers and TTL nodes the container manager should delete now
    /// (with deleteContainer requests as session 0).
    pub fn expired_containers_and_ttls(&self, now_ms: i64) -> Vec<String> {
        self.tree
            .expired_containers_and_ttls(now_ms, self.config.container_max_never_used_ms)
    }

    /// Deletes the ephemerals of sessions that no longer exist, without a
    /// txn (Apache does this after loading a snapshot and replaying logs).
    /// Returns the paths removed.
    pub fn remove_orphaned_ephemerals(&mut self) -> Vec<String> {
        let zxid = self.last_processed_zxid;
        let mut removed = Vec::new();
        for session in self.tree.sessions_with_ephemerals() {
            if self.sessions.contains_key(&session) {
                continue;
            }
            for path in self.tree.ephemerals_of(session) {
                if self.tree.delete(&path, zxid).is_ok() {
                    removed.push(path);
                }
            }
        }
        removed
    }

    pub fn stats(&self) -> DbStats {
        DbStats {
            node_count: self.tree.apache_node_count(),
            watch_count: self.watches.watch_count(),
            ephemerals_count: self.tree.ephemeral_count(),
            approximate_data_size: self.tree.approximate_data_size(),
            sessions: self.sessions.len(),
            last_processed_zxid: self.last_processed_zxid,
        }
    }

    /// Prepared txns not yet applied (for tests and `mntr`).
    pub fn outstanding_changes(&self) -> usize {
        self.outstanding.len()
    }
}
