//! Records shared by the client protocol, the txn log and snapshots
//! (jute module `org.apache.zookeeper.data`, WIRE.md §3).

use crate::consts::Perms;
use crate::record;

record! {
    /// An identity: `scheme:id`, e.g. `world:anyone`, `digest:user:hash`.
    pub struct Id {
        pub scheme: String,
        pub id: String,
    }

    /// One ACL entry: permission bits for an identity.
    pub struct Acl {
        pub perms: i32,
        pub id: Id,
    }

    /// The client-visible status of a znode (68 bytes on the wire).
    pub struct Stat {
        pub czxid: i64,
        pub mzxid: i64,
        pub ctime: i64,
        pub mtime: i64,
        pub version: i32,
        pub cversion: i32,
        pub aversion: i32,
        pub ephemeral_owner: i64,
        pub data_length: i32,
        pub num_children: i32,
        pub pzxid: i64,
    }

    /// The status a server keeps on disk and sends in SNAP syncs (60 bytes):
    /// no data length or child count, which are derived.
    pub struct StatPersisted {
        pub czxid: i64,
        pub mzxid: i64,
        pub ctime: i64,
        pub mtime: i64,
        pub version: i32,
        pub cversion: i32,
        pub aversion: i32,
        pub ephemeral_owner: i64,
        pub pzxid: i64,
    }

    /// One authenticated identity as `whoAmI` reports it.
    pub struct ClientInfo {
        pub auth_scheme: String,
        pub user: String,
    }
}

impl Id {
    pub fn new(scheme: impl Into<String>, id: impl Into<String>) -> Self {
        Id {
            scheme: scheme.into(),
            id: id.into(),
        }
    }

    /// `world:anyone`, the identity everybody has.
    pub fn anyone() -> Self {
        Id::new("world", "anyone")
    }

    /// `auth:` with an empty id: in an ACL it stands for the creator's
    /// authenticated identities.
    pub fn auth_ids() -> Self {
        Id::new("auth", "")
    }
}

impl Acl {
    pub fn new(perms: Perms, id: Id) -> Self {
        Acl { perms: perms.0, id }
    }

    pub fn perms(&self) -> Perms {
        Perms(self.perms)
    }

    /// `OPEN_ACL_UNSAFE`: everyone may do everything.
    pub fn open_unsafe() -> Vec<Acl> {
        vec![Acl::new(Perms::ALL, Id::anyone())]
    }

    /// `CREATOR_ALL_ACL`: only the creator's authenticated identities.
    pub fn creator_all() -> Vec<Acl> {
        vec![Acl::new(Perms::ALL, Id::auth_ids())]
    }

    /// `READ_ACL_UNSAFE`: everyone may read.
    pub fn read_unsafe() -> Vec<Acl> {
        vec![Acl::new(Perms::READ, Id::anyone())]
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.scheme, self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jute::Jute;

    #[test]
    fn stat_is_68_bytes_and_stat_persisted_60() {
        assert_eq!(Stat::default().to_bytes().len(), 68);
        assert_eq!(StatPersisted::default().to_bytes().len(), 60);
    }

    #[test]
    fn open_acl_encodes_as_world_anyone_with_all_perms() {
        let bytes = Acl::open_unsafe().to_bytes();
        let mut expected = vec![0, 0, 0, 1, 0, 0, 0, 31, 0, 0, 0, 5];
        expected.extend_from_slice(b"world");
        expected.extend_from_slice(&[0, 0, 0, 6]);
        expected.extend_from_slice(b"anyone");
        assert_eq!(&bytes[..], &expected[..]);
    }
}
