//! The ensemble under harder failures: a 5-member ensemble losing two
//! members under load, a partition, an old leader holding an uncommitted
//! proposal, and how a returning follower is synchronised (DIFF or SNAP).

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

/// Writes up to `count` nodes named `<prefix>-<n>`, moving to the next
/// member whenever a connection fails; returns the acknowledged paths.
/// Before write `n`, `on_write(cluster, n)` may kill members.
async fn write_load<F>(
    cluster: &mut TestingCluster,
    prefix: &str,
    count: usize,
    mut on_write: F,
) -> Vec<String>
where
    F: FnMut(&TestingCluster, usize) -> Option<usize>,
{
    let mut acked = Vec::new();
    let mut member = 0;
    let mut client = None;
    let deadline = tokio::time::Instant::now() + SETTLE * 2;
    let mut n = 0;
    while n < count && tokio::time::Instant::now() < deadline {
        if let Some(victim) = on_write(cluster, n) {
            if cluster.is_running(victim) {
                cluster.kill(victim).await;
            }
        }
        if client.is_none() {
            member = (member + 1) % cluster.len();
            client = if cluster.is_running(member) {
                try_session(cluster.addr(member)).await
            } else {
                None
            };
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

/// A member other than `not` (and other than those in `also_not`).
fn other_than(cluster: &TestingCluster, not: &[usize]) -> usize {
    (0..cluster.len())
        .find(|i| !not.contains(i) && cluster.is_running(*i))
        .expect("no other member")
}

/// Waits until member `i` serves again (bounded).
async fn wait_serving(cluster: &TestingCluster, i: usize) {
    let deadline = tokio::time::Instant::now() + SETTLE;
    while !cluster.status(i).is_some_and(|s| s.serving) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "member {i} never served"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until member `i`, cut off from its quorum, stops serving
/// (bounded: it must notice within syncLimit and some slack).
async fn wait_not_serving(cluster: &TestingCluster, i: usize) {
    let deadline = tokio::time::Instant::now() + SETTLE;
    while cluster.status(i).is_some_and(|s| s.serving) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "member {i} kept serving without a quorum"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_members_losing_the_leader_and_one_more_keep_every_acknowledged_write() {
    let mut cluster = TestingCluster::start(5).await.unwrap();
    let leader = cluster.wait_for_leader(SETTLE).await.expect("no leader");
    let second_victim = (leader + 2) % 5;
    let acked = write_load(&mut cluster, "five", 80, |c, n| match n {
        20 => c.leader(),
        45 => Some(second_victim),
        _ => None,
    })
    .await;
    assert!(!cluster.is_running(leader));
    assert!(!cluster.is_running(second_victim));
    assert!(
        acked.len() >= 40,
        "only {} writes acknowledged",
        acked.len()
    );
    cluster
        .wait_for_leader(SETTLE)
        .await
        .expect("three of five keep a quorum");
    assert_readable_everywhere(&cluster, &acked).await;
    cluster.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_minority_never_acknowledges_a_write_while_the_majority_serves() {
    let mut cluster = TestingCluster::start(5).await.unwrap();
    let leader = cluster.wait_for_leader(SETTLE).await.expect("no leader");
    let minority = [(leader + 1) % 5, (leader + 2) % 5];
    let mut on_minority = session(cluster.addr(minority[0])).await;
    for m in minority {
        cluster.isolate(m, true);
    }

    // The client was already connected: its write reaches the minority
    // member, which cannot get it to the leader. It fails (the connection
    // closes) instead of hanging or being acknowledged.
    let acked = try_create(&mut on_minority, 1, "/minority").await;
    assert!(!acked, "a write through a cut-off member was acknowledged");

    // The minority stops serving; the majority keeps a leader and writes.
    let majority_side = write_load(&mut cluster, "majority", 10, |_, _| None).await;
    assert_eq!(majority_side.len(), 10, "the majority serves");
    for m in minority {
        wait_not_serving(&cluster, m).await;
        assert!(
            try_session(cluster.addr(m)).await.is_none(),
            "member {m} accepts sessions without a quorum"
        );
    }

    for m in minority {
        cluster.isolate(m, false);
    }
    cluster.wait_for_leader(SETTLE).await.expect("no leader");
    assert_readable_everywhere(&cluster, &majority_side).await;
    let mut c = session(cluster.addr(minority[0])).await;
    let never = synced_get(&mut c, 100, "/minority").await;
    assert_eq!(never, Err(zk_proto::ErrorCode::NoNode));
    cluster.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_leader_returning_with_an_uncommitted_proposal_is_truncated() {
    let mut cluster = TestingCluster::start(3).await.unwrap();
    let old_leader = cluster.wait_for_leader(SETTLE).await.expect("no leader");
    let committed = write_load(&mut cluster, "committed", 5, |_, _| None).await;
    assert_eq!(committed.len(), 5);

    // Cut off, the leader still proposes (and logs) a write it can never
    // commit; then it dies.
    let mut c = session(cluster.addr(old_leader)).await;
    cluster.isolate(old_leader, true);
    let acked = try_create(&mut c, 1, "/uncommitted").await;
    assert!(!acked, "an isolated leader acknowledged a write");
    cluster.kill(old_leader).await;
    cluster.isolate(old_leader, false);

    // The others move on to a new epoch.
    let new_leader = cluster.wait_for_leader(SETTLE).await.expect("no leader");
    assert_ne!(new_leader, old_leader);
    let later = write_load(&mut cluster, "later", 5, |_, _| None).await;
    assert_eq!(later.len(), 5);

    cluster.restart(old_leader).await.unwrap();
    wait_serving(&cluster, old_leader).await;
    let status = cluster.status(old_leader).expect("running");
    assert_eq!(status.syncs.trunc, 1, "{status:?}");
    let all = [committed, later].concat();
    assert_readable_everywhere(&cluster, &all).await;
    let mut c = session(cluster.addr(old_leader)).await;
    let gone = synced_get(&mut c, 100, "/uncommitted").await;
    assert_eq!(gone, Err(zk_proto::ErrorCode::NoNode));
    cluster.stop_all().await;
}

/// A 3-member ensemble whose leaders keep only the newest 20 txns for DIFF.
async fn small_window_cluster() -> TestingCluster {
    TestingCluster::start_with(3, 0, |c| c.commit_log_count = Some(20))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_briefly_stopped_follower_catches_up_by_diff() {
    let mut cluster = small_window_cluster().await;
    let leader = cluster.wait_for_leader(SETTLE).await.expect("no leader");
    let follower = other_than(&cluster, &[leader]);
    cluster.kill(follower).await;
    let written = write_load(&mut cluster, "brief", 5, |_, _| None).await;
    assert_eq!(written.len(), 5);
    cluster.restart(follower).await.unwrap();
    wait_serving(&cluster, follower).await;
    let syncs = cluster.status(follower).expect("running").syncs;
    assert_eq!((syncs.diff, syncs.snap, syncs.trunc), (1, 0, 0));
    assert_readable_everywhere(&cluster, &written).await;
    cluster.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_down_beyond_the_diff_window_catches_up_by_snap() {
    let mut cluster = small_window_cluster().await;
    let leader = cluster.wait_for_leader(SETTLE).await.expect("no leader");
    let follower = other_than(&cluster, &[leader]);
    cluster.kill(follower).await;
    let written = write_load(&mut cluster, "long", 40, |_, _| None).await;
    assert_eq!(written.len(), 40);
    cluster.restart(follower).await.unwrap();
    wait_serving(&cluster, follower).await;
    let syncs = cluster.status(follower).expect("running").syncs;
    assert_eq!((syncs.diff, syncs.snap, syncs.trunc), (0, 1, 0));
    assert_readable_everywhere(&cluster, &written).await;

    // What it received is its state from now on: it survives a restart.
    cluster.restart(follower).await.unwrap();
    wait_serving(&cluster, follower).await;
    assert_readable_everywhere(&cluster, &written).await;
    cluster.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_does_not_serve_says_so_in_srvr() {
    let mut cluster = TestingCluster::start(3).await.unwrap();
    let leader = cluster.wait_for_leader(SETTLE).await.expect("no leader");
    let follower = other_than(&cluster, &[leader]);
    let serving = server_common::four_letter(cluster.addr(follower), "srvr").await;
    assert!(serving.contains("Mode: follower"), "{serving}");
    cluster.isolate(follower, true);
    wait_not_serving(&cluster, follower).await;
    for word in ["srvr", "stat", "mntr"] {
        let out = server_common::four_letter(cluster.addr(follower), word).await;
        assert_eq!(
            out, "This ZooKeeper instance is not currently serving requests\n",
            "{word}"
        );
    }
    assert_eq!(
        server_common::four_letter(cluster.addr(follower), "ruok").await,
        "imok"
    );
    cluster.stop_all().await;
}
