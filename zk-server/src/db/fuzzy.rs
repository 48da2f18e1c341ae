//! A snapshot body serialized in slices while the tree keeps changing: a
//! fuzzy snapshot, as Apache's (`FileTxnSnapLog.save` names the file after
//! the last zxid applied when it starts, `DataTree.serialize` walks the
//! live tree). The writer task serializes a bounded slice, applies txns,
//! serializes the next slice, and so on, so no client waits behind a big
//! tree (DESIGN.md "Snapshots").
//!
//! Why it is still a valid snapshot: every node is written as it is when
//! the walk reaches it, so the nodes reflect every txn up to the start
//! zxid `Z` and some after it. Recovery loads it and replays every txn
//! after `Z`; applying is idempotent for that (db/apply.rs): a create of a
//! node that exists or a delete of one that is gone only moves the
//! parent's cversion / pzxid forward, setData and setACL carry the new
//! version. A node created after its parent was walked is simply missing,
//! and its create is replayed.
//!
//! The walk is a pre-order over the children sets with a resumable cursor
//! per level (the last child visited, by path), so parents always precede
//! their children in the body, as loading requires, whatever changed in
//! between.
//!
//! The ACL cache precedes the nodes in the body but is only known once
//! every node was seen (a node may get a new ACL list during the walk).
//! So the nodes (the "tail") are produced first and the sessions and the
//! cache (the "head") last; the caller puts the head in front
//! (`storage::SnapshotAssembler` does it on disk). A consumer that needs
//! the bytes in order without a file (SNAP to a learner) can buffer the
//! tail, or take the cut on the writer with `Database::serialize_snapshot`.

use std::collections::{BTreeMap, HashMap};

use bytes::{BufMut, BytesMut};
use zk_proto::disk::{AclCacheEntry, SnapshotSession};
use zk_proto::{Acl, Jute, JuteWrite};

use super::tree::{self, DataTree, Node, NodePath};
use super::{AclList, SessionId};

/// The aclRef of OPEN_ACL_UNSAFE, never cached (as db/snapshot.rs).
const OPEN_ACL_REF: i64 = -1;

/// Numbers ACL lists first seen first, from 1. Each numbered list is held,
/// so its address (the identity it is numbered by) cannot be reused by a
/// new list while the walk runs.
#[derive(Debug, Default)]
struct AclNumbers {
    refs: HashMap<usize, (i64, AclList)>,
    entries: Vec<AclCacheEntry>,
}

impl AclNumbers {
    fn reference(&mut self, acl: &AclList) -> i64 {
        if **acl == *Acl::open_unsafe() {
            return OPEN_ACL_REF;
        }
        if let Some((r, _)) = self.refs.get(&acl.id()) {
            return *r;
        }
        let r = self.entries.len() as i64 + 1;
        self.refs.insert(acl.id(), (r, acl.clone()));
        self.entries.push(AclCacheEntry {
            acl_ref: r,
            acls: acl.to_vec(),
        });
        r
    }
}

/// One level of the pre-order walk: the node whose children are being
/// visited and the last child visited.
#[derive(Debug)]
struct Level {
    parent: NodePath,
    after: Option<NodePath>,
}

/// A snapshot body in progress. See the module docs.
#[derive(Debug)]
pub struct FuzzyWalk {
    levels: Vec<Level>,
    acls: AclNumbers,
    started: bool,
    done: bool,
    nodes: u64,
}

impl Default for FuzzyWalk {
    fn default() -> Self {
        Self::new()
    }
}

impl FuzzyWalk {
    pub fn new() -> Self {
        FuzzyWalk {
            levels: Vec::new(),
            acls: AclNumbers::default(),
            started: false,
            done: false,
            nodes: 0,
        }
    }

    /// True once the tail is complete (its `"/"` terminator written).
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Nodes written so far.
    pub fn nodes(&self) -> u64 {
        self.nodes
    }

    /// Appends the next nodes of the tail to `out`, at least one and until
    /// `out` grew by `budget` bytes or the walk ended; the last slice ends
    /// with the `"/"` terminator. Returns true when the tail is complete.
    pub fn next_slice(&mut self, tree: &DataTree, out: &mut BytesMut, budget: usize) -> bool {
        if self.done {
            return true;
        }
        let limit = out.len().saturating_add(budget);
        if !self.started {
            self.started = true;
            if let Some(root) = tree.get(tree::ROOT) {
                self.write_node(tree::ROOT, root, out);
                self.levels.push(Level {
                    parent: NodePath::from(tree::ROOT),
                    after: None,
                });
            }
        }
        while out.len() < limit {
            let Some(level) = self.levels.last_mut() else {
                out.put_opt_string(Some("/"));
                self.done = true;
                return true;
            };
            // A parent deleted since is done; one re-created continues
            // with its new children after the last path visited.
            let next = tree
                .get(&level.parent)
                .and_then(|parent| parent.children.first_after(level.after.as_deref()))
                .cloned();
            let Some(child) = next else {
                self.levels.pop();
                continue;
            };
            level.after = Some(NodePath::clone(&child));
            let Some(node) = tree.get(&child) else {
                continue;
            };
            self.write_node(&child, node, out);
            if !node.children.is_empty() {
                self.levels.push(Level {
                    parent: child,
                    after: None,
                });
            }
        }
        false
    }

    fn write_node(&mut self, path: &str, node: &Node, out: &mut BytesMut) {
        let name = if path == tree::ROOT { "" } else { path };
        out.put_opt_string(Some(name));
        out.put_opt_buffer(node.data.as_deref());
        out.put_i64(self.acls.reference(&node.acl));
        node.stat.encode(out);
        self.nodes += 1;
    }

    /// What precedes the tail in the body: `sessions` (as they were when
    /// the snapshot started) and the ACL cache of every list the nodes
    /// referred to. Complete once [`FuzzyWalk::is_done`].
    pub fn head(&self, sessions: &BTreeMap<SessionId, i32>) -> BytesMut {
        let mut out = BytesMut::new();
        out.put_i32(sessions.len() as i32);
        for (&session_id, &timeout) in sessions {
            SnapshotSession {
                session_id,
                timeout,
            }
            .encode(&mut out);
        }
        self.acls.entries.encode(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{Database, DbConfig};
    use zk_proto::txn::CreateTxn;
    use zk_proto::{OpCode, Txn, TxnEntry, TxnHeader};

    fn create(db: &mut Database, zxid: i64, path: &str) {
        let entry = TxnEntry {
            header: TxnHeader {
                client_id: 0,
                cxid: 0,
                zxid,
                time: 0,
                txn_type: OpCode::Create.code(),
            },
            txn: Txn::Create(CreateTxn {
                path: path.into(),
                data: Some(bytes::Bytes::from(vec![7u8; 100])),
                acl: Acl::open_unsafe().to_vec(),
                ephemeral: false,
                parent_cversion: -1,
            }),
            digest: None,
        };
        db.apply(&entry);
    }

    fn walk_all(db: &Database, budget: usize) -> BytesMut {
        let mut walk = FuzzyWalk::new();
        let mut tail = BytesMut::new();
        let mut slices = 0;
        while !walk.next_slice(db.tree(), &mut tail, budget) {
            slices += 1;
            assert!(slices < 100_000, "the walk does not end");
        }
        let sessions: BTreeMap<SessionId, i32> = db.sessions().collect();
        let mut body = walk.head(&sessions);
        body.extend_from_slice(&tail);
        body
    }

    #[test]
    fn a_walk_over_an_unchanging_tree_is_the_plain_snapshot_body() {
        let mut db = Database::new(DbConfig::default());
        for (i, path) in ["/a", "/a/x", "/a/y", "/b", "/b/z", "/c"]
            .iter()
            .enumerate()
        {
            create(&mut db, i as i64 + 1, path);
        }
        let mut plain = BytesMut::new();
        db.serialize_snapshot(&mut plain);
        for budget in [1, 50, 1 << 20] {
            assert_eq!(walk_all(&db, budget), plain, "budget {budget}");
        }
    }

    #[test]
    fn every_slice_makes_progress_and_stays_near_its_budget() {
        let mut db = Database::new(DbConfig::default());
        for i in 0..50 {
            create(&mut db, i + 1, &format!("/n{i:02}"));
        }
        let mut walk = FuzzyWalk::new();
        let mut tail = BytesMut::new();
        let mut before = 0;
        while !walk.next_slice(db.tree(), &mut tail, 300) {
            let grown = tail.len() - before;
            assert!(grown > 0 && grown < 300 + 250, "{grown}");
            before = tail.len();
        }
        assert_eq!(
            walk.nodes(),
            50 + 4,
            "50 nodes, /, /zookeeper and two below"
        );
    }
}
