//! The `Database` facade on writes: prepare → apply, as the pipeline
//! drives it. Error codes and their order follow Apache's
//! PrepRequestProcessor (SEMANTICS.md §2, §3, §7).

use bytes::Bytes;
use zk_proto::proto::{
    CheckVersionRequest, CreateRequest, CreateTtlRequest, DeleteContainerRequest, DeleteRequest,
    SetAclRequest, SetDataRequest,
};
use zk_proto::{
    Acl, ErrorCode, Id, MultiOp, MultiRequest, MultiResult, OpCode, Perms, Request, Response, Stat,
    Txn,
};
use zk_server::db::{Applied, Database, DbConfig, RequestContext};

const S1: i64 = 0x100;
const S2: i64 = 0x200;

struct Harness {
    db: Database,
    zxid: i64,
    now: i64,
}

impl Harness {
    fn new() -> Self {
        Self::with(DbConfig::default())
    }

    fn with(config: DbConfig) -> Self {
        let mut h = Harness {
            db: Database::new(config),
            zxid: 0,
            now: 1_000_000,
        };
        h.open_session(S1);
        h.open_session(S2);
        h
    }

    fn next(&mut self) -> (i64, i64) {
        self.zxid += 1;
        self.now += 10;
        (self.zxid, self.now)
    }

    fn open_session(&mut self, id: i64) {
        let (zxid, now) = self.next();
        let entry = self.db.prepare_create_session(id, 30_000, zxid, now);
        let applied = self.db.apply(&entry);
        assert_eq!(applied.session_created, Some((id, 30_000)));
    }

    /// prepare + apply; the reply's result.
    fn write(&mut self, ctx: &RequestContext, request: Request) -> Result<Response, ErrorCode> {
        self.write_applied(ctx, request).reply.expect("a reply").2
    }

    fn write_applied(&mut self, ctx: &RequestContext, request: Request) -> Applied {
        let (zxid, now) = self.next();
        let entry = self.db.prepare(ctx, &request, zxid, now);
        self.db.apply(&entry)
    }

    fn stat(&self, path: &str) -> Stat {
        self.db.tree().stat(path).expect("node exists")
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

fn create_req(path: &str, flags: i32) -> CreateRequest {
    CreateRequest {
        path: path.into(),
        data: Some(Bytes::from_static(b"x")),
        acl: Acl::open_unsafe(),
        flags,
    }
}

fn create(path: &str) -> Request {
    Request::Create(create_req(path, 0))
}

fn create_mode(path: &str, flags: i32) -> Request {
    Request::Create(create_req(path, flags))
}

fn create_acl(path: &str, acl: Vec<Acl>) -> Request {
    Request::Create(CreateRequest {
        acl,
        ..create_req(path, 0)
    })
}

fn created_path(result: Result<Response, ErrorCode>) -> String {
    match result {
        Ok(Response::Create(r)) => r.path,
        Ok(Response::Create2(r)) => r.path,
        other => panic!("expected a create reply, got {other:?}"),
    }
}

fn delete(path: &str, version: i32) -> Request {
    Request::Delete(DeleteRequest {
        path: path.into(),
        version,
    })
}

fn set_data(path: &str, data: &'static [u8], version: i32) -> Request {
    Request::SetData(SetDataRequest {
        path: path.into(),
        data: Some(Bytes::from_static(data)),
        version,
    })
}

fn only(perms: Perms) -> Vec<Acl> {
    vec![Acl::new(perms, Id::anyone())]
}

// ---- create ----

#[test]
fn create_replies_path_and_create2_replies_path_and_stat() {
    let mut h = Harness::new();
    assert_eq!(
        h.write(&ctx(S1), create("/a")),
        Ok(Response::Create(zk_proto::proto::CreateResponse {
            path: "/a".into()
        }))
    );
    match h.write(&ctx(S1), Request::Create2(create_req("/b", 0))) {
        Ok(Response::Create2(r)) => {
            assert_eq!(r.path, "/b");
            assert_eq!(r.stat, h.stat("/b"));
            assert_eq!(r.stat.czxid, h.zxid);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn failed_writes_still_take_a_zxid() {
    let mut h = Harness::new();
    let applied = h.write_applied(&ctx(S1), create("/missing/x"));
    assert_eq!(applied.zxid, h.zxid);
    assert_eq!(h.db.last_processed_zxid(), h.zxid);
    assert_eq!(applied.reply.unwrap().2, Err(ErrorCode::NoNode));
}

#[test]
fn error_txns_are_logged_with_the_error_type() {
    let mut h = Harness::new();
    let entry = h.db.prepare(&ctx(S1), &create("/missing/x"), 50, 1);
    assert_eq!(entry.header.txn_type, OpCode::Error.code());
    assert_eq!(entry.header.client_id, S1);
    assert!(matches!(entry.txn, Txn::Error(ref e) if e.err == ErrorCode::NoNode.code()));
}

#[test]
fn unknown_flags_are_bad_arguments_before_anything_else() {
    let mut h = Harness::new();
    assert_eq!(
        h.write(&ctx(0x999), create_mode("nopath", 9)),
        Err(ErrorCode::BadArguments)
    );
}

#[test]
fn ttl_modes_are_unimplemented_without_extended_types() {
    let mut h = Harness::new();
    let req = Request::CreateTtl(CreateTtlRequest {
        path: "/t".into(),
        data: None,
        acl: Acl::open_unsafe(),
        flags: 5,
        ttl: 100,
    });
    assert_eq!(h.write(&ctx(S1), req), Err(ErrorCode::Unimplemented));
}

#[test]
fn ttl_modes_need_create_ttl_and_a_valid_ttl() {
    let mut h = Harness::with(DbConfig {
        extended_types_enabled: true,
        ..DbConfig::default()
    });
    let ttl = |flags: i32, ttl: i64| {
        Request::CreateTtl(CreateTtlRequest {
            path: "/t".into(),
            data: None,
            acl: Acl::open_unsafe(),
            flags,
            ttl,
        })
    };
    assert_eq!(h.write(&ctx(S1), ttl(5, 0)), Err(ErrorCode::BadArguments));
    assert_eq!(
        h.write(&ctx(S1), ttl(5, 1 << 40)),
        Err(ErrorCode::BadArguments)
    );
    assert_eq!(h.write(&ctx(S1), ttl(0, 100)), Err(ErrorCode::BadArguments));
    assert_eq!(
        h.write(&ctx(S1), create_mode("/t", 5)),
        Err(ErrorCode::BadArguments)
    );
    let path = created_path(h.write(&ctx(S1), ttl(5, 100)));
    assert_eq!(path, "/t");
    assert_eq!(
        h.stat("/t").ephemeral_owner,
        0,
        "TTL owner marker is hidden"
    );
}

#[test]
fn unknown_sessions_are_expired() {
    let mut h = Harness::new();
    assert_eq!(
        h.write(&ctx(0x999), create("/a")),
        Err(ErrorCode::SessionExpired)
    );
}

#[test]
fn a_path_without_slash_is_bad_arguments() {
    let mut h = Harness::new();
    assert_eq!(
        h.write(&ctx(S1), create("abc")),
        Err(ErrorCode::BadArguments)
    );
}

#[test]
fn invalid_acl_comes_before_a_missing_parent() {
    let mut h = Harness::new();
    assert_eq!(
        h.write(&ctx(S1), create_acl("/missing/x", vec![])),
        Err(ErrorCode::InvalidAcl)
    );
    assert_eq!(
        h.write(&ctx(S1), create_acl("/a", Acl::creator_all())),
        Err(ErrorCode::InvalidAcl),
        "auth ACL without an authenticated identity"
    );
}

#[test]
fn an_invalid_path_under_a_missing_parent_is_no_node() {
    let mut h = Harness::new();
    assert_eq!(h.write(&ctx(S1), create("/inv//x")), Err(ErrorCode::NoNode));
}

#[test]
fn an_invalid_path_under_an_existing_parent_is_bad_arguments() {
    let mut h = Harness::new();
    h.write(&ctx(S1), create("/a")).unwrap();
    assert_eq!(
        h.write(&ctx(S1), create("/a/")),
        Err(ErrorCode::BadArguments)
    );
    assert_eq!(
        h.write(&ctx(S1), create("/a/.")),
        Err(ErrorCode::BadArguments)
    );
}

#[test]
fn create_needs_create_permission_on_the_parent() {
    let mut h = Harness::new();
    h.write(&ctx(S1), create_acl("/ro", only(Perms::READ)))
        .unwrap();
    assert_eq!(h.write(&ctx(S1), create("/ro/x")), Err(ErrorCode::NoAuth));
    // NoAuth precedes NodeExists and path validation.
    assert_eq!(h.write(&ctx(S1), create("/ro/")), Err(ErrorCode::NoAuth));
}

#[test]
fn existing_nodes_are_node_exists() {
    let mut h = Harness::new();
    h.write(&ctx(S1), create("/a")).unwrap();
    assert_eq!(h.write(&ctx(S1), create("/a")), Err(ErrorCode::NodeExists));
    assert_eq!(h.write(&ctx(S1), create("/")), Err(ErrorCode::NodeExists));
}

#[test]
fn ephemerals_cannot_have_children_but_containers_can() {
    let mut h = Harness::new();
    h.write(&ctx(S1), create_mode("/e", 1)).unwrap();
    assert_eq!(
        h.write(&ctx(S1), create("/e/x")),
        Err(ErrorCode::NoChildrenForEphemerals)
    );
    h.write(&ctx(S1), Request::CreateContainer(create_req("/c", 4)))
        .unwrap();
    h.write(&ctx(S1), create("/c/x")).unwrap();
}

#[test]
fn ephemeral_stat_shows_the_owner_and_container_stat_hides_it() {
    let mut h = Harness::new();
    h.write(&ctx(S1), create_mode("/e", 1)).unwrap();
    assert_eq!(h.stat("/e").ephemeral_owner, S1);
    h.write(&ctx(S1), Request::CreateContainer(create_req("/c", 4)))
        .unwrap();
    assert_eq!(h.stat("/c").ephemeral_owner, 0);
    assert_eq!(h.db.ephemerals_of(S1), ["/e"]);
}

#[test]
fn create_with_container_flags_but_create_opcode_is_persistent() {
    let mut h = Harness::new();
    h.write(&ctx(S1), create_mode("/p", 4)).unwrap();
    assert_eq!(h.db.tree().containers().count(), 0);
}

#[test]
fn hard_quota_rejects_creates_only_when_enforced() {
    for enforce in [false, true] {
        let mut h = Harness::with(DbConfig {
            enforce_quota: enforce,
            ..DbConfig::default()
        });
        h.write(&ctx(S1), create("/q")).unwrap();
        h.write(&ctx(S1), create("/zookeeper/quota/q")).unwrap();
        h.write(
            &ctx(S1),
            Request::Create(CreateRequest {
                data: Some(Bytes::from_static(b"count=-1,bytes=-1=;countHardLimit=1")),
                ..create_req("/zookeeper/quota/q/zookeeper_limits", 0)
            }),
        )
        .unwrap();
        h.write(&ctx(S1), create("/zookeeper/quota/q/zookeeper_stats"))
            .unwrap();
        let result = h.write(&ctx(S1), create("/q/x"));
        if enforce {
            assert_eq!(result, Err(ErrorCode::QuotaExceeded));
        } else {
            assert!(result.is_ok());
        }
    }
}

// ---- sequential names ----

#[test]
fn sequential_names_count_every_child_ever_created() {
    let mut h = Harness::new();
    h.write(&ctx(S1), create("/q")).unwrap();
    assert_eq!(
        created_path(h.write(&ctx(S1), create_mode("/q/n-", 2))),
        "/q/n-0000000000"
    );
    h.write(&ctx(S1), create("/q/plain")).unwrap();
    h.write(&ctx(S1), delete("/q/plain", -1)).unwrap();
    assert_eq!(
        h.write(&ctx(S1), create("/q/n-0000000002")),
        Ok(Response::Create(zk_proto::proto::CreateResponse {
            path: "/q/n-0000000002".into()
        }))
    );
    assert_eq!(
        created_path(h.write(&ctx(S1), create_mode("/q/", 3))),
        "/q/0000000003"
    );
}

#[test]
fn failed_creates_do_not_advance_the_sequence() {
    let mut h = Harness::new();
    h.write(&ctx(S1), create("/q")).unwrap();
    h.write(&ctx(S1), create("/q/a")).unwrap();
    assert!(h.write(&ctx(S1), create("/q/a")).is_err());
    assert_eq!(
        created_path(h.write(&ctx(S1), create_mode("/q/s", 2))),
        "/q/s0000000001"
    );
}

// ---- prepared-but-unapplied txns see each other ----

#[test]
fn back_to_back_prepares_see_each_other() {
    let mut h = Harness::new();
    let a = h.db.prepare(&ctx(S1), &create("/a"), 10, 1);
    let b = h.db.prepare(&ctx(S1), &create("/a/b"), 11, 1);
    let dup = h.db.prepare(&ctx(S1), &create("/a"), 12, 1);
    let s1 = h.db.prepare(&ctx(S1), &create_mode("/a/s", 2), 13, 1);
    let s2 = h.db.prepare(&ctx(S1), &create_mode("/a/s", 2), 14, 1);
    assert!(matches!(b.txn, Txn::Create(_)), "{b:?}");
    assert!(matches!(dup.txn, Txn::Error(ref e) if e.err == ErrorCode::NodeExists.code()));
    let name = |e: &zk_proto::TxnEntry| match &e.txn {
        Txn::Create(c) => c.path.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(name(&s1), "/a/s0000000001");
    assert_eq!(name(&s2), "/a/s0000000002");
    for entry in [a, b, dup, s1, s2] {
        h.db.apply(&entry);
    }
    assert_eq!(h.db.outstanding_changes(), 0);
    assert_eq!(h.stat("/a").num_children, 3);
    assert_eq!(h.db.tree().get("/a").unwrap().stat.cversion, 3);
}

#[test]
fn a_pending_delete_hides_the_node_from_later_prepares() {
    let mut h = Harness::new();
    h.write(&ctx(S1), create("/a")).unwrap();
    let _del = h.db.prepare(&ctx(S1), &delete("/a", -1), 20, 1);
    let set = h.db.prepare(&ctx(S1), &set_data("/a", b"y", -1), 21, 1);
    assert!(matches!(set.txn, Txn::Error(ref e) if e.err == ErrorCode::NoNode.code()));
}

#[test]
fn pending_versions_advance_for_conditional_writes() {
    let mut h = Harness::new();
    h.write(&ctx(S1), create("/a")).unwrap();
    let first = h.db.prepare(&ctx(S1), &set_data("/a", b"1", 0), 20, 1);
    let second = h.db.prepare(&ctx(S1), &set_data("/a", b"2", 1), 21, 1);
    assert!(matches!(first.txn, Txn::SetData(ref t) if t.version == 1));
    assert!(matches!(second.txn, Txn::SetData(ref t) if t.version == 2));
}

// ---- delete ----

#[test]
fn reserved_nodes_cannot_be_deleted() {
    let mut h = Harness::new();
    for p in ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"] {
        assert_eq!(
            h.write(&ctx(S1), delete(p, -1)),
            Err(ErrorCode::BadArguments),
            "{p}"
        );
    }
}

#[test]
fn delete_checks_the_parent_acl_before_the_node_exists() {
    let mut h = Harness::new();
    h.write(
        &ctx(S1),
        create_acl("/nd", only(Perms::READ | Perms::CREATE)),
    )
    .unwrap();
    assert_eq!(
        h.write(&ctx(S1), delete("/nd/missing", -1)),
        Err(ErrorCode::NoAuth)
    );
    assert_eq!(
        h.write(&ctx(S1), delete("/missing/x", -1)),
        Err(ErrorCode::NoNode)
    );
}

#[test]
fn delete_checks_version_then_children() {
    let mut h = Harness::new();
    h.write(&ctx(S1), create("/a")).unwrap();
    h.write(&ctx(S1), create("/a/b")).unwrap();
    assert_eq!(
        h.write(&ctx(S1), delete("/a", 5)),
        Err(ErrorCode::BadVersion)
    );
    assert_eq!(h.write(&ctx(S1), delete("/a", 0)), Err(ErrorCode::NotEmpty));
    assert_eq!(h.write(&ctx(S1), delete("/a/b", 0)), Ok(Response::Empty));
}

#[test]
fn delete_moves_the_parent_pzxid_and_visible_cversion() {
    let mut h = Harness::new();
    h.write(&ctx(S1), create("/t")).unwrap();
    h.write(&ctx(S1), create("/t/a")).unwrap();
    h.write(&ctx(S1), create("/t/b")).unwrap();
    h.write(&ctx(S1), delete("/t/a", -1)).unwrap();
    let s = h.stat("/t");
    assert_eq!((s.cversion, s.num_children, s.pzxid), (3, 1, h.zxid));
}

// ---- setData, setACL, check ----

#[test]
fn set_data_changes_version_mzxid_mtime_and_returns_the_new_stat() {
    let mut h = Harness::new();
    h.write(&ctx(S1), create("/a")).unwrap();
    let created = h.stat("/a");
    let Ok(Response::Stat(stat)) = h.write(&ctx(S1), set_data("/a", b"hello", 0)) else {
        panic!("setData reply");
    };
    assert_eq!(stat.version, 1);
    assert_eq!(stat.mzxid, h.zxid);
    assert_eq!(stat.mtime, h.now);
    assert_eq!(stat.czxid, created.czxid);
    assert_eq!(stat.data_length, 5);
    assert_eq!(
        h.write(&ctx(S1), set_data("/a", b"x", 0)),
        Err(ErrorCode::BadVersion)
    );
}

#[test]
fn set_data_errors_come_in_apache_order() {
    let mut h = Harness::new();
    assert_eq!(
        h.write(&ctx(S1), set_data("/a/", b"", -1)),
        Err(ErrorCode::BadArguments)
    );
    assert_eq!(
        h.write(&ctx(S1), set_data("/a", b"", -1)),
        Err(ErrorCode::NoNode)
    );
    h.write(&ctx(S1), create_acl("/ro", only(Perms::READ)))
        .unwrap();
    assert_eq!(
        h.write(&ctx(S1), set_data("/ro", b"", 7)),
        Err(ErrorCode::NoAuth)
    );
}

#[test]
fn set_acl_changes_only_acl_and_aversion() {
    let mut h = Harness::new();
    h.write(&ctx(S1), create("/a")).unwrap();
    let before = h.stat("/a");
    let req = |version| {
        Request::SetAcl(SetAclRequest {
            path: "/a".into(),
            acl: only(Perms::READ | Perms::ADMIN),
            version,
        })
    };
    assert_eq!(h.write(&ctx(S1), req(3)), Err(ErrorCode::BadVersion));
    let Ok(Response::Stat(after)) = h.write(&ctx(S1), req(0)) else {
        panic!("setACL reply");
    };
    assert_eq!(
        after,
        Stat {
            aversion: 1,
            ..before
        }
    );
    assert_eq!(
        h.db.tree().get("/a").unwrap().acl,
        only(Perms::READ | Perms::ADMIN)
    );
}

#[test]
fn set_acl_needs_admin() {
    let mut h = Harness::new();
    h.write(
        &ctx(S1),
        create_acl("/a", only(Perms(Perms::ALL.0 & !Perms::ADMIN.0))),
    )
    .unwrap();
    let req = Request::SetAcl(SetAclRequest {
        path: "/a".into(),
        acl: Acl::open_unsafe(),
        version: -1,
    });
    assert_eq!(h.write(&ctx(S1), req), Err(ErrorCode::NoAuth));
}

#[test]
fn super_users_pass_every_acl() {
    let mut h = Harness::with(DbConfig {
        super_digest: Some("zookeeper:qW/HnTfCSoQpB5G8LgkwT3IbiFc=".into()),
        ..DbConfig::default()
    });
    h.write(
        &ctx(S1),
        create_acl(
            "/locked",
            vec![Acl::new(Perms::ALL, Id::new("digest", "x:y"))],
        ),
    )
    .unwrap();
    let mut admin = ctx(S1);
    admin.auth.extend(
        h.db.authenticate("digest", Some(b"zookeeper:admin"), "127.0.0.1")
            .unwrap(),
    );
    h.write(&admin, create("/locked/child")).unwrap();
    assert_eq!(
        h.write(&ctx(S1), create("/locked/other")),
        Err(ErrorCode::NoAuth)
    );
}

#[test]
fn digest_acls_admit_the_matching_user() {
    let mut h = Harness::new();
    let mut alice = ctx(S1);
    alice.auth.extend(
        h.db.authenticate("digest", Some(b"alice:secret"), "127.0.0.1")
            .unwrap(),
    );
    h.write(&alice, create_acl("/mine", Acl::creator_all()))
        .unwrap();
    let acl = &h.db.tree().get("/mine").unwrap().acl;
    assert_eq!(acl[0].id.scheme, "digest");
    assert!(acl[0].id.id.starts_with("alice:"));
    h.write(&alice, create("/mine/x")).unwrap();
    assert_eq!(h.write(&ctx(S2), create("/mine/y")), Err(ErrorCode::NoAuth));
}

// ---- containers and TTL nodes ----

#[test]
fn used_empty_containers_are_listed_and_delete_container_removes_them() {
    let mut h = Harness::new();
    h.write(&ctx(S1), Request::CreateContainer(create_req("/c", 4)))
        .unwrap();
    assert!(
        h.db.expired_containers_and_ttls(h.now).is_empty(),
        "never used: lives forever"
    );
    h.write(&ctx(S1), create("/c/x")).unwrap();
    h.write(&ctx(S1), delete("/c/x", -1)).unwrap();
    let candidates = h.db.expired_containers_and_ttls(h.now);
    assert_eq!(candidates, ["/c"]);
    let internal = RequestContext::default();
    let applied = h.write_applied(
        &internal,
        Request::DeleteContainer(DeleteContainerRequest { path: "/c".into() }),
    );
    assert_eq!(applied.reply, None, "session 0 txns have no reply");
    assert!(!h.db.tree().contains("/c"));
}

#[test]
fn delete_container_refuses_ephemerals_and_non_empty_nodes() {
    let mut h = Harness::new();
    h.write(&ctx(S1), create_mode("/e", 1)).unwrap();
    h.write(&ctx(S1), Request::CreateContainer(create_req("/c", 4)))
        .unwrap();
    h.write(&ctx(S1), create("/c/x")).unwrap();
    let dc = |p: &str| Request::DeleteContainer(DeleteContainerRequest { path: p.into() });
    let entry = h.db.prepare(&RequestContext::default(), &dc("/e"), 100, 1);
    assert!(matches!(entry.txn, Txn::Error(ref e) if e.err == ErrorCode::BadVersion.code()));
    let entry = h.db.prepare(&RequestContext::default(), &dc("/c"), 101, 1);
    assert!(matches!(entry.txn, Txn::Error(ref e) if e.err == ErrorCode::NotEmpty.code()));
}

#[test]
fn ttl_nodes_expire_after_their_ttl_without_modification() {
    let mut h = Harness::with(DbConfig {
        extended_types_enabled: true,
        ..DbConfig::default()
    });
    let req = Request::CreateTtl(CreateTtlRequest {
        path: "/t".into(),
        data: None,
        acl: Acl::open_unsafe(),
        flags: 5,
        ttl: 500,
    });
    h.write(&ctx(S1), req).unwrap();
    let created = h.now;
    assert!(h.db.expired_containers_and_ttls(created + 500).is_empty());
    assert_eq!(h.db.expired_containers_and_ttls(created + 501), ["/t"]);
}

// ---- sessions ----

/// The order Apache 3.8 lists a session's ephemerals in at close (a clone
/// of its per-session `HashSet<String>`), read off a JDK 17 for these
/// exact steps: the ten `/tmpN` and `/x` were added and removed again,
/// which grew the set's table (it never shrinks).
const JVM_CLOSE_ORDER: [&str; 7] = [
    "/app/lock-0000000009",
    "/q",
    "/app/lock-0000000010",
    "/app/d",
    "/app/b",
    "/app/a",
    "/app/c/e",
];

#[test]
fn close_session_lists_and_deletes_ephemerals_in_apaches_hash_set_order() {
    let mut h = Harness::new();
    h.write(&ctx(S2), create("/app")).unwrap();
    h.write(&ctx(S2), create("/app/c")).unwrap();
    let added = [
        "/app/lock-0000000009",
        "/app/b",
        "/app/lock-0000000010",
        "/app/c/e",
        "/x",
    ];
    let added_later = ["/app/a", "/q", "/app/d"];
    for path in added.into_iter().chain(added_later) {
        h.write(&ctx(S1), create_mode(path, 1)).unwrap();
    }
    for i in 0..10 {
        h.write(&ctx(S1), create_mode(&format!("/tmp{i}"), 1))
            .unwrap();
    }
    for i in 0..10 {
        h.write(&ctx(S1), delete(&format!("/tmp{i}"), -1)).unwrap();
    }
    h.write(&ctx(S1), delete("/x", -1)).unwrap();

    let (zxid, now) = h.next();
    let close = h.db.prepare(&ctx(S1), &Request::CloseSession, zxid, now);
    match &close.txn {
        Txn::CloseSession(Some(t)) => assert_eq!(t.paths_to_delete, JVM_CLOSE_ORDER),
        other => panic!("{other:?}"),
    }
    // Watches fire in that order: a data watch on each ephemeral.
    for path in JVM_CLOSE_ORDER {
        let exists = Request::Exists(zk_proto::proto::ExistsRequest {
            path: path.into(),
            watch: true,
        });
        h.db.read(&ctx(S2), &exists).0.expect("exists");
    }
    let deleted: Vec<String> =
        h.db.apply(&close)
            .notifications
            .into_iter()
            .filter(|(_, e)| e.event_type == zk_proto::EventType::NodeDeleted.code())
            .map(|(_, e)| e.path)
            .collect();
    assert_eq!(deleted, JVM_CLOSE_ORDER);
}

#[test]
fn close_session_deletes_ephemerals_including_pending_ones() {
    let mut h = Harness::new();
    h.write(&ctx(S1), create_mode("/e1", 1)).unwrap();
    let pending = h.db.prepare(&ctx(S1), &create_mode("/e2", 1), 100, 1);
    let close = h.db.prepare(&ctx(S1), &Request::CloseSession, 101, 1);
    match &close.txn {
        // A JDK 17 lists a clone of {/e1} with /e2 added as [/e2, /e1].
        Txn::CloseSession(Some(t)) => assert_eq!(t.paths_to_delete, ["/e2", "/e1"]),
        other => panic!("{other:?}"),
    }
    // The closing session's later requests fail.
    let late = h.db.prepare(&ctx(S1), &create("/late"), 102, 1);
    assert!(matches!(late.txn, Txn::Error(ref e) if e.err == ErrorCode::SessionExpired.code()));
    h.db.apply(&pending);
    let applied = h.db.apply(&close);
    assert_eq!(applied.session_closed, Some(S1));
    assert_eq!(applied.reply.unwrap().2, Ok(Response::Empty));
    assert!(!h.db.session_exists(S1));
    assert!(h.db.ephemerals_of(S1).is_empty());
    assert!(!h.db.tree().contains("/e1") && !h.db.tree().contains("/e2"));
    let root = h.db.tree().get("/").unwrap();
    assert_eq!(
        root.stat.pzxid, 101,
        "deletions happen at the closeSession zxid"
    );
}

#[test]
fn expiry_close_has_cxid_zero() {
    let mut h = Harness::new();
    let entry = h.db.prepare_close_session(S2, 77, 5);
    assert_eq!((entry.header.client_id, entry.header.cxid), (S2, 0));
    assert_eq!(entry.header.txn_type, OpCode::CloseSession.code());
}

#[test]
fn orphaned_ephemerals_are_removed_after_recovery() {
    let mut h = Harness::new();
    h.write(&ctx(S1), create_mode("/e", 1)).unwrap();
    let mut body = bytes::BytesMut::new();
    h.db.serialize_snapshot(&mut body);
    // The same body with an empty session table: /e's owner is unknown.
    let sessions_len = 4 + 2 * 12;
    let mut orphaned = bytes::BytesMut::from(&[0u8, 0, 0, 0][..]);
    orphaned.extend_from_slice(&body[sessions_len..]);
    let mut db = Database::deserialize_snapshot(
        DbConfig::default(),
        &mut zk_proto::Reader::new(orphaned.freeze()),
        h.zxid,
    )
    .unwrap();
    assert!(db.tree().contains("/e"), "kept until logs are replayed");
    assert_eq!(db.remove_orphaned_ephemerals(), ["/e"]);
    assert!(!db.tree().contains("/e"));
}

// ---- multi ----

fn multi(ops: Vec<MultiOp>) -> Request {
    Request::Multi(MultiRequest { ops })
}

#[test]
fn a_successful_multi_applies_every_op_at_one_zxid() {
    let mut h = Harness::with(DbConfig {
        extended_types_enabled: true,
        ..DbConfig::default()
    });
    let ops = vec![
        MultiOp::Create(create_req("/m", 0)),
        MultiOp::Create2(create_req("/m/a", 0)),
        MultiOp::CreateContainer(create_req("/m/c", 4)),
        MultiOp::CreateTtl(CreateTtlRequest {
            path: "/m/t".into(),
            data: None,
            acl: Acl::open_unsafe(),
            flags: 5,
            ttl: 10,
        }),
        MultiOp::SetData(SetDataRequest {
            path: "/m/a".into(),
            data: None,
            version: 0,
        }),
        MultiOp::Check(CheckVersionRequest {
            path: "/m/a".into(),
            version: 1,
        }),
        MultiOp::Delete(DeleteRequest {
            path: "/m/a".into(),
            version: 1,
        }),
    ];
    let Ok(Response::Multi(resp)) = h.write(&ctx(S1), multi(ops)) else {
        panic!("multi reply");
    };
    let zxid = h.zxid;
    let kinds: Vec<&str> = resp
        .results
        .iter()
        .map(|r| match r {
            MultiResult::Create(_) => "create",
            MultiResult::Create2(_) => "create2",
            MultiResult::SetData(_) => "setData",
            MultiResult::Check => "check",
            MultiResult::Delete => "delete",
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        ["create", "create2", "create2", "create2", "setData", "check", "delete"]
    );
    assert_eq!(h.stat("/m").czxid, zxid);
    assert_eq!(h.stat("/m/c").czxid, zxid);
    assert!(!h.db.tree().contains("/m/a"));
}

#[test]
fn a_failed_multi_applies_nothing_and_reports_every_op() {
    let mut h = Harness::new();
    h.write(&ctx(S1), create("/exists")).unwrap();
    let ops = vec![
        MultiOp::Create(create_req("/new", 0)),
        MultiOp::Create(create_req("/exists", 0)),
        MultiOp::SetData(SetDataRequest {
            path: "/new".into(),
            data: None,
            version: -1,
        }),
    ];
    let request = multi(ops);
    let entry = h.db.prepare(&ctx(S1), &request, 500, 1);
    assert_eq!(entry.header.txn_type, OpCode::Multi.code());
    match &entry.txn {
        Txn::Multi(subs) => {
            assert!(
                matches!(subs[0], Txn::Create(_)),
                "ops before the failure keep their txn"
            );
            assert!(matches!(subs[1], Txn::Error(ref e) if e.err == -110));
            assert!(matches!(subs[2], Txn::Error(ref e) if e.err == -2));
        }
        other => panic!("{other:?}"),
    }
    let applied = h.db.apply(&entry);
    let Some((_, _, Ok(Response::Multi(resp)))) = applied.reply else {
        panic!("multi reply has header err 0");
    };
    assert_eq!(
        resp.results,
        [
            MultiResult::Error(0),
            MultiResult::Error(-110),
            MultiResult::Error(-2)
        ]
    );
    assert!(!h.db.tree().contains("/new"));
    // The failed multi's pending create was rolled back.
    assert!(h.write(&ctx(S1), create("/new")).is_ok());
}

#[test]
fn an_empty_multi_commits_an_empty_result() {
    let mut h = Harness::new();
    let result = h.write(&ctx(S1), multi(vec![]));
    assert_eq!(
        result,
        Ok(Response::Multi(zk_proto::MultiResponse { results: vec![] }))
    );
}

#[test]
fn multi_ops_see_earlier_ops_of_the_same_multi() {
    let mut h = Harness::new();
    let ops = vec![
        MultiOp::Create(create_req("/p", 0)),
        MultiOp::Create(create_req("/p/s", 2)),
        MultiOp::Create(create_req("/p/s", 2)),
    ];
    let Ok(Response::Multi(resp)) = h.write(&ctx(S1), multi(ops)) else {
        panic!("multi reply");
    };
    let paths: Vec<String> = resp
        .results
        .iter()
        .map(|r| match r {
            MultiResult::Create(c) => c.path.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(paths, ["/p", "/p/s0000000000", "/p/s0000000001"]);
}

#[test]
fn replaying_a_txn_twice_is_harmless() {
    let mut h = Harness::new();
    let entry = h.db.prepare(&ctx(S1), &create("/a"), 100, 1);
    h.db.apply(&entry);
    let again = h.db.apply(&entry);
    assert_eq!(again.reply.unwrap().2, Err(ErrorCode::NodeExists));
    assert_eq!(h.stat("/a").czxid, 100);
}
