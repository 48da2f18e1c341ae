//! The snapshot body in Apache's layout (ZAB.md §9.4): sessions, the ACL
//! cache, the nodes pre-order (root as `""`), and the `"/"` terminator.
//! The file header and the seals around it are the storage layer's.
//!
//! ACL lists are stored once in the cache and nodes refer to them by
//! number; `-1` stands for OPEN_ACL_UNSAFE, which is never cached.

use std::collections::{BTreeMap, HashMap};

use bytes::{BufMut, BytesMut};
use zk_proto::disk::{AclCacheEntry, DataNode, SnapshotSession};
use zk_proto::{Acl, DecodeError, Jute, Reader};

use super::tree::{self, DataTree, Node};
use super::{Database, DbConfig, SessionId};

/// The aclRef of OPEN_ACL_UNSAFE.
const OPEN_ACL_REF: i64 = -1;

/// Assigns cache numbers (from 1) to distinct ACL lists, first seen first.
#[derive(Default)]
struct AclCache {
    /// Keyed by the list's jute encoding (ACLs are not `Hash`).
    refs: HashMap<bytes::Bytes, i64>,
    entries: Vec<AclCacheEntry>,
}

impl AclCache {
    fn reference(&mut self, acl: &[Acl]) -> i64 {
        if acl == Acl::open_unsafe().as_slice() {
            return OPEN_ACL_REF;
        }
        let key = acl.to_vec().to_bytes();
        if let Some(&r) = self.refs.get(&key) {
            return r;
        }
        let r = self.entries.len() as i64 + 1;
        self.refs.insert(key, r);
        self.entries.push(AclCacheEntry {
            acl_ref: r,
            acls: acl.to_vec(),
        });
        r
    }
}

/// Writes the body: sessions, ACL cache, nodes, `"/"`.
pub fn serialize(tree: &DataTree, sessions: &BTreeMap<SessionId, i32>, buf: &mut BytesMut) {
    buf.put_i32(sessions.len() as i32);
    for (&session_id, &timeout) in sessions {
        SnapshotSession {
            session_id,
            timeout,
        }
        .encode(buf);
    }
    // The cache precedes the nodes, so number the ACLs first.
    let mut cache = AclCache::default();
    let mut nodes = Vec::with_capacity(tree.len());
    tree.for_each_preorder(|path, node| {
        let acl_ref = cache.reference(&node.acl);
        let snap_path = if path == tree::ROOT { "" } else { path };
        nodes.push((
            snap_path.to_owned(),
            acl_ref,
            node.data.clone(),
            node.stat.clone(),
        ));
    });
    cache.entries.encode(buf);
    for (path, acl_ref, data, stat) in nodes {
        path.encode(buf);
        DataNode {
            data,
            acl_ref,
            stat,
        }
        .encode(buf);
    }
    "/".to_owned().encode(buf);
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
    let mut acls: HashMap<i64, Vec<Acl>> = HashMap::new();
    for _ in 0..acl_count {
        let entry = AclCacheEntry::decode(r)?;
        acls.insert(entry.acl_ref, entry.acls);
    }
    let mut tree = DataTree::empty(extended_types);
    loop {
        let path = String::decode(r)?;
        if path == "/" {
            break;
        }
        let node = DataNode::decode(r)?;
        let acl = if node.acl_ref == OPEN_ACL_REF {
            Acl::open_unsafe()
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
