//! Fencing for locks and leadership, against Apache ZooKeeper and our
//! server: tokens grow from holder to holder, fenced writes pass while the
//! hold lasts and are refused by the server once it is gone (nothing is
//! written), holders are told when they lose the hold, and leadership is a
//! stream of every transition. The process-level scenarios freeze a
//! holder's connection through a proxy past its session timeout while
//! another client takes over and writes.

#[macro_use]
mod recipes_common;

use std::time::Duration;

use futures::StreamExt;
use recipes_common::{ctx, within, Target, SESSION};
use zk_recipes::{
    Curator, Error, Fence, InterProcessMutex, InterProcessReadWriteLock, InterProcessSemaphoreV2,
    LeaderLatch, LeaderSelector, LeadershipEvent, LossReason,
};
use zk_testkit::proxy::Proxy;

const LIMIT: Duration = Duration::from_secs(60);

async fn resource(curator: &Curator) -> Vec<u8> {
    curator
        .client()
        .get_data("/resource")
        .await
        .unwrap()
        .0
        .to_vec()
}

async fn make_resource(curator: &Curator) {
    curator
        .create("/resource", b"initial", zk_client::CreateMode::Persistent)
        .await
        .unwrap();
}

/// Retries a fenced write through connection trouble until the server
/// gives a definite answer.
async fn fenced_write_outcome(fence: &Fence, data: &[u8]) -> Result<(), Error> {
    within(LIMIT, "a definite answer to the fenced write", async {
        loop {
            match fence.set_data("/resource", data, None).await {
                Ok(_) => return Ok(()),
                Err(e) if zk_recipes::Retriable::is_retriable(&e) => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(e) => return Err(e),
            }
        }
    })
    .await
}

/// Sends the fence's check with a write as a raw transaction (as a holder
/// that never learnt of its loss would) and returns the server's answer.
async fn raw_fenced_write(curator: &Curator, fence: &Fence, data: &[u8]) -> zk_client::Error {
    within(LIMIT, "the server's answer", async {
        loop {
            let ops = [
                fence.check_op(),
                zk_client::Op::set_data("/resource", data, None),
            ];
            match curator.client().multi(&ops).await {
                Ok(_) => panic!("the server accepted a write through a lost hold"),
                Err(e)
                    if zk_recipes::Retriable::is_retriable(&e) || e == zk_client::Error::Closed =>
                {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(e) => return e,
            }
        }
    })
    .await
}

fn is_fenced(outcome: &Result<(), Error>) -> bool {
    matches!(outcome, Err(Error::Fenced { .. }))
}

async fn lock_tokens_grow_from_holder_to_holder(target: Target) {
    let Some(t) = ctx(target, "fence-tokens").await else {
        return;
    };
    let (a, b) = (t.curator().await, t.curator().await);
    let lock_a = InterProcessMutex::new(&a, "/lock");
    let lock_b = InterProcessMutex::new(&b, "/lock");
    let first = lock_a.acquire().await.unwrap();
    let (_, stat) = a.client().get_data(first.path()).await.unwrap();
    assert_eq!(first.token(), stat.czxid, "the token is the node's czxid");
    let waiting = tokio::spawn(async move {
        let guard = lock_b.acquire().await.unwrap();
        (guard.token(), guard.release().await)
    });
    first.release().await.unwrap();
    let (second_token, released) = within(LIMIT, "second holder", waiting).await.unwrap();
    released.unwrap();
    assert!(second_token > stat.czxid);
    let third = lock_a.acquire().await.unwrap();
    assert!(third.token() > second_token);
    third.release().await.unwrap();
}

async fn a_fenced_write_goes_through_while_the_lock_is_held(target: Target) {
    let Some(t) = ctx(target, "fence-write").await else {
        return;
    };
    let curator = t.curator().await;
    make_resource(&curator).await;
    let lock = InterProcessMutex::new(&curator, "/lock");
    let guard = lock.acquire().await.unwrap();
    let stat = guard
        .fence()
        .set_data("/resource", b"written", None)
        .await
        .unwrap();
    assert_eq!(stat.version, 1);
    assert_eq!(resource(&curator).await, b"written");
    assert!(!guard.fence().is_lost());
    guard.release().await.unwrap();
}

async fn a_fenced_write_after_the_lock_node_is_gone_is_refused_and_writes_nothing(target: Target) {
    let Some(t) = ctx(target, "fence-refused").await else {
        return;
    };
    let (holder, admin) = (t.curator().await, t.curator().await);
    make_resource(&admin).await;
    let lock = InterProcessMutex::new(&holder, "/lock");
    let guard = lock.acquire().await.unwrap();
    let fence = guard.fence().clone();
    // Someone else removes the holder's node (as the server does when the
    // session expires).
    admin.client().delete(guard.path(), None).await.unwrap();
    // The server refuses the check itself, whatever the holder knows.
    let raw = holder
        .client()
        .multi(&[
            fence.check_op(),
            zk_client::Op::set_data("/resource", b"stale", None),
        ])
        .await;
    assert_eq!(raw, Err(zk_client::Error::NoNode));
    let outcome = fence
        .multi(&[
            zk_client::Op::set_data("/resource", b"stale", None),
            zk_client::Op::create(
                "/side-effect",
                b"",
                &zk_client::OPEN_ACL_UNSAFE,
                zk_client::CreateMode::Persistent,
            ),
        ])
        .await;
    assert!(
        matches!(&outcome, Err(Error::Fenced { path }) if path == guard.path()),
        "{outcome:?}"
    );
    assert_eq!(resource(&admin).await, b"initial");
    assert!(admin
        .client()
        .exists("/side-effect")
        .await
        .unwrap()
        .is_none());
    drop(guard);
}

async fn a_guard_is_told_when_its_node_is_deleted(target: Target) {
    let Some(t) = ctx(target, "fence-lost").await else {
        return;
    };
    let (holder, admin) = (t.curator().await, t.curator().await);
    let lock = InterProcessMutex::new(&holder, "/lock");
    let guard = lock.acquire().await.unwrap();
    assert_eq!(guard.fence().loss_reason(), None);
    admin.client().delete(guard.path(), None).await.unwrap();
    let reason = within(LIMIT, "loss notice", guard.lost()).await;
    assert_eq!(reason, LossReason::NodeDeleted);
    assert!(guard.fence().is_lost());
    drop(guard);
}

async fn a_released_guard_reports_released(target: Target) {
    let Some(t) = ctx(target, "fence-released").await else {
        return;
    };
    let curator = t.curator().await;
    let lock = InterProcessMutex::new(&curator, "/lock");
    let guard = lock.acquire().await.unwrap();
    let fence = guard.fence().clone();
    guard.release().await.unwrap();
    assert_eq!(fence.loss_reason(), Some(LossReason::Released));
    let outcome = fence.set_data("/lock", b"x", None).await;
    assert!(matches!(outcome, Err(Error::Fenced { .. })), "{outcome:?}");
}

async fn semaphore_leases_carry_growing_tokens_and_fence_writes(target: Target) {
    let Some(t) = ctx(target, "fence-semaphore").await else {
        return;
    };
    let (curator, admin) = (t.curator().await, t.curator().await);
    make_resource(&admin).await;
    let semaphore = InterProcessSemaphoreV2::new(&curator, "/sem", 2);
    let first = semaphore.acquire().await.unwrap();
    let second = semaphore.acquire().await.unwrap();
    assert!(second.token() > first.token());
    second
        .fence()
        .set_data("/resource", b"by lease", None)
        .await
        .unwrap();
    admin.client().delete(second.path(), None).await.unwrap();
    let outcome = second.fence().set_data("/resource", b"late", None).await;
    assert!(matches!(outcome, Err(Error::Fenced { .. })), "{outcome:?}");
    assert_eq!(resource(&admin).await, b"by lease");
    first.release().await.unwrap();
    drop(second);
}

async fn read_and_write_lock_guards_carry_fences(target: Target) {
    let Some(t) = ctx(target, "fence-rwlock").await else {
        return;
    };
    let curator = t.curator().await;
    let rw = InterProcessReadWriteLock::new(&curator, "/rw");
    let write = rw.write_lock().acquire().await.unwrap();
    let read = rw.read_lock().acquire().await.unwrap();
    assert!(read.token() > write.token(), "the read node is made after");
    assert_eq!(read.fence().path(), read.path());
    read.release().await.unwrap();
    write.release().await.unwrap();
}

async fn a_multi_lock_writes_through_every_fence(target: Target) {
    let Some(t) = ctx(target, "fence-multi").await else {
        return;
    };
    let (curator, admin) = (t.curator().await, t.curator().await);
    make_resource(&admin).await;
    let locks = zk_recipes::InterProcessMultiLock::new(&curator, &["/l1", "/l2"]);
    let guard = locks.acquire().await.unwrap();
    let fences = guard.fences();
    let write = [zk_client::Op::set_data("/resource", b"both held", None)];
    zk_recipes::multi_fenced(&fences, &write).await.unwrap();
    assert_eq!(resource(&admin).await, b"both held");
    let second = fences[1].path().to_string();
    admin.client().delete(&second, None).await.unwrap();
    let stale = [zk_client::Op::set_data("/resource", b"one lost", None)];
    let outcome = zk_recipes::multi_fenced(&fences, &stale).await;
    assert!(
        matches!(&outcome, Err(Error::Fenced { path }) if *path == second),
        "{outcome:?}"
    );
    assert_eq!(resource(&admin).await, b"both held");
    drop(fences);
    drop(guard);
}

async fn latch_transitions_show_a_quick_loss_and_regain(target: Target) {
    let Some(t) = ctx(target, "fence-latch-flip").await else {
        return;
    };
    let (curator, admin) = (t.curator().await, t.curator().await);
    let latch = LeaderLatch::start(&curator, "/latch", "a");
    let mut events = latch.transitions();
    let first = match within(LIMIT, "elected", events.next()).await {
        Some(LeadershipEvent::IsLeader(fence)) => fence,
        other => panic!("expected IsLeader, got {other:?}"),
    };
    assert_eq!(latch.fence().map(|f| f.token()), Some(first.token()));
    // Deleting our node makes the latch step down and, alone, lead again
    // at once: a latest-value flag could read "still leader" throughout.
    admin.client().delete(first.path(), None).await.unwrap();
    let next = within(LIMIT, "stepped down", events.next()).await;
    assert!(matches!(next, Some(LeadershipEvent::NotLeader)), "{next:?}");
    let second = match within(LIMIT, "elected again", events.next()).await {
        Some(LeadershipEvent::IsLeader(fence)) => fence,
        other => panic!("expected IsLeader, got {other:?}"),
    };
    assert!(second.token() > first.token());
    assert!(first.is_lost());
    latch.close().await.unwrap();
    let last = within(LIMIT, "closed", events.next()).await;
    assert!(matches!(last, Some(LeadershipEvent::NotLeader)), "{last:?}");
    assert!(within(LIMIT, "feed ends", events.next()).await.is_none());
}

async fn a_selector_leader_gets_a_fence_that_is_refused_after_its_term(target: Target) {
    let Some(t) = ctx(target, "fence-selector").await else {
        return;
    };
    let (curator, admin) = (t.curator().await, t.curator().await);
    make_resource(&admin).await;
    let (fences, mut terms) = tokio::sync::mpsc::unbounded_channel();
    let selector = LeaderSelector::builder(&curator, "/election")
        .id("a")
        .start_fenced(move |_curator, fence| {
            let fences = fences.clone();
            async move {
                fence.set_data("/resource", b"leader", None).await.unwrap();
                let _ = fences.send(fence);
                // Lead until interrupted.
                futures::future::pending::<()>().await
            }
        });
    let fence: Fence = within(LIMIT, "leads", terms.recv()).await.unwrap();
    assert_eq!(resource(&admin).await, b"leader");
    assert_eq!(selector.fence().map(|f| f.token()), Some(fence.token()));
    selector.interrupt_leadership();
    within(LIMIT, "term ends", fence.lost()).await;
    let outcome = fenced_write_outcome(&fence, b"after").await;
    assert!(is_fenced(&outcome), "{outcome:?}");
    assert_eq!(resource(&admin).await, b"leader");
    selector.close().await;
}

async fn selector_transitions_show_every_term_in_order(target: Target) {
    let Some(t) = ctx(target, "fence-selector-terms").await else {
        return;
    };
    let curator = t.curator().await;
    // Each term ends as soon as it starts; auto-requeue starts the next.
    let selector = LeaderSelector::builder(&curator, "/election")
        .id("brief")
        .auto_requeue(true)
        .start(|_curator| async {});
    let mut events = selector.transitions();
    let mut tokens = Vec::new();
    while tokens.len() < 3 {
        match within(LIMIT, "next transition", events.next()).await {
            Some(LeadershipEvent::IsLeader(fence)) => {
                tokens.push(fence.token());
                let next = within(LIMIT, "the term ends", events.next()).await;
                assert!(matches!(next, Some(LeadershipEvent::NotLeader)), "{next:?}");
            }
            other => panic!("expected IsLeader, got {other:?}"),
        }
    }
    assert!(tokens.windows(2).all(|w| w[0] < w[1]), "{tokens:?}");
    selector.close().await;
}

/// A framework whose connection goes through `proxy`, and which does not
/// declare the session lost on its own: a paused process would not either.
async fn frozen_capable_curator(proxy: &Proxy, root: &str) -> Curator {
    Curator::builder(&format!("{}{root}", proxy.connect_string()))
        .session_timeout(SESSION)
        .connection_timeout(Duration::from_secs(10))
        .retry_policy(recipes_common::retry())
        .simulated_expiry_percent(0)
        .connect()
        .await
        .unwrap()
}

async fn a_frozen_lock_holder_is_fenced_out_after_another_takes_over(target: Target) {
    let Some(t) = ctx(target, "fence-frozen-lock").await else {
        return;
    };
    let proxy = Proxy::start(t.server).unwrap();
    let holder = frozen_capable_curator(&proxy, &t.root).await;
    let other = t.curator().await;
    make_resource(&other).await;
    let guard = InterProcessMutex::new(&holder, "/lock")
        .acquire()
        .await
        .unwrap();
    let stale = guard.fence().clone();

    // The holder freezes; the server expires its session and the other
    // client gets the lock and writes through its own fence.
    proxy.pause();
    let taken = within(
        LIMIT,
        "the other client takes the lock",
        InterProcessMutex::new(&other, "/lock").acquire(),
    )
    .await
    .unwrap();
    assert!(taken.token() > stale.token());
    taken
        .fence()
        .set_data("/resource", b"new holder", None)
        .await
        .unwrap();

    // The holder resumes and writes as if it still held the lock.
    proxy.resume();
    let outcome = fenced_write_outcome(&stale, b"stale holder").await;
    assert!(is_fenced(&outcome), "{outcome:?}");
    // Whatever the holder has learnt meanwhile, the server refuses too.
    let refused = raw_fenced_write(&holder, &stale, b"stale holder").await;
    assert_eq!(refused, zk_client::Error::NoNode);
    assert_eq!(resource(&other).await, b"new holder");
    let reason = within(LIMIT, "the holder is told", stale.lost()).await;
    assert!(
        matches!(reason, LossReason::SessionEnded | LossReason::NodeDeleted),
        "{reason:?}"
    );
    taken.release().await.unwrap();
    drop(guard);
}

async fn a_frozen_leader_is_fenced_out_after_another_is_elected(target: Target) {
    let Some(t) = ctx(target, "fence-frozen-leader").await else {
        return;
    };
    let proxy = Proxy::start(t.server).unwrap();
    let frozen = frozen_capable_curator(&proxy, &t.root).await;
    let other = t.curator().await;
    make_resource(&other).await;
    let first = LeaderLatch::start(&frozen, "/latch", "frozen");
    assert!(first.await_leadership(LIMIT).await);
    let stale = first.fence().expect("a leader has a fence");

    proxy.pause();
    let second = LeaderLatch::start(&other, "/latch", "other");
    assert!(second.await_leadership(LIMIT).await);
    let fence = second.fence().expect("a leader has a fence");
    assert!(fence.token() > stale.token());
    fence
        .set_data("/resource", b"new leader", None)
        .await
        .unwrap();

    proxy.resume();
    let outcome = fenced_write_outcome(&stale, b"stale leader").await;
    assert!(is_fenced(&outcome), "{outcome:?}");
    let refused = raw_fenced_write(&frozen, &stale, b"stale leader").await;
    assert_eq!(refused, zk_client::Error::NoNode);
    assert_eq!(resource(&other).await, b"new leader");
    within(LIMIT, "the old leader is told", stale.lost()).await;
    second.close().await.unwrap();
    drop(first);
}

recipe_tests!(
    lock_tokens_grow_from_holder_to_holder,
    a_fenced_write_goes_through_while_the_lock_is_held,
    a_fenced_write_after_the_lock_node_is_gone_is_refused_and_writes_nothing,
    a_guard_is_told_when_its_node_is_deleted,
    a_released_guard_reports_released,
    semaphore_leases_carry_growing_tokens_and_fence_writes,
    read_and_write_lock_guards_carry_fences,
    a_multi_lock_writes_through_every_fence,
    latch_transitions_show_a_quick_loss_and_regain,
    a_selector_leader_gets_a_fence_that_is_refused_after_its_term,
    selector_transitions_show_every_term_in_order,
    a_frozen_lock_holder_is_fenced_out_after_another_takes_over,
    a_frozen_leader_is_fenced_out_after_another_is_elected,
);
