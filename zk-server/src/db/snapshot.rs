//! The snapshot body in Apache's layout (ZAB.md §9.4): sessions, the ACL
//! cache, the nodes pre-order (root as `""`), and the `"/"` terminator.
//! The file header and the seals around it are the storage layer's.
//!
//! ACL lists are stored once in the cache and nodes refer to them by
//! number; `-1` stands for OPEN_ACL_UNSAFE, which is never cached.

use std::collections::{BTreeMap, HashMap};

use bytes::{BufMut, BytesMut};
use zk_proto::disk::{AclCacheEntry, DataNode, SnapshotSession};
use zk_proto::{Acl, DecodeError, Jute, JuteWrite, Reader};

use super::tree::{self, DataTree, Node};
use super::{AclList, Database, DbConfig, SessionId};

/// The aclRef of OPEN_ACL_UNSAFE.
const OPEN_ACL_REF: i64 = -1;

/// Assigns cache numbers (from 1) to distinct ACL lists, first seen first.
///
/// The tree shares one [`AclList`] per distinct list, so lists are told
/// apart by identity; a list held twice would merely be written twice.
#[derive(Default)]
struct AclCache {
    refs: HashMap<usize, i64>,
    entries: Vec<AclCacheEntry>,
}

impl AclCache {
    fn reference(&mut self, acl: &AclList) -> i64 {
        if **acl == *Acl::open_unsafe() {
            return OPEN_ACL_REF;
        }
        if let Some(&r) = self.refs.get(&acl.id()) {
            return r;
        }
        let r = self.entries.len() as i64 + 1;
        self.refs.insert(acl.id(), r);
        self.entries.push(AclCacheEntry {
            acl_ref: r,
            acls: acl.to_vec(),
        });
        r
    }
}

/// The snapshot name of a tree path: the root is written as `""`.
fn snapshot_path(path: &str) -> &str {
    if path == tree::ROOT {
        ""
    } else {
        path
    }
}

/// Writes the body: sessions, ACL cache, nodes, `"/"`.
///
/// The cache precedes the nodes, so a first walk numbers the ACL lists and
/// a second writes the nodes; nothing per node is kept in between.
pub fn serialize(tree: &DataTree, sessions: &BTreeMap<SessionId, i32>, buf: &mut BytesMut) {
    buf.put_i32(sessions.len() as i32);
    for (&session_id, &timeout) in sessions {
        SnapshotSession {
            session_id,
            timeout,
        }
        .encode(buf);
    }
    let mut cache = AclCache::default();
    tree.for_each_preorder(|_, node| {
        cache.reference(&node.acl);
    });
    cache.entries.encode(buf);
    buf.reserve(body_size_hint(tree));
    tree.for_each_preorder(|path, node| {
        buf.put_opt_string(Some(snapshot_path(path)));
        // The fields of a `DataNode`, written from borrowed data: cloning a
        // node's `Bytes` to build one would make it allocate a shared
        // header that then lives as long as the node.
        buf.put_opt_buffer(node.data.as_deref());
        buf.put_i64(cache.reference(&node.acl));
        node.stat.encode(buf);
    });
    buf.put_opt_string(Some("/"));
}

/// Roughly the size of the nodes' part of the body, so the buffer is
/// allocated once instead of doubling (and copying) its way up.
fn body_size_hint(tree: &DataTree) -> usize {
    /// Path and data length prefixes, the aclRef and the persisted stat.
    const PER_NODE: usize = 4 + 4 + 8 + 60;
    let paths_and_data = usize::try_from(tree.approximate_data_size()).unwrap_or(0);
    paths_and_data + tree.len() * PER_NODE
}

/// Reads a body written by us or by Apache ZooKeeper.
pub fn deserialize(
    extended_types: bool,
    r: &mut Reader,
) -> Result<(DataTree, BTreeMap<SessionId, i32>), DecodeError> {
    let session_count = r.read_i32()?;
    if session_count < 0 {
        return Err(DecodeError::Invalid("negative session count in snapshot"));
    }
    let mut sessions = BTreeMap::new();
    for _ in 0..session_count {
        let s = SnapshotSession::decode(r)?;
        sessions.insert(s.session_id, s.timeout);
    }
    let acl_count = r.read_i32()?;
    if acl_count < 0 {
        return Err(DecodeError::Invalid("negative ACL cache size in snapshot"));
    }
    let mut tree = DataTree::empty(extended_types);
    let mut acls: HashMap<i64, AclList> = HashMap::new();
    for _ in 0..acl_count {
        let entry = AclCacheEntry::decode(r)?;
        acls.insert(entry.acl_ref, tree.intern_acl(&entry.acls));
    }
    let open_acl = tree.intern_acl(&Acl::open_unsafe());
    loop {
        let path = String::decode(r)?;
        if path == "/" {
            break;
        }
        let node = DataNode::decode(r)?;
        let acl = if node.acl_ref == OPEN_ACL_REF {
            open_acl.clone()
        } else {
            acls.get(&node.acl_ref)
                .cloned()
                .ok_or(DecodeError::Invalid(
                    "snapshot node refers to an unknown ACL",
                ))?
        };
        let tree_path = if path.is_empty() {
            tree::ROOT
        } else {
            path.as_str()
        };
        if tree_path != tree::ROOT && tree.get(tree::ROOT).is_none() {
            return Err(DecodeError::Invalid(
                "snapshot nodes do not start with the root",
            ));
        }
        if tree.contains(tree_path) {
            return Err(DecodeError::Invalid("snapshot holds a node twice"));
        }
        tree.insert_loaded(tree_path, Node::new(node.data, acl, node.stat))
            .map_err(|()| DecodeError::Invalid("snapshot node precedes its parent"))?;
    }
    if tree.get(tree::ROOT).is_none() {
        return Err(DecodeError::Invalid("snapshot has no root node"));
    }
    tree.ensure_special_nodes();
    tree.setup_quotas();
    Ok((tree, sessions))
}

impl Database {
    /// The snapshot body: sessions, ACL cache, nodes, `"/"` terminator.
    pub fn serialize_snapshot(&self, buf: &mut BytesMut) {
        serialize(&self.tree, &self.sessions, buf);
    }

    /// A database restored from a snapshot body taken at `zxid`. Ephemerals
    /// of sessions missing from the body are kept until
    /// [`Database::remove_orphaned_ephemerals`] (after log replay).
    pub fn deserialize_snapshot(
        config: DbConfig,
        r: &mut Reader,
        zxid: i64,
    ) -> Result<Self, DecodeError> {
        let (tree, sessions) = deserialize(config.extended_types_enabled, r)?;
        Ok(Database::from_parts(config, tree, sessions, zxid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use zk_proto::{Id, Perms};

    fn digest_acl() -> Vec<Acl> {
        vec![Acl::new(Perms::ALL, Id::new("digest", "u:h"))]
    }

    fn sample_tree() -> DataTree {
        let mut tree = DataTree::new(false);
        let data = |s: &'static str| Some(Bytes::from_static(s.as_bytes()));
        tree.create("/a", data("x"), digest_acl(), 0, -1, 1, 10)
            .unwrap();
        tree.create("/a/b", None, digest_acl(), 0, -1, 2, 20)
            .unwrap();
        tree.create("/c", data("yz"), Acl::read_unsafe(), 0, -1, 3, 30)
            .unwrap();
        tree
    }

    fn round_trip(tree: &DataTree) -> DataTree {
        let mut buf = BytesMut::new();
        serialize(tree, &BTreeMap::new(), &mut buf);
        deserialize(false, &mut Reader::new(buf.freeze()))
            .unwrap()
            .0
    }

    #[test]
    fn a_round_trip_keeps_every_node() {
        let tree = sample_tree();
        let loaded = round_trip(&tree);
        assert_eq!(loaded.len(), tree.len());
        for path in ["/", "/a", "/a/b", "/c", "/zookeeper/config"] {
            assert_eq!(loaded.get(path), tree.get(path), "{path}");
        }
    }

    #[test]
    fn nodes_are_written_as_apache_data_nodes() {
        let tree = sample_tree();
        let mut buf = BytesMut::new();
        serialize(&tree, &BTreeMap::new(), &mut buf);
        let mut r = Reader::new(buf.freeze());
        assert_eq!(r.read_i32().unwrap(), 0, "no sessions");
        let cache = Vec::<AclCacheEntry>::decode(&mut r).unwrap();
        assert_eq!(cache.len(), 2, "digest and read-only lists, once each");
        let mut seen = Vec::new();
        loop {
            let path = String::decode(&mut r).unwrap();
            if path == "/" {
                break;
            }
            let node = DataNode::decode(&mut r).unwrap();
            seen.push((path, node.acl_ref, node.data));
        }
        assert_eq!(seen[0].0, "", "the root is written as the empty path");
        assert_eq!(seen[0].1, OPEN_ACL_REF);
        let a = seen.iter().find(|n| n.0 == "/a").unwrap();
        let ab = seen.iter().find(|n| n.0 == "/a/b").unwrap();
        assert_eq!(a.1, ab.1, "equal ACLs share one cache entry");
        assert_eq!(a.2.as_deref(), Some(&b"x"[..]));
        assert_eq!(ab.2, None, "null data stays null");
    }

    #[test]
    fn loaded_nodes_with_equal_acls_share_one_list() {
        let loaded = round_trip(&sample_tree());
        let a = &loaded.get("/a").unwrap().acl;
        let ab = &loaded.get("/a/b").unwrap().acl;
        assert!(a.ptr_eq(ab));
        assert_eq!(*a, digest_acl());
    }
}
