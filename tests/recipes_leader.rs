//! Leader election against Apache ZooKeeper and our server: latch agreement and hand-over,
//! reaction to connection drops and session loss, selector requeueing.

#[macro_use]
mod recipes_common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use recipes_common::{ctx, eventually, within, Target};
use zk_recipes::paths::{node_name, strip_protection};
use zk_recipes::{ConnectionState, LeaderLatch, LeaderSelector};
use zk_testkit::proxy::Proxy;

const LIMIT: Duration = Duration::from_secs(30);

fn leaders(latches: &[LeaderLatch]) -> Vec<String> {
    latches
        .iter()
        .filter(|l| l.has_leadership())
        .map(|l| l.id().to_string())
        .collect()
}

async fn latches_agree_on_exactly_one_leader_and_hand_over_on_close(target: Target) {
    let Some(t) = ctx(target, "latch-agree").await else {
        return;
    };
    let mut latches = Vec::new();
    for i in 0..3 {
        let curator = t.curator().await;
        latches.push(LeaderLatch::start(&curator, "/election", &format!("p{i}")));
    }
    assert!(eventually(LIMIT, || async { leaders(&latches).len() == 1 }).await);
    let leader = leaders(&latches).remove(0);
    let seen = latches[1].leader().await.unwrap().unwrap();
    assert_eq!(seen.id, leader);
    assert_eq!(latches[2].participants().await.unwrap().len(), 3);

    let index = latches.iter().position(|l| l.id() == leader).unwrap();
    latches.remove(index).close().await.unwrap();
    assert!(eventually(LIMIT, || async { leaders(&latches).len() == 1 }).await);
    assert_ne!(leaders(&latches)[0], leader);
    for latch in latches {
        latch.close().await.unwrap();
    }
}

async fn latch_nodes_are_protected_latch_nodes_holding_the_id(target: Target) {
    let Some(t) = ctx(target, "latch-layout").await else {
        return;
    };
    let curator = t.curator().await;
    let latch = LeaderLatch::start(&curator, "/election", "node-1");
    assert!(latch.await_leadership(LIMIT).await);
    let path = latch.our_path().unwrap();
    assert!(
        strip_protection(node_name(&path)).starts_with("latch-"),
        "{path}"
    );
    let (data, _) = curator.client().get_data(&path).await.unwrap();
    assert_eq!(&data[..], b"node-1");
    latch.close().await.unwrap();
    assert!(curator.client().exists(&path).await.unwrap().is_none());
}

async fn latch_gives_up_leadership_while_suspended_and_regains_it(target: Target) {
    let Some(t) = ctx(target, "latch-suspend").await else {
        return;
    };
    let proxy = Proxy::start(t.server).unwrap();
    let curator = recipes_common::curator(&format!("{}{}", proxy.connect_string(), t.root)).await;
    let latch = LeaderLatch::start(&curator, "/election", "solo");
    assert!(latch.await_leadership(LIMIT).await);
    let first_node = latch.our_path().unwrap();
    let mut leadership = latch.leadership();

    proxy.pause();
    proxy.drop_all();
    within(LIMIT, "leadership lost", leadership.wait_for(|l| !*l))
        .await
        .unwrap();
    proxy.resume();
    assert!(latch.await_leadership(LIMIT).await);
    // Same session: the same node still leads.
    assert_eq!(latch.our_path().unwrap(), first_node);
    latch.close().await.unwrap();
}

async fn latch_recovers_with_a_new_node_after_its_session_is_lost(target: Target) {
    let Some(t) = ctx(target, "latch-lost").await else {
        return;
    };
    let proxy = Proxy::start(t.server).unwrap();
    let curator = recipes_common::curator(&format!("{}{}", proxy.connect_string(), t.root)).await;
    let mut states = curator.subscribe_states();
    let latch = LeaderLatch::start(&curator, "/election", "solo");
    assert!(latch.await_leadership(LIMIT).await);
    let first_node = latch.our_path().unwrap();

    // Partitioned past the session timeout: simulated expiry posts Lost.
    proxy.blackhole();
    proxy.drop_all();
    within(LIMIT, "Lost", async {
        while states.recv().await.unwrap() != ConnectionState::Lost {}
    })
    .await;
    assert!(!latch.has_leadership());
    proxy.forward();
    assert!(latch.await_leadership(LIMIT).await);
    assert_ne!(latch.our_path().unwrap(), first_node);
    let owner = curator
        .client()
        .exists(&latch.our_path().unwrap())
        .await
        .unwrap()
        .unwrap()
        .ephemeral_owner;
    assert_eq!(owner, curator.session_id());
    latch.close().await.unwrap();
}

async fn selectors_with_auto_requeue_take_turns_one_at_a_time(target: Target) {
    let Some(t) = ctx(target, "selector-requeue").await else {
        return;
    };
    let leading = Arc::new(AtomicUsize::new(0));
    let overlap = Arc::new(AtomicUsize::new(0));
    let mut selectors = Vec::new();
    for i in 0..3 {
        let curator = t.curator().await;
        let (leading, overlap) = (leading.clone(), overlap.clone());
        let selector = LeaderSelector::builder(&curator, "/leader")
            .id(&format!("s{i}"))
            .auto_requeue(true)
            .start(move |_curator| {
                let (leading, overlap) = (leading.clone(), overlap.clone());
                async move {
                    if leading.fetch_add(1, Ordering::SeqCst) > 0 {
                        overlap.fetch_add(1, Ordering::SeqCst);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    leading.fetch_sub(1, Ordering::SeqCst);
                }
            });
        selectors.push(selector);
    }
    for selector in &selectors {
        let mut count = selector.leadership_count();
        within(LIMIT, "two leaderships each", count.wait_for(|n| *n >= 2))
            .await
            .unwrap();
    }
    assert_eq!(overlap.load(Ordering::SeqCst), 0, "two leaders at once");
    for selector in selectors {
        selector.close().await;
    }
}

async fn a_selector_without_requeue_leads_once_until_requeued(target: Target) {
    let Some(t) = ctx(target, "selector-once").await else {
        return;
    };
    let curator = t.curator().await;
    let selector = LeaderSelector::builder(&curator, "/leader")
        .id("once")
        .start(|_curator| async {});
    let mut count = selector.leadership_count();
    within(LIMIT, "first leadership", count.wait_for(|n| *n == 1))
        .await
        .unwrap();
    // Its term over, the selector leaves the election and does not queue
    // again: no node of its own, still one leadership.
    assert!(
        eventually(LIMIT, || async {
            selector.participants().await.unwrap().is_empty()
        })
        .await,
        "the selector left the election"
    );
    assert_eq!(*count.borrow(), 1);
    selector.requeue();
    within(LIMIT, "second leadership", count.wait_for(|n| *n == 2))
        .await
        .unwrap();
    selector.close().await;
}

async fn a_selectors_leadership_is_cancelled_when_the_connection_drops(target: Target) {
    let Some(t) = ctx(target, "selector-cancel").await else {
        return;
    };
    let proxy = Proxy::start(t.server).unwrap();
    let curator = recipes_common::curator(&format!("{}{}", proxy.connect_string(), t.root)).await;
    let selector = LeaderSelector::builder(&curator, "/leader")
        .id("long")
        .start(|_curator| futures::future::pending::<()>());
    let mut leadership = selector.leadership();
    within(LIMIT, "leadership", leadership.wait_for(|l| *l))
        .await
        .unwrap();
    proxy.pause();
    proxy.drop_all();
    within(LIMIT, "cancellation", leadership.wait_for(|l| !*l))
        .await
        .unwrap();
    proxy.resume();
    selector.close().await;
}

recipe_tests!(
    latches_agree_on_exactly_one_leader_and_hand_over_on_close,
    latch_nodes_are_protected_latch_nodes_holding_the_id,
    latch_gives_up_leadership_while_suspended_and_regains_it,
    latch_recovers_with_a_new_node_after_its_session_is_lost,
    selectors_with_auto_requeue_take_turns_one_at_a_time,
    a_selector_without_requeue_leads_once_until_requeued,
    a_selectors_leadership_is_cancelled_when_the_connection_drops,
);
