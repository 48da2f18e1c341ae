//! Lock revocation (RECIPES.md §B6) against Apache ZooKeeper and our
//! server: `__REVOKE__` written into a revocable lock's node reaches its
//! holder, who decides to release.

#[macro_use]
mod recipes_common;

use std::time::Duration;

use futures::StreamExt;
use recipes_common::{ctx, within, Target};
use zk_recipes::lock::REVOKE_MESSAGE;
use zk_recipes::{
    Events, InterProcessMutex, InterProcessReadWriteLock, RevocationRequest, Revoker,
};

const LIMIT: Duration = Duration::from_secs(30);

async fn next_request(requests: &mut Events<RevocationRequest>) -> RevocationRequest {
    within(LIMIT, "revocation request", requests.next())
        .await
        .expect("request stream open")
}

async fn a_revoked_holder_is_asked_to_release_and_the_waiter_then_acquires(target: Target) {
    let Some(t) = ctx(target, "revoke-mutex").await else {
        return;
    };
    let holder_fw = t.curator().await;
    let waiter_fw = t.curator().await;
    let holder = InterProcessMutex::new(&holder_fw, "/lock");
    let mut requests = holder.make_revocable();
    let guard = holder.acquire().await.unwrap();
    // A revocable lock node carries empty data.
    let client = t.client().await;
    let (data, _) = client.get_data(guard.path()).await.unwrap();
    assert!(data.is_empty(), "revocable node data {data:?}");

    let waiter = InterProcessMutex::new(&waiter_fw, "/lock");
    let waiting = tokio::spawn(async move {
        let guard = waiter.acquire().await.unwrap();
        guard.release().await.unwrap();
    });
    Revoker::attempt_revoke(&waiter_fw, guard.path())
        .await
        .unwrap();
    let request = next_request(&mut requests).await;
    assert_eq!(request.path, guard.path());
    let (data, _) = client.get_data(guard.path()).await.unwrap();
    assert_eq!(&data[..], REVOKE_MESSAGE);
    assert!(
        !waiting.is_finished(),
        "the waiter must wait for the release"
    );
    guard.release().await.unwrap();
    within(LIMIT, "waiter acquires", waiting).await.unwrap();
}

async fn revoking_a_lock_node_that_is_gone_is_not_an_error(target: Target) {
    let Some(t) = ctx(target, "revoke-gone").await else {
        return;
    };
    let curator = t.curator().await;
    let mutex = InterProcessMutex::new(&curator, "/lock");
    let guard = mutex.acquire().await.unwrap();
    let path = guard.path().to_string();
    guard.release().await.unwrap();
    Revoker::attempt_revoke(&curator, &path).await.unwrap();
}

async fn a_request_made_while_waiting_is_delivered_once_the_lock_is_held(target: Target) {
    let Some(t) = ctx(target, "revoke-waiting").await else {
        return;
    };
    let first_fw = t.curator().await;
    let second_fw = t.curator().await;
    let first = InterProcessMutex::new(&first_fw, "/lock");
    let held = first.acquire().await.unwrap();
    let second = InterProcessMutex::new(&second_fw, "/lock");
    let mut requests = second.make_revocable();
    let waiting = tokio::spawn(async move {
        let guard = second.acquire().await.unwrap();
        (second, guard)
    });
    // Wait for the second contender's node, then ask it to give up.
    let nodes = loop {
        let nodes = first.participant_nodes().await.unwrap();
        if nodes.len() == 2 {
            break nodes;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    Revoker::attempt_revoke(&first_fw, &nodes[1]).await.unwrap();
    held.release().await.unwrap();
    let (_second, guard) = within(LIMIT, "second acquires", waiting).await.unwrap();
    assert_eq!(guard.path(), nodes[1]);
    assert_eq!(next_request(&mut requests).await.path, nodes[1]);
    guard.release().await.unwrap();
}

async fn each_half_of_the_read_write_lock_can_be_revoked(target: Target) {
    let Some(t) = ctx(target, "revoke-rw").await else {
        return;
    };
    let curator = t.curator().await;
    let rw = InterProcessReadWriteLock::new(&curator, "/rw");
    let mut write_requests = rw.write_lock().make_revocable();
    let write = rw.write_lock().acquire().await.unwrap();
    Revoker::attempt_revoke(&curator, write.path())
        .await
        .unwrap();
    assert_eq!(next_request(&mut write_requests).await.path, write.path());
    write.release().await.unwrap();

    let readers = InterProcessReadWriteLock::new(&curator, "/rw");
    let mut read_requests = readers.read_lock().make_revocable();
    let read = readers.read_lock().acquire().await.unwrap();
    assert!(read.path().contains("__READ__"));
    Revoker::attempt_revoke(&curator, read.path())
        .await
        .unwrap();
    assert_eq!(next_request(&mut read_requests).await.path, read.path());
    read.release().await.unwrap();
}

async fn a_lock_that_is_not_revocable_keeps_its_default_data(target: Target) {
    let Some(t) = ctx(target, "revoke-plain").await else {
        return;
    };
    let curator = t.curator().await;
    let mutex = InterProcessMutex::new(&curator, "/lock");
    let guard = mutex.acquire().await.unwrap();
    let (data, _) = t.client().await.get_data(guard.path()).await.unwrap();
    assert_eq!(data, curator.default_data());
    guard.release().await.unwrap();
}

recipe_tests!(
    a_revoked_holder_is_asked_to_release_and_the_waiter_then_acquires,
    revoking_a_lock_node_that_is_gone_is_not_an_error,
    a_request_made_while_waiting_is_delivered_once_the_lock_is_held,
    each_half_of_the_read_write_lock_can_be_revoked,
    a_lock_that_is_not_revocable_keeps_its_default_data,
);
