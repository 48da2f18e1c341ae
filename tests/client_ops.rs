//! Every client operation and its error paths, against every target
//! server: results, Stats, chroot, auth and ACLs, multi, and watches
//! (including their order relative to replies).

#[macro_use]
mod client_target;

use std::time::Duration;

use futures::{FutureExt, StreamExt};
use zk_client::{
    Acl, AddWatchMode, Client, CreateMode, Error, EventType, Id, KeeperState, Op, OpResult, Perms,
    SessionState, WatcherType,
};

use client_target::{ctx, Target};

const OPEN: fn() -> Vec<Acl> = Acl::open_unsafe;
const EVENT_WAIT: Duration = Duration::from_secs(10);

async fn next_event(watch: zk_client::Watch) -> zk_client::WatchedEvent {
    tokio::time::timeout(EVENT_WAIT, watch)
        .await
        .expect("watch event in time")
}

async fn create_returns_the_path_and_get_data_reads_it_back(target: Target) {
    let Some(t) = ctx(target, "create-get").await else {
        return;
    };
    let path = t
        .client
        .create("/a", b"hello", &OPEN(), CreateMode::Persistent)
        .await
        .unwrap();
    assert_eq!(path, "/a");
    let (data, stat) = t.client.get_data("/a").await.unwrap();
    assert_eq!(&data[..], b"hello");
    assert_eq!(stat.data_length, 5);
    assert_eq!(stat.version, 0);
}

async fn create2_returns_the_stat_of_the_new_node(target: Target) {
    let Some(t) = ctx(target, "create2").await else {
        return;
    };
    let (path, stat) = t
        .client
        .create2("/b", b"xy", &OPEN(), CreateMode::Persistent)
        .await
        .unwrap();
    assert_eq!(path, "/b");
    assert_eq!(stat.data_length, 2);
    assert_eq!(stat.czxid, stat.mzxid);
    assert_eq!(t.client.exists("/b").await.unwrap(), Some(stat));
}

async fn sequential_nodes_get_a_ten_digit_counter(target: Target) {
    let Some(t) = ctx(target, "sequential").await else {
        return;
    };
    t.client
        .create("/q", b"", &OPEN(), CreateMode::Persistent)
        .await
        .unwrap();
    let first = t
        .client
        .create("/q/n-", b"", &OPEN(), CreateMode::PersistentSequential)
        .await
        .unwrap();
    let second = t
        .client
        .create("/q/", b"", &OPEN(), CreateMode::EphemeralSequential)
        .await
        .unwrap();
    assert_eq!(first, "/q/n-0000000000");
    assert_eq!(second, "/q/0000000001");
}

async fn ephemeral_nodes_are_listed_and_vanish_with_their_session(target: Target) {
    let Some(t) = ctx(target, "ephemeral").await else {
        return;
    };
    let other = t.another_client().await;
    other
        .create("/e", b"", &OPEN(), CreateMode::Ephemeral)
        .await
        .unwrap();
    let stat = t.client.exists("/e").await.unwrap().expect("exists");
    assert_eq!(stat.ephemeral_owner, other.session_id());
    assert_eq!(
        other.get_ephemerals("/").await.unwrap(),
        vec!["/e".to_string()]
    );
    assert_eq!(
        other
            .create("/e/child", b"", &OPEN(), CreateMode::Persistent)
            .await,
        Err(Error::NoChildrenForEphemerals)
    );
    other.close().await.unwrap();
    assert_eq!(t.client.exists("/e").await.unwrap(), None);
}

async fn container_and_ttl_nodes_are_created_with_their_opcodes(target: Target) {
    let Some(t) = ctx(target, "container-ttl").await else {
        return;
    };
    let (path, stat) = t
        .client
        .create2("/c", b"", &OPEN(), CreateMode::Container)
        .await
        .unwrap();
    assert_eq!((path.as_str(), stat.version), ("/c", 0));
    let (path, stat) = t
        .client
        .create_ttl(
            "/t-",
            b"",
            &OPEN(),
            CreateMode::PersistentSequentialWithTtl,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(path, "/t-0000000001");
    assert_eq!(t.client.exists(&path).await.unwrap(), Some(stat));
    assert!(matches!(
        t.client
            .create("/t2", b"", &OPEN(), CreateMode::PersistentWithTtl)
            .await,
        Err(Error::BadArguments(_))
    ));
}

async fn create_reports_every_error_code(target: Target) {
    let Some(t) = ctx(target, "create-errors").await else {
        return;
    };
    t.client
        .create("/x", b"", &OPEN(), CreateMode::Persistent)
        .await
        .unwrap();
    assert_eq!(
        t.client
            .create("/x", b"", &OPEN(), CreateMode::Persistent)
            .await,
        Err(Error::NodeExists)
    );
    assert_eq!(
        t.client
            .create("/none/x", b"", &OPEN(), CreateMode::Persistent)
            .await,
        Err(Error::NoNode)
    );
    assert_eq!(
        t.client
            .create("/y", b"", &[], CreateMode::Persistent)
            .await,
        Err(Error::InvalidAcl)
    );
    let bad_acl = [Acl::new(Perms::ALL, Id::new("world", "somebody"))];
    assert_eq!(
        t.client
            .create("/y", b"", &bad_acl, CreateMode::Persistent)
            .await,
        Err(Error::InvalidAcl)
    );
    let needs_auth = Acl::creator_all();
    assert_eq!(
        t.client
            .create("/y", b"", &needs_auth, CreateMode::Persistent)
            .await,
        Err(Error::InvalidAcl)
    );
    for bad in ["y", "/y/", "/a//b", "/a/./b"] {
        assert!(
            matches!(
                t.client
                    .create(bad, b"", &OPEN(), CreateMode::Persistent)
                    .await,
                Err(Error::BadArguments(_))
            ),
            "{bad}"
        );
    }
}

async fn delete_checks_versions_and_emptiness(target: Target) {
    let Some(t) = ctx(target, "delete").await else {
        return;
    };
    t.client
        .create("/d", b"", &OPEN(), CreateMode::Persistent)
        .await
        .unwrap();
    t.client
        .create("/d/k", b"", &OPEN(), CreateMode::Persistent)
        .await
        .unwrap();
    assert_eq!(t.client.delete("/d", None).await, Err(Error::NotEmpty));
    assert_eq!(
        t.client.delete("/d/k", Some(3)).await,
        Err(Error::BadVersion)
    );
    t.client.delete("/d/k", Some(0)).await.unwrap();
    t.client.delete("/d", None).await.unwrap();
    assert_eq!(t.client.delete("/d", None).await, Err(Error::NoNode));
    assert!(matches!(
        t.client.delete("/", None).await,
        Err(Error::BadArguments(_))
    ));
}

async fn set_data_bumps_the_version_and_checks_it(target: Target) {
    let Some(t) = ctx(target, "set-data").await else {
        return;
    };
    t.client
        .create("/s", b"1", &OPEN(), CreateMode::Persistent)
        .await
        .unwrap();
    let stat = t.client.set_data("/s", b"22", Some(0)).await.unwrap();
    assert_eq!((stat.version, stat.data_length), (1, 2));
    assert_eq!(
        t.client.set_data("/s", b"3", Some(0)).await,
        Err(Error::BadVersion)
    );
    assert_eq!(
        t.client.set_data("/missing", b"3", None).await,
        Err(Error::NoNode)
    );
    assert_eq!(&t.client.get_data("/s").await.unwrap().0[..], b"22");
}

async fn null_data_reads_back_as_none_and_empty_data_as_empty(target: Target) {
    let Some(t) = ctx(target, "null-data").await else {
        return;
    };
    t.client
        .create_with_null_data("/null", &OPEN(), CreateMode::Persistent)
        .await
        .unwrap();
    t.client
        .create("/empty", b"", &OPEN(), CreateMode::Persistent)
        .await
        .unwrap();
    let (null, stat) = t.client.get_data_opt("/null").await.unwrap();
    assert_eq!((null, stat.data_length), (None, 0));
    let (empty, _) = t.client.get_data_opt("/empty").await.unwrap();
    assert_eq!(empty.as_deref(), Some(&b""[..]));
    // The plain read still folds null into empty bytes.
    assert!(t.client.get_data("/null").await.unwrap().0.is_empty());

    t.client.set_data("/null", b"x", None).await.unwrap();
    let (data, _stat, watch) = t.client.get_data_opt_and_watch("/null").await.unwrap();
    assert_eq!(data.as_deref(), Some(&b"x"[..]));
    let stat = t.client.set_null_data("/null", Some(1)).await.unwrap();
    assert_eq!((stat.version, stat.data_length), (2, 0));
    assert_eq!(
        next_event(watch).await.event_type,
        EventType::NodeDataChanged
    );
    assert_eq!(t.client.get_data_opt("/null").await.unwrap().0, None);
}

async fn exists_and_get_data_report_missing_nodes(target: Target) {
    let Some(t) = ctx(target, "missing").await else {
        return;
    };
    assert_eq!(t.client.exists("/nope").await.unwrap(), None);
    assert_eq!(t.client.get_data("/nope").await, Err(Error::NoNode));
    assert_eq!(t.client.get_children("/nope").await, Err(Error::NoNode));
    assert_eq!(t.client.get_acl("/nope").await, Err(Error::NoNode));
}

async fn get_children_lists_names_and_the_parent_stat(target: Target) {
    let Some(t) = ctx(target, "children").await else {
        return;
    };
    for name in ["/p", "/p/a", "/p/b", "/p/b/deep"] {
        t.client
            .create(name, b"", &OPEN(), CreateMode::Persistent)
            .await
            .unwrap();
    }
    let mut names = t.client.get_children("/p").await.unwrap();
    names.sort();
    assert_eq!(names, ["a", "b"]);
    let (names, stat) = t.client.get_children2("/p").await.unwrap();
    assert_eq!((names.len(), stat.num_children), (2, 2));
    assert_eq!(t.client.get_all_children_number("/p").await.unwrap(), 3);
    let mut root = t.client.get_children("/").await.unwrap();
    root.sort();
    assert_eq!(root, ["p"], "the chroot is the root");
}

async fn acls_are_read_and_replaced_with_version_checks(target: Target) {
    let Some(t) = ctx(target, "acl").await else {
        return;
    };
    t.client
        .create("/a", b"", &OPEN(), CreateMode::Persistent)
        .await
        .unwrap();
    let (acl, stat) = t.client.get_acl("/a").await.unwrap();
    assert_eq!((acl, stat.aversion), (OPEN(), 0));
    let read_only = Acl::read_unsafe();
    assert_eq!(
        t.client.set_acl("/a", &read_only, Some(5)).await,
        Err(Error::BadVersion)
    );
    let stat = t.client.set_acl("/a", &read_only, Some(0)).await.unwrap();
    assert_eq!(stat.aversion, 1);
    // Without ADMIN nobody may change the ACL again.
    assert_eq!(
        t.client.set_acl("/a", &OPEN(), None).await,
        Err(Error::NoAuth)
    );
    assert_eq!(
        t.client.set_data("/a", b"x", None).await,
        Err(Error::NoAuth)
    );
    assert_eq!(t.client.get_acl("/a").await.unwrap().0, read_only);
}

async fn digest_auth_grants_access_to_creator_only_nodes(target: Target) {
    let Some(t) = ctx(target, "digest").await else {
        return;
    };
    t.client.add_auth("digest", b"alice:secret").await.unwrap();
    t.client
        .create(
            "/private",
            b"s3",
            &Acl::creator_all(),
            CreateMode::Persistent,
        )
        .await
        .unwrap();
    let (acl, _) = t.client.get_acl("/private").await.unwrap();
    assert_eq!(
        acl[0].id,
        Id::new("digest", "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=")
    );
    assert_eq!(&t.client.get_data("/private").await.unwrap().0[..], b"s3");
    let who = t.client.whoami().await.unwrap();
    assert!(
        who.iter()
            .any(|c| c.auth_scheme == "digest" && c.user == "alice"),
        "{who:?}"
    );

    let stranger = t.another_client().await;
    assert_eq!(stranger.get_data("/private").await, Err(Error::NoAuth));
    assert_eq!(
        stranger.get_acl("/private").await,
        Err(Error::NoAuth),
        "getACL needs READ or ADMIN"
    );
    let alice = Client::builder(&t.connect_string())
        .auth("digest", b"alice:secret")
        .connect()
        .await
        .unwrap();
    assert_eq!(&alice.get_data("/private").await.unwrap().0[..], b"s3");
}

async fn whoami_names_the_connection_ip(target: Target) {
    let Some(t) = ctx(target, "whoami").await else {
        return;
    };
    let who = t.client.whoami().await.unwrap();
    assert!(
        who.iter()
            .any(|c| c.auth_scheme == "ip" && c.user == "127.0.0.1"),
        "{who:?}"
    );
}

async fn a_refused_auth_scheme_ends_the_client_in_auth_failed(target: Target) {
    let Some(t) = ctx(target, "auth-failed").await else {
        return;
    };
    let mut states = t.client.state_stream();
    assert_eq!(states.next().await, Some(SessionState::Connected));
    let (_, _, watch) = {
        t.client
            .create("/w", b"", &OPEN(), CreateMode::Persistent)
            .await
            .unwrap();
        t.client.get_data_and_watch("/w").await.unwrap()
    };
    assert_eq!(
        t.client.add_auth("no-such-scheme", b"x").await,
        Err(Error::AuthFailed)
    );
    assert_eq!(states.next().await, Some(SessionState::AuthFailed));
    assert_eq!(states.next().await, None);
    assert_eq!(next_event(watch).await.state, KeeperState::AuthFailed);
    assert_eq!(t.client.exists("/w").await, Err(Error::AuthFailed));
}

async fn sync_returns_the_client_path(target: Target) {
    let Some(t) = ctx(target, "sync").await else {
        return;
    };
    t.client
        .create("/s", b"", &OPEN(), CreateMode::Persistent)
        .await
        .unwrap();
    assert_eq!(t.client.sync("/s").await.unwrap(), "/s");
}

async fn multi_applies_every_op_or_none(target: Target) {
    let Some(t) = ctx(target, "multi").await else {
        return;
    };
    let ok = t
        .client
        .multi(&[
            Op::create("/m", b"1", &OPEN(), CreateMode::Persistent),
            Op::create("/m/c", b"", &OPEN(), CreateMode::Persistent),
            Op::set_data("/m", b"2", Some(0)),
            Op::check("/m", 1),
        ])
        .await
        .unwrap();
    assert_eq!(
        ok[0],
        OpResult::Create {
            path: "/m".into(),
            stat: None
        }
    );
    assert!(matches!(&ok[2], OpResult::SetData { stat } if stat.version == 1));
    assert_eq!(ok[3], OpResult::Check);

    let failing = [
        Op::create("/m2", b"", &OPEN(), CreateMode::Persistent),
        Op::check("/m", 7),
        Op::delete("/m/c", None),
    ];
    assert_eq!(t.client.multi(&failing).await, Err(Error::BadVersion));
    let results = t.client.multi_results(&failing).await.unwrap();
    assert_eq!(
        results,
        [
            OpResult::NotApplied,
            OpResult::Error(Error::BadVersion),
            OpResult::Error(Error::RuntimeInconsistency)
        ]
    );
    assert_eq!(
        t.client.exists("/m2").await.unwrap(),
        None,
        "nothing applied"
    );
    assert_eq!(t.client.multi(&[]).await.unwrap(), []);
    assert!(matches!(
        t.client.multi(&[Op::get_data("/m")]).await,
        Err(Error::BadArguments(_))
    ));
}

async fn multi_read_reports_each_read_on_its_own(target: Target) {
    let Some(t) = ctx(target, "multi-read").await else {
        return;
    };
    t.client
        .create("/r", b"v", &OPEN(), CreateMode::Persistent)
        .await
        .unwrap();
    t.client
        .create("/r/k", b"", &OPEN(), CreateMode::Persistent)
        .await
        .unwrap();
    let results = t
        .client
        .multi_read(&[
            Op::get_data("/r"),
            Op::get_children("/r"),
            Op::get_data("/missing"),
        ])
        .await
        .unwrap();
    assert!(matches!(&results[0], OpResult::GetData { data, .. } if &data[..] == b"v"));
    assert_eq!(
        results[1],
        OpResult::GetChildren {
            children: vec!["k".into()]
        }
    );
    assert_eq!(results[2], OpResult::Error(Error::NoNode));
}

async fn data_watch_fires_once_on_change(target: Target) {
    let Some(t) = ctx(target, "data-watch").await else {
        return;
    };
    t.client
        .create("/w", b"1", &OPEN(), CreateMode::Persistent)
        .await
        .unwrap();
    let (_, _, watch) = t.client.get_data_and_watch("/w").await.unwrap();
    let other = t.another_client().await;
    other.set_data("/w", b"2", None).await.unwrap();
    let event = next_event(watch).await;
    assert_eq!(event.event_type, EventType::NodeDataChanged);
    assert_eq!(event.path, "/w", "the chroot is stripped from event paths");
    assert_eq!(event.state, KeeperState::SyncConnected);
}

async fn exists_watch_fires_on_creation(target: Target) {
    let Some(t) = ctx(target, "exists-watch").await else {
        return;
    };
    let (stat, watch) = t.client.exists_and_watch("/later").await.unwrap();
    assert_eq!(stat, None);
    t.another_client()
        .await
        .create("/later", b"", &OPEN(), CreateMode::Persistent)
        .await
        .unwrap();
    assert_eq!(next_event(watch).await.event_type, EventType::NodeCreated);
}

async fn child_watch_fires_on_a_new_child_and_on_deletion(target: Target) {
    let Some(t) = ctx(target, "child-watch").await else {
        return;
    };
    t.client
        .create("/p", b"", &OPEN(), CreateMode::Persistent)
        .await
        .unwrap();
    let (children, watch) = t.client.get_children_and_watch("/p").await.unwrap();
    assert!(children.is_empty());
    t.client
        .create("/p/c", b"", &OPEN(), CreateMode::Persistent)
        .await
        .unwrap();
    assert_eq!(
        next_event(watch).await.event_type,
        EventType::NodeChildrenChanged
    );
    t.client.delete("/p/c", None).await.unwrap();
    let (_, _, watch) = t.client.get_children2_and_watch("/p").await.unwrap();
    t.client.delete("/p", None).await.unwrap();
    assert_eq!(next_event(watch).await.event_type, EventType::NodeDeleted);
}

async fn a_watch_event_arrives_before_the_result_of_a_later_read(target: Target) {
    let Some(t) = ctx(target, "ordering").await else {
        return;
    };
    t.client
        .create("/o", b"0", &OPEN(), CreateMode::Persistent)
        .await
        .unwrap();
    let writer = t.another_client().await;
    for round in 1..=20u32 {
        let (_, _, watch) = t.client.get_data_and_watch("/o").await.unwrap();
        writer
            .set_data("/o", round.to_string().as_bytes(), None)
            .await
            .unwrap();
        // After sync our server has applied the change, so it sent the event
        // before the read's reply; the client must hand it out first too.
        t.client.sync("/o").await.unwrap();
        let (data, _) = t.client.get_data("/o").await.unwrap();
        assert_eq!(&data[..], round.to_string().as_bytes());
        let event = watch
            .now_or_never()
            .expect("event completed before the read's reply");
        assert_eq!(event.event_type, EventType::NodeDataChanged);
    }
}

async fn persistent_watch_sees_every_change_in_order(target: Target) {
    let Some(t) = ctx(target, "persistent").await else {
        return;
    };
    t.client
        .create("/p", b"", &OPEN(), CreateMode::Persistent)
        .await
        .unwrap();
    let mut events = t
        .client
        .add_watch("/p", AddWatchMode::Persistent)
        .await
        .unwrap();
    let other = t.another_client().await;
    for i in 0..3 {
        other
            .set_data("/p", format!("{i}").as_bytes(), None)
            .await
            .unwrap();
    }
    other
        .create("/p/c", b"", &OPEN(), CreateMode::Persistent)
        .await
        .unwrap();
    other.delete("/p/c", None).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..5 {
        let event = tokio::time::timeout(EVENT_WAIT, events.next())
            .await
            .unwrap()
            .unwrap();
        seen.push(event.event_type);
    }
    assert_eq!(
        seen,
        [
            EventType::NodeDataChanged,
            EventType::NodeDataChanged,
            EventType::NodeDataChanged,
            EventType::NodeChildrenChanged,
            EventType::NodeChildrenChanged
        ]
    );
}

async fn recursive_watch_sees_the_whole_subtree(target: Target) {
    let Some(t) = ctx(target, "recursive").await else {
        return;
    };
    t.client
        .create("/r", b"", &OPEN(), CreateMode::Persistent)
        .await
        .unwrap();
    let mut events = t
        .client
        .add_watch("/r", AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    t.client
        .create("/r/a", b"", &OPEN(), CreateMode::Persistent)
        .await
        .unwrap();
    t.client
        .create("/r/a/b", b"", &OPEN(), CreateMode::Persistent)
        .await
        .unwrap();
    t.client.set_data("/r/a/b", b"x", None).await.unwrap();
    t.client.delete("/r/a/b", None).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..4 {
        let e = tokio::time::timeout(EVENT_WAIT, events.next())
            .await
            .unwrap()
            .unwrap();
        seen.push((e.event_type, e.path));
    }
    assert_eq!(
        seen,
        [
            (EventType::NodeCreated, "/r/a".to_string()),
            (EventType::NodeCreated, "/r/a/b".to_string()),
            (EventType::NodeDataChanged, "/r/a/b".to_string()),
            (EventType::NodeDeleted, "/r/a/b".to_string()),
        ]
    );
}

async fn removed_watches_tell_their_watchers(target: Target) {
    let Some(t) = ctx(target, "remove-watches").await else {
        return;
    };
    t.client
        .create("/rw", b"", &OPEN(), CreateMode::Persistent)
        .await
        .unwrap();
    let (_, watch) = t.client.get_children_and_watch("/rw").await.unwrap();
    t.client
        .check_watches("/rw", WatcherType::Children)
        .await
        .unwrap();
    t.client
        .remove_watches("/rw", WatcherType::Children)
        .await
        .unwrap();
    assert_eq!(
        next_event(watch).await.event_type,
        EventType::ChildWatchRemoved
    );
    assert_eq!(
        t.client.remove_watches("/rw", WatcherType::Children).await,
        Err(Error::NoWatcher)
    );
    assert_eq!(
        t.client.check_watches("/rw", WatcherType::Data).await,
        Err(Error::NoWatcher)
    );

    let mut persistent = t
        .client
        .add_watch("/rw", AddWatchMode::Persistent)
        .await
        .unwrap();
    t.client
        .remove_watches("/rw", WatcherType::Any)
        .await
        .unwrap();
    let last = tokio::time::timeout(EVENT_WAIT, persistent.next())
        .await
        .unwrap();
    assert_eq!(
        last.map(|e| e.event_type),
        Some(EventType::PersistentWatchRemoved)
    );
    assert_eq!(
        tokio::time::timeout(EVENT_WAIT, persistent.next())
            .await
            .unwrap(),
        None
    );
}

async fn the_chroot_is_invisible_inside_and_real_outside(target: Target) {
    let Some(t) = ctx(target, "chroot").await else {
        return;
    };
    t.client
        .create("/inside", b"", &OPEN(), CreateMode::Persistent)
        .await
        .unwrap();
    let outside = t.unrooted_client().await;
    let real = format!("{}/inside", t.root);
    assert!(outside.exists(&real).await.unwrap().is_some());
    let (_, _, watch) = t.client.get_data_and_watch("/").await.unwrap();
    outside.set_data(&t.root, b"root data", None).await.unwrap();
    assert_eq!(next_event(watch).await.path, "/");
    assert_eq!(&t.client.get_data("/").await.unwrap().0[..], b"root data");
    let seq = t
        .client
        .create("/s-", b"", &OPEN(), CreateMode::EphemeralSequential)
        .await
        .unwrap();
    assert!(seq.starts_with("/s-"), "{seq}");
    assert_eq!(t.client.get_ephemerals("/").await.unwrap(), vec![seq]);
}

async fn a_closed_client_fails_calls_and_ends_watches(target: Target) {
    let Some(t) = ctx(target, "closed").await else {
        return;
    };
    t.client
        .create("/c", b"", &OPEN(), CreateMode::Persistent)
        .await
        .unwrap();
    let (_, _, watch) = t.client.get_data_and_watch("/c").await.unwrap();
    let mut states = t.client.state_stream();
    t.client.close().await.unwrap();
    assert_eq!(next_event(watch).await.state, KeeperState::Closed);
    let seen: Vec<_> = states.by_ref().collect().await;
    assert_eq!(seen, [SessionState::Connected, SessionState::Closed]);
    assert_eq!(t.client.exists("/c").await, Err(Error::Closed));
    assert_eq!(t.client.clone().get_data("/c").await, Err(Error::Closed));
}

async fn a_session_is_resumed_with_its_id_and_password(target: Target) {
    let Some(t) = ctx(target, "resume").await else {
        return;
    };
    t.client
        .create("/mine", b"", &OPEN(), CreateMode::Ephemeral)
        .await
        .unwrap();
    let resumed = Client::builder(&t.connect_string())
        .session(t.client.session_id(), &t.client.session_password())
        .connect()
        .await
        .unwrap();
    assert_eq!(resumed.session_id(), t.client.session_id());
    assert_eq!(
        resumed.get_ephemerals("/").await.unwrap(),
        vec!["/mine".to_string()]
    );
    let wrong = Client::builder(&t.connect_string())
        .session(t.client.session_id(), &[7; 16])
        .connect()
        .await;
    assert_eq!(wrong.err(), Some(Error::SessionExpired));
}

async fn the_state_feed_starts_connected(target: Target) {
    let Some(t) = ctx(target, "states").await else {
        return;
    };
    assert_eq!(t.client.state(), SessionState::Connected);
    assert!(t.client.session_timeout() >= Duration::from_secs(4));
    let mut states = t.client.state_stream();
    assert_eq!(states.next().await, Some(SessionState::Connected));
}

target_tests!(
    create_returns_the_path_and_get_data_reads_it_back,
    create2_returns_the_stat_of_the_new_node,
    sequential_nodes_get_a_ten_digit_counter,
    ephemeral_nodes_are_listed_and_vanish_with_their_session,
    container_and_ttl_nodes_are_created_with_their_opcodes,
    create_reports_every_error_code,
    delete_checks_versions_and_emptiness,
    set_data_bumps_the_version_and_checks_it,
    null_data_reads_back_as_none_and_empty_data_as_empty,
    exists_and_get_data_report_missing_nodes,
    get_children_lists_names_and_the_parent_stat,
    acls_are_read_and_replaced_with_version_checks,
    digest_auth_grants_access_to_creator_only_nodes,
    whoami_names_the_connection_ip,
    a_refused_auth_scheme_ends_the_client_in_auth_failed,
    sync_returns_the_client_path,
    multi_applies_every_op_or_none,
    multi_read_reports_each_read_on_its_own,
    data_watch_fires_once_on_change,
    exists_watch_fires_on_creation,
    child_watch_fires_on_a_new_child_and_on_deletion,
    a_watch_event_arrives_before_the_result_of_a_later_read,
    persistent_watch_sees_every_change_in_order,
    recursive_watch_sees_the_whole_subtree,
    removed_watches_tell_their_watchers,
    the_chroot_is_invisible_inside_and_real_outside,
    a_closed_client_fails_calls_and_ends_watches,
    a_session_is_resumed_with_its_id_and_password,
    the_state_feed_starts_connected,
);
