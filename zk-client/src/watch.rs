//! Client-side watch bookkeeping (Java's `ZKWatchManager`): which watchers
//! an event from the server triggers, what to re-register after a
//! reconnect, and the futures / streams the caller holds.
//!
//! Only the connection task touches a [`WatchRegistry`], so events reach
//! watchers in the order the server sent them, and a watcher is completed
//! before the reply to any later request is handed out.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use tokio::sync::{mpsc, oneshot};
use zk_proto::{EventType, KeeperState, Request, SetWatches, SetWatches2, WatcherType};

use crate::path::Chroot;

/// Apache cuts setWatches batches once their paths add up to this.
pub const SET_WATCHES_MAX_BYTES: usize = 128 * 1024;

/// A watch notification, or a session event for a watcher (`event_type`
/// `None`, `state` Expired / Closed / AuthFailed), with the path as the
/// caller sees it (chroot stripped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedEvent {
    /// What happened (`None` for a session event).
    pub event_type: EventType,
    /// The session state when it happened.
    pub state: KeeperState,
    /// The node the event is about (empty for a session event).
    pub path: String,
}

impl WatchedEvent {
    /// A node event as the server sends it.
    pub fn node(event_type: EventType, path: impl Into<String>) -> WatchedEvent {
        WatchedEvent {
            event_type,
            state: KeeperState::SyncConnected,
            path: path.into(),
        }
    }

    /// A session event with no path.
    pub fn session(state: KeeperState) -> WatchedEvent {
        WatchedEvent {
            event_type: EventType::None,
            state,
            path: String::new(),
        }
    }
}

/// A one-shot watch set by a read: resolves with the event that triggers
/// it, a `*WatchRemoved` event when it is removed, or a session event when
/// the session ends (Expired, AuthFailed, Closed). A disconnection does not
/// resolve it: the watch is re-registered on reconnect.
#[derive(Debug)]
pub struct Watch {
    rx: oneshot::Receiver<WatchedEvent>,
}

impl Watch {
    pub(crate) fn new() -> (oneshot::Sender<WatchedEvent>, Watch) {
        let (tx, rx) = oneshot::channel();
        (tx, Watch { rx })
    }
}

impl Future for Watch {
    type Output = WatchedEvent;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<WatchedEvent> {
        Pin::new(&mut self.rx)
            .poll(cx)
            // The connection task is gone without a word: the client is over.
            .map(|r| r.unwrap_or_else(|_| WatchedEvent::session(KeeperState::Closed)))
    }
}

/// A persistent (or persistent-recursive) watch: every matching event, in
/// server order. Ends after a `PersistentWatchRemoved` event or a final
/// session event.
#[derive(Debug)]
pub struct PersistentWatch {
    rx: mpsc::UnboundedReceiver<WatchedEvent>,
}

impl PersistentWatch {
    pub(crate) fn new() -> (mpsc::UnboundedSender<WatchedEvent>, PersistentWatch) {
        let (tx, rx) = mpsc::unbounded_channel();
        (tx, PersistentWatch { rx })
    }
}

impl Stream for PersistentWatch {
    type Item = WatchedEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<WatchedEvent>> {
        self.rx.poll_recv(cx)
    }
}

/// Which table a watch lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatchKind {
    /// getData, or exists on an existing node.
    Data,
    /// exists on a missing node.
    Exist,
    /// getChildren.
    Child,
    Persistent,
    PersistentRecursive,
}

/// Where a triggered watch is delivered.
#[derive(Debug)]
pub enum Sink {
    OneShot(oneshot::Sender<WatchedEvent>),
    Stream(mpsc::UnboundedSender<WatchedEvent>),
}

impl Sink {
    fn is_closed(&self) -> bool {
        match self {
            Sink::OneShot(tx) => tx.is_closed(),
            Sink::Stream(tx) => tx.is_closed(),
        }
    }

    /// Delivers `event`; a one-shot sink is used up.
    fn deliver(self, event: WatchedEvent) -> Option<Sink> {
        match self {
            Sink::OneShot(tx) => {
                let _ = tx.send(event);
                None
            }
            Sink::Stream(tx) => {
                let _ = tx.send(event);
                Some(Sink::Stream(tx))
            }
        }
    }
}

/// Every registered watcher, by kind and client path.
#[derive(Debug, Default)]
pub struct WatchRegistry {
    tables: HashMap<WatchKind, HashMap<String, Vec<Sink>>>,
}

impl WatchRegistry {
    pub fn add(&mut self, kind: WatchKind, path: String, sink: Sink) {
        self.tables
            .entry(kind)
            .or_default()
            .entry(path)
            .or_default()
            .push(sink);
    }

    fn take(&mut self, kind: WatchKind, path: &str) -> Vec<Sink> {
        self.tables
            .get_mut(&kind)
            .and_then(|t| t.remove(path))
            .unwrap_or_default()
    }

    fn streams(&self, kind: WatchKind, path: &str) -> impl Iterator<Item = &Sink> {
        self.tables
            .get(&kind)
            .and_then(|t| t.get(path))
            .into_iter()
            .flatten()
    }

    /// Delivers a node event to every watcher it triggers (Java's
    /// `materialize`): one-shot watchers are removed, persistent ones stay.
    pub fn dispatch(&mut self, event: &WatchedEvent) {
        let one_shot: &[WatchKind] = match event.event_type {
            EventType::NodeCreated | EventType::NodeDataChanged => {
                &[WatchKind::Data, WatchKind::Exist]
            }
            EventType::NodeChildrenChanged => &[WatchKind::Child],
            EventType::NodeDeleted => &[WatchKind::Data, WatchKind::Exist, WatchKind::Child],
            _ => &[],
        };
        for kind in one_shot {
            for sink in self.take(*kind, &event.path) {
                sink.deliver(event.clone());
            }
        }
        for sink in self.streams(WatchKind::Persistent, &event.path) {
            if let Sink::Stream(tx) = sink {
                let _ = tx.send(event.clone());
            }
        }
        // Recursive watches see every event below them except child-list
        // changes, which they imply.
        if event.event_type != EventType::NodeChildrenChanged {
            for ancestor in ancestors_and_self(&event.path) {
                for sink in self.streams(WatchKind::PersistentRecursive, ancestor) {
                    if let Sink::Stream(tx) = sink {
                        let _ = tx.send(event.clone());
                    }
                }
            }
        }
    }

    /// Removes the watches of `watcher_type` on `path` after the server
    /// agreed, telling each watcher with the matching `*WatchRemoved` event.
    /// As on a 3.8 server, Data / Children / Any also drop persistent
    /// watches on the path.
    pub fn remove(&mut self, path: &str, watcher_type: WatcherType) {
        let mut removed: Vec<(WatchKind, EventType)> = Vec::new();
        if matches!(watcher_type, WatcherType::Data | WatcherType::Any) {
            removed.push((WatchKind::Data, EventType::DataWatchRemoved));
            removed.push((WatchKind::Exist, EventType::DataWatchRemoved));
        }
        if matches!(watcher_type, WatcherType::Children | WatcherType::Any) {
            removed.push((WatchKind::Child, EventType::ChildWatchRemoved));
        }
        removed.push((WatchKind::Persistent, EventType::PersistentWatchRemoved));
        if !matches!(watcher_type, WatcherType::Persistent) {
            removed.push((
                WatchKind::PersistentRecursive,
                EventType::PersistentWatchRemoved,
            ));
        }
        if matches!(watcher_type, WatcherType::PersistentRecursive) {
            removed.retain(|(k, _)| *k == WatchKind::PersistentRecursive);
        }
        for (kind, event_type) in removed {
            for sink in self.take(kind, path) {
                sink.deliver(WatchedEvent::node(event_type, path));
            }
        }
    }

    /// True when some watcher of `watcher_type` is registered on `path`.
    #[cfg(test)]
    pub fn has(&self, path: &str, watcher_type: WatcherType) -> bool {
        let kinds: &[WatchKind] = match watcher_type {
            WatcherType::Data => &[WatchKind::Data, WatchKind::Exist],
            WatcherType::Children => &[WatchKind::Child],
            WatcherType::Persistent => &[WatchKind::Persistent],
            WatcherType::PersistentRecursive => &[WatchKind::PersistentRecursive],
            WatcherType::Any => &[
                WatchKind::Data,
                WatchKind::Exist,
                WatchKind::Child,
                WatchKind::Persistent,
                WatchKind::PersistentRecursive,
            ],
        };
        kinds
            .iter()
            .any(|k| self.streams(*k, path).next().is_some())
    }

    /// Ends every watch with a final session event (Expired, AuthFailed,
    /// Closed) and forgets them all.
    pub fn finish(&mut self, state: KeeperState) {
        for (_, table) in self.tables.drain() {
            for (_, sinks) in table {
                for sink in sinks {
                    sink.deliver(WatchedEvent::session(state));
                }
            }
        }
    }

    /// Forgets watchers nobody listens to any more.
    pub fn prune(&mut self) {
        for table in self.tables.values_mut() {
            table.retain(|_, sinks| {
                sinks.retain(|s| !s.is_closed());
                !sinks.is_empty()
            });
        }
    }

    /// Client paths with a watch of `kind`, sorted for determinism.
    fn paths(&self, kind: WatchKind) -> Vec<&str> {
        let mut paths: Vec<&str> = self
            .tables
            .get(&kind)
            .map(|t| t.keys().map(String::as_str).collect())
            .unwrap_or_default();
        paths.sort_unstable();
        paths
    }

    /// The setWatches / setWatches2 requests that re-register every watch
    /// after a reconnect (WIRE.md §4.6).
    pub fn set_watches_requests(&self, chroot: &Chroot, relative_zxid: i64) -> Vec<Request> {
        let kinds = [
            WatchKind::Data,
            WatchKind::Exist,
            WatchKind::Child,
            WatchKind::Persistent,
            WatchKind::PersistentRecursive,
        ];
        let all: Vec<(WatchKind, String)> = kinds
            .iter()
            .flat_map(|k| self.paths(*k).into_iter().map(|p| (*k, chroot.prefix(p))))
            .collect();
        batch_set_watches(all, relative_zxid)
    }
}

/// Cuts `(kind, server path)` pairs into setWatches requests: a batch ends
/// once its paths exceed [`SET_WATCHES_MAX_BYTES`]; a batch without
/// persistent watches is sent as setWatches (101), else setWatches2 (105).
pub fn batch_set_watches(watches: Vec<(WatchKind, String)>, relative_zxid: i64) -> Vec<Request> {
    let mut requests = Vec::new();
    let mut batch = SetWatches2 {
        relative_zxid,
        ..SetWatches2::default()
    };
    let mut bytes = 0;
    let mut in_batch = 0;
    for (kind, path) in watches {
        bytes += path.len();
        in_batch += 1;
        match kind {
            WatchKind::Data => batch.data_watches.push(path),
            WatchKind::Exist => batch.exist_watches.push(path),
            WatchKind::Child => batch.child_watches.push(path),
            WatchKind::Persistent => batch.persistent_watches.push(path),
            WatchKind::PersistentRecursive => batch.persistent_recursive_watches.push(path),
        }
        if bytes > SET_WATCHES_MAX_BYTES {
            requests.push(finish_batch(std::mem::replace(
                &mut batch,
                SetWatches2 {
                    relative_zxid,
                    ..SetWatches2::default()
                },
            )));
            bytes = 0;
            in_batch = 0;
        }
    }
    if in_batch > 0 {
        requests.push(finish_batch(batch));
    }
    requests
}

fn finish_batch(batch: SetWatches2) -> Request {
    if batch.persistent_watches.is_empty() && batch.persistent_recursive_watches.is_empty() {
        Request::SetWatches(SetWatches {
            relative_zxid: batch.relative_zxid,
            data_watches: batch.data_watches,
            exist_watches: batch.exist_watches,
            child_watches: batch.child_watches,
        })
    } else {
        Request::SetWatches2(batch)
    }
}

/// `/a/b/c`, `/a/b`, `/a`, `/`.
fn ancestors_and_self(path: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(path);
    std::iter::from_fn(move || {
        let current = next?;
        next = match current.rfind('/') {
            _ if current == "/" => None,
            Some(0) => Some("/"),
            Some(i) => Some(&current[..i]),
            None => None,
        };
        Some(current)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    fn one_shot(reg: &mut WatchRegistry, kind: WatchKind, path: &str) -> Watch {
        let (tx, w) = Watch::new();
        reg.add(kind, path.into(), Sink::OneShot(tx));
        w
    }

    fn stream(reg: &mut WatchRegistry, kind: WatchKind, path: &str) -> PersistentWatch {
        let (tx, w) = PersistentWatch::new();
        reg.add(kind, path.into(), Sink::Stream(tx));
        w
    }

    #[test]
    fn data_change_fires_data_and_exist_watches_once() {
        let mut reg = WatchRegistry::default();
        let data = one_shot(&mut reg, WatchKind::Data, "/a");
        let child = one_shot(&mut reg, WatchKind::Child, "/a");
        let event = WatchedEvent::node(EventType::NodeDataChanged, "/a");
        reg.dispatch(&event);
        assert_eq!(data.now_or_never(), Some(event));
        assert!(child.now_or_never().is_none());
        assert!(!reg.has("/a", WatcherType::Data));
        assert!(reg.has("/a", WatcherType::Children));
    }

    #[test]
    fn delete_fires_data_exist_and_child_watches() {
        let mut reg = WatchRegistry::default();
        let watches = [
            one_shot(&mut reg, WatchKind::Data, "/a"),
            one_shot(&mut reg, WatchKind::Exist, "/a"),
            one_shot(&mut reg, WatchKind::Child, "/a"),
        ];
        reg.dispatch(&WatchedEvent::node(EventType::NodeDeleted, "/a"));
        for w in watches {
            assert_eq!(w.now_or_never().unwrap().event_type, EventType::NodeDeleted);
        }
    }

    #[test]
    fn recursive_watches_see_descendants_but_not_child_list_changes() {
        let mut reg = WatchRegistry::default();
        let mut rec = stream(&mut reg, WatchKind::PersistentRecursive, "/a");
        let mut root = stream(&mut reg, WatchKind::PersistentRecursive, "/");
        reg.dispatch(&WatchedEvent::node(EventType::NodeChildrenChanged, "/a"));
        reg.dispatch(&WatchedEvent::node(EventType::NodeCreated, "/a/b/c"));
        reg.dispatch(&WatchedEvent::node(EventType::NodeCreated, "/ab"));
        let got = rec.rx.try_recv().unwrap();
        assert_eq!(got.path, "/a/b/c");
        assert!(rec.rx.try_recv().is_err());
        assert_eq!(root.rx.try_recv().unwrap().path, "/a/b/c");
        assert_eq!(root.rx.try_recv().unwrap().path, "/ab");
    }

    #[test]
    fn persistent_watches_stay_and_see_child_changes() {
        let mut reg = WatchRegistry::default();
        let mut p = stream(&mut reg, WatchKind::Persistent, "/a");
        reg.dispatch(&WatchedEvent::node(EventType::NodeChildrenChanged, "/a"));
        reg.dispatch(&WatchedEvent::node(EventType::NodeDataChanged, "/a"));
        reg.dispatch(&WatchedEvent::node(EventType::NodeDataChanged, "/a/b"));
        assert_eq!(
            p.rx.try_recv().unwrap().event_type,
            EventType::NodeChildrenChanged
        );
        assert_eq!(
            p.rx.try_recv().unwrap().event_type,
            EventType::NodeDataChanged
        );
        assert!(p.rx.try_recv().is_err());
    }

    #[test]
    fn removal_tells_the_watcher() {
        let mut reg = WatchRegistry::default();
        let child = one_shot(&mut reg, WatchKind::Child, "/a");
        let data = one_shot(&mut reg, WatchKind::Data, "/a");
        reg.remove("/a", WatcherType::Children);
        assert_eq!(
            child.now_or_never().unwrap().event_type,
            EventType::ChildWatchRemoved
        );
        assert!(reg.has("/a", WatcherType::Data));
        drop(data);
    }

    #[test]
    fn finish_ends_every_watch_with_the_session_state() {
        let mut reg = WatchRegistry::default();
        let w = one_shot(&mut reg, WatchKind::Data, "/a");
        let mut p = stream(&mut reg, WatchKind::Persistent, "/b");
        reg.finish(KeeperState::Expired);
        assert_eq!(w.now_or_never().unwrap().state, KeeperState::Expired);
        assert_eq!(p.rx.try_recv().unwrap().state, KeeperState::Expired);
        assert!(matches!(
            p.rx.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
    }

    #[test]
    fn set_watches_prefixes_the_chroot_and_uses_101_without_persistent_watches() {
        let mut reg = WatchRegistry::default();
        let _d = one_shot(&mut reg, WatchKind::Data, "/a");
        let _e = one_shot(&mut reg, WatchKind::Exist, "/");
        let reqs = reg.set_watches_requests(&Chroot::new(Some("/r")), 42);
        assert_eq!(
            reqs,
            vec![Request::SetWatches(SetWatches {
                relative_zxid: 42,
                data_watches: vec!["/r/a".into()],
                exist_watches: vec!["/r".into()],
                child_watches: vec![],
            })]
        );
    }

    #[test]
    fn set_watches_uses_105_when_a_batch_has_persistent_watches() {
        let reqs = batch_set_watches(
            vec![
                (WatchKind::Child, "/c".into()),
                (WatchKind::PersistentRecursive, "/p".into()),
            ],
            1,
        );
        assert!(matches!(&reqs[..], [Request::SetWatches2(w)]
            if w.child_watches == ["/c"] && w.persistent_recursive_watches == ["/p"]));
    }

    #[test]
    fn set_watches_batches_are_cut_at_128_kib_of_paths() {
        let long = format!("/{}", "x".repeat(1000));
        let watches: Vec<_> = (0..300)
            .map(|i| (WatchKind::Data, format!("{long}{i}")))
            .collect();
        let reqs = batch_set_watches(watches, 0);
        assert_eq!(reqs.len(), 3);
        let total: usize = reqs
            .iter()
            .map(|r| match r {
                Request::SetWatches(w) => w.data_watches.len(),
                other => panic!("unexpected {other:?}"),
            })
            .sum();
        assert_eq!(total, 300);
    }

    #[test]
    fn ancestors_walk_up_to_the_root() {
        assert_eq!(
            ancestors_and_self("/a/b").collect::<Vec<_>>(),
            ["/a/b", "/a", "/"]
        );
        assert_eq!(ancestors_and_self("/").collect::<Vec<_>>(), ["/"]);
    }
}
