//! Watch firing: registering one-shot data watches for N connections and
//! triggering them, on the bare `WatchManager` and through the `Database`
//! (a setData applied with N watchers: the events come back in `Applied`).
//!
//! `cargo bench -p zk-server --bench watches`

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use zk_proto::{Acl, CreateRequest, GetDataRequest, Id, Request, SetDataRequest};
use zk_server::db::{Database, DbConfig, RequestContext, WatchManager};

const WATCHERS: [u64; 3] = [1, 16, 256];
const PATH: &str = "/watched";

fn ctx(conn: u64) -> RequestContext {
    RequestContext {
        session_id: 0x100,
        conn_id: conn,
        xid: 1,
        auth: vec![Id::new("ip", "127.0.0.1")],
    }
}

fn manager_trigger(c: &mut Criterion) {
    let mut group = c.benchmark_group("watch/manager_add_and_trigger");
    for n in WATCHERS {
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            let mut manager = WatchManager::new();
            b.iter(|| {
                for conn in 0..n {
                    manager.add_data_watch(PATH, conn);
                }
                let fired = manager.trigger_data(black_box(PATH));
                assert_eq!(fired.len() as u64, n);
                black_box(fired)
            })
        });
    }
    group.finish();
}

/// A database with `/watched` and one session.
fn database() -> (Database, i64) {
    let mut db = Database::new(DbConfig::default());
    let entry = db.prepare_create_session(0x100, 30_000, 1, 0);
    db.apply(&entry);
    let create = Request::Create(CreateRequest {
        path: PATH.into(),
        data: None,
        acl: Acl::open_unsafe(),
        flags: 0,
    });
    let entry = db.prepare(&ctx(1), &create, 2, 0);
    db.apply(&entry);
    (db, 2)
}

fn database_fire(c: &mut Criterion) {
    let mut group = c.benchmark_group("watch/db_set_data_fires");
    let data = Bytes::from(vec![1u8; 1024]);
    for n in WATCHERS {
        let (mut db, mut zxid) = database();
        let arm = Request::GetData(GetDataRequest {
            path: PATH.into(),
            watch: true,
        });
        let write = Request::SetData(SetDataRequest {
            path: PATH.into(),
            data: Some(data.clone()),
            version: -1,
        });
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter_batched(
                || (),
                |()| {
                    // Arming is part of the cost: each watcher re-arms after
                    // every event, as the fan-out workload does.
                    for conn in 0..n {
                        let (reply, _) = db.read(&ctx(conn), &arm);
                        black_box(reply).expect("the watched node exists");
                    }
                    zxid += 1;
                    let entry = db.prepare(&ctx(0), &write, zxid, 0);
                    let applied = db.apply(&entry);
                    assert_eq!(applied.notifications.len() as u64, n);
                    black_box(applied)
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, manager_trigger, database_fire);
criterion_main!(benches);
