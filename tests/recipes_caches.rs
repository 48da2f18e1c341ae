//! Caches against Apache ZooKeeper and our server: events for changes, and convergence
//! to the server's state after a dropped connection and after the session
//! is lost.

#[macro_use]
mod recipes_common;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use recipes_common::{ctx, eventually, within, Target};
use zk_client::{Acl, Client, CreateMode};
use zk_recipes::{
    ConnectionState, CuratorCache, CuratorCacheEvent, Events, NodeCache, PathChildrenCache,
    PathChildrenEvent, StartMode,
};
use zk_testkit::proxy::Proxy;

const LIMIT: Duration = Duration::from_secs(30);

async fn create(client: &Client, path: &str, data: &[u8]) {
    client
        .create(path, data, &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .unwrap();
}

async fn next<T: std::fmt::Debug>(events: &mut Events<T>) -> T {
    within(LIMIT, "next cache event", events.next())
        .await
        .expect("event stream open")
}

/// The next event about a node (connection events skipped).
async fn next_node_event(events: &mut Events<CuratorCacheEvent>) -> CuratorCacheEvent {
    loop {
        match next(events).await {
            CuratorCacheEvent::Reconnected
            | CuratorCacheEvent::Suspended
            | CuratorCacheEvent::Lost
            | CuratorCacheEvent::Initialized => {}
            event => return event,
        }
    }
}

/// The children of `path` on the server, name → data.
async fn server_children(client: &Client, path: &str) -> BTreeMap<String, Bytes> {
    let mut out = BTreeMap::new();
    for name in client.get_children(path).await.unwrap() {
        let (data, _) = client.get_data(&format!("{path}/{name}")).await.unwrap();
        out.insert(name, data);
    }
    out
}

fn cached(cache: &PathChildrenCache) -> BTreeMap<String, Bytes> {
    cache
        .current_data()
        .into_iter()
        .map(|(name, child)| (name, child.data))
        .collect()
}

async fn path_children_cache_reports_initial_children_then_each_change(target: Target) {
    let Some(t) = ctx(target, "pcc-events").await else {
        return;
    };
    let client = t.client().await;
    create(&client, "/group", b"").await;
    create(&client, "/group/a", b"1").await;
    create(&client, "/group/b", b"2").await;
    let curator = t.curator().await;
    let (cache, mut events) =
        PathChildrenCache::start(&curator, "/group", StartMode::PostInitializedEvent);
    let mut added = Vec::new();
    for _ in 0..2 {
        match next(&mut events).await {
            PathChildrenEvent::ChildAdded(child) => added.push(child.path),
            other => panic!("expected ChildAdded, got {other:?}"),
        }
    }
    added.sort();
    assert_eq!(added, ["/group/a", "/group/b"]);
    match next(&mut events).await {
        PathChildrenEvent::Initialized(children) => assert_eq!(children.len(), 2),
        other => panic!("expected Initialized, got {other:?}"),
    }

    create(&client, "/group/c", b"3").await;
    match next(&mut events).await {
        PathChildrenEvent::ChildAdded(child) => assert_eq!(&child.data[..], b"3"),
        other => panic!("expected ChildAdded, got {other:?}"),
    }
    client.set_data("/group/a", b"1b", None).await.unwrap();
    match next(&mut events).await {
        PathChildrenEvent::ChildUpdated(child) => {
            assert_eq!(child.path, "/group/a");
            assert_eq!(&child.data[..], b"1b");
        }
        other => panic!("expected ChildUpdated, got {other:?}"),
    }
    client.delete("/group/b", None).await.unwrap();
    match next(&mut events).await {
        PathChildrenEvent::ChildRemoved(child) => assert_eq!(child.path, "/group/b"),
        other => panic!("expected ChildRemoved, got {other:?}"),
    }
    assert_eq!(cached(&cache), server_children(&client, "/group").await);
    cache.close().await;
}

async fn path_children_cache_converges_after_a_dropped_connection(target: Target) {
    let Some(t) = ctx(target, "pcc-drop").await else {
        return;
    };
    let client = t.client().await;
    create(&client, "/group", b"").await;
    create(&client, "/group/keep", b"k").await;
    create(&client, "/group/gone", b"g").await;
    let proxy = Proxy::start(t.server).unwrap();
    let curator = recipes_common::curator(&format!("{}{}", proxy.connect_string(), t.root)).await;
    let (cache, mut events) = PathChildrenCache::start(&curator, "/group", StartMode::Normal);
    assert!(eventually(LIMIT, || async { cache.current_data().len() == 2 }).await);

    proxy.pause();
    proxy.drop_all();
    loop {
        if next(&mut events).await == PathChildrenEvent::ConnectionSuspended {
            break;
        }
    }
    client.delete("/group/gone", None).await.unwrap();
    client.set_data("/group/keep", b"k2", None).await.unwrap();
    create(&client, "/group/new", b"n").await;
    proxy.resume();
    loop {
        if next(&mut events).await == PathChildrenEvent::ConnectionReconnected {
            break;
        }
    }
    let expected = server_children(&client, "/group").await;
    assert!(eventually(LIMIT, || async { cached(&cache) == expected }).await);
    // Watches still work after the reconnect.
    create(&client, "/group/later", b"l").await;
    assert!(eventually(LIMIT, || async { cache.current_child("later").is_some() }).await);
    cache.close().await;
}

async fn path_children_cache_converges_after_the_session_is_lost(target: Target) {
    let Some(t) = ctx(target, "pcc-lost").await else {
        return;
    };
    let client = t.client().await;
    create(&client, "/group", b"").await;
    create(&client, "/group/a", b"1").await;
    let proxy = Proxy::start(t.server).unwrap();
    let curator = recipes_common::curator(&format!("{}{}", proxy.connect_string(), t.root)).await;
    let (cache, mut events) = PathChildrenCache::start(&curator, "/group", StartMode::Normal);
    assert!(eventually(LIMIT, || async { cache.current_data().len() == 1 }).await);

    proxy.blackhole();
    proxy.drop_all();
    loop {
        if next(&mut events).await == PathChildrenEvent::ConnectionLost {
            break;
        }
    }
    // The cache keeps its data while away.
    assert_eq!(cache.current_data().len(), 1);
    client.delete("/group/a", None).await.unwrap();
    create(&client, "/group/b", b"2").await;
    proxy.forward();
    loop {
        if next(&mut events).await == PathChildrenEvent::ConnectionReconnected {
            break;
        }
    }
    let expected = server_children(&client, "/group").await;
    assert!(eventually(LIMIT, || async { cached(&cache) == expected }).await);
    // The new session's watches are armed.
    client.set_data("/group/b", b"3", None).await.unwrap();
    create(&client, "/group/c", b"4").await;
    assert!(
        eventually(LIMIT, || async {
            cache
                .current_child("b")
                .is_some_and(|b| &b.data[..] == b"3")
                && cache.current_child("c").is_some()
        })
        .await
    );
    assert_eq!(
        curator.connection_state(),
        Some(ConnectionState::Reconnected)
    );
    cache.close().await;
}

async fn node_cache_follows_creation_changes_and_deletion(target: Target) {
    let Some(t) = ctx(target, "node-cache").await else {
        return;
    };
    let client = t.client().await;
    let curator = t.curator().await;
    let (cache, mut events) = NodeCache::start(&curator, "/config/value");
    curator
        .create("/config/value", b"v1", CreateMode::Persistent)
        .await
        .unwrap();
    let mut seen = next(&mut events).await;
    if seen.is_none() {
        // The first read may have happened before the create.
        seen = next(&mut events).await;
    }
    assert_eq!(&seen.unwrap().data[..], b"v1");
    client.set_data("/config/value", b"v2", None).await.unwrap();
    assert_eq!(&next(&mut events).await.unwrap().data[..], b"v2");
    client.delete("/config/value", None).await.unwrap();
    assert_eq!(next(&mut events).await, None);
    assert_eq!(cache.current_data(), None);
    cache.close().await;
}

async fn curator_cache_mirrors_a_subtree_and_converges_after_a_drop(target: Target) {
    let Some(t) = ctx(target, "curator-cache").await else {
        return;
    };
    let client = t.client().await;
    create(&client, "/tree", b"root").await;
    create(&client, "/tree/a", b"a").await;
    create(&client, "/tree/a/deep", b"d").await;
    let proxy = Proxy::start(t.server).unwrap();
    let curator = recipes_common::curator(&format!("{}{}", proxy.connect_string(), t.root)).await;
    let (cache, mut events) = CuratorCache::start(&curator, "/tree");
    loop {
        if next(&mut events).await == CuratorCacheEvent::Initialized {
            break;
        }
    }
    assert_eq!(cache.current_data().len(), 3);
    create(&client, "/tree/a/deep/deeper", b"x").await;
    match next_node_event(&mut events).await {
        CuratorCacheEvent::Created(node) => assert_eq!(node.path, "/tree/a/deep/deeper"),
        other => panic!("expected Created, got {other:?}"),
    }
    client.set_data("/tree/a", b"a2", None).await.unwrap();
    match next_node_event(&mut events).await {
        CuratorCacheEvent::Changed(old, new) => {
            assert_eq!(&old.data[..], b"a");
            assert_eq!(&new.data[..], b"a2");
        }
        other => panic!("expected Changed, got {other:?}"),
    }

    proxy.pause();
    proxy.drop_all();
    loop {
        if next(&mut events).await == CuratorCacheEvent::Suspended {
            break;
        }
    }
    client.delete("/tree/a/deep/deeper", None).await.unwrap();
    create(&client, "/tree/b", b"b").await;
    proxy.resume();
    assert!(
        eventually(LIMIT, || async {
            let data = cache.current_data();
            data.contains_key("/tree/b") && !data.contains_key("/tree/a/deep/deeper")
        })
        .await
    );
    assert_eq!(cache.current_data().len(), 4);
    cache.close().await;
}

recipe_tests!(
    path_children_cache_reports_initial_children_then_each_change,
    path_children_cache_converges_after_a_dropped_connection,
    path_children_cache_converges_after_the_session_is_lost,
    node_cache_follows_creation_changes_and_deletion,
    curator_cache_mirrors_a_subtree_and_converges_after_a_drop,
);
