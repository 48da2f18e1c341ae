//! Server-side watches (SEMANTICS.md §4): two tables, *data* and *child*,
//! each holding at most one entry per (path, connection) with a set of
//! modes. One-shot (standard) modes are consumed when they fire; persistent
//! and persistent-recursive modes stay until removed or the connection
//! closes. Recursive modes live in the data table only.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use zk_proto::{EventType, Id, KeeperState, WatcherEvent, WatcherType};

use super::{path, ConnId};

/// How a watch was registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchMode {
    /// exists / getData / getChildren with `watch = true`: one-shot.
    Standard,
    /// addWatch PERSISTENT.
    Persistent,
    /// addWatch PERSISTENT_RECURSIVE: also fires for every descendant.
    PersistentRecursive,
}

/// The modes one connection holds on one path in one table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Modes {
    standard: bool,
    persistent: bool,
    recursive: bool,
}

impl Modes {
    fn is_empty(self) -> bool {
        !(self.standard || self.persistent || self.recursive)
    }

    fn set(&mut self, mode: WatchMode, on: bool) {
        match mode {
            WatchMode::Standard => self.standard = on,
            WatchMode::Persistent => self.persistent = on,
            WatchMode::PersistentRecursive => self.recursive = on,
        }
    }

    fn has(self, mode: WatchMode) -> bool {
        match mode {
            WatchMode::Standard => self.standard,
            WatchMode::Persistent => self.persistent,
            WatchMode::PersistentRecursive => self.recursive,
        }
    }
}

/// One table: path → connection → modes, with the reverse index.
#[derive(Debug, Default, Clone)]
struct WatchTable {
    by_path: HashMap<String, BTreeMap<ConnId, Modes>>,
    by_conn: HashMap<ConnId, BTreeSet<String>>,
    /// Entries with a recursive mode; when zero, triggers skip the
    /// ancestor walk.
    recursive: usize,
}

impl WatchTable {
    fn add(&mut self, path: &str, conn: ConnId, mode: WatchMode) {
        let modes = self
            .by_path
            .entry(path.to_owned())
            .or_default()
            .entry(conn)
            .or_default();
        if mode == WatchMode::PersistentRecursive && !modes.recursive {
            self.recursive += 1;
        }
        modes.set(mode, true);
        self.by_conn
            .entry(conn)
            .or_default()
            .insert(path.to_owned());
    }

    fn modes(&self, path: &str, conn: ConnId) -> Modes {
        self.by_path
            .get(path)
            .and_then(|m| m.get(&conn))
            .copied()
            .unwrap_or_default()
    }

    /// Clears `modes` on (path, conn); true when any of them was set.
    fn remove(&mut self, path: &str, conn: ConnId, modes: &[WatchMode]) -> bool {
        let Some(entries) = self.by_path.get_mut(path) else {
            return false;
        };
        let Some(current) = entries.get_mut(&conn) else {
            return false;
        };
        let mut removed = false;
        for &mode in modes {
            if current.has(mode) {
                removed = true;
                current.set(mode, false);
                if mode == WatchMode::PersistentRecursive {
                    self.recursive -= 1;
                }
            }
        }
        if current.is_empty() {
            entries.remove(&conn);
            if entries.is_empty() {
                self.by_path.remove(path);
            }
            if let Some(paths) = self.by_conn.get_mut(&conn) {
                paths.remove(path);
                if paths.is_empty() {
                    self.by_conn.remove(&conn);
                }
            }
        }
        removed
    }

    fn remove_conn(&mut self, conn: ConnId) {
        let Some(paths) = self.by_conn.remove(&conn) else {
            return;
        };
        for path in paths {
            if let Some(entries) = self.by_path.get_mut(&path) {
                if let Some(modes) = entries.remove(&conn) {
                    if modes.recursive {
                        self.recursive -= 1;
                    }
                }
                if entries.is_empty() {
                    self.by_path.remove(&path);
                }
            }
        }
    }

    /// The connections an event on `path` reaches: every entry on the path
    /// itself (standard modes consumed), plus recursive entries on its
    /// ancestors.
    fn trigger(&mut self, path: &str) -> BTreeSet<ConnId> {
        let mut fired = BTreeSet::new();
        let mut consumed = Vec::new();
        if let Some(entries) = self.by_path.get(path) {
            for (&conn, modes) in entries {
                fired.insert(conn);
                if modes.standard {
                    consumed.push(conn);
                }
            }
        }
        for conn in consumed {
            self.remove(path, conn, &[WatchMode::Standard]);
        }
        if self.recursive > 0 {
            for ancestor in path::ancestors(path) {
                if let Some(entries) = self.by_path.get(ancestor) {
                    fired.extend(entries.iter().filter(|(_, m)| m.recursive).map(|(&c, _)| c));
                }
            }
        }
        fired
    }

    fn entry_count(&self) -> usize {
        self.by_path.values().map(BTreeMap::len).sum()
    }
}

/// Counts for `wchs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WatchSummary {
    pub connections: usize,
    pub paths: usize,
    pub watches: usize,
}

/// Both tables.
#[derive(Debug, Default, Clone)]
pub struct WatchManager {
    data: WatchTable,
    child: WatchTable,
}

/// A server-sent event (state is always SyncConnected).
pub fn event(event_type: EventType, path: &str) -> WatcherEvent {
    WatcherEvent {
        event_type: event_type.code(),
        state: KeeperState::SyncConnected.code(),
        path: path.to_owned(),
    }
}

impl WatchManager {
    pub fn new() -> Self {
        Self::default()
    }

    /// exists / getData with a watch.
    pub fn add_data_watch(&mut self, path: &str, conn: ConnId) {
        self.data.add(path, conn, WatchMode::Standard);
    }

    /// getChildren(2) with a watch.
    pub fn add_child_watch(&mut self, path: &str, conn: ConnId) {
        self.child.add(path, conn, WatchMode::Standard);
    }

    /// addWatch: PERSISTENT goes to both tables, RECURSIVE to data only.
    pub fn add_persistent(&mut self, path: &str, conn: ConnId, recursive: bool) {
        if recursive {
            self.data.add(path, conn, WatchMode::PersistentRecursive);
        } else {
            self.data.add(path, conn, WatchMode::Persistent);
            self.child.add(path, conn, WatchMode::Persistent);
        }
    }

    /// The (table, modes) pairs a WatcherType selects (SEMANTICS.md §4.4).
    fn selection(kind: WatcherType) -> [(bool, &'static [WatchMode]); 2] {
        const NONE: &[WatchMode] = &[];
        const STANDARD: &[WatchMode] = &[WatchMode::Standard];
        const PERSISTENT: &[WatchMode] = &[WatchMode::Persistent];
        const RECURSIVE: &[WatchMode] = &[WatchMode::PersistentRecursive];
        const ALL: &[WatchMode] = &[
            WatchMode::Standard,
            WatchMode::Persistent,
            WatchMode::PersistentRecursive,
        ];
        // (is_data_table, modes): first entry data table, second child.
        match kind {
            WatcherType::Children => [(true, NONE), (false, STANDARD)],
            WatcherType::Data => [(true, STANDARD), (false, NONE)],
            WatcherType::Persistent => [(true, PERSISTENT), (false, PERSISTENT)],
            WatcherType::PersistentRecursive => [(true, RECURSIVE), (false, NONE)],
            WatcherType::Any => [(true, ALL), (false, ALL)],
        }
    }

    /// checkWatches: does this connection hold a watch of `kind` on `path`?
    pub fn contains(&self, path: &str, conn: ConnId, kind: WatcherType) -> bool {
        Self::selection(kind).iter().any(|(is_data, modes)| {
            let table = if *is_data { &self.data } else { &self.child };
            let held = table.modes(path, conn);
            modes.iter().any(|&m| held.has(m))
        })
    }

    /// removeWatches: removes the selected watches; false when there were
    /// none (NoWatcher).
    pub fn remove(&mut self, path: &str, conn: ConnId, kind: WatcherType) -> bool {
        let mut removed = false;
        for (is_data, modes) in Self::selection(kind) {
            let table = if is_data {
                &mut self.data
            } else {
                &mut self.child
            };
            removed |= table.remove(path, conn, modes);
        }
        removed
    }

    /// Drops every watch of a closed connection.
    pub fn remove_connection(&mut self, conn: ConnId) {
        self.data.remove_conn(conn);
        self.child.remove_conn(conn);
    }

    /// Fires data watches for `event_type` on `path` (NodeCreated,
    /// NodeDataChanged, NodeDeleted). Returns the connections reached.
    pub fn trigger_data(&mut self, path: &str) -> BTreeSet<ConnId> {
        self.data.trigger(path)
    }

    /// Fires child watches on `path` (NodeChildrenChanged on a parent, or
    /// NodeDeleted on the node itself).
    pub fn trigger_child(&mut self, path: &str) -> BTreeSet<ConnId> {
        self.child.trigger(path)
    }

    /// Data + child watch entries (`zk_watch_count`).
    pub fn watch_count(&self) -> usize {
        self.data.entry_count() + self.child.entry_count()
    }

    /// `wchs`: counts from the data table, as Apache reports them.
    pub fn summary(&self) -> WatchSummary {
        WatchSummary {
            connections: self.data.by_conn.len(),
            paths: self.data.by_path.len(),
            watches: self.data.entry_count(),
        }
    }

    /// `wchc`: data-watched paths per connection.
    pub fn by_connection(&self) -> BTreeMap<ConnId, Vec<String>> {
        self.data
            .by_conn
            .iter()
            .map(|(&c, paths)| (c, paths.iter().cloned().collect()))
            .collect()
    }

    /// The connections with data watches (for a listing taken in pages).
    pub fn data_watch_connections(&self) -> Vec<ConnId> {
        self.data.by_conn.keys().copied().collect()
    }

    /// One page of `conn`'s data-watched paths, in order, after `after`
    /// (exclusive), at most `limit` of them: the writer copies a listing
    /// of any size a page per turn (wchc/wchp, issue 10).
    pub fn data_watches_page(
        &self,
        conn: ConnId,
        after: Option<&str>,
        limit: usize,
    ) -> Vec<String> {
        use std::ops::Bound;
        let Some(paths) = self.data.by_conn.get(&conn) else {
            return Vec::new();
        };
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        paths
            .range::<str, _>((from, Bound::Unbounded))
            .take(limit)
            .cloned()
            .collect()
    }

    /// `wchp`: connections per data-watched path.
    pub fn by_path(&self) -> BTreeMap<String, Vec<ConnId>> {
        self.data
            .by_path
            .iter()
            .map(|(p, conns)| (p.clone(), conns.keys().copied().collect()))
            .collect()
    }
}

/// The identities of each connection, remembered so that watch delivery
/// can apply the READ check of CVE-2024-23944 (SEMANTICS.md §4.2).
#[derive(Debug, Default, Clone)]
pub struct ConnectionAuth {
    ids: HashMap<ConnId, Vec<Id>>,
}

impl ConnectionAuth {
    pub fn set(&mut self, conn: ConnId, ids: &[Id]) {
        match self.ids.get_mut(&conn) {
            Some(current) if current.as_slice() == ids => {}
            _ => {
                self.ids.insert(conn, ids.to_vec());
            }
        }
    }

    pub fn get(&self, conn: ConnId) -> &[Id] {
        self.ids.get(&conn).map_or(&[], Vec::as_slice)
    }

    pub fn remove(&mut self, conn: ConnId) {
        self.ids.remove(&conn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(conns: &[ConnId]) -> BTreeSet<ConnId> {
        conns.iter().copied().collect()
    }

    #[test]
    fn data_watches_are_listed_page_by_page_in_path_order() {
        let mut w = WatchManager::new();
        for p in ["/c", "/a", "/b", "/d"] {
            w.add_data_watch(p, 7);
        }
        w.add_child_watch("/x", 7);
        assert_eq!(w.data_watch_connections(), vec![7]);
        assert_eq!(w.data_watches_page(7, None, 3), ["/a", "/b", "/c"]);
        assert_eq!(w.data_watches_page(7, Some("/c"), 3), ["/d"]);
        assert!(w.data_watches_page(7, Some("/d"), 3).is_empty());
        assert!(w.data_watches_page(8, None, 3).is_empty());
    }

    #[test]
    fn standard_watches_fire_once() {
        let mut w = WatchManager::new();
        w.add_data_watch("/a", 1);
        assert_eq!(w.trigger_data("/a"), set(&[1]));
        assert!(w.trigger_data("/a").is_empty());
        assert_eq!(w.watch_count(), 0);
    }

    #[test]
    fn persistent_watches_stay_and_keep_firing() {
        let mut w = WatchManager::new();
        w.add_persistent("/a", 1, false);
        assert_eq!(w.trigger_data("/a"), set(&[1]));
        assert_eq!(w.trigger_child("/a"), set(&[1]));
        assert_eq!(w.trigger_data("/a"), set(&[1]));
    }

    #[test]
    fn a_standard_mode_is_consumed_but_a_persistent_one_on_the_same_entry_stays() {
        let mut w = WatchManager::new();
        w.add_persistent("/a", 1, false);
        w.add_data_watch("/a", 1);
        assert_eq!(w.trigger_data("/a"), set(&[1]), "one notification, not two");
        assert!(w.contains("/a", 1, WatcherType::Persistent));
        assert!(!w.contains("/a", 1, WatcherType::Data));
    }

    #[test]
    fn recursive_watches_fire_for_descendants_but_never_on_child_events() {
        let mut w = WatchManager::new();
        w.add_persistent("/r", 1, true);
        assert_eq!(w.trigger_data("/r/a/b"), set(&[1]));
        assert_eq!(w.trigger_data("/r"), set(&[1]));
        assert!(w.trigger_data("/x").is_empty());
        assert!(w.trigger_child("/r").is_empty());
    }

    #[test]
    fn standard_watches_on_ancestors_do_not_fire_for_descendants() {
        let mut w = WatchManager::new();
        w.add_data_watch("/a", 1);
        w.add_persistent("/a", 2, false);
        assert!(w.trigger_data("/a/b").is_empty());
    }

    #[test]
    fn remove_by_type_selects_table_and_mode() {
        let mut w = WatchManager::new();
        w.add_data_watch("/a", 1);
        w.add_child_watch("/a", 1);
        w.add_persistent("/a", 1, true);
        assert!(w.remove("/a", 1, WatcherType::Children));
        assert!(
            !w.remove("/a", 1, WatcherType::Children),
            "NoWatcher the second time"
        );
        assert!(w.remove("/a", 1, WatcherType::Data));
        assert!(w.contains("/a", 1, WatcherType::Any));
        assert!(!w.remove("/a", 1, WatcherType::Persistent));
        assert!(w.remove("/a", 1, WatcherType::PersistentRecursive));
        assert!(!w.contains("/a", 1, WatcherType::Any));
        assert!(w.trigger_data("/a/b").is_empty());
    }

    #[test]
    fn any_removes_every_mode_of_both_tables() {
        let mut w = WatchManager::new();
        w.add_persistent("/a", 1, false);
        w.add_data_watch("/a", 1);
        w.add_child_watch("/a", 2);
        assert!(w.remove("/a", 1, WatcherType::Any));
        assert_eq!(w.watch_count(), 1);
        assert!(!w.remove("/a", 1, WatcherType::Any));
    }

    #[test]
    fn closing_a_connection_drops_all_its_watches() {
        let mut w = WatchManager::new();
        w.add_data_watch("/a", 1);
        w.add_child_watch("/b", 1);
        w.add_persistent("/c", 1, true);
        w.add_data_watch("/a", 2);
        w.remove_connection(1);
        assert_eq!(w.trigger_data("/a"), set(&[2]));
        assert!(w.trigger_data("/c/x").is_empty());
        assert_eq!(w.watch_count(), 0);
    }

    #[test]
    fn listings_report_the_data_table() {
        let mut w = WatchManager::new();
        w.add_data_watch("/a", 1);
        w.add_data_watch("/b", 1);
        w.add_data_watch("/a", 2);
        w.add_child_watch("/c", 3);
        assert_eq!(
            w.summary(),
            WatchSummary {
                connections: 2,
                paths: 2,
                watches: 3
            }
        );
        assert_eq!(w.watch_count(), 4);
        assert_eq!(w.by_connection()[&1], ["/a", "/b"]);
        assert_eq!(w.by_path()["/a"], [1, 2]);
    }
}
