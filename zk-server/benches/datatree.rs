//! Data tree hot paths: lookups and updates on the bare `DataTree`, and
//! the same operations through the `Database` facade the pipeline drives
//! (validation, ACL check, txn building, stat bookkeeping).
//!
//! `cargo bench -p zk-server --bench datatree`

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use zk_proto::{Acl, CreateRequest, GetDataRequest, Id, Request, SetDataRequest};
use zk_server::db::{DataTree, Database, DbConfig, RequestContext};

/// Tree sizes: a small config tree and a 100k-znode one (the size the
/// side-by-side memory test populates).
const SIZES: [usize; 2] = [1_000, 100_000];
const SESSION: i64 = 0x100;

fn value() -> Bytes {
    Bytes::from(vec![0x5a; 1024])
}

fn key(i: usize) -> String {
    format!("/bench/k{i:07}")
}

/// A bare tree with `/bench/k0000000 ..` of 1 KiB each.
fn tree_with(n: usize) -> DataTree {
    let mut tree = DataTree::new(false);
    let mut zxid = 1;
    tree.create("/bench", None, Acl::open_unsafe(), 0, -1, zxid, 0)
        .expect("create /bench");
    for i in 0..n {
        zxid += 1;
        tree.create(&key(i), Some(value()), Acl::open_unsafe(), 0, -1, zxid, 0)
            .expect("create key");
    }
    tree
}

/// A database with one session and the same keys, created through
/// prepare + apply as the server would.
struct Db {
    db: Database,
    zxid: i64,
    ctx: RequestContext,
}

impl Db {
    fn with(n: usize) -> Db {
        let mut db = Db {
            db: Database::new(DbConfig::default()),
            zxid: 0,
            ctx: RequestContext {
                session_id: SESSION,
                conn_id: 1,
                xid: 1,
                auth: vec![Id::new("ip", "127.0.0.1")],
            },
        };
        db.zxid += 1;
        let entry = db.db.prepare_create_session(SESSION, 30_000, db.zxid, 0);
        db.db.apply(&entry);
        db.write(&create("/bench", None));
        for i in 0..n {
            db.write(&create(&key(i), Some(value())));
        }
        db
    }

    fn write(&mut self, request: &Request) {
        self.zxid += 1;
        let entry = self.db.prepare(&self.ctx, request, self.zxid, 0);
        let applied = self.db.apply(&entry);
        black_box(applied);
    }
}

fn create(path: &str, data: Option<Bytes>) -> Request {
    Request::Create(CreateRequest {
        path: path.to_string(),
        data,
        acl: Acl::open_unsafe(),
        flags: 0,
    })
}

fn tree_lookups(c: &mut Criterion) {
    let mut group = c.benchmark_group("tree/get");
    for n in SIZES {
        let tree = tree_with(n);
        let paths: Vec<String> = (0..n).step_by((n / 512).max(1)).map(key).collect();
        let mut i = 0;
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                i = (i + 1) % paths.len();
                black_box(tree.get(&paths[i]).map(|node| node.data_len()))
            })
        });
    }
    group.finish();
}

fn tree_updates(c: &mut Criterion) {
    let mut group = c.benchmark_group("tree/set_data");
    for n in SIZES {
        let mut tree = tree_with(n);
        let mut zxid = n as i64 + 10;
        let data = value();
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                zxid += 1;
                let path = key(zxid as usize % n);
                black_box(tree.set_data(&path, Some(data.clone()), 1, zxid, 0))
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("tree/create_delete");
    for n in SIZES {
        let mut tree = tree_with(n);
        let mut zxid = n as i64 + 10;
        let data = value();
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                zxid += 2;
                let created = tree.create(
                    "/bench/scratch",
                    Some(data.clone()),
                    Acl::open_unsafe(),
                    0,
                    -1,
                    zxid,
                    0,
                );
                black_box(created).expect("scratch node is free");
                black_box(tree.delete("/bench/scratch", zxid + 1)).expect("scratch node exists");
            })
        });
    }
    group.finish();
}

fn database_paths(c: &mut Criterion) {
    let n = 10_000;
    let mut db = Db::with(n);
    let mut i = 0usize;
    c.bench_function("db/read_get_data", |b| {
        b.iter(|| {
            i = (i + 7) % n;
            let request = Request::GetData(GetDataRequest {
                path: key(i),
                watch: false,
            });
            black_box(db.db.read(&db.ctx, &request))
        })
    });
    let data = value();
    c.bench_function("db/prepare_apply_set_data", |b| {
        b.iter(|| {
            i = (i + 7) % n;
            let request = Request::SetData(SetDataRequest {
                path: key(i),
                data: Some(data.clone()),
                version: -1,
            });
            db.write(&request)
        })
    });
    c.bench_function("db/prepare_apply_create_delete", |b| {
        b.iter_batched(
            || (),
            |()| {
                db.write(&create("/bench/scratch", Some(data.clone())));
                db.write(&Request::Delete(zk_proto::DeleteRequest {
                    path: "/bench/scratch".into(),
                    version: -1,
                }));
            },
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, tree_lookups, tree_updates, database_paths);
criterion_main!(benches);
