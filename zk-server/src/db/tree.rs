//! The data tree: znodes with their persisted stat, children, ACLs, the
//! ephemerals of each session, containers, TTL nodes and quota usage
//! (SEMANTICS.md §1, §8, §9; Apache's `DataTree`).
//!
//! Mutations here are the *apply* rules of ZAB.md §9.3: they trust the
//! txn (validation happened in prep) and only fail with NoNode/NodeExists,
//! which log replay after a fuzzy snapshot tolerates.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use zk_proto::{Acl, ErrorCode, Stat, StatPersisted};

use super::acl_list::{AclInterner, AclList};
use super::java_order::JavaHashSet;
use super::path;
use super::quota::{self, StatsTrack};
use super::SessionId;

pub const ROOT: &str = "/";
pub const ZOOKEEPER: &str = "/zookeeper";
pub const CONFIG: &str = "/zookeeper/config";

/// The persisted `ephemeralOwner` of a container.
pub const CONTAINER_OWNER: i64 = i64::MIN;
/// Top byte of a TTL node's persisted owner.
const EXTENDED_MASK: i64 = 0xff00_0000_0000_0000_u64 as i64;
/// The low 40 bits of a TTL owner hold the TTL in milliseconds.
const TTL_VALUE_MASK: i64 = 0x0000_00ff_ffff_ffff;
/// The largest TTL a node may have (2^40 − 1 ms).
pub const MAX_TTL: i64 = TTL_VALUE_MASK;

/// What a persisted `ephemeralOwner` says the node is (`EphemeralType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Persistent,
    Ephemeral(SessionId),
    Container,
    Ttl(i64),
}

impl NodeKind {
    /// Decodes an owner. TTL owners are only recognised with extended
    /// types enabled; otherwise they read as an ordinary session owner,
    /// as Apache has it.
    pub fn of(owner: i64, extended_types: bool) -> NodeKind {
        if owner == CONTAINER_OWNER {
            NodeKind::Container
        } else if extended_types && owner & EXTENDED_MASK == EXTENDED_MASK {
            NodeKind::Ttl(owner & TTL_VALUE_MASK)
        } else if owner == 0 {
            NodeKind::Persistent
        } else {
            NodeKind::Ephemeral(owner)
        }
    }
}

/// The persisted owner of a TTL node.
pub fn ttl_owner(ttl: i64) -> i64 {
    EXTENDED_MASK | (ttl & TTL_VALUE_MASK)
}

/// `DataTree.createStat`: a fresh node's persisted stat.
pub fn new_stat(zxid: i64, time: i64, owner: i64) -> StatPersisted {
    StatPersisted {
        czxid: zxid,
        mzxid: zxid,
        ctime: time,
        mtime: time,
        version: 0,
        cversion: 0,
        aversion: 0,
        ephemeral_owner: owner,
        pzxid: zxid,
    }
}

/// A node's path, shared between the tree's index, its parent's child set
/// and the ephemeral/container/TTL indexes (one allocation per node).
pub type NodePath = Arc<str>;

/// The children of a node, as their full paths in name order.
///
/// Full paths sort exactly as names do (all share the parent's prefix), so
/// the parent can reuse the child's own path allocation instead of a
/// separate name string. Leaves, most nodes, hold no set at all.
///
/// The set is boxed on purpose: 8 bytes in every node instead of 24, and
/// only parents pay for the extra allocation.
#[allow(clippy::box_collection)]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Children(Option<Box<BTreeSet<NodePath>>>);

impl Children {
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |set| set.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, child_path: &str) -> bool {
        self.0.as_ref().is_some_and(|set| set.contains(child_path))
    }

    /// The children's full paths, in name order.
    pub fn paths(&self) -> impl DoubleEndedIterator<Item = &str> {
        self.0.iter().flat_map(|set| set.iter().map(|p| &**p))
    }

    /// The children's names, in order.
    pub fn names(&self) -> impl DoubleEndedIterator<Item = &str> {
        self.paths().map(path::name)
    }

    /// The first child after `after` in name order (the first of all for
    /// `None`). `after` need not be a child any more, so a walk cut into
    /// slices can resume from it while the set changes (db/fuzzy.rs,
    /// db/snapshot.rs).
    pub fn first_after(&self, after: Option<&str>) -> Option<&NodePath> {
        use std::ops::Bound::{Excluded, Unbounded};
        let set = self.0.as_ref()?;
        let lower = after.map_or(Unbounded, Excluded);
        set.range::<str, _>((lower, Unbounded)).next()
    }

    fn insert(&mut self, child_path: NodePath) -> bool {
        self.0.get_or_insert_with(Box::default).insert(child_path)
    }

    fn remove(&mut self, child_path: &str) {
        if let Some(set) = self.0.as_mut() {
            set.remove(child_path);
            if set.is_empty() {
                self.0 = None;
            }
        }
    }
}

/// One znode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// `None` when created with null data (it reads back as null).
    pub data: Option<Bytes>,
    pub acl: AclList,
    pub stat: StatPersisted,
    pub children: Children,
}

impl Node {
    pub fn new(data: Option<Bytes>, acl: AclList, stat: StatPersisted) -> Self {
        Node {
            data,
            acl,
            stat,
            children: Children::default(),
        }
    }

    pub fn data_len(&self) -> usize {
        self.data.as_ref().map_or(0, Bytes::len)
    }

    /// The client-visible Stat (SEMANTICS.md §1.1): cversion counts
    /// deletes too, containers and TTL nodes show no owner.
    pub fn client_stat(&self, extended_types: bool) -> Stat {
        let s = &self.stat;
        let num_children = i32::try_from(self.children.len()).unwrap_or(i32::MAX);
        let owner = match NodeKind::of(s.ephemeral_owner, extended_types) {
            NodeKind::Ephemeral(id) => id,
            _ => 0,
        };
        Stat {
            czxid: s.czxid,
            mzxid: s.mzxid,
            ctime: s.ctime,
            mtime: s.mtime,
            version: s.version,
            cversion: s.cversion.wrapping_mul(2).wrapping_sub(num_children),
            aversion: s.aversion,
            ephemeral_owner: owner,
            data_length: i32::try_from(self.data_len()).unwrap_or(i32::MAX),
            num_children,
            pzxid: s.pzxid,
        }
    }
}

/// The tree and its indexes.
///
/// Memory per znode matters (a tree of 100k nodes should cost little more
/// than its data): nodes are boxed so the hash table's slots stay small
/// whatever its load factor, each path is stored once ([`NodePath`]),
/// ACL lists are shared ([`AclInterner`]) and data is an exact-size copy.
#[derive(Debug, Clone)]
pub struct DataTree {
    nodes: HashMap<NodePath, Box<Node>>,
    acls: AclInterner,
    /// Per session, as Apache's `HashSet` holds them (its order reaches
    /// clients: [`JavaHashSet`]). A session's set stays, empty or not,
    /// until the session closes, as Apache's does.
    ephemerals: HashMap<SessionId, JavaHashSet<NodePath>>,
    containers: BTreeSet<NodePath>,
    ttls: BTreeSet<NodePath>,
    /// Paths with a `zookeeper_limits` node (Apache's quota trie).
    quota_roots: BTreeSet<String>,
    extended_types: bool,
    /// Σ (path length + data length), as Apache's approximate data size.
    data_size: i64,
}

/// An exact-size copy of a node's data. Decoded requests, proposals and
/// snapshot files hand us slices of a larger shared buffer (a connection's
/// read buffer holds several frames); storing such a slice would keep the
/// whole buffer alive for as long as the node lives.
fn owned_data(data: Option<Bytes>) -> Option<Bytes> {
    data.map(|d| Bytes::copy_from_slice(&d))
}

fn node_size(path: &str, data_len: usize) -> i64 {
    (path.len() + data_len) as i64
}

impl DataTree {
    /// A fresh tree: `/`, `/zookeeper`, `/zookeeper/quota` (all open) and
    /// `/zookeeper/config` (world:anyone:r, aversion -1), SEMANTICS.md §1.3.
    pub fn new(extended_types: bool) -> Self {
        let mut tree = DataTree::empty(extended_types);
        let root = tree.special_node(&Acl::open_unsafe());
        tree.insert_raw(Arc::from(ROOT), root);
        tree.ensure_special_nodes();
        tree
    }

    /// An empty tree to be filled by [`DataTree::insert_loaded`].
    pub(crate) fn empty(extended_types: bool) -> Self {
        DataTree {
            nodes: HashMap::new(),
            acls: AclInterner::default(),
            ephemerals: HashMap::new(),
            containers: BTreeSet::new(),
            ttls: BTreeSet::new(),
            quota_roots: BTreeSet::new(),
            extended_types,
            data_size: 0,
        }
    }

    /// Recreates `/zookeeper`, `/zookeeper/quota`, `/zookeeper/config`
    /// where missing (they always exist, SEMANTICS.md §10).
    pub(crate) fn ensure_special_nodes(&mut self) {
        for (path, acl) in [
            (ZOOKEEPER, Acl::open_unsafe()),
            (quota::QUOTA_ROOT, Acl::open_unsafe()),
            (CONFIG, Acl::read_unsafe()),
        ] {
            if self.nodes.contains_key(path) {
                continue;
            }
            let mut node = self.special_node(&acl);
            if path == CONFIG {
                node.stat.aversion = -1;
            }
            let path: NodePath = Arc::from(path);
            if let Some(parent) = self.nodes.get_mut(path::parent(&path)) {
                parent.children.insert(Arc::clone(&path));
            }
            self.insert_raw(path, node);
        }
    }

    fn special_node(&mut self, acl: &[Acl]) -> Node {
        Node::new(
            Some(Bytes::new()),
            self.acls.intern(acl),
            StatPersisted::default(),
        )
    }

    fn insert_raw(&mut self, path: NodePath, node: Node) {
        self.data_size += node_size(&path, node.data_len());
        self.nodes.insert(path, Box::new(node));
    }

    /// The tree's shared copy of an ACL list.
    pub fn intern_acl(&mut self, acl: &[Acl]) -> AclList {
        self.acls.intern(acl)
    }

    /// Distinct ACL lists held (Apache's ACL cache size).
    /// Every distinct ACL list the tree holds (and perhaps a few no node
    /// uses any more), for a snapshot's ACL cache.
    pub fn acl_lists(&self) -> impl Iterator<Item = &AclList> {
        self.acls.lists()
    }

    pub fn acl_list_count(&self) -> usize {
        self.acls.len()
    }

    pub fn extended_types(&self) -> bool {
        self.extended_types
    }

    /// Apache's tree holds the root under `""` as well as `/` (the snapshot
    /// writes it as `""`), so reads of the empty path answer with the root.
    /// Writes never get here with `""`: path validation refuses it first.
    fn lookup_key(path: &str) -> &str {
        if path.is_empty() {
            "/"
        } else {
            path
        }
    }

    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(Self::lookup_key(path)).map(|n| &**n)
    }

    pub fn contains(&self, path: &str) -> bool {
        self.nodes.contains_key(Self::lookup_key(path))
    }

    /// The client-visible Stat of a node.
    pub fn stat(&self, path: &str) -> Option<Stat> {
        self.get(path).map(|n| n.client_stat(self.extended_types))
    }

    pub fn kind(&self, node: &Node) -> NodeKind {
        NodeKind::of(node.stat.ephemeral_owner, self.extended_types)
    }

    /// Nodes, counting the root once.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Never true: the root always exists.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The node count Apache reports in `srvr`/`mntr` (`zk_znode_count`),
    /// where the root is counted twice (fresh server: 5).
    pub fn apache_node_count(&self) -> usize {
        self.nodes.len() + 1
    }

    pub fn approximate_data_size(&self) -> i64 {
        self.data_size
    }

    /// getAllChildrenNumber: every node below `path`, at any depth.
    pub fn descendant_count(&self, path: &str) -> usize {
        let mut count = 0;
        let mut stack = vec![path];
        while let Some(p) = stack.pop() {
            if let Some(node) = self.nodes.get(p) {
                count += node.children.len();
                stack.extend(node.children.paths());
            }
        }
        count
    }

    /// The paths of a session's ephemerals, sorted.
    pub fn ephemerals_of(&self, session: SessionId) -> Vec<String> {
        let mut paths = self.ephemerals_in_apache_order(session);
        paths.sort_unstable();
        paths
    }

    /// The paths of a session's ephemerals in the order Apache hands them
    /// out: a copy of its per-session `HashSet` (`DataTree.getEphemerals`),
    /// which closeSession deletes in and getEphemerals lists in.
    pub fn ephemerals_in_apache_order(&self, session: SessionId) -> Vec<String> {
        self.ephemeral_set_copy(session)
            .iteration_order()
            .into_iter()
            .map(|p| p.to_string())
            .collect()
    }

    /// A copy of a session's ephemeral set, as `DataTree.getEphemerals`
    /// returns it (closeSession's prep then edits the copy).
    pub fn ephemeral_set_copy(&self, session: SessionId) -> JavaHashSet<NodePath> {
        self.ephemerals
            .get(&session)
            .map(JavaHashSet::copy)
            .unwrap_or_default()
    }

    /// Forgets a closed session's ephemeral set (Apache removes it when the
    /// closeSession txn is applied, whatever it still holds).
    pub fn forget_session_ephemerals(&mut self, session: SessionId) {
        self.ephemerals.remove(&session);
    }

    /// Sessions owning at least one ephemeral.
    pub fn sessions_with_ephemerals(&self) -> Vec<SessionId> {
        self.ephemerals
            .iter()
            .filter(|(_, set)| !set.is_empty())
            .map(|(&s, _)| s)
            .collect()
    }

    pub fn ephemeral_count(&self) -> usize {
        self.ephemerals.values().map(JavaHashSet::len).sum()
    }

    pub fn containers(&self) -> impl Iterator<Item = &str> {
        self.containers.iter().map(|p| &**p)
    }

    pub fn ttls(&self) -> impl Iterator<Item = &str> {
        self.ttls.iter().map(|p| &**p)
    }

    /// What the container manager should delete now (`ContainerManager.
    /// getCandidates`): childless containers that once had a child (or,
    /// when `max_never_used_ms` ≠ 0, never did and are older than that),
    /// and childless TTL nodes unmodified for longer than their TTL.
    pub fn expired_containers_and_ttls(&self, now_ms: i64, max_never_used_ms: i64) -> Vec<String> {
        let mut candidates = Vec::new();
        for path in &self.containers {
            let Some(node) = self.nodes.get(path) else {
                continue;
            };
            if !node.children.is_empty() {
                continue;
            }
            let elapsed = now_ms.saturating_sub(node.stat.mtime);
            if node.stat.cversion > 0 || (max_never_used_ms != 0 && elapsed > max_never_used_ms) {
                candidates.push(path.to_string());
            }
        }
        for path in &self.ttls {
            let Some(node) = self.nodes.get(path) else {
                continue;
            };
            if let NodeKind::Ttl(ttl) = self.kind(node) {
                let elapsed = now_ms.saturating_sub(node.stat.mtime);
                if node.children.is_empty() && ttl != 0 && elapsed > ttl {
                    candidates.push(path.to_string());
                }
            }
        }
        candidates
    }

    fn index_kind(&mut self, path: &NodePath, owner: i64) {
        match NodeKind::of(owner, self.extended_types) {
            NodeKind::Container => {
                self.containers.insert(Arc::clone(path));
            }
            NodeKind::Ttl(_) => {
                self.ttls.insert(Arc::clone(path));
            }
            NodeKind::Ephemeral(session) => {
                self.ephemerals
                    .entry(session)
                    .or_default()
                    .insert(Arc::clone(path));
            }
            NodeKind::Persistent => {}
        }
    }

    fn unindex_kind(&mut self, path: &str, owner: i64) {
        match NodeKind::of(owner, self.extended_types) {
            NodeKind::Container => {
                self.containers.remove(path);
            }
            NodeKind::Ttl(_) => {
                self.ttls.remove(path);
            }
            NodeKind::Ephemeral(session) => {
                if let Some(set) = self.ephemerals.get_mut(&session) {
                    set.remove(path);
                }
            }
            NodeKind::Persistent => {}
        }
    }

    /// Applies a create (`DataTree.createNode`). `parent_cversion` is the
    /// parent's new persisted cversion (-1: current + 1); it only ever moves
    /// forward, and pzxid moves with it. On NodeExists (replay after a fuzzy
    /// snapshot) the parent's cversion/pzxid are still brought forward.
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        &mut self,
        path: &str,
        data: Option<Bytes>,
        acl: impl AsRef<[Acl]>,
        owner: i64,
        parent_cversion: i32,
        zxid: i64,
        time: i64,
    ) -> Result<Stat, ErrorCode> {
        let parent = self
            .nodes
            .get_mut(path::parent(path))
            .ok_or(ErrorCode::NoNode)?;
        let new_cversion = if parent_cversion == -1 {
            parent.stat.cversion.wrapping_add(1)
        } else {
            parent_cversion
        };
        if new_cversion > parent.stat.cversion {
            parent.stat.cversion = new_cversion;
            parent.stat.pzxid = zxid;
        }
        if parent.children.contains(path) {
            return Err(ErrorCode::NodeExists);
        }
        let shared_path: NodePath = Arc::from(path);
        parent.children.insert(Arc::clone(&shared_path));
        let data_len = data.as_ref().map_or(0, Bytes::len);
        let acl = self.acls.intern(acl.as_ref());
        let node = Node::new(owned_data(data), acl, new_stat(zxid, time, owner));
        let stat = node.client_stat(self.extended_types);
        self.index_kind(&shared_path, owner);
        self.insert_raw(shared_path, node);
        self.after_create_for_quota(path);
        if let Some(prefix) = self.quota_prefix(path) {
            self.add_quota_usage(&prefix, 1, data_len as i64);
        }
        Ok(stat)
    }

    /// Applies a delete (`DataTree.deleteNode`). The parent's pzxid moves
    /// forward even when the child is already gone (fuzzy-snapshot replay).
    /// Returns the removed node.
    pub fn delete(&mut self, path: &str, zxid: i64) -> Result<Node, ErrorCode> {
        if path == ROOT {
            return Err(ErrorCode::BadArguments);
        }
        let parent_path = path::parent(path);
        let parent = self.nodes.get_mut(parent_path).ok_or(ErrorCode::NoNode)?;
        parent.children.remove(path);
        if zxid > parent.stat.pzxid {
            parent.stat.pzxid = zxid;
        }
        let node = *self.nodes.remove(path).ok_or(ErrorCode::NoNode)?;
        self.data_size -= node_size(path, node.data_len());
        self.unindex_kind(path, node.stat.ephemeral_owner);
        if parent_path.starts_with(ZOOKEEPER) && path::name(path) == quota::LIMIT_NODE {
            self.quota_roots.remove(quota::trim_quota_path(parent_path));
        }
        if let Some(prefix) = self.quota_prefix(path) {
            self.add_quota_usage(&prefix, -1, -(node.data_len() as i64));
        }
        Ok(node)
    }

    /// Applies a setData: data replaced, mzxid/mtime set, version = the
    /// txn's new version. Returns the Stat after the change.
    pub fn set_data(
        &mut self,
        path: &str,
        data: Option<Bytes>,
        version: i32,
        zxid: i64,
        time: i64,
    ) -> Result<Stat, ErrorCode> {
        let node = self.nodes.get_mut(path).ok_or(ErrorCode::NoNode)?;
        let old_len = node.data_len();
        node.data = owned_data(data);
        node.stat.mtime = time;
        node.stat.mzxid = zxid;
        node.stat.version = version;
        let new_len = node.data_len();
        let stat = node.client_stat(self.extended_types);
        self.data_size += new_len as i64 - old_len as i64;
        if let Some(prefix) = self.quota_prefix(path) {
            self.add_quota_usage(&prefix, 0, new_len as i64 - old_len as i64);
        }
        Ok(stat)
    }

    /// Applies a setACL: the ACL and aversion change, nothing else.
    pub fn set_acl(
        &mut self,
        path: &str,
        acl: impl AsRef<[Acl]>,
        version: i32,
    ) -> Result<Stat, ErrorCode> {
        if !self.nodes.contains_key(path) {
            return Err(ErrorCode::NoNode);
        }
        let acl = self.acls.intern(acl.as_ref());
        let node = self.nodes.get_mut(path).ok_or(ErrorCode::NoNode)?;
        node.acl = acl;
        node.stat.aversion = version;
        Ok(node.client_stat(self.extended_types))
    }

    /// Adds a node read from a snapshot. Its parent must already be there
    /// (snapshots are pre-order); `Err(())` when it is not.
    pub(crate) fn insert_loaded(&mut self, path: &str, mut node: Node) -> Result<(), ()> {
        node.data = owned_data(node.data.take());
        let shared_path: NodePath = Arc::from(path);
        if path != ROOT {
            let parent = self.nodes.get_mut(path::parent(path)).ok_or(())?;
            parent.children.insert(Arc::clone(&shared_path));
            self.index_kind(&shared_path, node.stat.ephemeral_owner);
        }
        self.insert_raw(shared_path, node);
        Ok(())
    }

    /// Rebuilds the quota roots and every stats node's usage from the tree
    /// (`DataTree.setupQuota`), after loading a snapshot.
    pub(crate) fn setup_quotas(&mut self) {
        let limit_suffix = format!("/{}", quota::LIMIT_NODE);
        let roots: Vec<String> = self
            .nodes
            .keys()
            .filter(|p| p.starts_with(quota::QUOTA_ROOT) && p.ends_with(&limit_suffix))
            .map(|p| quota::trim_quota_path(path::parent(p)).to_owned())
            .collect();
        for root in roots {
            self.quota_roots.insert(root.clone());
            self.refresh_quota_usage(&root);
        }
    }

    /// Visits every node parents-first (children in name order).
    pub fn for_each_preorder(&self, mut visit: impl FnMut(&str, &Node)) {
        let mut stack = vec![ROOT];
        while let Some(path) = stack.pop() {
            let Some(node) = self.nodes.get(path) else {
                continue;
            };
            visit(path, node);
            stack.extend(node.children.paths().rev());
        }
    }

    // ---- quotas (SEMANTICS.md §9) ----

    /// A new `zookeeper_limits` node makes its path a quota root; a new
    /// `zookeeper_stats` node is filled with the subtree's current usage.
    fn after_create_for_quota(&mut self, path: &str) {
        let parent = path::parent(path);
        if !parent.starts_with(quota::QUOTA_ROOT) {
            return;
        }
        let quota_path = quota::trim_quota_path(parent).to_owned();
        match path::name(path) {
            quota::LIMIT_NODE => {
                self.quota_roots.insert(quota_path);
            }
            quota::STAT_NODE => self.refresh_quota_usage(&quota_path),
            _ => {}
        }
    }

    /// The longest quota root that `path` lies in, `/` excluded.
    pub fn quota_prefix(&self, path: &str) -> Option<String> {
        self.quota_roots
            .iter()
            .filter(|root| root.as_str() != ROOT && path::is_in_subtree(path, root))
            .max_by_key(|root| root.len())
            .cloned()
    }

    /// The limits and current usage of the quota root `prefix`.
    pub fn quota_state(&self, prefix: &str) -> Option<(StatsTrack, StatsTrack)> {
        let limits = self.nodes.get(quota::limit_path(prefix).as_str())?;
        let usage = self.nodes.get(quota::stat_path(prefix).as_str())?;
        Some((
            StatsTrack::parse(limits.data.as_deref()),
            StatsTrack::parse(usage.data.as_deref()),
        ))
    }

    /// Rewrites a stats node's data in place: no txn, no Stat change, the
    /// same on every replica.
    fn write_stats_node(&mut self, prefix: &str, stats: &StatsTrack) {
        let stat_path = quota::stat_path(prefix);
        if let Some(node) = self.nodes.get_mut(stat_path.as_str()) {
            let old_len = node.data_len();
            let text = Bytes::from(stats.to_text().into_bytes());
            let new_len = text.len();
            node.data = Some(text);
            self.data_size += new_len as i64 - old_len as i64;
        }
    }

    fn add_quota_usage(&mut self, prefix: &str, count_diff: i64, bytes_diff: i64) {
        let Some(node) = self.nodes.get(quota::stat_path(prefix).as_str()) else {
            return;
        };
        let mut stats = StatsTrack::parse(node.data.as_deref());
        stats.add(count_diff, bytes_diff);
        self.write_stats_node(prefix, &stats);
    }

    fn refresh_quota_usage(&mut self, prefix: &str) {
        let (mut count, mut bytes) = (0i64, 0i64);
        let mut stack = vec![prefix];
        while let Some(p) = stack.pop() {
            if let Some(node) = self.nodes.get(p) {
                count += 1;
                bytes += node.data_len() as i64;
                stack.extend(node.children.paths());
            }
        }
        self.write_stats_node(prefix, &StatsTrack::usage(count, bytes));
    }

    /// Would adding `count_diff` nodes / `bytes_diff` bytes under `path`
    /// break a hard quota? (`ZooKeeperServer.checkQuota`; only called with
    /// `enforceQuota`.)
    pub fn check_quota(
        &self,
        path: &str,
        count_diff: i64,
        bytes_diff: i64,
    ) -> Result<(), ErrorCode> {
        let Some(prefix) = self.quota_prefix(path) else {
            return Ok(());
        };
        let Some((limits, usage)) = self.quota_state(&prefix) else {
            return Ok(());
        };
        let count_limit = limits.count_hard_limit();
        if count_diff != 0
            && count_limit > -1
            && usage.count().saturating_add(count_diff) > count_limit
        {
            return Err(ErrorCode::QuotaExceeded);
        }
        let byte_limit = limits.byte_hard_limit();
        if bytes_diff != 0
            && byte_limit > -1
            && usage.bytes().saturating_add(bytes_diff) > byte_limit
        {
            return Err(ErrorCode::QuotaExceeded);
        }
        Ok(())
    }

    /// Sessions and their ephemerals, for `dump`.
    pub fn ephemerals_by_session(&self) -> BTreeMap<SessionId, Vec<String>> {
        self.sessions_with_ephemerals()
            .into_iter()
            .map(|s| (s, self.ephemerals_of(s)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> DataTree {
        DataTree::new(true)
    }

    fn create(t: &mut DataTree, path: &str, owner: i64, zxid: i64) -> Stat {
        t.create(
            path,
            Some(Bytes::from_static(b"d")),
            Acl::open_unsafe(),
            owner,
            -1,
            zxid,
            1000 + zxid,
        )
        .unwrap()
    }

    #[test]
    fn a_fresh_tree_has_the_special_nodes_with_observed_stats() {
        let t = tree();
        assert_eq!(t.stat("/").unwrap().cversion, -1);
        assert_eq!(t.stat("/").unwrap().num_children, 1);
        let zk = t.stat("/zookeeper").unwrap();
        assert_eq!((zk.cversion, zk.num_children), (-2, 2));
        assert_eq!(t.stat("/zookeeper/config").unwrap().aversion, -1);
        assert_eq!(t.get("/zookeeper/config").unwrap().acl, Acl::read_unsafe());
        assert_eq!(t.apache_node_count(), 5);
        assert_eq!(t.descendant_count("/"), 3);
    }

    #[test]
    fn reads_of_the_empty_path_answer_with_the_root() {
        let t = tree();
        assert!(t.contains(""));
        assert_eq!(t.stat(""), t.stat("/"));
    }

    #[test]
    fn create_sets_the_node_stat_and_bumps_the_parent() {
        let mut t = tree();
        let stat = create(&mut t, "/a", 0, 7);
        assert_eq!((stat.czxid, stat.mzxid, stat.pzxid), (7, 7, 7));
        assert_eq!((stat.ctime, stat.mtime), (1007, 1007));
        assert_eq!((stat.version, stat.cversion, stat.aversion), (0, 0, 0));
        assert_eq!(stat.data_length, 1);
        let root = t.get("/").unwrap();
        assert_eq!((root.stat.cversion, root.stat.pzxid), (1, 7));
    }

    #[test]
    fn visible_cversion_counts_creates_and_deletes() {
        let mut t = tree();
        create(&mut t, "/t", 0, 1);
        create(&mut t, "/t/a", 0, 2);
        create(&mut t, "/t/b", 0, 3);
        t.delete("/t/a", 4).unwrap();
        let s = t.stat("/t").unwrap();
        assert_eq!((s.cversion, s.num_children, s.pzxid), (3, 1, 4));
        assert_eq!(
            t.get("/t").unwrap().stat.cversion,
            2,
            "persisted counts creates only"
        );
    }

    #[test]
    fn containers_and_ttl_nodes_hide_their_owner_marker() {
        let mut t = tree();
        assert_eq!(create(&mut t, "/c", CONTAINER_OWNER, 1).ephemeral_owner, 0);
        assert_eq!(create(&mut t, "/t", ttl_owner(500), 2).ephemeral_owner, 0);
        assert_eq!(create(&mut t, "/e", 0x42, 3).ephemeral_owner, 0x42);
        assert_eq!(t.containers().collect::<Vec<_>>(), ["/c"]);
        assert_eq!(t.ttls().collect::<Vec<_>>(), ["/t"]);
        assert_eq!(t.ephemerals_of(0x42), ["/e"]);
    }

    #[test]
    fn replayed_create_of_an_existing_node_still_moves_the_parent_forward() {
        let mut t = tree();
        create(&mut t, "/a", 0, 1);
        let err = t
            .create("/a", None, Acl::open_unsafe(), 0, 5, 9, 0)
            .unwrap_err();
        assert_eq!(err, ErrorCode::NodeExists);
        let root = t.get("/").unwrap();
        assert_eq!((root.stat.cversion, root.stat.pzxid), (5, 9));
    }

    #[test]
    fn parent_cversion_never_moves_backwards() {
        let mut t = tree();
        create(&mut t, "/p", 0, 1);
        t.create("/p/a", None, vec![], 0, 4, 2, 0).unwrap();
        t.create("/p/b", None, vec![], 0, 2, 3, 0).unwrap();
        let p = t.get("/p").unwrap();
        assert_eq!((p.stat.cversion, p.stat.pzxid), (4, 2));
    }

    #[test]
    fn delete_of_a_missing_child_still_moves_parent_pzxid() {
        let mut t = tree();
        create(&mut t, "/p", 0, 1);
        assert_eq!(t.delete("/p/x", 5).unwrap_err(), ErrorCode::NoNode);
        assert_eq!(t.get("/p").unwrap().stat.pzxid, 5);
        assert_eq!(t.delete("/q/x", 6).unwrap_err(), ErrorCode::NoNode);
    }

    #[test]
    fn set_data_and_set_acl_touch_only_their_fields() {
        let mut t = tree();
        create(&mut t, "/a", 0, 1);
        let s = t.set_data("/a", None, 1, 2, 5000).unwrap();
        assert_eq!(
            (s.version, s.mzxid, s.mtime, s.czxid, s.data_length),
            (1, 2, 5000, 1, 0)
        );
        let s = t.set_acl("/a", Acl::read_unsafe(), 1).unwrap();
        assert_eq!((s.aversion, s.mzxid, s.version), (1, 2, 1));
        assert_eq!(t.get("/a").unwrap().data, None);
    }

    #[test]
    fn used_empty_containers_and_stale_ttl_nodes_are_candidates() {
        let mut t = tree();
        create(&mut t, "/fresh", CONTAINER_OWNER, 1);
        create(&mut t, "/used", CONTAINER_OWNER, 2);
        create(&mut t, "/used/x", 0, 3);
        create(&mut t, "/busy", CONTAINER_OWNER, 4);
        create(&mut t, "/busy/x", 0, 5);
        t.delete("/used/x", 6).unwrap();
        create(&mut t, "/ttl", ttl_owner(100), 7); // mtime 1007
        assert_eq!(t.expired_containers_and_ttls(1100, 0), ["/used"]);
        assert_eq!(t.expired_containers_and_ttls(1108, 0), ["/used", "/ttl"]);
        assert_eq!(
            t.expired_containers_and_ttls(1108, 50),
            ["/fresh", "/used", "/ttl"],
            "never-used containers expire only with maxNeverUsedIntervalMs"
        );
    }

    #[test]
    fn quota_stats_follow_creates_deletes_and_set_data() {
        let mut t = tree();
        create(&mut t, "/q", 0, 1);
        create(&mut t, "/q/a", 0, 2);
        create(&mut t, "/zookeeper/quota/q", 0, 3);
        t.create(
            "/zookeeper/quota/q/zookeeper_limits",
            Some(Bytes::from_static(b"count=10,bytes=-1")),
            vec![],
            0,
            -1,
            4,
            0,
        )
        .unwrap();
        t.create(
            "/zookeeper/quota/q/zookeeper_stats",
            Some(Bytes::from_static(b"junk")),
            vec![],
            0,
            -1,
            5,
            0,
        )
        .unwrap();
        let usage = |t: &DataTree| t.quota_state("/q").unwrap().1.to_text();
        assert_eq!(usage(&t), "count=2,bytes=2");
        create(&mut t, "/q/b", 0, 6);
        assert_eq!(usage(&t), "count=3,bytes=3");
        t.set_data("/q/b", Some(Bytes::from_static(b"12345")), 1, 7, 0)
            .unwrap();
        assert_eq!(usage(&t), "count=3,bytes=7");
        t.delete("/q/a", 8).unwrap();
        assert_eq!(usage(&t), "count=2,bytes=6");
        let stats_node = t.get("/zookeeper/quota/q/zookeeper_stats").unwrap();
        assert_eq!(stats_node.stat.mzxid, 5, "usage updates change no Stat");
    }

    #[test]
    fn hard_quota_limits_reject_growth() {
        let mut t = tree();
        create(&mut t, "/q", 0, 1);
        create(&mut t, "/zookeeper/quota/q", 0, 2);
        t.create(
            "/zookeeper/quota/q/zookeeper_limits",
            Some(Bytes::from_static(
                b"count=-1,bytes=-1=;byteHardLimit=4;countHardLimit=2",
            )),
            vec![],
            0,
            -1,
            3,
            0,
        )
        .unwrap();
        t.create(
            "/zookeeper/quota/q/zookeeper_stats",
            None,
            vec![],
            0,
            -1,
            4,
            0,
        )
        .unwrap();
        assert_eq!(t.check_quota("/q/a", 1, 1), Ok(()));
        create(&mut t, "/q/a", 0, 5);
        assert_eq!(t.check_quota("/q/b", 1, 0), Err(ErrorCode::QuotaExceeded));
        assert_eq!(t.check_quota("/q/a", 0, 3), Err(ErrorCode::QuotaExceeded));
        assert_eq!(t.check_quota("/other", 1, 100), Ok(()));
    }

    #[test]
    fn children_are_listed_by_name_in_order() {
        let mut t = tree();
        create(&mut t, "/p", 0, 1);
        for name in ["b", "a10", "a", "a2"] {
            create(&mut t, &format!("/p/{name}"), 0, 2);
        }
        let p = t.get("/p").unwrap();
        assert_eq!(
            p.children.names().collect::<Vec<_>>(),
            ["a", "a10", "a2", "b"]
        );
        assert_eq!(p.children.paths().next(), Some("/p/a"));
        assert!(p.children.contains("/p/a2"));
        t.delete("/p/a", 3).unwrap();
        assert_eq!(t.get("/p").unwrap().children.len(), 3);
    }

    #[test]
    fn nodes_with_equal_acls_share_one_list() {
        let mut t = tree();
        create(&mut t, "/a", 0, 1);
        create(&mut t, "/b", 0, 2);
        t.create("/r", None, Acl::read_unsafe(), 0, -1, 3, 0)
            .unwrap();
        let (a, b) = (&t.get("/a").unwrap().acl, &t.get("/b").unwrap().acl);
        assert!(a.ptr_eq(b));
        assert!(a.ptr_eq(&t.get("/").unwrap().acl), "the root is open too");
        assert!(t.get("/r").unwrap().acl.ptr_eq(&t.get(CONFIG).unwrap().acl));
        assert_eq!(t.acl_list_count(), 2);
    }

    #[test]
    fn stored_data_does_not_share_the_callers_buffer() {
        let mut t = tree();
        let buffer = Bytes::from(vec![7u8; 64]);
        t.create(
            "/a",
            Some(buffer.slice(0..8)),
            Acl::open_unsafe(),
            0,
            -1,
            1,
            0,
        )
        .unwrap();
        let stored = t.get("/a").unwrap().data.clone().unwrap();
        assert_eq!(stored, buffer.slice(0..8));
        assert!(
            !std::ptr::eq(stored.as_ptr(), buffer.as_ptr()),
            "an exact-size copy, not a slice pinning the whole buffer"
        );
    }

    #[test]
    fn data_size_is_path_plus_data_lengths() {
        let mut t = tree();
        let before = t.approximate_data_size();
        create(&mut t, "/ab", 0, 1);
        assert_eq!(t.approximate_data_size(), before + 3 + 1);
        t.delete("/ab", 2).unwrap();
        assert_eq!(t.approximate_data_size(), before);
    }
}
