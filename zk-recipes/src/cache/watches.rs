//! Bookkeeping of the one-shot watches a cache has armed, per client
//! generation: after a session change the old client's watches are gone
//! (they resolve with a session event), so a re-read must arm new ones,
//! while within one session the client re-registers them by itself and a
//! re-read must not pile up duplicates.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;

use futures::stream::FuturesUnordered;
use zk_client::{EventType, Watch, WatchedEvent};

type Fired<K> = Pin<Box<dyn Future<Output = (K, u64, WatchedEvent)> + Send>>;

/// Armed watches keyed by `K`, and the futures that resolve when they fire.
pub(crate) struct ArmedWatches<K> {
    armed: HashMap<K, u64>,
    pub(crate) pending: FuturesUnordered<Fired<K>>,
}

impl<K: Eq + Hash + Clone + Send + 'static> ArmedWatches<K> {
    pub(crate) fn new() -> Self {
        ArmedWatches {
            armed: HashMap::new(),
            pending: FuturesUnordered::new(),
        }
    }

    /// Whether `key` has a live watch on client generation `generation`.
    pub(crate) fn is_armed(&self, key: &K, generation: u64) -> bool {
        self.armed.get(key) == Some(&generation)
    }

    pub(crate) fn arm(&mut self, key: K, generation: u64, watch: Watch) {
        self.armed.insert(key.clone(), generation);
        self.pending
            .push(Box::pin(async move { (key, generation, watch.await) }));
    }

    /// Records that a watch fired; returns the event if it is a node event
    /// (session events of dead clients only disarm).
    pub(crate) fn fired(
        &mut self,
        key: &K,
        generation: u64,
        event: WatchedEvent,
    ) -> Option<WatchedEvent> {
        if self.armed.get(key) == Some(&generation) {
            self.armed.remove(key);
        }
        (event.event_type != EventType::None).then_some(event)
    }
}

/// A future that never resolves when there is nothing to wait for, so it
/// can sit in a `select!`.
pub(crate) async fn next_fired<K: Eq + Hash + Clone + Send + 'static>(
    watches: &mut ArmedWatches<K>,
) -> (K, u64, WatchedEvent) {
    use futures::StreamExt;
    match watches.pending.next().await {
        Some(fired) => fired,
        None => futures::future::pending().await,
    }
}
