//! The later recipes against Apache ZooKeeper and our server: namespaces,
//! the named-item queues, the multi-lock, the integer atomic and the TTL
//! node, on Curator's layouts.

#[macro_use]
mod recipes_common;

use std::time::{Duration, SystemTime};

use recipes_common::{ctx, eventually, within, Target};
use zk_client::CreateMode;
use zk_recipes::queue::naming::{delay_prefix, id_prefix, priority_prefix};
use zk_recipes::{
    Curator, DistributedAtomicInteger, DistributedDelayQueue, DistributedIdQueue,
    DistributedPriorityQueue, InterProcessMultiLock, InterProcessMutex, PersistentTtlNode,
    PromotedToLock, ProviderStrategy, ServiceCacheEvent, ServiceDiscovery, ServiceInstance,
    ServiceType,
};

const LIMIT: Duration = Duration::from_secs(20);

async fn namespaced(connect: &str, namespace: &str) -> Curator {
    Curator::builder(connect)
        .namespace(namespace)
        .session_timeout(recipes_common::SESSION)
        .connection_timeout(Duration::from_secs(10))
        .retry_policy(recipes_common::retry())
        .connect()
        .await
        .expect("namespaced framework connects")
}

async fn a_namespace_prefixes_every_path_and_is_created_as_a_container(target: Target) {
    let Some(t) = ctx(target, "namespace").await else {
        return;
    };
    let curator = namespaced(&t.connect, "app").await;
    assert_eq!(curator.namespace(), Some("app"));
    let created = curator
        .create("/a/b", b"x", CreateMode::Persistent)
        .await
        .unwrap();
    assert_eq!(created, "/a/b", "results come back without the namespace");
    let plain = t.client().await;
    let (data, _) = plain.get_data("/app/a/b").await.unwrap();
    assert_eq!(&data[..], b"x");
    // The namespace node was made on first use, with no data of ours.
    let (ns_data, _) = plain.get_data("/app").await.unwrap();
    assert!(ns_data.is_empty());
    // Recipes work relative to the namespace too.
    let lock = InterProcessMutex::new(&curator, "/locks/l");
    let guard = lock.acquire().await.unwrap();
    assert!(guard.path().starts_with("/locks/l/"), "{}", guard.path());
    assert_eq!(
        plain.get_children("/app/locks/l").await.unwrap().len(),
        1,
        "the lock node lives under the namespace"
    );
    guard.release().await.unwrap();
    curator.close().await;
}

async fn an_invalid_namespace_is_rejected(target: Target) {
    let Some(t) = ctx(target, "namespace-bad").await else {
        return;
    };
    let built = Curator::builder(&t.connect).namespace("/abs").build();
    assert!(matches!(built, Err(zk_recipes::Error::InvalidArgument(_))));
}

async fn priority_queue_hands_out_lowest_priority_first(target: Target) {
    let Some(t) = ctx(target, "priority-queue").await else {
        return;
    };
    let curator = t.curator().await;
    let queue = DistributedPriorityQueue::new(&curator, "/pq");
    for (item, priority) in [("p5", 5), ("m1", -1), ("p0", 0), ("m9", -9)] {
        queue.put(item.as_bytes(), priority).await.unwrap();
    }
    let names = t.client().await.get_children("/pq").await.unwrap();
    assert!(
        names.iter().any(|n| n.starts_with(&priority_prefix(-9))),
        "{names:?}"
    );
    let mut taken = Vec::new();
    for _ in 0..4 {
        let item = within(LIMIT, "take", queue.take()).await.unwrap();
        taken.push(String::from_utf8(item.to_vec()).unwrap());
    }
    assert_eq!(taken, ["m9", "m1", "p0", "p5"]);
    curator.close().await;
}

async fn delay_queue_holds_items_until_they_are_due(target: Target) {
    let Some(t) = ctx(target, "delay-queue").await else {
        return;
    };
    let curator = t.curator().await;
    let queue = DistributedDelayQueue::new(&curator, "/dq");
    let started = std::time::Instant::now();
    queue
        .put_after(b"late", Duration::from_millis(1200))
        .await
        .unwrap();
    queue
        .put_after(b"soon", Duration::from_millis(600))
        .await
        .unwrap();
    queue.put_at(b"now", SystemTime::UNIX_EPOCH).await.unwrap();
    let names = t.client().await.get_children("/dq").await.unwrap();
    assert!(
        names.iter().any(|n| n.starts_with(&delay_prefix(0))),
        "{names:?}"
    );
    let first = within(LIMIT, "take", queue.take()).await.unwrap();
    assert_eq!(&first[..], b"now");
    let second = within(LIMIT, "take", queue.take()).await.unwrap();
    assert_eq!(&second[..], b"soon");
    assert!(started.elapsed() >= Duration::from_millis(600));
    let third = within(LIMIT, "take", queue.take()).await.unwrap();
    assert_eq!(&third[..], b"late");
    assert!(started.elapsed() >= Duration::from_millis(1200));
    curator.close().await;
}

async fn id_queue_removes_items_by_id_and_keeps_arrival_order(target: Target) {
    let Some(t) = ctx(target, "id-queue").await else {
        return;
    };
    let curator = t.curator().await;
    let queue = DistributedIdQueue::new(&curator, "/iq");
    queue.put(b"1", "zeta").await.unwrap();
    queue.put(b"2", "a/b").await.unwrap();
    queue.put(b"3", "zeta").await.unwrap();
    queue.put(b"4", "alpha").await.unwrap();
    let names = t.client().await.get_children("/iq").await.unwrap();
    assert!(
        names.iter().any(|n| n.starts_with(&id_prefix("a/b"))),
        "{names:?}"
    );
    assert!(names.iter().any(|n| n.starts_with("queue-|a_b|")));
    assert_eq!(queue.remove("zeta").await.unwrap(), 2);
    assert_eq!(queue.len().await.unwrap(), 2);
    let first = within(LIMIT, "take", queue.take()).await.unwrap();
    let second = within(LIMIT, "take", queue.take()).await.unwrap();
    assert_eq!((&first[..], &second[..]), (&b"2"[..], &b"4"[..]));
    curator.close().await;
}

async fn a_dropped_take_keeps_its_item_for_the_next_take(target: Target) {
    let Some(t) = ctx(target, "take-cancel").await else {
        return;
    };
    let curator = t.curator().await;
    let queue = zk_recipes::DistributedQueue::new(&curator, "/q");
    queue.put(b"only").await.unwrap();
    // Drop takes at many points of their progress; whichever one got the
    // item deleted on the server must have left it for a later take.
    let mut received = Vec::new();
    for delay_us in [0, 50, 100, 200, 400, 800, 1600, 3200] {
        if let Ok(item) = tokio::time::timeout(Duration::from_micros(delay_us), queue.take()).await
        {
            received.push(item.unwrap());
        }
    }
    if received.is_empty() {
        received.push(within(LIMIT, "take", queue.take()).await.unwrap());
    }
    assert_eq!(received, [bytes::Bytes::from_static(b"only")]);
    assert!(queue.is_empty().await.unwrap());
    curator.close().await;
}

async fn multi_lock_holds_all_or_none(target: Target) {
    let Some(t) = ctx(target, "multi-lock").await else {
        return;
    };
    let (a, b) = (t.curator().await, t.curator().await);
    let both = InterProcessMultiLock::new(&a, &["/l1", "/l2"]);
    let guard = both.acquire().await.unwrap();
    assert!(both.is_acquired());
    assert_eq!(guard.paths().len(), 2);
    // Another process wanting both cannot get them, and keeps nothing.
    let other = InterProcessMultiLock::new(&b, &["/l1", "/l2"]);
    assert!(other
        .try_acquire(Duration::from_millis(300))
        .await
        .unwrap()
        .is_none());
    // Only /l2 held by b while a's /l1 is released: b's multi-lock over
    // both fails on /l2 and must give /l1 back.
    guard.release().await.unwrap();
    let l2 = InterProcessMutex::new(&b, "/l2");
    let held_l2 = l2.acquire().await.unwrap();
    let third = InterProcessMultiLock::new(&a, &["/l1", "/l2"]);
    assert!(third
        .try_acquire(Duration::from_millis(300))
        .await
        .unwrap()
        .is_none());
    let plain = t.client().await;
    assert!(
        plain.get_children("/l1").await.unwrap().is_empty(),
        "the rolled-back /l1 node is gone"
    );
    held_l2.release().await.unwrap();
    let guard = within(LIMIT, "multi acquire", other.acquire())
        .await
        .unwrap();
    guard.release().await.unwrap();
    a.close().await;
    b.close().await;
}

async fn atomic_integer_is_four_bytes_and_never_loses_increments(target: Target) {
    let Some(t) = ctx(target, "atomic-int").await else {
        return;
    };
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let curator = t.curator().await;
        tasks.push(tokio::spawn(async move {
            let counter = DistributedAtomicInteger::new(
                &curator,
                "/n",
                zk_recipes::RetryPolicy::forever(Duration::from_millis(5)),
            );
            for _ in 0..5 {
                assert!(counter.increment().await.unwrap().succeeded);
            }
            curator.close().await;
        }));
    }
    within(LIMIT, "incrementers", async {
        for task in tasks {
            task.await.unwrap();
        }
    })
    .await;
    let (data, _) = t.client().await.get_data("/n").await.unwrap();
    assert_eq!(&data[..], &15i32.to_be_bytes());
    let curator = t.curator().await;
    let counter = DistributedAtomicInteger::new(&curator, "/n", recipes_common::retry());
    let cas = counter.compare_and_set(15, -1).await.unwrap();
    assert!(cas.succeeded);
    assert_eq!(counter.get().await.unwrap(), Some(-1));
    curator.close().await;
}

async fn a_ttl_node_is_touched_and_outlives_close(target: Target) {
    let Some(t) = ctx(target, "ttl-node").await else {
        return;
    };
    let curator = t.curator().await;
    let node =
        PersistentTtlNode::start(&curator, "/svc/ttl", Duration::from_millis(600), "v").unwrap();
    assert!(node.wait_for_initial_create(LIMIT).await);
    let plain = t.client().await;
    assert!(
        eventually(LIMIT, || async {
            plain
                .exists("/svc/ttl/touch")
                .await
                .ok()
                .flatten()
                .is_some()
        })
        .await
    );
    let (_, first) = plain.get_data("/svc/ttl/touch").await.unwrap();
    assert!(
        eventually(LIMIT, || async {
            plain
                .get_data("/svc/ttl/touch")
                .await
                .is_ok_and(|(_, s)| s.mzxid > first.mzxid)
        })
        .await,
        "the child is touched again"
    );
    let (data, stat) = plain.get_data("/svc/ttl").await.unwrap();
    assert_eq!(&data[..], b"v");
    // Created by the persistent node (not as the touch child's parent),
    // so never rewritten since.
    assert_eq!(stat.version, 0, "{stat:?}");
    node.close().await.unwrap();
    assert!(plain.exists("/svc/ttl").await.unwrap().is_some());
    curator.close().await;
}

async fn service_instances_register_query_and_unregister_on_curators_layout(target: Target) {
    let Some(t) = ctx(target, "discovery").await else {
        return;
    };
    let curator = t.curator().await;
    let discovery = ServiceDiscovery::start(&curator, "/services");
    let one = ServiceInstance::new("api")
        .with_id("one")
        .with_address("10.0.0.1")
        .with_port(8080);
    let two = ServiceInstance::new("api").with_id("two").with_port(8081);
    discovery.register(&one).await.unwrap();
    discovery.register(&two).await.unwrap();
    // Registering again replaces the node.
    discovery.register(&one).await.unwrap();
    let plain = t.client().await;
    let (data, stat) = plain.get_data("/services/api/one").await.unwrap();
    assert_ne!(stat.ephemeral_owner, 0, "DYNAMIC instances are ephemeral");
    let json = String::from_utf8(data.to_vec()).unwrap();
    assert!(
        json.starts_with(r#"{"name":"api","id":"one","address":"10.0.0.1","port":8080"#),
        "{json}"
    );
    assert_eq!(discovery.query_for_names().await.unwrap(), ["api"]);
    let found = discovery.query_for_instances("api").await.unwrap();
    assert_eq!(found, [one.clone(), two.clone()]);
    discovery.unregister(&two).await.unwrap();
    assert_eq!(discovery.query_for_instances("api").await.unwrap(), [one]);
    discovery.close().await.unwrap();
    assert!(plain
        .get_children("/services/api")
        .await
        .map_or(true, |c| c.is_empty()));
    curator.close().await;
}

async fn dynamic_sequential_instances_are_unregistered_at_their_sequential_node(target: Target) {
    let Some(t) = ctx(target, "discovery-seq").await else {
        return;
    };
    let curator = t.curator().await;
    let plain = t.client().await;
    let discovery = ServiceDiscovery::start(&curator, "/services");
    let mut instance = ServiceInstance::new("api")
        .with_id("worker-")
        .with_port(1)
        .with_service_type(ServiceType::DynamicSequential);
    discovery.register(&instance).await.unwrap();
    let path = discovery.registered_path(&instance).unwrap();
    let suffix = path.strip_prefix("/services/api/worker-").unwrap();
    assert_eq!(suffix.len(), 10, "sequential node {path}");
    assert!(suffix.bytes().all(|b| b.is_ascii_digit()));

    // Updates and re-registrations go to the same sequential node.
    instance.port = Some(2);
    discovery.update(&instance).await.unwrap();
    discovery.register(&instance).await.unwrap();
    assert_eq!(
        discovery.registered_path(&instance).as_deref(),
        Some(&path[..])
    );
    let (data, _) = plain.get_data(&path).await.unwrap();
    assert_eq!(ServiceInstance::from_json(&data).unwrap().port, Some(2));
    assert_eq!(plain.get_children("/services/api").await.unwrap().len(), 1);

    discovery.unregister(&instance).await.unwrap();
    assert!(plain
        .get_children("/services/api")
        .await
        .unwrap()
        .is_empty());
    discovery.close().await.unwrap();
    curator.close().await;
}

async fn service_provider_round_robins_over_usable_instances(target: Target) {
    let Some(t) = ctx(target, "discovery-provider").await else {
        return;
    };
    let curator = t.curator().await;
    let discovery = ServiceDiscovery::start(&curator, "/services");
    for id in ["a", "b", "c"] {
        let instance = ServiceInstance::new("api").with_id(id).with_port(1);
        discovery.register(&instance).await.unwrap();
    }
    let mut disabled = ServiceInstance::new("api").with_id("d");
    disabled.enabled = false;
    discovery.register(&disabled).await.unwrap();
    let (provider, mut events) = discovery
        .service_provider("api")
        .strategy(ProviderStrategy::RoundRobin)
        .start();
    loop {
        let event = within(
            LIMIT,
            "service cache event",
            futures::StreamExt::next(&mut events),
        )
        .await
        .expect("event stream open");
        if event == ServiceCacheEvent::Initialized {
            break;
        }
    }
    let picked: Vec<String> = (0..4)
        .map(|_| provider.get_instance().unwrap().id)
        .collect();
    assert_eq!(picked, ["a", "b", "c", "a"]);

    // Two errors take an instance out of rotation.
    let b = ServiceInstance::new("api").with_id("b");
    provider.note_error(&b);
    provider.note_error(&b);
    let usable: Vec<String> = provider
        .get_all_instances()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(usable, ["a", "c"]);

    // The provider follows registrations through its cache.
    let e = ServiceInstance::new("api").with_id("e");
    discovery.register(&e).await.unwrap();
    assert!(
        eventually(LIMIT, || async {
            provider.get_all_instances().iter().any(|i| i.id == "e")
        })
        .await
    );
    discovery.unregister(&e).await.unwrap();
    assert!(
        eventually(LIMIT, || async {
            provider.get_all_instances().iter().all(|i| i.id != "e")
        })
        .await
    );
    provider.close().await;
    discovery.close().await.unwrap();
    curator.close().await;
}

async fn atomic_falls_back_to_the_promoted_lock_when_optimism_fails(target: Target) {
    let Some(t) = ctx(target, "atomic-promoted").await else {
        return;
    };
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let curator = t.curator().await;
        tasks.push(tokio::spawn(async move {
            // No optimistic retries: every lost race goes to the lock.
            let counter = DistributedAtomicInteger::new(
                &curator,
                "/n",
                zk_recipes::RetryPolicy::n_times(0, Duration::from_millis(1)),
            )
            .with_promoted_lock(PromotedToLock::new(
                "/n-lock",
                Some(LIMIT),
                zk_recipes::RetryPolicy::forever(Duration::from_millis(5)),
            ));
            let mut promoted = 0;
            for _ in 0..5 {
                let result = counter.increment().await.unwrap();
                assert!(result.succeeded);
                promoted += result.promoted_tries;
            }
            curator.close().await;
            promoted
        }));
    }
    let promoted = within(LIMIT, "incrementers", async {
        let mut promoted = 0;
        for task in tasks {
            promoted += task.await.unwrap();
        }
        promoted
    })
    .await;
    let (data, _) = t.client().await.get_data("/n").await.unwrap();
    assert_eq!(&data[..], &20i32.to_be_bytes());
    assert!(promoted > 0, "four racing writers never lost a race");
    // The lock's nodes are gone after each use.
    let client = t.client().await;
    // (A reaped container counts as empty.)
    assert!(client
        .get_children("/n-lock")
        .await
        .map_or(true, |c| c.is_empty()));
}

recipe_tests!(
    service_instances_register_query_and_unregister_on_curators_layout,
    dynamic_sequential_instances_are_unregistered_at_their_sequential_node,
    service_provider_round_robins_over_usable_instances,
    a_namespace_prefixes_every_path_and_is_created_as_a_container,
    an_invalid_namespace_is_rejected,
    priority_queue_hands_out_lowest_priority_first,
    delay_queue_holds_items_until_they_are_due,
    id_queue_removes_items_by_id_and_keeps_arrival_order,
    a_dropped_take_keeps_its_item_for_the_next_take,
    multi_lock_holds_all_or_none,
    atomic_integer_is_four_bytes_and_never_loses_increments,
    atomic_falls_back_to_the_promoted_lock_when_optimism_fails,
    a_ttl_node_is_touched_and_outlives_close,
);
