//! Barriers, queues, counters against Apache ZooKeeper and our server.

#[macro_use]
mod recipes_common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use recipes_common::{ctx, eventually, within, Target};
use zk_recipes::queue::{decode_items, encode_items};
use zk_recipes::{
    DistributedAtomicLong, DistributedBarrier, DistributedDoubleBarrier, DistributedQueue,
    RetryPolicy, SharedCount, SharedValue,
};

const LIMIT: Duration = Duration::from_secs(60);

async fn a_barrier_holds_waiters_until_removed(target: Target) {
    let Some(t) = ctx(target, "barrier").await else {
        return;
    };
    let curator = t.curator().await;
    let barrier = DistributedBarrier::new(&curator, "/gate");
    barrier.set_barrier().await.unwrap();
    barrier.set_barrier().await.unwrap();
    assert!(!barrier
        .wait_on_barrier(Some(Duration::from_millis(300)))
        .await
        .unwrap());
    let mut waiter = {
        let barrier = barrier.clone();
        tokio::spawn(async move { barrier.wait_on_barrier(None).await })
    };
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut waiter)
            .await
            .is_err(),
        "a waiter passed a standing barrier"
    );
    barrier.remove_barrier().await.unwrap();
    assert!(within(LIMIT, "waiter", waiter).await.unwrap().unwrap());
}

async fn double_barrier_members_enter_and_leave_together(target: Target) {
    let Some(t) = ctx(target, "double-barrier").await else {
        return;
    };
    let entered = Arc::new(AtomicUsize::new(0));
    let left = Arc::new(AtomicUsize::new(0));
    let spawn_member = |curator: zk_recipes::Curator| {
        let (entered, left) = (entered.clone(), left.clone());
        tokio::spawn(async move {
            let barrier = DistributedDoubleBarrier::new(&curator, "/double", 3);
            assert!(barrier.enter(Some(LIMIT)).await.unwrap());
            let others_entered = entered.fetch_add(1, Ordering::SeqCst);
            assert_eq!(left.load(Ordering::SeqCst), 0);
            assert!(barrier.leave(Some(LIMIT)).await.unwrap());
            left.fetch_add(1, Ordering::SeqCst);
            // Leaving waits for every member to have entered.
            assert_eq!(entered.load(Ordering::SeqCst), 3);
            others_entered
        })
    };
    let observer = t.curator().await;
    let mut members = Vec::new();
    for _ in 0..2 {
        members.push(spawn_member(t.curator().await));
    }
    // Two of three have arrived (their nodes are there): nobody passes.
    assert!(
        eventually(LIMIT, || async {
            let children = observer.client().get_children("/double").await;
            children.map(|c| c.len() == 2).unwrap_or(false)
        })
        .await,
        "the first two members arrived"
    );
    assert_eq!(entered.load(Ordering::SeqCst), 0);
    members.push(spawn_member(t.curator().await));
    for member in members {
        within(LIMIT, "member", member).await.unwrap();
    }
    assert!(observer
        .client()
        .get_children("/double")
        .await
        .unwrap()
        .is_empty());
}

async fn double_barrier_enter_times_out_when_members_are_missing(target: Target) {
    let Some(t) = ctx(target, "double-barrier-timeout").await else {
        return;
    };
    let curator = t.curator().await;
    let barrier = DistributedDoubleBarrier::new(&curator, "/double", 2);
    assert!(!barrier
        .enter(Some(Duration::from_millis(300)))
        .await
        .unwrap());
}

async fn every_queued_item_is_consumed_exactly_once(target: Target) {
    let Some(t) = ctx(target, "queue-once").await else {
        return;
    };
    let producer = t.curator().await;
    let queue = DistributedQueue::new(&producer, "/q");
    let total = 60;
    let taken = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (done_tx, done) = tokio::sync::watch::channel(false);
    let done_tx = Arc::new(done_tx);
    let mut consumers = Vec::new();
    for _ in 0..3 {
        let curator = t.curator().await;
        let (taken, done_tx, mut done) = (taken.clone(), done_tx.clone(), done.clone());
        consumers.push(tokio::spawn(async move {
            let queue = DistributedQueue::new(&curator, "/q");
            loop {
                // Stopping a take is only safe once nothing is left to take.
                let item = tokio::select! {
                    item = queue.take() => item.unwrap(),
                    _ = done.wait_for(|d| *d) => return,
                };
                let mut taken = taken.lock().unwrap();
                taken.push(String::from_utf8(item.to_vec()).unwrap());
                if taken.len() == total {
                    done_tx.send_replace(true);
                }
            }
        }));
    }
    for i in 0..total / 2 {
        queue.put(format!("item-{i}").as_bytes()).await.unwrap();
    }
    // Multi-item nodes are delivered item by item.
    for i in (total / 2..total).step_by(2) {
        let (a, b) = (format!("item-{i}"), format!("item-{}", i + 1));
        queue
            .put_multi(&[a.as_bytes(), b.as_bytes()])
            .await
            .unwrap();
    }
    within(LIMIT, "consumers", async {
        for consumer in consumers {
            consumer.await.unwrap();
        }
    })
    .await;
    let taken = taken.lock().unwrap().clone();
    assert_eq!(taken.len(), total);
    let unique: BTreeSet<_> = taken.iter().cloned().collect();
    let expected: BTreeSet<_> = (0..total).map(|i| format!("item-{i}")).collect();
    assert_eq!(unique, expected);
    assert!(queue.is_empty().await.unwrap());
}

async fn queue_items_use_curators_names_and_framing(target: Target) {
    let Some(t) = ctx(target, "queue-layout").await else {
        return;
    };
    let curator = t.curator().await;
    let queue = DistributedQueue::new(&curator, "/q");
    queue.put(b"payload").await.unwrap();
    let children = curator.client().get_children("/q").await.unwrap();
    assert_eq!(children.len(), 1);
    assert!(children[0].starts_with("queue-") && children[0].len() == 16);
    let (data, _) = curator
        .client()
        .get_data(&format!("/q/{}", children[0]))
        .await
        .unwrap();
    assert_eq!(data, encode_items(&[b"payload"]));
    assert_eq!(
        decode_items(&data).unwrap(),
        vec![bytes::Bytes::from("payload")]
    );
}

async fn a_lock_safe_consumer_failure_requeues_the_item_at_the_back(target: Target) {
    let Some(t) = ctx(target, "queue-requeue").await else {
        return;
    };
    let curator = t.curator().await;
    let queue = DistributedQueue::new(&curator, "/q").with_lock_path("/q-locks");
    queue.put(b"first").await.unwrap();
    queue.put(b"second").await.unwrap();
    let failed = queue
        .consume_next(|items| async move {
            assert_eq!(items, vec![bytes::Bytes::from("first")]);
            Err::<(), _>("boom")
        })
        .await
        .unwrap();
    assert_eq!(failed, Err("boom"));
    let mut order = Vec::new();
    for _ in 0..2 {
        let order_ref = &mut order;
        queue
            .consume_next(|items| {
                order_ref.extend(items);
                async { Ok::<(), ()>(()) }
            })
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(
        order,
        vec![bytes::Bytes::from("second"), bytes::Bytes::from("first")]
    );
    assert!(queue.is_empty().await.unwrap());
    assert!(curator
        .client()
        .get_children("/q-locks")
        .await
        .unwrap()
        .is_empty());
}

async fn shared_count_views_converge_and_try_set_detects_races(target: Target) {
    let Some(t) = ctx(target, "shared-count").await else {
        return;
    };
    let a = SharedCount::start(&t.curator().await, "/count", 7)
        .await
        .unwrap();
    let b = SharedCount::start(&t.curator().await, "/count", 99)
        .await
        .unwrap();
    assert_eq!((a.count(), b.count()), (7, 7), "the seed only applies once");
    let seen = a.versioned();
    b.set_count(10).await.unwrap();
    let mut changes = a.changes();
    within(LIMIT, "a sees 10", changes.wait_for(|v| v.value == 10))
        .await
        .unwrap();
    // `seen` is stale now.
    assert!(!a.try_set_count(seen, 11).await.unwrap());
    assert!(a.try_set_count(a.versioned(), 12).await.unwrap());
    let mut changes = b.changes();
    within(LIMIT, "b sees 12", changes.wait_for(|v| v.value == 12))
        .await
        .unwrap();
    let curator = t.curator().await;
    let (data, _) = curator.client().get_data("/count").await.unwrap();
    assert_eq!(&data[..], &12i32.to_be_bytes());
    a.close().await;
    b.close().await;
}

async fn shared_value_views_converge_and_a_stale_try_set_is_refused(target: Target) {
    let Some(t) = ctx(target, "shared-value").await else {
        return;
    };
    let a = SharedValue::start(&t.curator().await, "/value", Bytes::from("seed"))
        .await
        .unwrap();
    let b = SharedValue::start(&t.curator().await, "/value", Bytes::from("other"))
        .await
        .unwrap();
    assert_eq!(a.value(), "seed", "the seed only applies once");
    assert_eq!(b.value(), "seed");
    let seen = a.versioned();
    b.set_value(Bytes::from("from b")).await.unwrap();
    let mut changes = a.changes();
    within(
        LIMIT,
        "a sees b's write",
        changes.wait_for(|v| v.value == "from b"),
    )
    .await
    .unwrap();
    // `seen` is stale now: the write must not land.
    assert!(!a.try_set_value(seen, Bytes::from("stale")).await.unwrap());
    assert!(a
        .try_set_value(a.versioned(), Bytes::from("from a"))
        .await
        .unwrap());
    let mut changes = b.changes();
    within(
        LIMIT,
        "b sees a's write",
        changes.wait_for(|v| v.value == "from a"),
    )
    .await
    .unwrap();
    let curator = t.curator().await;
    let (data, _) = curator.client().get_data("/value").await.unwrap();
    assert_eq!(data, "from a");
    a.close().await;
    b.close().await;
}

async fn atomic_long_increments_are_never_lost(target: Target) {
    let Some(t) = ctx(target, "atomic-long").await else {
        return;
    };
    let retry = RetryPolicy::forever(Duration::from_millis(5));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let curator = t.curator().await;
        let retry = retry.clone();
        tasks.push(tokio::spawn(async move {
            let counter = DistributedAtomicLong::new(&curator, "/n/value", retry);
            for _ in 0..10 {
                assert!(counter.increment().await.unwrap().succeeded);
            }
        }));
    }
    within(LIMIT, "incrementers", async {
        for task in tasks {
            task.await.unwrap();
        }
    })
    .await;
    let curator = t.curator().await;
    let counter = DistributedAtomicLong::new(&curator, "/n/value", retry);
    assert_eq!(counter.get().await.unwrap(), Some(40));
    let cas = counter.compare_and_set(1, 5).await.unwrap();
    assert!(!cas.succeeded);
    assert!(counter.compare_and_set(40, 5).await.unwrap().succeeded);
    let (data, _) = curator.client().get_data("/n/value").await.unwrap();
    assert_eq!(&data[..], &5i64.to_be_bytes());
}

recipe_tests!(
    a_barrier_holds_waiters_until_removed,
    double_barrier_members_enter_and_leave_together,
    double_barrier_enter_times_out_when_members_are_missing,
    every_queued_item_is_consumed_exactly_once,
    queue_items_use_curators_names_and_framing,
    a_lock_safe_consumer_failure_requeues_the_item_at_the_back,
    shared_count_views_converge_and_try_set_detects_races,
    shared_value_views_converge_and_a_stale_try_set_is_refused,
    atomic_long_increments_are_never_lost,
);
