//! Our Rust recipes and Apache Curator 5 (Java) working on the same znodes:
//! a Java service and a Rust service must be able to share one lock, one
//! election and one group (RECIPES.md: the node layouts are Curator's).
//!
//! The Java side is `tests/curator/CuratorPeer.java`, compiled on first use
//! and run as a child process. Every scenario runs against Apache
//! ZooKeeper 3.8 and against our server. Skipped, with a notice, when
//! javac or the Curator jars (Debian: default-jdk-headless,
//! libcurator-recipes-java) or Apache ZooKeeper are missing.

// Shared with the client suites: the servers (Apache and ours) and a
// fresh chroot per test; its `target_tests!` (three targets) is not used.
#[allow(unused_macros)]
mod client_target;
mod curator;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::StreamExt;
use zk_client::{Acl, CreateMode};
use zk_recipes::{
    ChildData, Curator, Events, GroupMember, InterProcessMutex, LeaderLatch, PathChildrenCache,
    PathChildrenEvent, RetryPolicy, StartMode,
};

use client_target::{ensure_path, eventually, Ctx, Target};
use curator::{JavaKit, Peer};

/// The bound on any single wait.
const LIMIT: Duration = Duration::from_secs(30);

/// Expands scenarios `async fn name(target: Target)` into one test per
/// server.
macro_rules! interop_tests {
    ($($name:ident),* $(,)?) => {
        mod apache {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::client_target::Target::Apache).await
                }
            )*
        }
        mod ours {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::client_target::Target::Ours).await
                }
            )*
        }
    };
}

interop_tests!(
    rust_and_java_mutexes_exclude_each_other_and_both_progress,
    rust_and_java_latches_agree_on_one_leader_and_hand_over_on_close,
    java_path_children_cache_sees_a_rust_group_member_join_and_leave,
    rust_path_children_cache_sees_a_java_group_member_join_and_leave,
    rust_and_java_group_members_see_each_other,
);

/// A test's corner of a server, and the compiled Java peer.
struct Setup {
    ctx: Ctx,
    kit: &'static JavaKit,
}

impl Setup {
    /// `None` (after a skip notice) when Java, Curator or the server are
    /// not available here.
    async fn new(target: Target, name: &str) -> Option<Setup> {
        if !zk_testkit::oracle::require(zk_testkit::oracle::Oracle::Curator) {
            return None;
        }
        let kit = tokio::task::spawn_blocking(curator::kit)
            .await
            .expect("compile the Curator peer");
        let ctx = client_target::ctx(target, name).await?;
        Some(Setup { ctx, kit })
    }

    /// Where both sides connect: the test's chroot on the server.
    fn connect(&self) -> String {
        self.ctx.connect_string()
    }

    async fn curator(&self) -> Curator {
        Curator::builder(&self.connect())
            .session_timeout(Duration::from_secs(10))
            .connection_timeout(Duration::from_secs(10))
            .retry_policy(RetryPolicy::bounded_exponential_backoff(
                Duration::from_millis(50),
                Duration::from_millis(500),
                10,
            ))
            .connect()
            .await
            .expect("the Rust framework connects")
    }

    /// Starts `CuratorPeer <connect> <role args...>`.
    async fn java(&self, role_args: &[&str]) -> Peer {
        let connect = self.connect();
        let mut args = vec![connect.as_str()];
        args.extend_from_slice(role_args);
        Peer::start(self.kit, &args, LIMIT).await
    }
}

// ---------------------------------------------------------------------------
// (a) InterProcessMutex

const LOCK: &str = "/lock";
/// Created (ephemeral) by whoever holds the lock, deleted before release:
/// if a holder finds it already there, two holders overlapped.
const MARKER: &str = "/markers/holder";
const ROUNDS: usize = 10;
const HOLD: Duration = Duration::from_millis(50);

/// One hold of the lock, in wall-clock milliseconds, taken strictly inside
/// the lifetime of the holder's marker node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hold {
    holder: Side,
    from_ms: u64,
    to_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Rust,
    Java,
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Pairs of holds that overlap in time.
fn overlaps(holds: &[Hold]) -> Vec<(Hold, Hold)> {
    let mut found = Vec::new();
    for (i, a) in holds.iter().enumerate() {
        for b in &holds[i + 1..] {
            if a.from_ms < b.to_ms && b.from_ms < a.to_ms {
                found.push((*a, *b));
            }
        }
    }
    found
}

/// How often the lock passed from one side to the other.
fn hand_overs(holds: &[Hold]) -> usize {
    let mut sorted = holds.to_vec();
    sorted.sort_by_key(|h| h.from_ms);
    sorted
        .windows(2)
        .filter(|w| w[0].holder != w[1].holder)
        .count()
}

/// The Rust side: `ROUNDS` times acquire, create the marker, hold, delete
/// the marker, release.
async fn rust_holds(curator: Curator) -> Vec<Hold> {
    let mutex = InterProcessMutex::new(&curator, LOCK);
    let mut holds = Vec::new();
    for round in 0..ROUNDS {
        let guard = mutex
            .try_acquire(LIMIT)
            .await
            .expect("Rust acquire")
            .unwrap_or_else(|| panic!("Rust did not get the lock within {LIMIT:?}"));
        let client = curator.client();
        match client
            .create(MARKER, b"rust", &Acl::open_unsafe(), CreateMode::Ephemeral)
            .await
        {
            Ok(_) => {}
            Err(zk_client::Error::NodeExists) => {
                panic!("round {round}: Rust got the lock while the Java side held it")
            }
            Err(e) => panic!("create the marker: {e}"),
        }
        let from_ms = wall_ms();
        tokio::time::sleep(HOLD).await;
        let to_ms = wall_ms();
        client
            .delete(MARKER, None)
            .await
            .expect("delete the marker");
        guard.release().await.expect("Rust release");
        holds.push(Hold {
            holder: Side::Rust,
            from_ms,
            to_ms,
        });
    }
    holds
}

/// The Java side's holds, read from its `ACQUIRED`/`RELEASED` lines until
/// `DONE`; `acquired_ms` is the time of an `ACQUIRED` line already read.
async fn java_holds(java: &mut Peer, mut acquired_ms: Option<u64>) -> Vec<Hold> {
    let mut holds = Vec::new();
    loop {
        let line = java
            .expect(LIMIT, "the next hold", |l| {
                l == "DONE" || l.starts_with("ACQUIRED ") || l.starts_with("RELEASED ")
            })
            .await;
        let time = |prefix: &str| -> Option<u64> { line.strip_prefix(prefix)?.parse().ok() };
        if line == "DONE" {
            return holds;
        } else if let Some(t) = time("ACQUIRED ") {
            acquired_ms = Some(t);
        } else if let Some(t) = time("RELEASED ") {
            let from_ms = acquired_ms
                .take()
                .unwrap_or_else(|| panic!("RELEASED without ACQUIRED\n{}", java.transcript()));
            holds.push(Hold {
                holder: Side::Java,
                from_ms,
                to_ms: t,
            });
        } else {
            panic!("unreadable line {line:?}\n{}", java.transcript());
        }
    }
}

async fn rust_and_java_mutexes_exclude_each_other_and_both_progress(target: Target) {
    let Some(s) = Setup::new(target, "curator-mutex").await else {
        return;
    };
    ensure_path(&s.ctx.client, "/markers").await;
    let rounds = ROUNDS.to_string();
    let hold_ms = HOLD.as_millis().to_string();
    let mut java = s.java(&["mutex", LOCK, MARKER, &hold_ms, &rounds]).await;
    let curator = s.curator().await;

    // Let Java take the lock first, so the Rust side queues behind a Java
    // holder from its very first round.
    java.send("go").await;
    let first = java
        .expect(LIMIT, "the first ACQUIRED", |l| l.starts_with("ACQUIRED "))
        .await;
    let first_from_ms = first["ACQUIRED ".len()..].parse().ok();
    let rust = tokio::spawn(rust_holds(curator.clone()));
    let mut holds = java_holds(&mut java, first_from_ms).await;
    let rust_holds = tokio::time::timeout(LIMIT * 2, rust)
        .await
        .expect("the Rust rounds finish")
        .expect("the Rust rounds succeed");
    assert_eq!(
        java.exit_code(LIMIT).await,
        Some(0),
        "{}",
        java.transcript()
    );

    assert_eq!(rust_holds.len(), ROUNDS, "Rust made all its rounds");
    assert_eq!(holds.len(), ROUNDS, "Java made all its rounds");
    holds.extend(rust_holds);
    assert_eq!(overlaps(&holds), vec![], "hold intervals overlap");
    // Both queue fairly on one lock, so the lock keeps changing sides.
    assert!(
        hand_overs(&holds) >= ROUNDS / 2,
        "the sides did not take turns: {holds:?}"
    );
    // Every lock node was deleted on release, by both sides.
    let client = &s.ctx.client;
    assert!(
        eventually(LIMIT, || async {
            client.get_children(LOCK).await.is_ok_and(|c| c.is_empty())
        })
        .await,
        "lock nodes left: {:?}",
        client.get_children(LOCK).await
    );
    curator.close().await;
}

// ---------------------------------------------------------------------------
// (b) LeaderLatch

const ELECTION: &str = "/election";

/// Waits until the election at `latch`'s path has `count` participants.
async fn wait_participants(latch: &LeaderLatch, count: usize) {
    assert!(
        eventually(LIMIT, || async {
            latch.participants().await.is_ok_and(|p| p.len() == count)
        })
        .await,
        "expected {count} participants, have {:?}",
        latch.participants().await
    );
}

async fn rust_and_java_latches_agree_on_one_leader_and_hand_over_on_close(target: Target) {
    let Some(s) = Setup::new(target, "curator-latch").await else {
        return;
    };
    let curator = s.curator().await;
    let first = LeaderLatch::start(&curator, ELECTION, "rust-1");
    assert!(first.await_leadership(LIMIT).await, "the first latch leads");

    // Java joins behind the Rust leader and agrees on who leads.
    let mut java = s.java(&["latch", ELECTION, "java-1"]).await;
    wait_participants(&first, 2).await;
    assert!(first.has_leadership());
    assert_eq!(java.ask("status", "STATUS ").await, "NOT_LEADER");
    assert_eq!(java.ask("leader", "LEADER_ID ").await, "rust-1");
    let ids: Vec<(String, bool)> = first
        .participants()
        .await
        .expect("participants")
        .into_iter()
        .map(|p| (p.id, p.is_leader))
        .collect();
    assert_eq!(
        ids,
        vec![("rust-1".to_string(), true), ("java-1".to_string(), false)]
    );

    // Rust leaves: leadership passes to Java.
    first.close().await.expect("close the Rust latch");
    java.expect(LIMIT, "LEADER", |l| l == "LEADER").await;

    // Rust joins again, behind the Java leader.
    let second = LeaderLatch::start(&curator, ELECTION, "rust-2");
    wait_participants(&second, 2).await;
    assert!(!second.has_leadership(), "only the Java latch leads");
    assert_eq!(java.ask("status", "STATUS ").await, "LEADER");
    let leader = second.leader().await.expect("read the leader");
    assert_eq!(leader.map(|p| p.id), Some("java-1".to_string()));

    // Java leaves: leadership passes back to Rust.
    java.send("close").await;
    java.expect(LIMIT, "CLOSED", |l| l == "CLOSED").await;
    assert!(
        second.await_leadership(LIMIT).await,
        "the Rust latch leads after the Java latch closed"
    );
    second.close().await.expect("close the Rust latch");
    java.shutdown().await;
    curator.close().await;
}

// ---------------------------------------------------------------------------
// (c) GroupMember and PathChildrenCache

const GROUP: &str = "/group";

/// The next child event from a Rust cache (connection events skipped).
async fn next_child_event(events: &mut Events<PathChildrenEvent>) -> PathChildrenEvent {
    loop {
        let event = tokio::time::timeout(LIMIT, events.next())
            .await
            .unwrap_or_else(|_| panic!("no cache event within {LIMIT:?}"))
            .expect("the cache is running");
        match event {
            PathChildrenEvent::ConnectionSuspended
            | PathChildrenEvent::ConnectionReconnected
            | PathChildrenEvent::ConnectionLost => continue,
            other => return other,
        }
    }
}

fn path_and_data(child: &ChildData) -> (&str, &[u8]) {
    (child.path.as_str(), child.data.as_ref())
}

async fn java_path_children_cache_sees_a_rust_group_member_join_and_leave(target: Target) {
    let Some(s) = Setup::new(target, "curator-java-pcc").await else {
        return;
    };
    ensure_path(&s.ctx.client, GROUP).await;
    let mut java = s.java(&["pcc", GROUP]).await;
    java.expect(LIMIT, "INITIALIZED", |l| l == "INITIALIZED")
        .await;

    let curator = s.curator().await;
    let (member, _events) = GroupMember::start(
        &curator,
        GROUP,
        "rust-1",
        Some(Bytes::from_static(b"rust-payload")),
    )
    .expect("join the group");
    java.expect(LIMIT, "the Rust member added", |l| {
        l == "CHILD_ADDED /group/rust-1 rust-payload"
    })
    .await;

    member.close().await.expect("leave the group");
    java.expect(LIMIT, "the Rust member removed", |l| {
        l.starts_with("CHILD_REMOVED /group/rust-1")
    })
    .await;
    java.shutdown().await;
    curator.close().await;
}

async fn rust_path_children_cache_sees_a_java_group_member_join_and_leave(target: Target) {
    let Some(s) = Setup::new(target, "curator-rust-pcc").await else {
        return;
    };
    ensure_path(&s.ctx.client, GROUP).await;
    let curator = s.curator().await;
    let (cache, mut events) =
        PathChildrenCache::start(&curator, GROUP, StartMode::PostInitializedEvent);
    assert_eq!(
        next_child_event(&mut events).await,
        PathChildrenEvent::Initialized(vec![])
    );

    let mut java = s.java(&["member", GROUP, "java-1", "java-payload"]).await;
    match next_child_event(&mut events).await {
        PathChildrenEvent::ChildAdded(child) => {
            assert_eq!(
                path_and_data(&child),
                ("/group/java-1", &b"java-payload"[..])
            );
            assert_ne!(
                child.stat.ephemeral_owner, 0,
                "the member node is ephemeral"
            );
        }
        other => panic!("expected the Java member added, got {other:?}"),
    }

    java.send("close").await;
    java.expect(LIMIT, "CLOSED", |l| l == "CLOSED").await;
    match next_child_event(&mut events).await {
        PathChildrenEvent::ChildRemoved(child) => assert_eq!(child.path, "/group/java-1"),
        other => panic!("expected the Java member removed, got {other:?}"),
    }
    java.shutdown().await;
    cache.close().await;
    curator.close().await;
}

async fn rust_and_java_group_members_see_each_other(target: Target) {
    let Some(s) = Setup::new(target, "curator-members").await else {
        return;
    };
    let curator = s.curator().await;
    let (member, _events) = GroupMember::start(
        &curator,
        GROUP,
        "rust-1",
        Some(Bytes::from_static(b"rust-payload")),
    )
    .expect("join the group");
    let mut java = s.java(&["member", GROUP, "java-1", "java-payload"]).await;

    let everyone = "java-1=java-payload,rust-1=rust-payload";
    let mut seen = String::new();
    for _ in 0..50 {
        seen = java.ask("members", "MEMBERS ").await;
        if seen == everyone {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen, everyone, "the Java member's view");
    assert!(
        eventually(LIMIT, || async {
            member.current_members().get("java-1").map(|b| b.as_ref()) == Some(&b"java-payload"[..])
        })
        .await,
        "the Rust member's view: {:?}",
        member.current_members()
    );
    java.shutdown().await;
    member.close().await.expect("leave the group");
    curator.close().await;
}
