//! Records shared by the client protocol, the txn log and snapshots
//! (jute module `org.apache.zookeeper.data`, WIRE.md §3).

use crate::consts::Perms;
use crate::jute::{DecodeError, Jute, JuteWrite, Reader};
use crate::record;

/// An identity: `scheme:id`, e.g. `world:anyone`, `digest:user:hash`.
///
/// Either string may be null on the wire (kazoo writes an empty string as
/// a null one: its `CREATOR_ALL_ACL` is `auth` with a null id). A null
/// decodes as "" and the identity remembers it, so it encodes back as
/// null and the server can answer as Apache's does, which reads some of
/// these fields without a null check (docs/COMPATIBILITY.md).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Id {
    pub scheme: String,
    pub id: String,
    wire_nulls: WireNulls,
}

/// Which strings of an [`Id`] were null on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct WireNulls {
    scheme: bool,
    id: bool,
}

impl Jute for Id {
    fn encode<B: bytes::BufMut>(&self, buf: &mut B) {
        buf.put_opt_string((!self.wire_nulls.scheme).then_some(self.scheme.as_str()));
        buf.put_opt_string((!self.wire_nulls.id).then_some(self.id.as_str()));
    }
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let scheme = r.read_opt_string()?;
        let id = r.read_opt_string()?;
        Ok(Id::from_wire(scheme, id))
    }
}

record! {
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
            wire_nulls: WireNulls::default(),
        }
    }

    /// An identity as the wire has it, either string possibly null.
    pub fn from_wire(scheme: Option<String>, id: Option<String>) -> Self {
        Id {
            wire_nulls: WireNulls {
                scheme: scheme.is_none(),
                id: id.is_none(),
            },
            scheme: scheme.unwrap_or_default(),
            id: id.unwrap_or_default(),
        }
    }

    /// The scheme was null on the wire.
    pub fn scheme_is_null(&self) -> bool {
        self.wire_nulls.scheme
    }

    /// The id was null on the wire.
    pub fn id_is_null(&self) -> bool {
        self.wire_nulls.id
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
    use bytes::Bytes;

    #[test]
    fn stat_is_68_bytes_and_stat_persisted_60() {
        assert_eq!(Stat::default().to_bytes().len(), 68);
        assert_eq!(StatPersisted::default().to_bytes().len(), 60);
    }

    #[test]
    fn a_null_id_reads_as_empty_and_encodes_back_as_null() {
        // kazoo's CREATOR_ALL_ACL identity: scheme "auth", id null.
        let wire =
            Bytes::from_static(&[0, 0, 0, 4, b'a', b'u', b't', b'h', 0xff, 0xff, 0xff, 0xff]);
        let id = Id::from_bytes(wire.clone()).unwrap();
        assert_eq!((id.scheme.as_str(), id.id.as_str()), ("auth", ""));
        assert!(id.id_is_null() && !id.scheme_is_null());
        assert_eq!(id.to_bytes(), wire);
    }

    #[test]
    fn a_null_scheme_is_remembered() {
        let id = Id::from_bytes(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0])).unwrap();
        assert!(id.scheme_is_null() && !id.id_is_null());
        assert_ne!(
            id,
            Id::new("", ""),
            "null and empty are different on the wire"
        );
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
