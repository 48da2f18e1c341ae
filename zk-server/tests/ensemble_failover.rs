//! Failures in a 3-member ensemble: the leader dies under a write load,
//! the old leader comes back, a follower is down for a while, a member is
//! cut off the network.

mod ensemble_support;
mod server_common;

use std::time::Duration;

use ensemble_support::{session, synced_get, try_create, try_session, SETTLE};
use zk_server::testing::TestingCluster;

/// Every path in `paths` reads back (after sync) on every running member.
async fn assert_readable_everywhere(cluster: &TestingCluster, paths: &[String]) {
    for i in (0..cluster.len()).filter(|&i| cluster.is_running(i)) {
        let mut c = session(cluster.addr(i)).await;
        for (n, path) in paths.iter().enumerate() {
            let data = synced_get(&mut c, 2 * n as i32 + 1, path).await;
            assert_eq!(data.as_deref(), Ok(path.as_bytes()), "member {i}, {path}");
        }
    }
}

/// Writes `count` nodes named `<prefix>-<n>`, moving to the next member
/// whenever a connection fails; returns the acknowledged paths. With
/// `kill_at: Some((n, member))`, member `member` is killed just before
/// write `n`, in the middle of the load.
async fn write_load(
    cluster: &mut TestingCluster,
    prefix: &str,
    count: usize,
    kill_at: Option<(usize, usize)>,
) -> Vec<String> {
    let mut acked = Vec::new();
    let mut member = 0;
    let mut client = None;
    let deadline = tokio::time::Instant::now() + SETTLE;
    let mut n = 0;
    while n < count && tokio::time::Instant::now() < deadline {
        if let Some((at, victim)) = kill_at {
            if n == at && cluster.is_running(victim) {
                cluster.kill(victim).await;
            }
        }
        if client.is_none() {
            member = (member + 1) % cluster.len();
            client = try_session(cluster.addr(member)).await;
            if client.is_none() {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        }
        let Some(c) = client.as_mut() else { continue };
        let path = format!("/{prefix}-{n}");
        if try_create(c, n as i32 + 1, &path).await {
            acked.push(path);
        } else {
            // Unknown outcome: the next attempt uses a fresh name.
            client = None;
        }
        n += 1;
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_under_load_loses_no_acknowledged_write() {
    let mut cluster = TestingCluster::start(3).await.unwrap();
    let old_leader = cluster.wait_for_leader(SETTLE).await.expect("no leader");
    let before = write_load(&mut cluster, "before", 30, None).await;
    assert_eq!(
        before.len(),
        30,
        "a healthy ensemble acknowledges every write"
    );

    let load = write_load(&mut cluster, "during", 60, Some((20, old_leader))).await;
    assert!(!cluster.is_running(old_leader));
    assert!(load.len() >= 20, "only {} writes acknowledged", load.len());
    let new_leader = cluster
        .wait_for_leader(SETTLE)
        .await
        .expect("no new leader");
    assert_ne!(new_leader, old_leader);
    let after = write_load(&mut cluster, "after", 20, None).await;
    assert_eq!(after.len(), 20, "writes resume under the new leader");

    let all: Vec<String> = [before, load, after].concat();
    assert_readable_everywhere(&cluster, &all).await;

    // The old leader comes back as a follower and catches up.
    cluster.restart(old_leader).await.unwrap();
    let leader = cluster.wait_for_leader(SETTLE).await.expect("no leader");
    assert_ne!(leader, old_leader, "the rejoining member follows");
    assert_readable_everywhere(&cluster, &all).await;
    cluster.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_continue_while_the_leader_is_killed_mid_load() {
    let mut cluster = TestingCluster::start(3).await.unwrap();
    let leader = cluster.wait_for_leader(SETTLE).await.expect("no leader");
    let follower = (leader + 1) % 3;
    // A client on a follower keeps writing; the leader dies in between.
    let mut c = session(cluster.addr(follower)).await;
    let mut acked = Vec::new();
    for n in 0..10 {
        let path = format!("/first-{n}");
        if try_create(&mut c, n + 1, &path).await {
            acked.push(path);
        }
    }
    cluster.kill(leader).await;
    assert!(cluster.wait_for_leader(SETTLE).await.is_some());
    acked.extend(write_load(&mut cluster, "second", 10, None).await);
    assert!(acked.len() >= 20, "acked {}", acked.len());
    assert_readable_everywhere(&cluster, &acked).await;
    cluster.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_down_for_a_while_catches_up() {
    let mut cluster = TestingCluster::start(3).await.unwrap();
    let leader = cluster.wait_for_leader(SETTLE).await.expect("no leader");
    let follower = (leader + 1) % 3;
    cluster.kill(follower).await;
    let written = write_load(&mut cluster, "while-down", 50, None).await;
    assert_eq!(written.len(), 50);
    cluster.restart(follower).await.unwrap();
    cluster.wait_for_leader(SETTLE).await.expect("no leader");
    let mut c = session(cluster.addr(follower)).await;
    for (n, path) in written.iter().enumerate() {
        let data = synced_get(&mut c, 2 * n as i32 + 1, path).await;
        assert_eq!(data.as_deref(), Ok(path.as_bytes()));
    }
    cluster.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_leader_steps_down_and_the_rest_elect_a_new_one() {
    let mut cluster = TestingCluster::start(3).await.unwrap();
    let leader = cluster.wait_for_leader(SETTLE).await.expect("no leader");
    cluster.isolate(leader, true);
    let new_leader = cluster
        .wait_for_leader(SETTLE)
        .await
        .expect("no new leader");
    assert_ne!(new_leader, leader);
    let written = write_load(&mut cluster, "majority-side", 5, None).await;
    assert_eq!(written.len(), 5);
    cluster.isolate(leader, false);
    cluster
        .wait_for_leader(SETTLE)
        .await
        .expect("no leader after healing");
    assert_readable_everywhere(&cluster, &written).await;
    cluster.stop_all().await;
}
