//! The client API additions against Apache ZooKeeper and our server:
//! create options as one builder (the old calls are shorthands for it),
//! `'static` ACL constants, and state waiting that cannot miss a quick
//! transition.

#[allow(unused_macros)]
mod client_target;

use std::time::Duration;

use client_target::{ctx, wait_state, Target};
use zk_client::{
    Acl, Client, CreateMode, CreateOptions, Error, SessionState, CREATOR_ALL_ACL, OPEN_ACL_UNSAFE,
    READ_ACL_UNSAFE,
};
use zk_testkit::proxy::Proxy;

const LIMIT: Duration = Duration::from_secs(30);

/// Expands to one test per standalone target (the ensemble adds nothing
/// to these client-side behaviours).
macro_rules! standalone_tests {
    ($($name:ident),* $(,)?) => {
        mod apache {
            $( #[tokio::test] async fn $name() { super::$name(crate::client_target::Target::Apache).await } )*
        }
        mod ours {
            $( #[tokio::test] async fn $name() { super::$name(crate::client_target::Target::Ours).await } )*
        }
    };
}

/// A retry helper of the kind callers write: the closure returns a future
/// borrowing the ACL, which must outlive it.
async fn retry<F, Fut, T>(mut op: F) -> zk_client::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = zk_client::Result<T>>,
{
    let mut last = Err(Error::ConnectionLoss);
    for _ in 0..3 {
        last = op().await;
        if !matches!(last, Err(Error::ConnectionLoss)) {
            break;
        }
    }
    last
}

async fn static_acl_constants_can_be_borrowed_by_retried_closures(target: Target) {
    let Some(t) = ctx(target, "static-acl").await else {
        return;
    };
    let c = &t.client;
    let created = retry(|| c.create("/open", b"d", &OPEN_ACL_UNSAFE, CreateMode::Persistent))
        .await
        .unwrap();
    assert_eq!(created, "/open");
    retry(|| c.create("/read", b"", &READ_ACL_UNSAFE, CreateMode::Persistent))
        .await
        .unwrap();
    assert_eq!(c.get_acl("/open").await.unwrap().0, Acl::open_unsafe());
    assert_eq!(c.get_acl("/read").await.unwrap().0, Acl::read_unsafe());
    // Without authentication the creator ACL has no identity to name.
    assert_eq!(
        c.create("/mine", b"", &CREATOR_ALL_ACL, CreateMode::Persistent)
            .await,
        Err(Error::InvalidAcl)
    );
}

async fn create_options_choose_the_stat_acl_and_null_data(target: Target) {
    let Some(t) = ctx(target, "create-options").await else {
        return;
    };
    let c = &t.client;
    let plain = c
        .create_with("/plain", b"x", &CreateOptions::new(CreateMode::Persistent))
        .await
        .unwrap();
    assert_eq!(plain.path, "/plain");
    assert_eq!(plain.stat, None);

    let with_stat = c
        .create_with(
            "/seq-",
            b"abc",
            &CreateOptions::new(CreateMode::PersistentSequential)
                .acl(&READ_ACL_UNSAFE)
                .with_stat(),
        )
        .await
        .unwrap();
    let stat = with_stat.stat.expect("asked for the stat");
    assert!(with_stat.path.starts_with("/seq-"));
    assert_eq!(stat.data_length, 3);
    assert_eq!(c.exists(&with_stat.path).await.unwrap(), Some(stat));
    assert_eq!(
        c.get_acl(&with_stat.path).await.unwrap().0,
        Acl::read_unsafe()
    );

    let null = c
        .create_with(
            "/null",
            b"ignored",
            &CreateOptions::new(CreateMode::Persistent).null_data(),
        )
        .await
        .unwrap();
    assert_eq!(c.get_data_opt(&null.path).await.unwrap().0, None);
}

async fn create_options_with_a_ttl_make_a_ttl_node(target: Target) {
    let Some(t) = ctx(target, "create-options-ttl").await else {
        return;
    };
    let c = &t.client;
    let created = c
        .create_with(
            "/ttl",
            b"t",
            &CreateOptions::new(CreateMode::PersistentWithTtl).ttl(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let stat = created.stat.expect("createTTL returns the stat");
    assert_eq!(c.exists("/ttl").await.unwrap(), Some(stat));
    // A TTL on a mode without one is refused before sending.
    let refused = c
        .create_with(
            "/no",
            b"",
            &CreateOptions::new(CreateMode::Persistent).ttl(Duration::from_secs(1)),
        )
        .await;
    assert!(
        matches!(refused, Err(Error::BadArguments(_))),
        "{refused:?}"
    );
}

async fn wait_for_state_sees_a_quick_disconnection(target: Target) {
    let Some(t) = ctx(target, "quick-disconnect").await else {
        return;
    };
    let proxy = Proxy::start(target.one_server()).unwrap();
    let client = Client::builder(&format!("{}{}", proxy.connect_string(), t.root))
        .session_timeout(Duration::from_secs(10))
        .connect()
        .await
        .unwrap();
    // The feed is taken when the wait is made, before the cut: the
    // disconnection is seen even if the reconnection follows at once.
    let disconnected = client.wait_for_state(|s| *s == SessionState::Disconnected);
    proxy.drop_all();
    let reached = tokio::time::timeout(LIMIT, disconnected)
        .await
        .expect("the disconnection was seen");
    assert_eq!(reached, SessionState::Disconnected);
    wait_state(&client, LIMIT, |s| *s == SessionState::Connected).await;
    client.close().await.unwrap();
}

standalone_tests!(
    static_acl_constants_can_be_borrowed_by_retried_closures,
    create_options_choose_the_stat_acl_and_null_data,
    create_options_with_a_ttl_make_a_ttl_node,
    wait_for_state_sees_a_quick_disconnection,
);
