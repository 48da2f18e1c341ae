//! The `Database` facade on reads, watches and snapshots (SEMANTICS.md §4,
//! §6, §13; ZAB.md §9.4).

use bytes::{Bytes, BytesMut};
use zk_proto::proto::{
    AddWatchRequest, CheckWatchesRequest, CreateRequest, DeleteRequest, ExistsRequest,
    GetAclRequest, GetAllChildrenNumberRequest, GetChildrenRequest, GetDataRequest,
    GetEphemeralsRequest, RemoveWatchesRequest, SetDataRequest, SetWatches, SetWatches2,
    WatcherEvent,
};
use zk_proto::{
    Acl, ErrorCode, EventType, Id, MultiOp, MultiRequest, MultiResult, Perms, Reader, Request,
    Response,
};
use zk_server::db::{ConnId, Database, DbConfig, RequestContext};

const S1: i64 = 0x100;
const S2: i64 = 0x200;

struct Harness {
    db: Database,
    zxid: i64,
}

impl Harness {
    fn new() -> Self {
        let mut db = Database::new(DbConfig::default());
        for (z, s) in [(1, S1), (2, S2)] {
            let e = db.prepare_create_session(s, 30_000, z, 1000);
            db.apply(&e);
        }
        Harness { db, zxid: 2 }
    }

    /// prepare + apply; the notifications it fired.
    fn write(&mut self, ctx: &RequestContext, request: Request) -> Vec<(ConnId, WatcherEvent)> {
        self.zxid += 1;
        let entry = self.db.prepare(ctx, &request, self.zxid, 1000 + self.zxid);
        let applied = self.db.apply(&entry);
        let (_, _, result) = applied.reply.expect("a reply");
        result.expect("write succeeds");
        applied.notifications
    }

    fn read(&mut self, ctx: &RequestContext, request: Request) -> Result<Response, ErrorCode> {
        self.db.read(ctx, &request).0
    }
}

fn ctx(session: i64) -> RequestContext {
    RequestContext {
        session_id: session,
        conn_id: session as u64,
        xid: 1,
        auth: vec![Id::new("ip", "127.0.0.1")],
    }
}

fn create(path: &str) -> Request {
    create_with(path, 0, Acl::open_unsafe())
}

fn create_with(path: &str, flags: i32, acl: Vec<Acl>) -> Request {
    Request::Create(CreateRequest {
        path: path.into(),
        data: Some(Bytes::from_static(b"x")),
        acl,
        flags,
    })
}

fn delete(path: &str) -> Request {
    Request::Delete(DeleteRequest {
        path: path.into(),
        version: -1,
    })
}

fn set_data(path: &str) -> Request {
    Request::SetData(SetDataRequest {
        path: path.into(),
        data: None,
        version: -1,
    })
}

fn exists(path: &str, watch: bool) -> Request {
    Request::Exists(ExistsRequest {
        path: path.into(),
        watch,
    })
}

fn get_data(path: &str, watch: bool) -> Request {
    Request::GetData(GetDataRequest {
        path: path.into(),
        watch,
    })
}

fn get_children(path: &str, watch: bool) -> Request {
    Request::GetChildren(GetChildrenRequest {
        path: path.into(),
        watch,
    })
}

fn add_watch(path: &str, mode: i32) -> Request {
    Request::AddWatch(AddWatchRequest {
        path: path.into(),
        mode,
    })
}

fn ev(conn: i64, t: EventType, path: &str) -> (ConnId, WatcherEvent) {
    (
        conn as ConnId,
        WatcherEvent {
            event_type: t.code(),
            state: 3,
            path: path.into(),
        },
    )
}

// ---- reads ----

#[test]
fn exists_on_a_missing_node_is_no_node_but_still_registers_a_watch() {
    let mut h = Harness::new();
    assert_eq!(h.read(&ctx(S2), exists("/a", true)), Err(ErrorCode::NoNode));
    let events = h.write(&ctx(S1), create("/a"));
    assert_eq!(events, [ev(S2, EventType::NodeCreated, "/a")]);
}

#[test]
fn exists_with_a_nul_is_bad_arguments() {
    let mut h = Harness::new();
    assert_eq!(
        h.read(&ctx(S1), exists("/a\0", false)),
        Err(ErrorCode::BadArguments)
    );
}

#[test]
fn reads_need_read_permission_and_register_no_watch_when_refused() {
    let mut h = Harness::new();
    h.write(
        &ctx(S1),
        create_with("/secret", 0, vec![Acl::new(Perms::WRITE, Id::anyone())]),
    );
    assert_eq!(
        h.read(&ctx(S2), get_data("/secret", true)),
        Err(ErrorCode::NoAuth)
    );
    assert_eq!(
        h.read(&ctx(S2), exists("/secret", true)),
        Err(ErrorCode::NoAuth)
    );
    assert_eq!(h.db.watches().watch_count(), 0);
}

#[test]
fn get_data_returns_null_data_as_null() {
    let mut h = Harness::new();
    h.write(&ctx(S1), create("/a"));
    h.write(&ctx(S1), set_data("/a"));
    match h.read(&ctx(S1), get_data("/a", false)) {
        Ok(Response::GetData(d)) => {
            assert_eq!(d.data, None);
            assert_eq!(d.stat.data_length, 0);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn get_children2_returns_names_and_the_stat() {
    let mut h = Harness::new();
    h.write(&ctx(S1), create("/p"));
    h.write(&ctx(S1), create("/p/b"));
    h.write(&ctx(S1), create("/p/a"));
    let req = Request::GetChildren2(GetChildrenRequest {
        path: "/p".into(),
        watch: false,
    });
    match h.read(&ctx(S1), req) {
        Ok(Response::GetChildren2(r)) => {
            assert_eq!(r.children, ["a", "b"]);
            assert_eq!(r.stat.num_children, 2);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn get_acl_masks_digests_for_callers_without_admin() {
    let mut h = Harness::new();
    let acl = vec![
        Acl::new(Perms::ALL, Id::new("digest", "alice:hash")),
        Acl::new(Perms::READ, Id::anyone()),
    ];
    h.write(&ctx(S1), create_with("/a", 0, acl.clone()));
    let get = || Request::GetAcl(GetAclRequest { path: "/a".into() });
    match h.read(&ctx(S2), get()) {
        Ok(Response::GetAcl(r)) => assert_eq!(r.acl[0].id.id, "alice:x"),
        other => panic!("{other:?}"),
    }
    let mut alice = ctx(S2);
    alice.auth.push(Id::new("digest", "alice:hash"));
    match h.read(&alice, get()) {
        Ok(Response::GetAcl(r)) => assert_eq!(r.acl, acl),
        other => panic!("{other:?}"),
    }
}

#[test]
fn get_ephemerals_filters_the_callers_own_by_string_prefix() {
    let mut h = Harness::new();
    h.write(&ctx(S1), create_with("/app1", 1, Acl::open_unsafe()));
    h.write(&ctx(S1), create_with("/app2", 1, Acl::open_unsafe()));
    h.write(&ctx(S2), create_with("/app3", 1, Acl::open_unsafe()));
    let get = |prefix: &str| {
        Request::GetEphemerals(GetEphemeralsRequest {
            prefix_path: prefix.into(),
        })
    };
    let list = |r: Result<Response, ErrorCode>| match r {
        Ok(Response::GetEphemerals(e)) => e.ephemerals,
        other => panic!("{other:?}"),
    };
    // In Apache's order: a clone of the session's HashSet, which a JDK 17
    // lists as [/app2, /app1].
    assert_eq!(list(h.read(&ctx(S1), get("/"))), ["/app2", "/app1"]);
    assert_eq!(list(h.read(&ctx(S1), get("/app2"))), ["/app2"]);
    assert_eq!(list(h.read(&ctx(S1), get("/ap"))), ["/app2", "/app1"]);
}

#[test]
fn get_all_children_number_counts_every_descendant() {
    let mut h = Harness::new();
    let count = |h: &mut Harness, p: &str| match h.read(
        &ctx(S1),
        Request::GetAllChildrenNumber(GetAllChildrenNumberRequest { path: p.into() }),
    ) {
        Ok(Response::GetAllChildrenNumber(r)) => r.total_number,
        other => panic!("{other:?}"),
    };
    assert_eq!(count(&mut h, "/"), 3);
    h.write(&ctx(S1), create("/a"));
    h.write(&ctx(S1), create("/a/b"));
    h.write(&ctx(S1), create("/a/b/c"));
    assert_eq!(count(&mut h, "/a"), 2);
    assert_eq!(count(&mut h, "/"), 6);
}

#[test]
fn multi_read_reports_each_op_and_sets_no_watch() {
    let mut h = Harness::new();
    h.write(&ctx(S1), create("/a"));
    let req = Request::MultiRead(MultiRequest {
        ops: vec![
            MultiOp::GetData(GetDataRequest {
                path: "/a".into(),
                watch: true,
            }),
            MultiOp::GetChildren(GetChildrenRequest {
                path: "/missing".into(),
                watch: true,
            }),
            MultiOp::GetChildren(GetChildrenRequest {
                path: "/".into(),
                watch: false,
            }),
        ],
    });
    let Ok(Response::Multi(resp)) = h.read(&ctx(S1), req) else {
        panic!("multiRead reply");
    };
    assert!(matches!(resp.results[0], MultiResult::GetData(_)));
    assert_eq!(
        resp.results[1],
        MultiResult::Error(ErrorCode::NoNode.code())
    );
    assert!(
        matches!(&resp.results[2], MultiResult::GetChildren(c) if c.children == ["a", "zookeeper"])
    );
    assert_eq!(h.db.watches().watch_count(), 0);
}

#[test]
fn who_am_i_lists_the_connection_identities() {
    let mut h = Harness::new();
    let mut c = ctx(S1);
    c.auth.push(Id::new("digest", "bob:hash"));
    match h.read(&c, Request::WhoAmI) {
        Ok(Response::WhoAmI(r)) => {
            let users: Vec<_> = r
                .client_info
                .iter()
                .map(|i| (i.auth_scheme.as_str(), i.user.as_str()))
                .collect();
            // Apache lists addAuth identities first, `ip` last.
            assert_eq!(users, [("digest", "bob"), ("ip", "127.0.0.1")]);
        }
        other => panic!("{other:?}"),
    }
}

// ---- watch triggers ----

#[test]
fn one_shot_data_watches_fire_once_per_connection() {
    let mut h = Harness::new();
    h.write(&ctx(S1), create("/a"));
    h.read(&ctx(S2), exists("/a", true)).unwrap();
    h.read(&ctx(S2), get_data("/a", true)).unwrap();
    assert_eq!(
        h.write(&ctx(S1), set_data("/a")),
        [ev(S2, EventType::NodeDataChanged, "/a")]
    );
    assert!(h.write(&ctx(S1), set_data("/a")).is_empty());
}

#[test]
fn child_watches_fire_node_children_changed_on_the_parent() {
    let mut h = Harness::new();
    h.read(&ctx(S2), get_children("/", true)).unwrap();
    assert_eq!(
        h.write(&ctx(S1), create("/a")),
        [ev(S2, EventType::NodeChildrenChanged, "/")]
    );
}

#[test]
fn delete_notifies_a_connection_with_data_and_child_watches_once() {
    let mut h = Harness::new();
    h.write(&ctx(S1), create("/a"));
    h.read(&ctx(S2), get_data("/a", true)).unwrap();
    h.read(&ctx(S2), get_children("/a", true)).unwrap();
    h.read(&ctx(S2), get_children("/", true)).unwrap();
    assert_eq!(
        h.write(&ctx(S1), delete("/a")),
        [
            ev(S2, EventType::NodeDeleted, "/a"),
            ev(S2, EventType::NodeChildrenChanged, "/")
        ]
    );
    assert_eq!(h.db.watches().watch_count(), 0);
}

#[test]
fn recursive_and_child_watches_deliver_the_observed_sequence() {
    let mut h = Harness::new();
    h.write(&ctx(S1), create("/r"));
    h.read(&ctx(S2), add_watch("/r", 1)).unwrap();
    h.read(&ctx(S2), get_children("/r", true)).unwrap();
    let mut events = Vec::new();
    events.extend(h.write(&ctx(S1), create("/r/a")));
    events.extend(h.write(&ctx(S1), create("/r/a/b")));
    events.extend(h.write(&ctx(S1), set_data("/r/a")));
    events.extend(h.write(&ctx(S1), delete("/r/a/b")));
    assert_eq!(
        events,
        [
            ev(S2, EventType::NodeCreated, "/r/a"),
            ev(S2, EventType::NodeChildrenChanged, "/r"),
            ev(S2, EventType::NodeCreated, "/r/a/b"),
            ev(S2, EventType::NodeDataChanged, "/r/a"),
            ev(S2, EventType::NodeDeleted, "/r/a/b"),
        ]
    );
}

#[test]
fn persistent_watches_see_data_and_child_events_until_removed() {
    let mut h = Harness::new();
    h.write(&ctx(S1), create("/p"));
    assert_eq!(
        h.read(&ctx(S2), add_watch("/p", 0)),
        Ok(Response::AddWatch(zk_proto::proto::ErrorResponse {
            err: 0
        }))
    );
    assert_eq!(
        h.write(&ctx(S1), create("/p/x")),
        [ev(S2, EventType::NodeChildrenChanged, "/p")]
    );
    assert_eq!(
        h.write(&ctx(S1), set_data("/p")),
        [ev(S2, EventType::NodeDataChanged, "/p")]
    );
    assert_eq!(
        h.write(&ctx(S1), set_data("/p")),
        [ev(S2, EventType::NodeDataChanged, "/p")]
    );
    let remove = Request::RemoveWatches(RemoveWatchesRequest {
        path: "/p".into(),
        watcher_type: 4,
    });
    assert_eq!(h.read(&ctx(S2), remove.clone()), Ok(Response::Empty));
    assert_eq!(h.read(&ctx(S2), remove), Err(ErrorCode::NoWatcher));
    assert!(h.write(&ctx(S1), set_data("/p")).is_empty());
}

#[test]
fn check_watches_tests_presence_without_removing() {
    let mut h = Harness::new();
    h.read(&ctx(S2), exists("/a", true)).unwrap_err();
    let check = |t| {
        Request::CheckWatches(CheckWatchesRequest {
            path: "/a".into(),
            watcher_type: t,
        })
    };
    assert_eq!(h.read(&ctx(S2), check(2)), Ok(Response::Empty));
    assert_eq!(h.read(&ctx(S2), check(1)), Err(ErrorCode::NoWatcher));
    assert_eq!(h.read(&ctx(S2), check(3)), Ok(Response::Empty));
    assert_eq!(h.db.watches().watch_count(), 1);
}

#[test]
fn events_skip_watchers_without_read_permission() {
    let mut h = Harness::new();
    h.write(&ctx(S1), create("/a"));
    h.read(&ctx(S2), get_data("/a", true)).unwrap();
    let admin_only = zk_proto::proto::SetAclRequest {
        path: "/a".into(),
        acl: vec![Acl::new(Perms::ALL, Id::new("ip", "10.0.0.1"))],
        version: -1,
    };
    h.write(&ctx(S1), Request::SetAcl(admin_only));
    let mut insider = ctx(S1);
    insider.auth = vec![Id::new("ip", "10.0.0.1")];
    assert!(
        h.write(&insider, set_data("/a")).is_empty(),
        "S2 may no longer read /a"
    );
    assert_eq!(
        h.db.watches().watch_count(),
        0,
        "the watch is consumed anyway"
    );
}

#[test]
fn closing_a_session_fires_delete_watches_for_its_ephemerals() {
    let mut h = Harness::new();
    h.write(&ctx(S1), create_with("/e", 1, Acl::open_unsafe()));
    h.read(&ctx(S2), exists("/e", true)).unwrap();
    let entry = h.db.prepare_close_session(S1, 100, 2000);
    let applied = h.db.apply(&entry);
    assert_eq!(
        applied.notifications,
        [ev(S2, EventType::NodeDeleted, "/e")]
    );
}

#[test]
fn a_closed_connection_loses_its_watches() {
    let mut h = Harness::new();
    h.read(&ctx(S2), get_children("/", true)).unwrap();
    h.db.remove_watches_of(S2 as ConnId);
    assert!(h.write(&ctx(S1), create("/a")).is_empty());
}

// ---- setWatches / setWatches2 ----

#[test]
fn set_watches_fires_for_changes_after_relative_zxid_and_registers_the_rest() {
    let mut h = Harness::new();
    h.write(&ctx(S1), create("/old"));
    h.write(&ctx(S1), create("/changed"));
    let relative = h.zxid;
    h.write(&ctx(S1), set_data("/changed"));
    h.write(&ctx(S1), create("/changed/kid"));
    let req = Request::SetWatches(SetWatches {
        relative_zxid: relative,
        data_watches: vec!["/old".into(), "/changed".into(), "/gone".into()],
        exist_watches: vec!["/old".into(), "/nothere".into()],
        child_watches: vec!["/old".into(), "/changed".into(), "/gone".into()],
    });
    let (result, events) = h.db.read(&ctx(S2), &req);
    assert_eq!(result, Ok(Response::Empty));
    assert_eq!(
        events,
        [
            ev(S2, EventType::NodeDataChanged, "/changed"),
            ev(S2, EventType::NodeDeleted, "/gone"),
            ev(S2, EventType::NodeCreated, "/old"),
            ev(S2, EventType::NodeChildrenChanged, "/changed"),
            ev(S2, EventType::NodeDeleted, "/gone"),
        ]
    );
    // Registered: data + child on /old, exist on /nothere.
    assert_eq!(
        h.write(&ctx(S1), create("/nothere")),
        [ev(S2, EventType::NodeCreated, "/nothere")]
    );
    assert_eq!(
        h.write(&ctx(S1), create("/old/x")),
        [ev(S2, EventType::NodeChildrenChanged, "/old")]
    );
    assert_eq!(
        h.write(&ctx(S1), set_data("/old")),
        [ev(S2, EventType::NodeDataChanged, "/old")]
    );
}

#[test]
fn set_watches2_reregisters_persistent_and_recursive_watches() {
    let mut h = Harness::new();
    let req = Request::SetWatches2(SetWatches2 {
        relative_zxid: h.zxid,
        persistent_watches: vec!["/p".into()],
        persistent_recursive_watches: vec!["/r".into()],
        ..SetWatches2::default()
    });
    let (result, events) = h.db.read(&ctx(S2), &req);
    assert_eq!((result, events.len()), (Ok(Response::Empty), 0));
    assert_eq!(
        h.write(&ctx(S1), create("/p")),
        [ev(S2, EventType::NodeCreated, "/p")]
    );
    h.write(&ctx(S1), create("/r"));
    assert_eq!(
        h.write(&ctx(S1), create("/r/deep")),
        [ev(S2, EventType::NodeCreated, "/r/deep")]
    );
}

// ---- snapshots ----

#[test]
fn a_snapshot_round_trips_nodes_acls_sessions_and_indexes() {
    let mut h = Harness::new();
    h.write(&ctx(S1), create("/a"));
    h.write(&ctx(S1), create_with("/a/e", 1, Acl::open_unsafe()));
    h.write(&ctx(S1), create_with("/ro", 0, Acl::read_unsafe()));
    h.write(&ctx(S1), create_with("/ro2", 0, Acl::read_unsafe()));
    h.write(
        &ctx(S1),
        Request::CreateContainer(CreateRequest {
            path: "/c".into(),
            data: None,
            acl: Acl::open_unsafe(),
            flags: 4,
        }),
    );
    let mut body = BytesMut::new();
    h.db.serialize_snapshot(&mut body);
    let restored = Database::deserialize_snapshot(
        DbConfig::default(),
        &mut Reader::new(body.clone().freeze()),
        h.zxid,
    )
    .unwrap();
    assert_eq!(restored.last_processed_zxid(), h.zxid);
    assert_eq!(
        restored.sessions().collect::<Vec<_>>(),
        h.db.sessions().collect::<Vec<_>>()
    );
    for path in [
        "/",
        "/a",
        "/a/e",
        "/ro",
        "/c",
        "/zookeeper",
        "/zookeeper/config",
    ] {
        let (a, b) = (
            h.db.tree().get(path).unwrap(),
            restored.tree().get(path).unwrap(),
        );
        assert_eq!(a, b, "{path}");
    }
    assert_eq!(restored.ephemerals_of(S1), ["/a/e"]);
    assert_eq!(restored.tree().containers().collect::<Vec<_>>(), ["/c"]);
    assert_eq!(restored.stats().node_count, h.db.stats().node_count);
    assert_eq!(
        restored.stats().approximate_data_size,
        h.db.stats().approximate_data_size
    );
    let mut again = BytesMut::new();
    restored.serialize_snapshot(&mut again);
    assert_eq!(again, body, "serialization is deterministic");
}

#[test]
fn a_snapshot_lists_sessions_then_the_acl_cache_then_nodes_from_the_root() {
    let db = Database::new(DbConfig::default());
    let mut body = BytesMut::new();
    db.serialize_snapshot(&mut body);
    let mut r = Reader::new(body.freeze());
    assert_eq!(r.read_i32().unwrap(), 0, "no sessions");
    assert_eq!(
        r.read_i32().unwrap(),
        1,
        "one cached ACL: READ_ACL_UNSAFE of /zookeeper/config"
    );
    assert_eq!(r.read_i64().unwrap(), 1);
    let acl: Vec<Acl> = zk_proto::Jute::decode(&mut r).unwrap();
    assert_eq!(acl, Acl::read_unsafe());
    let mut paths = Vec::new();
    loop {
        let path: String = zk_proto::Jute::decode(&mut r).unwrap();
        if path == "/" {
            break;
        }
        let node: zk_proto::disk::DataNode = zk_proto::Jute::decode(&mut r).unwrap();
        if path.is_empty() || path == "/zookeeper" {
            assert_eq!(node.acl_ref, -1, "OPEN_ACL_UNSAFE is -1");
        }
        paths.push(path);
    }
    assert_eq!(
        paths,
        ["", "/zookeeper", "/zookeeper/config", "/zookeeper/quota"]
    );
    assert!(r.is_empty());
}

#[test]
fn a_snapshot_with_an_unknown_acl_reference_is_rejected() {
    let mut body = BytesMut::new();
    body.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]); // no sessions, empty cache
    zk_proto::Jute::encode(&String::new(), &mut body);
    zk_proto::Jute::encode(
        &zk_proto::disk::DataNode {
            data: None,
            acl_ref: 7,
            stat: Default::default(),
        },
        &mut body,
    );
    zk_proto::Jute::encode(&"/".to_string(), &mut body);
    let result =
        Database::deserialize_snapshot(DbConfig::default(), &mut Reader::new(body.freeze()), 0);
    assert!(result.is_err());
}

#[test]
fn a_snapshot_node_before_its_parent_is_rejected() {
    let mut body = BytesMut::new();
    body.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
    for path in ["", "/a/b"] {
        zk_proto::Jute::encode(&path.to_string(), &mut body);
        zk_proto::Jute::encode(
            &zk_proto::disk::DataNode {
                data: None,
                acl_ref: -1,
                stat: Default::default(),
            },
            &mut body,
        );
    }
    zk_proto::Jute::encode(&"/".to_string(), &mut body);
    let result =
        Database::deserialize_snapshot(DbConfig::default(), &mut Reader::new(body.freeze()), 0);
    assert!(result.is_err());
}

#[test]
fn quota_stats_are_rebuilt_after_loading_a_snapshot() {
    let mut h = Harness::new();
    h.write(&ctx(S1), create("/q"));
    h.write(&ctx(S1), create("/q/a"));
    h.write(&ctx(S1), create("/zookeeper/quota/q"));
    h.write(&ctx(S1), create("/zookeeper/quota/q/zookeeper_limits"));
    h.write(&ctx(S1), create("/zookeeper/quota/q/zookeeper_stats"));
    let mut body = BytesMut::new();
    h.db.serialize_snapshot(&mut body);
    let mut restored = Database::deserialize_snapshot(
        DbConfig::default(),
        &mut Reader::new(body.freeze()),
        h.zxid,
    )
    .unwrap();
    let e = restored.prepare(&ctx(S1), &create("/q/b"), h.zxid + 1, 5000);
    restored.apply(&e);
    let stats = restored
        .tree()
        .get("/zookeeper/quota/q/zookeeper_stats")
        .unwrap();
    assert_eq!(stats.data.as_deref(), Some(&b"count=3,bytes=3"[..]));
}
