//! A 3-member ensemble in one process: election, writes through any
//! member, reads everywhere after sync, observers, and the 4lw modes.

mod ensemble_support;
mod server_common;

use std::time::Duration;

use ensemble_support::{session, synced_get, try_create, SETTLE};
use server_common::four_letter;
use zk_server::quorum::Role;
use zk_server::testing::TestingCluster;

/// How often a test looks again at what it waits for.
const POLL: Duration = Duration::from_millis(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_elect_one_leader_and_every_member_takes_writes() {
    let mut cluster = TestingCluster::start(3).await.unwrap();
    let leader = cluster.wait_for_leader(SETTLE).await.expect("no leader");
    for i in 0..3 {
        let status = cluster.status(i).unwrap();
        if i == leader {
            assert_eq!(status.role, Role::Leading);
        } else {
            assert_eq!(
                status.role,
                Role::Following {
                    leader: leader as u64 + 1
                }
            );
        }
    }
    for i in 0..3 {
        let mut c = session(cluster.addr(i)).await;
        assert!(try_create(&mut c, 1, &format!("/written-on-{i}")).await);
    }
    for i in 0..3 {
        let mut c = session(cluster.addr(i)).await;
        for j in 0..3 {
            let path = format!("/written-on-{j}");
            let data = synced_get(&mut c, 10 + 2 * j, &path).await;
            assert_eq!(
                data.as_deref(),
                Ok(path.as_bytes()),
                "member {i} reading {path}"
            );
        }
    }
    cluster.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srvr_and_mntr_report_the_quorum_roles() {
    let mut cluster = TestingCluster::start(3).await.unwrap();
    let leader = cluster.wait_for_leader(SETTLE).await.expect("no leader");
    // The followers count as synced once their acks of NEWLEADER are in.
    let mut mntr = String::new();
    let deadline = tokio::time::Instant::now() + SETTLE;
    while !mntr.contains("zk_synced_followers\t2\n") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the followers never became synced:\n{mntr}"
        );
        tokio::time::sleep(POLL).await;
        mntr = four_letter(cluster.addr(leader), "mntr").await;
    }
    for i in 0..3 {
        let srvr = four_letter(cluster.addr(i), "srvr").await;
        let mode = if i == leader { "leader" } else { "follower" };
        assert!(srvr.contains(&format!("Mode: {mode}\n")), "{srvr}");
    }
    assert!(mntr.contains("zk_server_state\tleader\n"), "{mntr}");
    assert!(mntr.contains("zk_learners\t2\n"), "{mntr}");
    assert!(
        mntr.contains("zk_peer_state\tleading - broadcast\n"),
        "{mntr}"
    );
    assert!(mntr.contains("zk_quorum_size\t3\n"), "{mntr}");
    assert!(mntr.contains("zk_synced_followers\t2\n"), "{mntr}");
    assert!(mntr.contains("zk_pending_syncs\t0\n"), "{mntr}");
    cluster.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_serves_reads_and_writes_but_never_votes() {
    let mut cluster = TestingCluster::start_with(3, 1, |_| {}).await.unwrap();
    let leader = cluster.wait_for_leader(SETTLE).await.expect("no leader");
    assert_ne!(leader, 3, "an observer cannot lead");
    assert!(matches!(
        cluster.status(3).unwrap().role,
        Role::Observing { .. }
    ));
    let mut c = session(cluster.addr(3)).await;
    assert!(try_create(&mut c, 1, "/via-observer").await);
    let mut f = session(cluster.addr((leader + 1) % 3)).await;
    assert_eq!(
        synced_get(&mut f, 2, "/via-observer").await.as_deref(),
        Ok(&b"/via-observer"[..])
    );
    // Two voters down: one voter and the observer are no quorum.
    let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    cluster.kill(others[0]).await;
    cluster.kill(others[1]).await;
    // The leader steps down once it misses its quorum for syncLimit, and
    // the observer stops serving with it; neither may lead again.
    let deadline = tokio::time::Instant::now() + SETTLE;
    while cluster.leader().is_some() || cluster.status(3).is_some_and(|s| s.serving) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a voter and an observer kept serving without a quorum"
        );
        tokio::time::sleep(POLL).await;
    }
    assert_eq!(cluster.leader(), None);
    assert!(!matches!(cluster.status(3).unwrap().role, Role::Leading));
    cluster.stop_all().await;
}
