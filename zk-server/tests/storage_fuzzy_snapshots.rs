//! Fuzzy snapshots (db/fuzzy.rs, storage/snapstream.rs): a snapshot taken
//! in slices while txns keep being applied, named by the zxid at its
//! start, plus the replay of every txn after that zxid, gives back exactly
//! the live tree, as Apache's FileTxnSnapLog.restore relies on.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use zk_proto::{
    Acl, CreateMode, CreateRequest, DeleteRequest, Id, Perms, Reader, Request, SetAclRequest,
    SetDataRequest, TxnEntry,
};
use zk_server::db::fuzzy::FuzzyWalk;
use zk_server::db::{Database, DbConfig, RequestContext, SessionId};
use zk_server::storage::{read_newest_snapshot, SnapshotAssembler};

/// A database and every txn applied to it, as the log would hold them.
struct Live {
    db: Database,
    log: Vec<TxnEntry>,
    sessions: Vec<SessionId>,
    next_session: SessionId,
}

impl Live {
    fn new() -> Self {
        Live {
            db: Database::new(DbConfig::default()),
            log: Vec::new(),
            sessions: Vec::new(),
            next_session: 0x100,
        }
    }

    fn zxid(&self) -> i64 {
        self.db.last_processed_zxid() + 1
    }

    fn apply(&mut self, entry: TxnEntry) {
        self.db.apply(&entry);
        self.log.push(entry);
    }

    fn write(&mut self, session: SessionId, request: Request) {
        let ctx = RequestContext {
            session_id: session,
            ..RequestContext::default()
        };
        let zxid = self.zxid();
        let entry = self.db.prepare(&ctx, &request, zxid, zxid * 10);
        self.apply(entry);
    }

    fn open_session(&mut self) -> SessionId {
        let id = self.next_session;
        self.next_session += 1;
        let zxid = self.zxid();
        let entry = self.db.prepare_create_session(id, 30_000, zxid, zxid * 10);
        self.apply(entry);
        self.sessions.push(id);
        id
    }

    fn close_session(&mut self, id: SessionId) {
        let zxid = self.zxid();
        let entry = self.db.prepare_close_session(id, zxid, zxid * 10);
        self.apply(entry);
        self.sessions.retain(|s| *s != id);
    }

    /// Every path but the root and the /zookeeper subtree.
    fn paths(&self) -> Vec<String> {
        let mut paths = Vec::new();
        self.db.tree().for_each_preorder(|path, _| {
            if path != "/" && !path.starts_with("/zookeeper") {
                paths.push(path.to_string());
            }
        });
        paths
    }

    fn body(&self) -> BytesMut {
        let mut body = BytesMut::new();
        self.db.serialize_snapshot(&mut body);
        body
    }
}

/// A list of its own (so a new entry in the ACL cache) that still lets
/// everyone do everything, so later changes to the node are not refused.
fn acl_for(user: u16) -> Vec<Acl> {
    let mut acl = Acl::open_unsafe().to_vec();
    acl.push(Acl {
        perms: Perms::READ.0,
        id: Id::new("ip", format!("10.0.{}.{}", user >> 8, user & 0xff)),
    });
    acl
}

fn create(path: String, mode: CreateMode, acl: Vec<Acl>, data: usize) -> Request {
    Request::Create(CreateRequest {
        path,
        data: Some(Bytes::from(vec![b'd'; data])),
        acl,
        flags: mode.code(),
    })
}

/// One random change: creates (some ephemeral, some with a new ACL
/// list), deletes, setData, setACL, sessions opened and closed.
fn random_change(live: &mut Live, rng: &mut StdRng) {
    let paths = live.paths();
    let session = live.sessions[rng.gen_range(0..live.sessions.len())];
    match rng.gen_range(0..10) {
        0..=2 => {
            let parent = match rng.gen_bool(0.3) || paths.is_empty() {
                true => String::new(),
                false => paths[rng.gen_range(0..paths.len())].clone(),
            };
            let path = format!("{parent}/c{}", rng.gen_range(0..1000));
            let mode = if rng.gen_bool(0.2) {
                CreateMode::Ephemeral
            } else {
                CreateMode::Persistent
            };
            let acl = if rng.gen_bool(0.3) {
                acl_for(rng.gen())
            } else {
                Acl::open_unsafe().to_vec()
            };
            live.write(session, create(path, mode, acl, rng.gen_range(0..64)));
        }
        3..=4 if !paths.is_empty() => {
            let path = paths[rng.gen_range(0..paths.len())].clone();
            live.write(
                session,
                Request::Delete(DeleteRequest { path, version: -1 }),
            );
        }
        5..=6 if !paths.is_empty() => {
            let path = paths[rng.gen_range(0..paths.len())].clone();
            let data = Some(Bytes::from(vec![b's'; rng.gen_range(0..64)]));
            live.write(
                session,
                Request::SetData(SetDataRequest {
                    path,
                    data,
                    version: -1,
                }),
            );
        }
        7 if !paths.is_empty() => {
            let path = paths[rng.gen_range(0..paths.len())].clone();
            let acl = acl_for(rng.gen());
            live.write(
                session,
                Request::SetAcl(SetAclRequest {
                    path,
                    acl,
                    version: -1,
                }),
            );
        }
        8 => {
            live.open_session();
        }
        9 if live.sessions.len() > 1 => live.close_session(session),
        _ => {}
    }
}

/// Builds a tree, takes a fuzzy snapshot with `changes_per_slice` random
/// changes between slices, recovers it (snapshot + txns after its zxid)
/// and returns (live body, recovered body).
fn run(seed: u64, changes_per_slice: usize) -> (BytesMut, BytesMut) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut live = Live::new();
    live.open_session();
    live.open_session();
    for _ in 0..300 {
        random_change(&mut live, &mut rng);
    }

    let start_zxid = live.db.last_processed_zxid();
    let sessions: BTreeMap<SessionId, i32> = live.db.sessions().collect();
    let dir = tempfile::tempdir().unwrap();
    let mut file = SnapshotAssembler::create(dir.path(), start_zxid).unwrap();
    let mut walk = FuzzyWalk::new();
    loop {
        let mut chunk = BytesMut::new();
        let done = walk.next_slice(live.db.tree(), &mut chunk, 64);
        file.write_tail(&chunk).unwrap();
        if done {
            break;
        }
        for _ in 0..changes_per_slice {
            random_change(&mut live, &mut rng);
        }
    }
    file.finish(&walk.head(&sessions)).unwrap();

    let config = DbConfig::default();
    let loaded = read_newest_snapshot(dir.path(), |r: &mut Reader, zxid| {
        Database::deserialize_snapshot(config.clone(), r, zxid)
    })
    .unwrap()
    .expect("the snapshot loads");
    assert_eq!(loaded.zxid, start_zxid);
    let mut recovered = loaded.value;
    for entry in live.log.iter().filter(|e| e.header.zxid > start_zxid) {
        recovered.apply(entry);
    }
    recovered.remove_orphaned_ephemerals();
    let mut recovered_body = BytesMut::new();
    recovered.serialize_snapshot(&mut recovered_body);
    (live.body(), recovered_body)
}

#[test]
fn a_snapshot_of_a_quiet_tree_replays_to_the_same_tree() {
    let (live, recovered) = run(1, 0);
    assert_eq!(live, recovered);
}

#[test]
fn a_fuzzy_snapshot_plus_the_txns_after_its_zxid_is_the_live_tree() {
    for seed in 0..40 {
        let (live, recovered) = run(seed, 1 + seed as usize % 4);
        assert!(live == recovered, "seed {seed}: the recovered tree differs");
    }
}
