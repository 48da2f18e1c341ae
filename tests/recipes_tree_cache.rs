//! TreeCache (RECIPES.md §B10.3) against Apache ZooKeeper and our server:
//! the initial tree and each change as events, the depth limit, a root
//! that comes and goes, and convergence to the server's state after
//! random changes, a dropped connection and a lost session.

#[macro_use]
mod recipes_common;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use recipes_common::{ctx, eventually, within, Target};
use zk_client::{Acl, Client, CreateMode};
use zk_recipes::{ConnectionState, Events, TreeCache, TreeCacheEvent};
use zk_testkit::proxy::Proxy;

const LIMIT: Duration = Duration::from_secs(30);

async fn create(client: &Client, path: &str, data: &[u8]) {
    client
        .create(path, data, &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .unwrap();
}

async fn next(events: &mut Events<TreeCacheEvent>) -> TreeCacheEvent {
    within(LIMIT, "next tree cache event", events.next())
        .await
        .expect("event stream open")
}

/// Skips events until `wanted` comes.
async fn wait_for(events: &mut Events<TreeCacheEvent>, wanted: TreeCacheEvent) {
    while next(events).await != wanted {}
}

/// The next event about a node (connection and marker events skipped).
async fn next_node_event(events: &mut Events<TreeCacheEvent>) -> TreeCacheEvent {
    loop {
        let event = next(events).await;
        let about_a_node = matches!(
            event,
            TreeCacheEvent::NodeAdded(_)
                | TreeCacheEvent::NodeUpdated { .. }
                | TreeCacheEvent::NodeRemoved(_)
        );
        if about_a_node {
            return event;
        }
    }
}

/// Every node of the subtree at `root` on the server, path → data.
async fn server_tree(client: &Client, root: &str) -> BTreeMap<String, Bytes> {
    let mut out = BTreeMap::new();
    let mut pending = vec![root.to_string()];
    while let Some(path) = pending.pop() {
        let Ok((data, _)) = client.get_data(&path).await else {
            continue;
        };
        out.insert(path.clone(), data);
        if let Ok(children) = client.get_children(&path).await {
            pending.extend(children.iter().map(|c| format!("{path}/{c}")));
        }
    }
    out
}

fn cached(cache: &TreeCache) -> BTreeMap<String, Bytes> {
    cache
        .current_data()
        .into_iter()
        .map(|(path, node)| (path, node.data))
        .collect()
}

/// Waits until the cache holds exactly the server's subtree.
async fn converges(cache: &TreeCache, client: &Client, root: &str) -> bool {
    eventually(LIMIT, || async {
        cached(cache) == server_tree(client, root).await
    })
    .await
}

async fn tree_cache_reports_the_initial_tree_then_each_change(target: Target) {
    let Some(t) = ctx(target, "tree-events").await else {
        return;
    };
    let client = t.client().await;
    create(&client, "/tree", b"r").await;
    create(&client, "/tree/a", b"a").await;
    create(&client, "/tree/a/deep", b"d").await;
    let curator = t.curator().await;
    let (cache, mut events) = TreeCache::start(&curator, "/tree");
    let mut added = Vec::new();
    loop {
        match next(&mut events).await {
            TreeCacheEvent::NodeAdded(node) => added.push(node.path),
            TreeCacheEvent::Initialized => break,
            other => panic!("expected NodeAdded or Initialized, got {other:?}"),
        }
    }
    // Parents come before their children.
    assert_eq!(added, ["/tree", "/tree/a", "/tree/a/deep"]);

    create(&client, "/tree/a/deep/deeper", b"x").await;
    match next_node_event(&mut events).await {
        TreeCacheEvent::NodeAdded(node) => assert_eq!(node.path, "/tree/a/deep/deeper"),
        other => panic!("expected NodeAdded, got {other:?}"),
    }
    client.set_data("/tree/a", b"a2", None).await.unwrap();
    match next_node_event(&mut events).await {
        TreeCacheEvent::NodeUpdated { old, new } => {
            assert_eq!(new.path, "/tree/a");
            assert_eq!(&old.data[..], b"a");
            assert_eq!(&new.data[..], b"a2");
        }
        other => panic!("expected NodeUpdated, got {other:?}"),
    }
    client.delete("/tree/a/deep/deeper", None).await.unwrap();
    match next_node_event(&mut events).await {
        TreeCacheEvent::NodeRemoved(node) => assert_eq!(node.path, "/tree/a/deep/deeper"),
        other => panic!("expected NodeRemoved, got {other:?}"),
    }
    assert_eq!(
        cache
            .current_children("/tree/a")
            .map(|c| c.into_keys().collect::<Vec<_>>()),
        Some(vec!["deep".to_string()])
    );
    assert!(converges(&cache, &client, "/tree").await);
    cache.close().await;
}

async fn tree_cache_stops_at_the_maximum_depth(target: Target) {
    let Some(t) = ctx(target, "tree-depth").await else {
        return;
    };
    let client = t.client().await;
    create(&client, "/tree", b"").await;
    create(&client, "/tree/one", b"").await;
    create(&client, "/tree/one/two", b"").await;
    let curator = t.curator().await;
    let (cache, mut events) = TreeCache::builder(&curator, "/tree").max_depth(1).start();
    wait_for(&mut events, TreeCacheEvent::Initialized).await;
    let paths: Vec<String> = cache.current_data().into_keys().collect();
    assert_eq!(paths, ["/tree", "/tree/one"]);

    // Changes below the limit are not followed; those within it are.
    create(&client, "/tree/one/two/three", b"").await;
    create(&client, "/tree/other", b"o").await;
    match next_node_event(&mut events).await {
        TreeCacheEvent::NodeAdded(node) => assert_eq!(node.path, "/tree/other"),
        other => panic!("expected NodeAdded of /tree/other, got {other:?}"),
    }
    assert_eq!(cache.current_data().len(), 3);
    cache.close().await;
}

async fn tree_cache_follows_a_root_that_is_deleted_and_created_again(target: Target) {
    let Some(t) = ctx(target, "tree-root").await else {
        return;
    };
    let client = t.client().await;
    let curator = t.curator().await;
    // Started before the root exists.
    let (cache, mut events) = TreeCache::start(&curator, "/tree");
    wait_for(&mut events, TreeCacheEvent::Initialized).await;
    assert!(cache.current_data().is_empty());
    create(&client, "/tree", b"1").await;
    create(&client, "/tree/kid", b"k").await;
    assert!(converges(&cache, &client, "/tree").await);

    client.delete("/tree/kid", None).await.unwrap();
    client.delete("/tree", None).await.unwrap();
    assert!(eventually(LIMIT, || async { cache.current_data().is_empty() }).await);
    create(&client, "/tree", b"2").await;
    create(&client, "/tree/again", b"a").await;
    assert!(converges(&cache, &client, "/tree").await);
    cache.close().await;
}

/// One random change to the subtree at `/tree`: create a child of a
/// random node (at most three levels deep), set a node's data, or delete
/// a leaf. `nodes` is the test's own record of the tree.
async fn random_change(client: &Client, rng: &mut StdRng, nodes: &mut Vec<String>) {
    let at = nodes[rng.gen_range(0..nodes.len())].clone();
    match rng.gen_range(0..3) {
        0 if at.matches('/').count() < 4 => {
            let child = format!("{at}/n{}", rng.gen_range(0..4));
            if !nodes.contains(&child) {
                create(client, &child, b"new").await;
                nodes.push(child);
            }
        }
        1 => {
            let data = format!("v{}", rng.gen_range(0..1000));
            client.set_data(&at, data.as_bytes(), None).await.unwrap();
        }
        _ => {
            let is_leaf = !nodes.iter().any(|n| n.starts_with(&format!("{at}/")));
            if at != "/tree" && is_leaf {
                client.delete(&at, None).await.unwrap();
                nodes.retain(|n| *n != at);
            }
        }
    }
}

async fn tree_cache_converges_to_the_server_after_random_changes(target: Target) {
    let Some(t) = ctx(target, "tree-random").await else {
        return;
    };
    let seed: u64 = rand::thread_rng().gen();
    eprintln!("seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let client = t.client().await;
    create(&client, "/tree", b"").await;
    let mut nodes = vec!["/tree".to_string()];
    for _ in 0..10 {
        random_change(&client, &mut rng, &mut nodes).await;
    }
    let curator = t.curator().await;
    let (cache, mut events) = TreeCache::start(&curator, "/tree");
    wait_for(&mut events, TreeCacheEvent::Initialized).await;
    // Bursts without pauses, so changes land while watches are re-armed.
    for _ in 0..80 {
        random_change(&client, &mut rng, &mut nodes).await;
    }
    assert!(
        converges(&cache, &client, "/tree").await,
        "seed {seed}: cache {:?}",
        cached(&cache).keys().collect::<Vec<_>>()
    );
    cache.close().await;
}

async fn tree_cache_converges_after_a_dropped_connection(target: Target) {
    let Some(t) = ctx(target, "tree-drop").await else {
        return;
    };
    let client = t.client().await;
    create(&client, "/tree", b"").await;
    create(&client, "/tree/keep", b"k").await;
    create(&client, "/tree/gone", b"g").await;
    create(&client, "/tree/gone/under", b"u").await;
    let proxy = Proxy::start(t.server).unwrap();
    let curator = recipes_common::curator(&format!("{}{}", proxy.connect_string(), t.root)).await;
    let (cache, mut events) = TreeCache::start(&curator, "/tree");
    wait_for(&mut events, TreeCacheEvent::Initialized).await;

    proxy.pause();
    proxy.drop_all();
    wait_for(&mut events, TreeCacheEvent::ConnectionSuspended).await;
    client.delete("/tree/gone/under", None).await.unwrap();
    client.delete("/tree/gone", None).await.unwrap();
    client.set_data("/tree/keep", b"k2", None).await.unwrap();
    create(&client, "/tree/new", b"n").await;
    create(&client, "/tree/new/child", b"c").await;
    proxy.resume();
    wait_for(&mut events, TreeCacheEvent::ConnectionReconnected).await;
    // Posted after the re-read: the cache is already up to date.
    assert_eq!(cached(&cache), server_tree(&client, "/tree").await);
    // Watches still work after the reconnect.
    create(&client, "/tree/new/later", b"l").await;
    assert!(converges(&cache, &client, "/tree").await);
    assert!(cache.current_node("/tree/new/later").is_some());
    cache.close().await;
}

async fn tree_cache_converges_after_the_session_is_lost(target: Target) {
    let Some(t) = ctx(target, "tree-lost").await else {
        return;
    };
    let client = t.client().await;
    create(&client, "/tree", b"").await;
    create(&client, "/tree/a", b"1").await;
    create(&client, "/tree/a/x", b"x").await;
    let proxy = Proxy::start(t.server).unwrap();
    let curator = recipes_common::curator(&format!("{}{}", proxy.connect_string(), t.root)).await;
    let (cache, mut events) = TreeCache::start(&curator, "/tree");
    wait_for(&mut events, TreeCacheEvent::Initialized).await;

    proxy.blackhole();
    proxy.drop_all();
    wait_for(&mut events, TreeCacheEvent::ConnectionLost).await;
    // The cache keeps its data while away.
    assert_eq!(cache.current_data().len(), 3);
    client.delete("/tree/a/x", None).await.unwrap();
    client.set_data("/tree/a", b"2", None).await.unwrap();
    create(&client, "/tree/b", b"b").await;
    proxy.forward();
    wait_for(&mut events, TreeCacheEvent::ConnectionReconnected).await;
    // Lost cleared the initialized flag: the re-read ends with a new marker.
    assert_eq!(next(&mut events).await, TreeCacheEvent::Initialized);
    assert_eq!(cached(&cache), server_tree(&client, "/tree").await);
    // The new session's watches are armed.
    client.set_data("/tree/b", b"b2", None).await.unwrap();
    create(&client, "/tree/a/y", b"y").await;
    assert!(converges(&cache, &client, "/tree").await);
    assert!(cache
        .current_node("/tree/b")
        .is_some_and(|b| &b.data[..] == b"b2"));
    assert_eq!(
        curator.connection_state(),
        Some(ConnectionState::Reconnected)
    );
    cache.close().await;
}

recipe_tests!(
    tree_cache_reports_the_initial_tree_then_each_change,
    tree_cache_stops_at_the_maximum_depth,
    tree_cache_follows_a_root_that_is_deleted_and_created_again,
    tree_cache_converges_to_the_server_after_random_changes,
    tree_cache_converges_after_a_dropped_connection,
    tree_cache_converges_after_the_session_is_lost,
);
