//! PersistentNode and GroupMember against Apache ZooKeeper and our server.

#[macro_use]
mod recipes_common;

use std::time::Duration;

use recipes_common::{ctx, eventually, Target};
use zk_client::CreateMode;
use zk_recipes::{ConnectionState, GroupMember, PersistentNode};
use zk_testkit::proxy::Proxy;

const LIMIT: Duration = Duration::from_secs(30);

async fn a_persistent_node_comes_back_after_an_external_delete(target: Target) {
    let Some(t) = ctx(target, "pnode-delete").await else {
        return;
    };
    let curator = t.curator().await;
    let node = PersistentNode::start(
        &curator,
        "/svc/instance",
        CreateMode::Ephemeral,
        false,
        &b"up"[..],
    )
    .unwrap();
    assert!(node.wait_for_initial_create(LIMIT).await);
    let admin = t.client().await;
    admin.delete("/svc/instance", None).await.unwrap();
    assert!(
        eventually(LIMIT, || async {
            admin
                .get_data("/svc/instance")
                .await
                .is_ok_and(|(d, _)| &d[..] == b"up")
        })
        .await
    );
    node.close().await.unwrap();
    assert!(admin.exists("/svc/instance").await.unwrap().is_none());
}

async fn a_protected_sequential_node_is_recreated_under_the_same_name(target: Target) {
    let Some(t) = ctx(target, "pnode-seq").await else {
        return;
    };
    let curator = t.curator().await;
    let node = PersistentNode::start(
        &curator,
        "/svc/member-",
        CreateMode::EphemeralSequential,
        true,
        &b"x"[..],
    )
    .unwrap();
    assert!(node.wait_for_initial_create(LIMIT).await);
    let first = node.actual_path().unwrap();
    assert!(zk_recipes::paths::is_protected(
        zk_recipes::paths::node_name(&first)
    ));
    let admin = t.client().await;
    admin.delete(&first, None).await.unwrap();
    assert!(
        eventually(LIMIT, || async {
            admin.exists(&first).await.unwrap().is_some()
        })
        .await
    );
    assert_eq!(node.actual_path().unwrap(), first);
    node.close().await.unwrap();
}

async fn an_ephemeral_persistent_node_survives_the_loss_of_its_session(target: Target) {
    let Some(t) = ctx(target, "pnode-lost").await else {
        return;
    };
    let proxy = Proxy::start(t.server).unwrap();
    let curator = recipes_common::curator(&format!("{}{}", proxy.connect_string(), t.root)).await;
    let mut states = curator.subscribe_states();
    let node = PersistentNode::start(
        &curator,
        "/svc/instance",
        CreateMode::Ephemeral,
        false,
        &b"up"[..],
    )
    .unwrap();
    assert!(node.wait_for_initial_create(LIMIT).await);
    proxy.blackhole();
    proxy.drop_all();
    tokio::time::timeout(LIMIT, async {
        while states.recv().await.unwrap() != ConnectionState::Lost {}
    })
    .await
    .unwrap();
    proxy.forward();
    let admin = t.client().await;
    // The old session's node goes when the server expires it; ours returns.
    assert!(
        eventually(LIMIT, || async {
            admin
                .exists("/svc/instance")
                .await
                .unwrap()
                .is_some_and(|stat| stat.ephemeral_owner == curator.session_id())
        })
        .await
    );
    node.close().await.unwrap();
}

async fn group_members_see_each_other_join_and_leave(target: Target) {
    let Some(t) = ctx(target, "group").await else {
        return;
    };
    let a_curator = t.curator().await;
    let (a, _a_events) = GroupMember::start(&a_curator, "/group", "a", None).unwrap();
    assert!(
        a.current_members().contains_key("a"),
        "always includes itself"
    );
    let b_curator = t.curator().await;
    let (b, _b_events) =
        GroupMember::start(&b_curator, "/group", "b", Some(bytes::Bytes::from("pb"))).unwrap();
    assert!(
        eventually(LIMIT, || async {
            a.current_members()
                .get("b")
                .is_some_and(|p| &p[..] == b"pb")
        })
        .await
    );
    assert_eq!(
        a.current_members().get("a").cloned(),
        Some(a_curator.default_data())
    );
    b.close().await.unwrap();
    assert!(eventually(LIMIT, || async { !a.current_members().contains_key("b") }).await);
    a.close().await.unwrap();
}

recipe_tests!(
    a_persistent_node_comes_back_after_an_external_delete,
    a_protected_sequential_node_is_recreated_under_the_same_name,
    an_ephemeral_persistent_node_survives_the_loss_of_its_session,
    group_members_see_each_other_join_and_leave,
);
