//! Locks and semaphores against Apache ZooKeeper and our server: exclusion, fairness,
//! explicit re-entry, hand-over on session expiry, lease bounds and read/write rules, on
//! Curator's layouts.

#[macro_use]
mod recipes_common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use recipes_common::{ctx, eventually, within, Target};
use zk_recipes::paths::{is_protected, strip_protection};
use zk_recipes::{
    ConnectionState, InterProcessMutex, InterProcessReadWriteLock, InterProcessSemaphoreMutex,
    InterProcessSemaphoreV2,
};
use zk_testkit::proxy::Proxy;

const LIMIT: Duration = Duration::from_secs(60);

async fn mutex_gives_exact_counts_under_contention(target: Target) {
    let Some(t) = ctx(target, "mutex-contention").await else {
        return;
    };
    let admin = t.curator().await;
    admin
        .create("/counter", b"0", zk_client::CreateMode::Persistent)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let curator = t.curator().await;
        for _ in 0..3 {
            let curator = curator.clone();
            tasks.push(tokio::spawn(async move {
                // A handle per task (sharing one would serialise them locally).
                let lock = InterProcessMutex::new(&curator, "/lock");
                for _ in 0..4 {
                    let guard = lock.acquire().await.unwrap();
                    let client = curator.client();
                    let (data, _) = client.get_data("/counter").await.unwrap();
                    let n: u64 = std::str::from_utf8(&data).unwrap().parse().unwrap();
                    // Widen the race window a non-exclusive lock would lose.
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    client
                        .set_data("/counter", (n + 1).to_string().as_bytes(), None)
                        .await
                        .unwrap();
                    guard.release().await.unwrap();
                }
            }));
        }
    }
    within(LIMIT, "contending tasks", async {
        for task in tasks {
            task.await.unwrap();
        }
    })
    .await;
    let (data, _) = admin.client().get_data("/counter").await.unwrap();
    assert_eq!(&data[..], b"36");
    assert!(admin
        .client()
        .get_children("/lock")
        .await
        .unwrap()
        .is_empty());
}

async fn mutex_nodes_use_curators_protected_lock_names_and_default_data(target: Target) {
    let Some(t) = ctx(target, "mutex-layout").await else {
        return;
    };
    let curator = t.curator().await;
    let lock = InterProcessMutex::new(&curator, "/a/b/lock");
    let guard = lock.acquire().await.unwrap();
    let name = zk_recipes::paths::node_name(guard.path()).to_string();
    assert!(is_protected(&name), "{name}");
    let rest = strip_protection(&name);
    assert!(rest.starts_with("lock-") && rest.len() == 15, "{rest}");
    let (data, stat) = curator.client().get_data(guard.path()).await.unwrap();
    assert_eq!(data, curator.default_data());
    assert_eq!(stat.ephemeral_owner, curator.session_id());
    // Missing parents were made on the way.
    assert!(curator
        .client()
        .exists("/a/b/lock")
        .await
        .unwrap()
        .is_some());
    guard.release().await.unwrap();
    assert!(curator
        .client()
        .get_children("/a/b/lock")
        .await
        .unwrap()
        .is_empty());
}

async fn a_held_handle_is_not_reentered_by_acquire(target: Target) {
    let Some(t) = ctx(target, "mutex-not-reentrant").await else {
        return;
    };
    let curator = t.curator().await;
    let lock = Arc::new(InterProcessMutex::new(&curator, "/lock"));
    let first = lock.acquire().await.unwrap();
    // Another task sharing the handle does not "hold" it too: it waits.
    let second = tokio::spawn({
        let lock = lock.clone();
        async move { lock.acquire().await.unwrap() }
    });
    assert!(lock
        .try_acquire(Duration::from_millis(300))
        .await
        .unwrap()
        .is_none());
    assert!(!second.is_finished());
    assert_eq!(
        curator.client().get_children("/lock").await.unwrap().len(),
        1
    );
    let first_path = first.path().to_string();
    first.release().await.unwrap();
    let second = within(LIMIT, "second task acquires", second).await.unwrap();
    assert_ne!(second.path(), first_path, "a new hold, with its own node");
    second.release().await.unwrap();
    assert!(!lock.is_acquired());
}

async fn reentry_through_the_guard_frees_on_the_last_release(target: Target) {
    let Some(t) = ctx(target, "mutex-reentrant").await else {
        return;
    };
    let curator = t.curator().await;
    let lock = InterProcessMutex::new(&curator, "/lock");
    let first = lock.acquire().await.unwrap();
    let second = first.reenter().unwrap();
    assert_eq!(first.path(), second.path());
    assert_eq!(first.token(), second.token());
    assert_eq!(
        curator.client().get_children("/lock").await.unwrap().len(),
        1
    );
    first.release().await.unwrap();
    assert!(lock.is_acquired());
    assert_eq!(
        curator.client().get_children("/lock").await.unwrap().len(),
        1
    );
    second.release().await.unwrap();
    assert!(!lock.is_acquired());
    assert!(curator
        .client()
        .get_children("/lock")
        .await
        .unwrap()
        .is_empty());
}

async fn mutex_try_acquire_times_out_without_leaving_a_node(target: Target) {
    let Some(t) = ctx(target, "mutex-timeout").await else {
        return;
    };
    let curator = t.curator().await;
    let holder = InterProcessMutex::new(&curator, "/lock");
    let guard = holder.acquire().await.unwrap();
    let other = InterProcessMutex::new(&curator, "/lock");
    let got = other.try_acquire(Duration::from_millis(300)).await.unwrap();
    assert!(got.is_none());
    let children = curator.client().get_children("/lock").await.unwrap();
    assert_eq!(children.len(), 1, "{children:?}");
    guard.release().await.unwrap();
}

async fn mutex_waiters_acquire_in_arrival_order(target: Target) {
    let Some(t) = ctx(target, "mutex-fair").await else {
        return;
    };
    let curator = t.curator().await;
    let holder = InterProcessMutex::new(&curator, "/lock");
    let guard = holder.acquire().await.unwrap();
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..4 {
        let (waiter, order) = (t.curator().await, order.clone());
        tasks.push(tokio::spawn(async move {
            let lock = InterProcessMutex::new(&waiter, "/lock");
            let g = lock.acquire().await.unwrap();
            order.lock().unwrap().push(i);
            tokio::time::sleep(Duration::from_millis(20)).await;
            g.release().await.unwrap();
        }));
        // Wait until waiter i has queued before starting the next one.
        let client = curator.client();
        assert!(
            recipes_common::eventually(Duration::from_secs(10), || {
                let client = client.clone();
                async move { client.get_children("/lock").await.unwrap().len() == i + 2 }
            })
            .await
        );
    }
    guard.release().await.unwrap();
    within(LIMIT, "waiters", async {
        for task in tasks {
            task.await.unwrap();
        }
    })
    .await;
    assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3]);
}

async fn semaphore_never_grants_more_than_its_leases(target: Target) {
    let Some(t) = ctx(target, "semaphore").await else {
        return;
    };
    let inside = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let curator = t.curator().await;
        for _ in 0..4 {
            let (curator, inside, peak) = (curator.clone(), inside.clone(), peak.clone());
            tasks.push(tokio::spawn(async move {
                let semaphore = InterProcessSemaphoreV2::new(&curator, "/sem", 3);
                for _ in 0..3 {
                    let lease = semaphore.acquire().await.unwrap();
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                    lease.release().await.unwrap();
                }
            }));
        }
    }
    within(LIMIT, "semaphore users", async {
        for task in tasks {
            task.await.unwrap();
        }
    })
    .await;
    let peak = peak.load(Ordering::SeqCst);
    assert!(peak <= 3, "peak {peak}");
    assert!(peak >= 2, "leases were never shared (peak {peak})");
    let curator = t.curator().await;
    assert!(curator
        .client()
        .get_children("/sem/leases")
        .await
        .unwrap()
        .is_empty());
}

async fn semaphore_lease_nodes_follow_curators_layout(target: Target) {
    let Some(t) = ctx(target, "semaphore-layout").await else {
        return;
    };
    let curator = t.curator().await;
    let semaphore = InterProcessSemaphoreV2::with_data(&curator, "/sem", 2, &b"me"[..]);
    let lease = semaphore.acquire().await.unwrap();
    assert!(lease.path().starts_with("/sem/leases/_c_"));
    assert!(strip_protection(zk_recipes::paths::node_name(lease.path())).starts_with("lease-"));
    assert_eq!(&lease.data().await.unwrap()[..], b"me");
    // Two more than allowed: the third waits and times out.
    let second = semaphore
        .try_acquire(1, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(second.is_some());
    let third = semaphore
        .try_acquire(1, Duration::from_millis(300))
        .await
        .unwrap();
    assert!(third.is_none());
    assert_eq!(semaphore.participant_nodes().await.unwrap().len(), 2);
    lease.release().await.unwrap();
}

async fn semaphore_mutex_is_not_reentrant(target: Target) {
    let Some(t) = ctx(target, "semaphore-mutex").await else {
        return;
    };
    let curator = t.curator().await;
    let lock = InterProcessSemaphoreMutex::new(&curator, "/m");
    let guard = lock.acquire().await.unwrap();
    assert!(lock
        .try_acquire(Duration::from_millis(300))
        .await
        .unwrap()
        .is_none());
    guard.release().await.unwrap();
    let again = lock.try_acquire(Duration::from_secs(5)).await.unwrap();
    assert!(again.is_some());
    again.unwrap().release().await.unwrap();
}

async fn read_locks_are_shared_and_exclude_writers(target: Target) {
    let Some(t) = ctx(target, "rw-shared").await else {
        return;
    };
    let curator = t.curator().await;
    let a = InterProcessReadWriteLock::new(&curator, "/rw");
    let b = InterProcessReadWriteLock::new(&curator, "/rw");
    let c = InterProcessReadWriteLock::new(&curator, "/rw");
    let ra = a.read_lock().acquire().await.unwrap();
    let rb = within(LIMIT, "second reader", b.read_lock().acquire())
        .await
        .unwrap();
    assert!(c
        .write_lock()
        .try_acquire(Duration::from_millis(300))
        .await
        .unwrap()
        .is_none());
    ra.release().await.unwrap();
    rb.release().await.unwrap();
    let w = c
        .write_lock()
        .try_acquire(Duration::from_secs(5))
        .await
        .unwrap();
    assert!(w.is_some());
    assert!(a
        .read_lock()
        .try_acquire(Duration::from_millis(300))
        .await
        .unwrap()
        .is_none());
    w.unwrap().release().await.unwrap();
}

async fn a_waiting_writer_holds_back_later_readers(target: Target) {
    let Some(t) = ctx(target, "rw-fair").await else {
        return;
    };
    let curator = t.curator().await;
    let first = InterProcessReadWriteLock::new(&curator, "/rw");
    let reader = first.read_lock().acquire().await.unwrap();
    let writer_curator = t.curator().await;
    let writer = tokio::spawn(async move {
        let lock = InterProcessReadWriteLock::new(&writer_curator, "/rw");
        let w = lock.write_lock().acquire().await.unwrap();
        w.release().await.unwrap();
    });
    let client = curator.client();
    assert!(
        recipes_common::eventually(Duration::from_secs(10), || {
            let client = client.clone();
            async move { client.get_children("/rw").await.unwrap().len() == 2 }
        })
        .await
    );
    let late = InterProcessReadWriteLock::new(&curator, "/rw");
    assert!(late
        .read_lock()
        .try_acquire(Duration::from_millis(300))
        .await
        .unwrap()
        .is_none());
    reader.release().await.unwrap();
    within(LIMIT, "writer", writer).await.unwrap();
    let r = late
        .read_lock()
        .try_acquire(Duration::from_secs(5))
        .await
        .unwrap();
    assert!(r.is_some());
}

async fn the_write_holder_can_take_the_read_lock(target: Target) {
    let Some(t) = ctx(target, "rw-downgrade").await else {
        return;
    };
    let curator = t.curator().await;
    let lock = InterProcessReadWriteLock::new(&curator, "/rw");
    let w = lock.write_lock().acquire().await.unwrap();
    let r = within(LIMIT, "downgrade", lock.read_lock().acquire())
        .await
        .unwrap();
    let write_seq = &w.path()[w.path().len() - 10..];
    assert!(
        r.path().ends_with(&format!("__READ__{write_seq}")),
        "{}",
        r.path()
    );
    w.release().await.unwrap();
    // Now only a reader holds: other readers pass, writers wait.
    let other = InterProcessReadWriteLock::new(&curator, "/rw");
    assert!(other
        .write_lock()
        .try_acquire(Duration::from_millis(300))
        .await
        .unwrap()
        .is_none());
    r.release().await.unwrap();
}

async fn a_holder_whose_session_expires_is_told_and_the_lock_passes_on(target: Target) {
    let Some(t) = ctx(target, "mutex-expiry").await else {
        return;
    };
    // The holder talks through a proxy we can cut; the waiter connects directly.
    let proxy = Proxy::start(t.server).unwrap();
    let holder = recipes_common::curator(&format!("{}{}", proxy.connect_string(), t.root)).await;
    let mut states = holder.subscribe_states();
    let held = InterProcessMutex::new(&holder, "/lock");
    let guard = within(LIMIT, "holder acquires", held.acquire())
        .await
        .unwrap();
    let holder_node = guard.path().to_string();

    let waiter = t.curator().await;
    let queued = waiter.clone();
    let waiting = tokio::spawn(async move {
        let lock = InterProcessMutex::new(&queued, "/lock");
        let got = lock.acquire().await.unwrap();
        let path = got.path().to_string();
        (lock, got, path)
    });
    let observer = waiter.client();
    assert!(
        eventually(Duration::from_secs(10), || {
            let observer = observer.clone();
            async move { observer.get_children("/lock").await.unwrap().len() == 2 }
        })
        .await,
        "the waiter never queued behind the holder"
    );
    assert!(!waiting.is_finished(), "the waiter got a held lock");

    // Partitioned past the session timeout: the holder hears Suspended, then
    // Lost, and the server expires its session, deleting its ephemeral node.
    proxy.blackhole();
    proxy.drop_all();
    let seen = within(LIMIT, "Suspended then Lost", async {
        let mut seen = Vec::new();
        loop {
            let state = states.recv().await.unwrap();
            seen.push(state);
            if state == ConnectionState::Lost {
                return seen;
            }
        }
    })
    .await;
    let suspended = seen.iter().position(|s| *s == ConnectionState::Suspended);
    assert!(
        matches!(suspended, Some(i) if i + 1 < seen.len()),
        "Suspended must come before Lost: {seen:?}"
    );
    // The guard itself says so: Lost ends the hold.
    assert_eq!(
        within(LIMIT, "the guard is told", guard.lost()).await,
        zk_recipes::LossReason::SessionEnded
    );

    let (lock, got, waiter_node) = within(LIMIT, "the waiter acquires", waiting).await.unwrap();
    assert_ne!(waiter_node, holder_node);
    assert!(lock.is_acquired());
    assert!(
        observer.exists(&holder_node).await.unwrap().is_none(),
        "the waiter got the lock while the holder's node still existed"
    );
    assert_eq!(
        observer.get_children("/lock").await.unwrap(),
        vec![zk_recipes::paths::node_name(&waiter_node).to_string()]
    );
    got.release().await.unwrap();

    // Heal the link so the holder's stale guard can be dropped without a
    // background release retrying into the void.
    proxy.forward();
    drop(guard);
}

recipe_tests!(
    mutex_gives_exact_counts_under_contention,
    mutex_nodes_use_curators_protected_lock_names_and_default_data,
    a_held_handle_is_not_reentered_by_acquire,
    reentry_through_the_guard_frees_on_the_last_release,
    mutex_try_acquire_times_out_without_leaving_a_node,
    mutex_waiters_acquire_in_arrival_order,
    semaphore_never_grants_more_than_its_leases,
    semaphore_lease_nodes_follow_curators_layout,
    semaphore_mutex_is_not_reentrant,
    read_locks_are_shared_and_exclude_writers,
    a_waiting_writer_holds_back_later_readers,
    the_write_holder_can_take_the_read_lock,
    a_holder_whose_session_expires_is_told_and_the_lock_passes_on,
);
