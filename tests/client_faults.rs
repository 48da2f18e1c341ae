//! Failure semantics under injected faults: dropped connections, a
//! blackholed network past the session timeout, and a killed ensemble
//! member. Short session timeouts keep these quick.

#[macro_use]
mod client_target;

use std::time::Duration;

use futures::StreamExt;
use zk_client::{Acl, Client, CreateMode, Error, EventType, KeeperState, SessionState};
use zk_testkit::apache::ApacheEnsemble;
use zk_testkit::proxy::Proxy;

use client_target::{ctx, ensure_path, eventually, wait_state, Target};

const SESSION: Duration = Duration::from_millis(4000);

/// A client in the test's chroot that reaches the server through `proxy`.
async fn proxied_client(proxy: &Proxy, root: &str) -> Client {
    Client::builder(&format!("{}{root}", proxy.connect_string()))
        .session_timeout(SESSION)
        .connection_timeout(Duration::from_secs(20))
        .connect()
        .await
        .expect("connect through the proxy")
}

async fn a_dropped_connection_keeps_the_session_ephemerals_and_watches(target: Target) {
    let Some(t) = ctx(target, "drop").await else {
        return;
    };
    let proxy = Proxy::start(target.one_server()).unwrap();
    let client = proxied_client(&proxy, &t.root).await;
    let session = client.session_id();
    client
        .create("/eph", b"", &Acl::open_unsafe(), CreateMode::Ephemeral)
        .await
        .unwrap();
    client
        .create("/w", b"0", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .unwrap();
    let (_, _, watch) = client.get_data_and_watch("/w").await.unwrap();
    let mut states = client.state_stream();
    assert_eq!(states.next().await, Some(SessionState::Connected));

    // Cut the connection and change the node while the client is away.
    proxy.pause();
    proxy.drop_all();
    assert_eq!(states.next().await, Some(SessionState::Disconnected));
    t.client.set_data("/w", b"1", None).await.unwrap();
    proxy.resume();

    assert_eq!(
        tokio::time::timeout(Duration::from_secs(10), states.next())
            .await
            .unwrap(),
        Some(SessionState::Connected)
    );
    assert_eq!(client.session_id(), session, "same session after reconnect");
    let event = tokio::time::timeout(Duration::from_secs(10), watch)
        .await
        .unwrap();
    assert_eq!(
        event.event_type,
        EventType::NodeDataChanged,
        "setWatches replays the missed change"
    );
    assert!(
        t.client.exists("/eph").await.unwrap().is_some(),
        "ephemeral survives"
    );
    client.close().await.unwrap();
}

async fn requests_in_flight_fail_with_connection_loss(target: Target) {
    let Some(t) = ctx(target, "in-flight").await else {
        return;
    };
    let proxy = Proxy::start(target.one_server()).unwrap();
    let client = proxied_client(&proxy, &t.root).await;
    // Requests reach the server, replies are held: once the server has
    // made /x, the create is certainly in flight.
    proxy.pause_replies();
    let pending = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .create("/x", b"", &Acl::open_unsafe(), CreateMode::Persistent)
                .await
        })
    };
    assert!(
        eventually(Duration::from_secs(10), || async {
            t.client.exists("/x").await.unwrap().is_some()
        })
        .await,
        "the create reached the server"
    );
    proxy.drop_all();
    assert_eq!(
        pending.await.unwrap(),
        Err(Error::ConnectionLoss),
        "not retried silently"
    );
    proxy.resume_replies();
    wait_state(&client, Duration::from_secs(10), |s| s.is_connected()).await;
    assert!(client.exists("/x").await.unwrap().is_some());
    client.close().await.unwrap();
}

async fn a_blackhole_past_the_session_timeout_expires_the_session(target: Target) {
    let Some(t) = ctx(target, "blackhole").await else {
        return;
    };
    let proxy = Proxy::start(target.one_server()).unwrap();
    let client = proxied_client(&proxy, &t.root).await;
    client
        .create("/eph", b"", &Acl::open_unsafe(), CreateMode::Ephemeral)
        .await
        .unwrap();
    let (_, _, watch) = client.get_data_and_watch("/eph").await.unwrap();
    let mut states = client.state_stream();
    assert_eq!(states.next().await, Some(SessionState::Connected));

    proxy.blackhole();
    // The read timeout (2/3 of the session timeout) notices the silence.
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(10), states.next())
            .await
            .unwrap(),
        Some(SessionState::Disconnected)
    );
    let gone = eventually(Duration::from_secs(20), || async {
        matches!(t.client.exists("/eph").await, Ok(None))
    })
    .await;
    assert!(
        gone,
        "the server expired the session and removed its ephemeral"
    );
    proxy.forward();

    assert_eq!(
        tokio::time::timeout(Duration::from_secs(20), states.next())
            .await
            .unwrap(),
        Some(SessionState::Expired)
    );
    assert_eq!(states.next().await, None, "Expired is final");
    let event = tokio::time::timeout(Duration::from_secs(5), watch)
        .await
        .unwrap();
    assert_eq!(
        (event.event_type, event.state),
        (EventType::None, KeeperState::Expired)
    );
    assert_eq!(client.exists("/eph").await, Err(Error::SessionExpired));
}

async fn update_server_list_moves_a_client_off_a_removed_server(target: Target) {
    let Some(t) = ctx(target, "rebalance").await else {
        return;
    };
    let first = Proxy::start(target.one_server()).unwrap();
    let second = Proxy::start(target.one_server()).unwrap();
    let client = proxied_client(&first, &t.root).await;
    let session = client.session_id();
    assert_eq!(client.connected_server(), Some(first.addr()));
    let moved = client
        .update_server_list(&second.connect_string())
        .await
        .unwrap();
    assert!(moved, "its server left the list, so the client must move");
    let moved_over = eventually(Duration::from_secs(10), || async {
        client.state().is_connected() && client.connected_server() == Some(second.addr())
    })
    .await;
    assert!(moved_over, "connected through the remaining server");
    assert_eq!(client.session_id(), session);
    client.close().await.unwrap();
}

target_tests!(
    a_dropped_connection_keeps_the_session_ephemerals_and_watches,
    requests_in_flight_fail_with_connection_loss,
    a_blackhole_past_the_session_timeout_expires_the_session,
    update_server_list_moves_a_client_off_a_removed_server,
);

/// Killing the member a client is connected to: the client moves to
/// another member and keeps its session and ephemerals.
#[tokio::test]
async fn a_killed_ensemble_member_is_survived_by_moving_to_another() {
    if !Target::ApacheEnsemble.available() {
        return;
    }
    let mut ensemble = tokio::task::spawn_blocking(|| ApacheEnsemble::start(3).expect("ensemble"))
        .await
        .unwrap();
    let client = Client::builder(&ensemble.connect_string())
        .session_timeout(Duration::from_secs(8))
        .connect()
        .await
        .unwrap();
    ensure_path(&client, "/kill").await;
    client
        .create("/kill/eph", b"", &Acl::open_unsafe(), CreateMode::Ephemeral)
        .await
        .unwrap();
    let session = client.session_id();
    let victim = ensemble
        .member_at(client.connected_server().expect("connected"))
        .expect("a member");

    ensemble.kill(victim);
    let back = eventually(Duration::from_secs(30), || async {
        client.state().is_connected() && client.connected_server() != Some(ensemble.addr(victim))
    })
    .await;
    assert!(
        back,
        "reconnected to another member (state {:?})",
        client.state()
    );
    assert_eq!(client.session_id(), session);
    let alive = eventually(Duration::from_secs(20), || async {
        matches!(client.exists("/kill/eph").await, Ok(Some(_)))
    })
    .await;
    assert!(alive, "the ephemeral node survives the move");

    let mut ensemble = tokio::task::spawn_blocking(move || {
        ensemble.restart(victim).expect("restart");
        ensemble
    })
    .await
    .unwrap();
    assert!(ensemble.is_running(victim));
    client.close().await.unwrap();
    ensemble.kill(victim);
}
