//! The snapshot body in Apache's layout (ZAB.md §9.4): sessions, the ACL
//! cache, the nodes pre-order (root as `""`), and the `"/"` terminator.
//! The file header and the seals around it are the storage layer's.
//!
//! ACL lists are stored once in the cache and nodes refer to them by
//! number; `-1` stands for OPEN_ACL_UNSAFE, which is never cached.

use std::collections::{BTreeMap, HashMap};

use bytes::{BufMut, Bytes, BytesMut};
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
#[derive(Debug, Default)]
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

    /// The number of a list already in the cache (by identity, else by
    /// content), without adding it.
    fn existing(&self, acl: &AclList) -> Option<i64> {
        if **acl == *Acl::open_unsafe() {
            return Some(OPEN_ACL_REF);
        }
        if let Some(&r) = self.refs.get(&acl.id()) {
            return Some(r);
        }
        self.entries
            .iter()
            .find(|e| **acl == e.acls)
            .map(|e| e.acl_ref)
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
    let mut loader = SnapshotLoader::new(extended_types);
    while loader.stage != LoadStage::Done {
        loader.step(r)?;
    }
    loader.finish()
}

/// Where a [`SnapshotLoader`] is in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LoadStage {
    SessionCount,
    Sessions(i32),
    AclCount,
    Acls(i32),
    Nodes,
    Done,
}

/// Most bytes a loader holds while waiting for the rest of one record; a
/// record is at most a node with data of the largest allowed size, so more
/// means a broken stream.
const MAX_PENDING: usize = 64 * 1024 * 1024;

/// Reads a snapshot body fed in pieces of any size (a SNAP streamed from
/// the leader), building the tree record by record, so only the tree and
/// one partial record are ever held — never the whole serialized body.
pub struct SnapshotLoader {
    stage: LoadStage,
    /// Bytes received that do not yet make a whole record.
    pending: Bytes,
    sessions: BTreeMap<SessionId, i32>,
    acls: HashMap<i64, AclList>,
    open_acl: AclList,
    tree: DataTree,
}

impl SnapshotLoader {
    pub fn new(extended_types: bool) -> Self {
        let mut tree = DataTree::empty(extended_types);
        let open_acl = tree.intern_acl(&Acl::open_unsafe());
        SnapshotLoader {
            stage: LoadStage::SessionCount,
            pending: Bytes::new(),
            sessions: BTreeMap::new(),
            acls: HashMap::new(),
            open_acl,
            tree,
        }
    }

    /// True once the `"/"` terminator was read.
    pub fn is_complete(&self) -> bool {
        self.stage == LoadStage::Done
    }

    /// Takes the next piece of the body and loads every record it
    /// completes. Bytes after the terminator are an error.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), DecodeError> {
        if chunk.is_empty() {
            return Ok(());
        }
        self.pending = if self.pending.is_empty() {
            Bytes::copy_from_slice(chunk)
        } else {
            let mut joined = BytesMut::with_capacity(self.pending.len() + chunk.len());
            joined.extend_from_slice(&self.pending);
            joined.extend_from_slice(chunk);
            joined.freeze()
        };
        while !self.pending.is_empty() {
            if self.stage == LoadStage::Done {
                return Err(DecodeError::Invalid("bytes after the snapshot terminator"));
            }
            let mut r = Reader::new(self.pending.clone());
            match self.step(&mut r) {
                Ok(()) => self.pending = r.take_rest(),
                Err(DecodeError::UnexpectedEof { .. }) if self.pending.len() <= MAX_PENDING => {
                    break
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads one record (or count) from `r`. Every field is decoded before
    /// anything changes, so a record cut short changes nothing.
    fn step(&mut self, r: &mut Reader) -> Result<(), DecodeError> {
        self.stage = match self.stage {
            LoadStage::SessionCount => {
                let n = r.read_i32()?;
                if n < 0 {
                    return Err(DecodeError::Invalid("negative session count in snapshot"));
                }
                LoadStage::Sessions(n)
            }
            LoadStage::Sessions(0) => LoadStage::AclCount,
            LoadStage::Sessions(n) => {
                let s = SnapshotSession::decode(r)?;
                self.sessions.insert(s.session_id, s.timeout);
                LoadStage::Sessions(n - 1)
            }
            LoadStage::AclCount => {
                let n = r.read_i32()?;
                if n < 0 {
                    return Err(DecodeError::Invalid("negative ACL cache size in snapshot"));
                }
                LoadStage::Acls(n)
            }
            LoadStage::Acls(0) => LoadStage::Nodes,
            LoadStage::Acls(n) => {
                let entry = AclCacheEntry::decode(r)?;
                let list = self.tree.intern_acl(&entry.acls);
                self.acls.insert(entry.acl_ref, list);
                LoadStage::Acls(n - 1)
            }
            LoadStage::Nodes => {
                let path = String::decode(r)?;
                if path == "/" {
                    LoadStage::Done
                } else {
                    let node = DataNode::decode(r)?;
                    self.insert(&path, node)?;
                    LoadStage::Nodes
                }
            }
            LoadStage::Done => LoadStage::Done,
        };
        Ok(())
    }

    fn insert(&mut self, path: &str, node: DataNode) -> Result<(), DecodeError> {
        let acl = if node.acl_ref == OPEN_ACL_REF {
            self.open_acl.clone()
        } else {
            self.acls
                .get(&node.acl_ref)
                .cloned()
                .ok_or(DecodeError::Invalid(
                    "snapshot node refers to an unknown ACL",
                ))?
        };
        let tree_path = if path.is_empty() { tree::ROOT } else { path };
        if tree_path != tree::ROOT && self.tree.get(tree::ROOT).is_none() {
            return Err(DecodeError::Invalid(
                "snapshot nodes do not start with the root",
            ));
        }
        if self.tree.contains(tree_path) {
            return Err(DecodeError::Invalid("snapshot holds a node twice"));
        }
        self.tree
            .insert_loaded(tree_path, Node::new(node.data, acl, node.stat))
            .map_err(|()| DecodeError::Invalid("snapshot node precedes its parent"))
    }

    /// The tree and sessions, once the whole body was fed.
    pub fn finish(self) -> Result<(DataTree, BTreeMap<SessionId, i32>), DecodeError> {
        if self.stage != LoadStage::Done || !self.pending.is_empty() {
            return Err(DecodeError::Invalid(
                "snapshot body ends before its terminator",
            ));
        }
        let mut tree = self.tree;
        if tree.get(tree::ROOT).is_none() {
            return Err(DecodeError::Invalid("snapshot has no root node"));
        }
        tree.ensure_special_nodes();
        tree.setup_quotas();
        Ok((tree, self.sessions))
    }
}

/// A snapshot body written in slices while the writer keeps applying txns
/// in between: a fuzzy snapshot, as Apache's (ZAB.md §9.4). Replaying the
/// txns after `start_zxid` onto what it loads gives the state they lead
/// to, because:
///
/// * a node created after the start (`czxid > start_zxid`) is left out with
///   its subtree (every node under it is younger still): replay creates
///   them all;
/// * every other node is written as it is when the walk reaches it; replay
///   redoes what changed after the start (set data and ACL carry absolute
///   versions, deletes of nodes already gone are no-ops);
/// * the ACL cache holds every list the tree holds at the start; a node
///   whose list is newer than that had a setACL after the start, which
///   replay redoes, so it is written with the open list meanwhile.
///
/// The walk is pre-order by name and resumes from a cursor of (path, last
/// child written) per level, so it survives any change between slices and
/// keeps only O(depth) state.
#[derive(Debug)]
pub struct SnapshotStream {
    start_zxid: i64,
    started: bool,
    done: bool,
    cache: AclCache,
    stack: Vec<Frame>,
}

#[derive(Debug)]
struct Frame {
    path: String,
    last_child: Option<String>,
}

impl SnapshotStream {
    /// A stream of the state the database is in now (its last applied
    /// zxid is where replay must start).
    pub fn new(db: &Database) -> Self {
        SnapshotStream {
            start_zxid: db.last_processed_zxid(),
            started: false,
            done: false,
            cache: AclCache::default(),
            stack: Vec::new(),
        }
    }

    pub fn start_zxid(&self) -> i64 {
        self.start_zxid
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Appends the next records to `buf` until it holds at least `budget`
    /// bytes or the body is complete. True once complete.
    pub fn fill(&mut self, db: &Database, buf: &mut BytesMut, budget: usize) -> bool {
        let tree = &db.tree;
        if !self.started {
            self.started = true;
            self.write_head(db, buf);
        }
        while !self.done && buf.len() < budget {
            let Some(frame) = self.stack.last_mut() else {
                buf.put_opt_string(Some("/"));
                self.done = true;
                break;
            };
            let parent = tree
                .get(&frame.path)
                .filter(|n| n.stat.czxid <= self.start_zxid);
            let Some(parent) = parent else {
                // Deleted (or recreated) since: replay deals with it.
                self.stack.pop();
                continue;
            };
            let Some(child) = parent.children.first_after(frame.last_child.as_deref()) else {
                self.stack.pop();
                continue;
            };
            frame.last_child = Some(child.to_string());
            let Some(node) = tree.get(child).filter(|n| n.stat.czxid <= self.start_zxid) else {
                continue;
            };
            write_node(&mut self.cache, child, node, buf);
            self.stack.push(Frame {
                path: child.to_string(),
                last_child: None,
            });
        }
        self.done
    }

    /// Sessions, the ACL cache, and the root.
    fn write_head(&mut self, db: &Database, buf: &mut BytesMut) {
        buf.put_i32(db.sessions.len() as i32);
        for (&session_id, &timeout) in &db.sessions {
            SnapshotSession {
                session_id,
                timeout,
            }
            .encode(buf);
        }
        for list in db.tree.acl_lists() {
            self.cache.reference(list);
        }
        self.cache.entries.encode(buf);
        if let Some(root) = db.tree.get(tree::ROOT) {
            write_node(&mut self.cache, tree::ROOT, root, buf);
            self.stack.push(Frame {
                path: tree::ROOT.to_string(),
                last_child: None,
            });
        }
    }
}

/// One node record, its ACL given by the cache (see [`SnapshotStream`]
/// for a list the cache lacks).
fn write_node(cache: &mut AclCache, path: &str, node: &Node, buf: &mut BytesMut) {
    buf.put_opt_string(Some(snapshot_path(path)));
    buf.put_opt_buffer(node.data.as_deref());
    buf.put_i64(cache.existing(&node.acl).unwrap_or(OPEN_ACL_REF));
    node.stat.encode(buf);
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

    /// A database from a body a [`SnapshotLoader`] read completely, taken
    /// at `zxid` (for a fuzzy one, where replay starts).
    pub fn from_loader(
        config: DbConfig,
        loader: SnapshotLoader,
        zxid: i64,
    ) -> Result<Self, DecodeError> {
        let (tree, sessions) = loader.finish()?;
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

    fn sample_db() -> Database {
        let mut db = Database::new(DbConfig::default());
        db.tree = sample_tree();
        db.sessions.insert(7, 4000);
        db.last_processed_zxid = 3;
        db
    }

    /// The whole body of a stream, `budget` bytes at a time, with
    /// `between` run on the database after each slice.
    fn stream_body(
        db: &mut Database,
        budget: usize,
        mut between: impl FnMut(&mut Database),
    ) -> Bytes {
        let mut stream = SnapshotStream::new(db);
        let mut body = BytesMut::new();
        loop {
            let mut chunk = BytesMut::new();
            let done = stream.fill(db, &mut chunk, budget);
            body.extend_from_slice(&chunk);
            if done {
                return body.freeze();
            }
            between(db);
        }
    }

    #[test]
    fn a_stream_of_a_still_tree_loads_as_the_same_tree() {
        let mut db = sample_db();
        let streamed = stream_body(&mut db, 1, |_| {});
        let (tree, sessions) = deserialize(false, &mut Reader::new(streamed)).unwrap();
        assert_eq!(tree.len(), db.tree.len());
        for path in ["/", "/a", "/a/b", "/c", "/zookeeper/config"] {
            assert_eq!(tree.get(path), db.tree.get(path), "{path}");
        }
        assert_eq!(sessions, db.sessions);
    }

    #[test]
    fn a_loader_fed_byte_by_byte_builds_the_same_tree() {
        let db = sample_db();
        let mut whole = BytesMut::new();
        db.serialize_snapshot(&mut whole);
        let mut loader = SnapshotLoader::new(false);
        for b in whole.iter() {
            loader.feed(&[*b]).unwrap();
        }
        assert!(loader.is_complete());
        let (tree, sessions) = loader.finish().unwrap();
        assert_eq!(tree.len(), db.tree.len());
        assert_eq!(tree.get("/a/b"), db.tree.get("/a/b"));
        assert_eq!(sessions.get(&7), Some(&4000));
    }

    #[test]
    fn a_loader_refuses_a_body_cut_short() {
        let db = sample_db();
        let mut whole = BytesMut::new();
        db.serialize_snapshot(&mut whole);
        let mut loader = SnapshotLoader::new(false);
        loader.feed(&whole[..whole.len() - 3]).unwrap();
        assert!(loader.finish().is_err());
    }

    #[test]
    fn nodes_created_after_the_start_are_left_to_replay_and_deleted_ones_skipped() {
        let mut db = sample_db();
        let start = db.last_processed_zxid();
        let mut round = 0;
        let body = stream_body(&mut db, 1, |db| {
            round += 1;
            if round == 1 {
                db.tree.delete("/c", start + 1).unwrap();
                db.tree
                    .create("/d", None, Acl::open_unsafe(), 0, -1, start + 2, 40)
                    .unwrap();
                db.tree
                    .create("/a/z", None, Acl::open_unsafe(), 0, -1, start + 3, 41)
                    .unwrap();
            }
        });
        let (tree, _) = deserialize(false, &mut Reader::new(body)).unwrap();
        assert!(tree.get("/a/b").is_some(), "existing nodes are written");
        assert!(
            tree.get("/c").is_none(),
            "deleted before the walk reached it"
        );
        assert!(
            tree.get("/d").is_none(),
            "younger than the start: replay creates it"
        );
        assert!(tree.get("/a/z").is_none());
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
