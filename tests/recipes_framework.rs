//! The framework against Apache ZooKeeper and our server: Curator's connection states,
//! a new session after a partition, the retry loop and guaranteed deletes.

#[macro_use]
mod recipes_common;

use std::time::Duration;

use futures::StreamExt;
use recipes_common::{ctx, eventually, within, Target};
use zk_client::CreateMode;
use zk_recipes::paths::is_protected;
use zk_recipes::ConnectionState::{Connected, Lost, Reconnected, Suspended};
use zk_recipes::{ConnectionState, Curator};
use zk_testkit::proxy::Proxy;

const LIMIT: Duration = Duration::from_secs(30);

async fn next_state(
    states: &mut (impl futures::Stream<Item = ConnectionState> + Unpin),
) -> ConnectionState {
    within(LIMIT, "next connection state", states.next())
        .await
        .expect("state stream open")
}

async fn a_blip_is_suspended_then_reconnected_on_the_same_session(target: Target) {
    let Some(t) = ctx(target, "fw-blip").await else {
        return;
    };
    let proxy = Proxy::start(t.server).unwrap();
    let curator = Curator::builder(&format!("{}{}", proxy.connect_string(), t.root))
        .session_timeout(recipes_common::SESSION)
        .retry_policy(recipes_common::retry())
        .build()
        .unwrap();
    let mut states = Box::pin(curator.connection_states());
    assert_eq!(next_state(&mut states).await, Connected);
    let session = curator.session_id();
    proxy.pause();
    proxy.drop_all();
    assert_eq!(next_state(&mut states).await, Suspended);
    proxy.resume();
    assert_eq!(next_state(&mut states).await, Reconnected);
    assert_eq!(curator.session_id(), session);
    assert_eq!(curator.generation(), 0);
    curator.close().await;
}

async fn a_long_partition_is_lost_then_a_new_session_reconnects(target: Target) {
    let Some(t) = ctx(target, "fw-partition").await else {
        return;
    };
    let proxy = Proxy::start(t.server).unwrap();
    let curator = recipes_common::curator(&format!("{}{}", proxy.connect_string(), t.root)).await;
    let mut states = Box::pin(curator.connection_states());
    let session = curator.session_id();
    proxy.blackhole();
    proxy.drop_all();
    assert_eq!(next_state(&mut states).await, Suspended);
    // Suspended for the session timeout: Lost without hearing the server.
    assert_eq!(next_state(&mut states).await, Lost);
    proxy.forward();
    assert_eq!(next_state(&mut states).await, Reconnected);
    assert_ne!(curator.session_id(), session);
    assert_eq!(curator.generation(), 1);
    // Operations work on the new session.
    curator
        .create("/after", b"", CreateMode::Ephemeral)
        .await
        .unwrap();
    curator.close().await;
}

async fn operations_retry_across_a_dropped_connection(target: Target) {
    let Some(t) = ctx(target, "fw-retry").await else {
        return;
    };
    let proxy = Proxy::start(t.server).unwrap();
    let curator = recipes_common::curator(&format!("{}{}", proxy.connect_string(), t.root)).await;
    let mut states = Box::pin(curator.connection_states());
    proxy.pause();
    proxy.drop_all();
    let pending = {
        let curator = curator.clone();
        tokio::spawn(async move { curator.create("/a/b/c", b"x", CreateMode::Persistent).await })
    };
    // The framework noticed the drop; the create cannot have gone through.
    assert_eq!(next_state(&mut states).await, Suspended);
    assert!(!pending.is_finished());
    proxy.resume();
    assert_eq!(
        within(LIMIT, "create", pending).await.unwrap().unwrap(),
        "/a/b/c"
    );
    curator.close().await;
}

async fn a_guaranteed_delete_finishes_after_the_connection_returns(target: Target) {
    let Some(t) = ctx(target, "fw-delete").await else {
        return;
    };
    let proxy = Proxy::start(t.server).unwrap();
    let curator = recipes_common::curator(&format!("{}{}", proxy.connect_string(), t.root)).await;
    curator
        .create("/doomed", b"", CreateMode::Persistent)
        .await
        .unwrap();
    let mut states = Box::pin(curator.connection_states());
    proxy.pause();
    proxy.drop_all();
    curator.delete_in_background("/doomed".to_string());
    let admin = t.client().await;
    // Disconnected: the delete is pending, not done.
    assert_eq!(next_state(&mut states).await, Suspended);
    assert!(admin.exists("/doomed").await.unwrap().is_some());
    proxy.resume();
    assert!(
        eventually(LIMIT, || async {
            admin.exists("/doomed").await.unwrap().is_none()
        })
        .await
    );
    curator.close().await;
}

async fn a_protected_create_whose_reply_is_lost_adopts_the_node_it_made(target: Target) {
    let Some(t) = ctx(target, "fw-protected-loss").await else {
        return;
    };
    let admin = t.client().await;
    admin
        .create(
            "/p",
            b"",
            &zk_client::Acl::open_unsafe(),
            CreateMode::Persistent,
        )
        .await
        .unwrap();
    let proxy = Proxy::start(t.server).unwrap();
    let curator = recipes_common::curator(&format!("{}{}", proxy.connect_string(), t.root)).await;
    let session = curator.session_id();
    // The create reaches the server; its reply never reaches the client.
    proxy.pause_replies();
    let create = tokio::spawn({
        let curator = curator.clone();
        async move {
            curator
                .create_protected("/p", "node-", b"d", CreateMode::EphemeralSequential)
                .await
        }
    });
    assert!(
        eventually(LIMIT, || async {
            !admin.get_children("/p").await.unwrap().is_empty()
        })
        .await,
        "the server executed the create"
    );
    proxy.drop_all();
    proxy.resume_replies();
    let created = within(LIMIT, "protected create", create)
        .await
        .unwrap()
        .unwrap();
    // Same session (the blip was short), so the node made before the loss
    // is adopted rather than made twice.
    assert_eq!(curator.session_id(), session);
    let children = admin.get_children("/p").await.unwrap();
    assert_eq!(children.len(), 1, "{children:?}");
    assert_eq!(created, format!("/p/{}", children[0]));
    assert!(is_protected(&children[0]), "{}", children[0]);
    curator.close().await;
}

async fn protected_creates_use_the_curator_prefix_and_make_parents(target: Target) {
    let Some(t) = ctx(target, "fw-protected").await else {
        return;
    };
    let curator = t.curator().await;
    let path = curator
        .create_protected("/p/q", "node-", b"d", CreateMode::EphemeralSequential)
        .await
        .unwrap();
    let name = zk_recipes::paths::node_name(&path);
    assert!(zk_recipes::paths::is_protected(name), "{name}");
    assert!(zk_recipes::paths::strip_protection(name).starts_with("node-"));
    assert_eq!(zk_recipes::paths::sequence_of(name), Some(0));
    curator.close().await;
}

recipe_tests!(
    a_protected_create_whose_reply_is_lost_adopts_the_node_it_made,
    a_blip_is_suspended_then_reconnected_on_the_same_session,
    a_long_partition_is_lost_then_a_new_session_reconnects,
    operations_retry_across_a_dropped_connection,
    a_guaranteed_delete_finishes_after_the_connection_returns,
    protected_creates_use_the_curator_prefix_and_make_parents,
);
