//! The framework builder against Apache ZooKeeper and our server:
//! credentials and an ACL provider used for every node a recipe creates,
//! a per-request timeout, and recipes that can be built outside a tokio
//! runtime.

#[macro_use]
mod recipes_common;

use std::time::Duration;

use recipes_common::{ctx, retry, within, Target, SESSION};
use zk_client::{Acl, Id, Perms, CREATOR_ALL_ACL};
use zk_recipes::{Curator, Error, FixedAclProvider, InterProcessMutex, LeaderLatch};
use zk_testkit::proxy::Proxy;

const LIMIT: Duration = Duration::from_secs(60);

async fn recipe_nodes_and_their_parents_get_the_providers_acl(target: Target) {
    let Some(t) = ctx(target, "builder-acl").await else {
        return;
    };
    let curator = Curator::builder(&t.connect)
        .session_timeout(SESSION)
        .retry_policy(retry())
        .auth("digest", b"alice:secret")
        .acl_provider(FixedAclProvider::new(CREATOR_ALL_ACL.clone()))
        .connect()
        .await
        .unwrap();
    let lock = InterProcessMutex::new(&curator, "/locks/a");
    let guard = lock.acquire().await.unwrap();
    let client = curator.client();
    for path in ["/locks", "/locks/a", guard.path()] {
        let (acl, _) = client.get_acl(path).await.unwrap();
        assert_eq!(acl.len(), 1, "{path}: {acl:?}");
        assert_eq!(acl[0].id.scheme, "digest", "{path}: {acl:?}");
        assert!(acl[0].id.id.starts_with("alice:"), "{path}: {acl:?}");
        assert_eq!(acl[0].perms(), Perms::ALL);
    }
    // Someone without the credentials cannot read the lock node.
    let stranger = t.client().await;
    assert_eq!(
        stranger.get_data(guard.path()).await,
        Err(zk_client::Error::NoAuth)
    );
    guard.release().await.unwrap();
}

async fn a_provider_closure_chooses_the_acl_per_path(target: Target) {
    let Some(t) = ctx(target, "builder-acl-fn").await else {
        return;
    };
    let read_only_for_all = vec![Acl::new(Perms::READ, Id::anyone())];
    let chosen = read_only_for_all.clone();
    let curator = Curator::builder(&t.connect)
        .session_timeout(SESSION)
        .retry_policy(retry())
        .acl_provider(move |path: &str| {
            if path.starts_with("/public/") {
                chosen.clone()
            } else {
                Acl::open_unsafe()
            }
        })
        .connect()
        .await
        .unwrap();
    curator
        .create("/public/doc", b"", zk_client::CreateMode::Persistent)
        .await
        .unwrap();
    curator
        .create("/private/doc", b"", zk_client::CreateMode::Persistent)
        .await
        .unwrap();
    let client = curator.client();
    // The parent container is created with the provider's choice too.
    assert_eq!(
        client.get_acl("/public").await.unwrap().0,
        Acl::open_unsafe()
    );
    assert_eq!(
        client.get_acl("/public/doc").await.unwrap().0,
        read_only_for_all
    );
    assert_eq!(
        client.get_acl("/private/doc").await.unwrap().0,
        Acl::open_unsafe()
    );
}

async fn a_request_timeout_fails_a_request_whose_reply_does_not_come(target: Target) {
    let Some(t) = ctx(target, "builder-request-timeout").await else {
        return;
    };
    let proxy = Proxy::start(t.server).unwrap();
    let curator = Curator::builder(&format!("{}{}", proxy.connect_string(), t.root))
        .session_timeout(Duration::from_secs(10))
        .request_timeout(Duration::from_millis(300))
        .retry_policy(zk_recipes::RetryPolicy::n_times(0, Duration::ZERO))
        .connect()
        .await
        .unwrap();
    proxy.pause_replies();
    let outcome = within(LIMIT, "the request times out", curator.client().exists("/")).await;
    assert_eq!(outcome, Err(zk_client::Error::RequestTimeout));
    proxy.resume_replies();
    curator.close().await;
}

recipe_tests!(
    recipe_nodes_and_their_parents_get_the_providers_acl,
    a_provider_closure_chooses_the_acl_per_path,
    a_request_timeout_fails_a_request_whose_reply_does_not_come,
);

/// Outside any runtime, building needs a runtime handle.
#[test]
fn building_outside_a_runtime_without_a_handle_is_an_error_not_a_panic() {
    let built = Curator::builder("127.0.0.1:1").build();
    assert!(matches!(built, Err(Error::NoRuntime)), "{built:?}");
}

/// With a handle, the framework and a recipe are built from a plain
/// thread; the recipe's background task runs on the given runtime.
#[test]
fn recipes_start_outside_a_runtime_on_the_frameworks_runtime() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let Some(t) = runtime.block_on(ctx(Target::Ours, "builder-runtime")) else {
        return;
    };
    let curator = Curator::builder(&t.connect)
        .session_timeout(SESSION)
        .runtime(runtime.handle().clone())
        .build()
        .unwrap();
    // Not inside the runtime here: this used to panic in tokio::spawn.
    assert!(tokio::runtime::Handle::try_current().is_err());
    let latch = LeaderLatch::start(&curator, "/latch", "outside");
    let selector = zk_recipes::LeaderSelector::builder(&curator, "/election")
        .start(|_curator| futures::future::pending::<()>());
    let (cache, _events) =
        zk_recipes::PathChildrenCache::start(&curator, "/members", zk_recipes::StartMode::Normal);
    let node = zk_recipes::PersistentNode::start(
        &curator,
        "/members/outside",
        zk_client::CreateMode::Ephemeral,
        false,
        &b"here"[..],
    )
    .unwrap();
    let discovery = zk_recipes::ServiceDiscovery::start(&curator, "/services");
    assert!(runtime.block_on(latch.await_leadership(LIMIT)));
    assert!(runtime.block_on(node.wait_for_initial_create(LIMIT)));
    runtime.block_on(async {
        let mut leadership = selector.leadership();
        within(LIMIT, "selector leads", leadership.wait_for(|l| *l))
            .await
            .unwrap();
        selector.close().await;
        cache.close().await;
        node.close().await.unwrap();
        discovery.close().await.unwrap();
        latch.close().await.unwrap();
        curator.close().await;
    });
}
