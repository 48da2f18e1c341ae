//! Large state across real `zk-server` processes: a follower that missed
//! thousands of txns of a tree far bigger than any one peer message
//! rejoins by a streamed SNAP while the leader keeps serving its clients,
//! and every acknowledged write survives the leader's death afterwards.
//!
//! The tree is 50 MB by default, the size the production-scale issue asks
//! of CI (about 15 s in a debug build here); `ZK_LARGE_STATE_MB` sets
//! another size, e.g. for a bigger run:
//! `ZK_LARGE_STATE_MB=500 cargo test -p zk-server --release --test ensemble_large_state`.

mod ensemble_support;
#[path = "ensemble_support/process.rs"]
mod process;
mod server_common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ensemble_support::{try_session, SETTLE};
use process::{mode_of, port_of, reserve_ports, server_lines, spawn_server_logged, Proc};
use server_common::RawClient;
use zk_proto::{
    Acl, CreateMode, CreateRequest, GetDataRequest, OpCode, ReplyFrame, Request, Response,
    ServerMessage, SetDataRequest, SyncRequest,
};

/// Bytes of data per znode.
const NODE_SIZE: usize = 1024;
/// Requests in flight per pipelined batch.
const BATCH: usize = 200;
/// Txns the killed follower misses (more than the 500 to 1000 txns the
/// leader keeps in memory).
const MISSED: usize = 3_500;

struct Member {
    cfg: PathBuf,
    log: PathBuf,
    addr: SocketAddr,
    proc: Option<Proc>,
}

impl Member {
    fn start(&mut self) {
        self.proc = Some(spawn_server_logged(&self.cfg, &self.log));
    }

    fn kill(&mut self) {
        self.proc = None; // SIGKILL
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Three members with a generous initLimit (a big SNAP must fit in it, as
/// with Apache), no periodic snapshot during the test, and `extra` zoo.cfg
/// lines.
fn start_ensemble(dir: &Path, extra: &str) -> Vec<Member> {
    let reserved = reserve_ports(9);
    let ports: Vec<u16> = reserved.iter().map(port_of).collect();
    drop(reserved);
    let servers = server_lines(&ports, 3);
    (0..3)
        .map(|i| {
            let data = dir.join(format!("data{}", i + 1));
            std::fs::create_dir_all(&data).unwrap();
            std::fs::write(data.join("myid"), format!("{}\n", i + 1)).unwrap();
            let cfg = dir.join(format!("zoo{}.cfg", i + 1));
            std::fs::write(
                &cfg,
                format!(
                    "tickTime=200\ninitLimit=150\nsyncLimit=10\ndataDir={}\n\
                     forceSync=no\nsnapCount=10000000\n4lw.commands.whitelist=*\n{extra}{servers}",
                    data.display()
                ),
            )
            .unwrap();
            let mut m = Member {
                cfg,
                log: dir.join(format!("server{}.log", i + 1)),
                addr: SocketAddr::from(([127, 0, 0, 1], ports[3 * i])),
                proc: None,
            };
            m.start();
            m
        })
        .collect()
}

/// The index of the one live member that says leader, once the others
/// (in `live`) say follower.
async fn wait_for_leader(members: &[Member], live: &[usize]) -> usize {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut leader = None;
        let mut ok = true;
        for &i in live {
            match mode_of(members[i].addr).await.as_deref() {
                Some("leader") if leader.is_none() => leader = Some(i),
                Some("follower") => {}
                _ => ok = false,
            }
        }
        if let (true, Some(leader)) = (ok, leader) {
            return leader;
        }
        assert!(tokio::time::Instant::now() < deadline, "no stable leader");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn session(addr: SocketAddr) -> RawClient {
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        if let Some(c) = try_session(addr).await {
            return c;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{addr} serves no session"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn path_of(i: usize) -> String {
    format!("/big/n-{i:07}")
}

/// `NODE_SIZE` bytes that say which node and which version they are.
fn data_of(i: usize, version: u32) -> Bytes {
    let mut data = format!("{i}:{version}:").into_bytes();
    data.resize(NODE_SIZE, b'x');
    Bytes::from(data)
}

/// Sends `requests` in pipelined batches; returns the replies in order.
async fn pipelined(c: &mut RawClient, first_xid: i32, requests: Vec<Request>) -> Vec<ReplyFrame> {
    let mut replies = Vec::with_capacity(requests.len());
    let mut xid = first_xid;
    let mut requests = requests.into_iter().peekable();
    while requests.peek().is_some() {
        let batch: Vec<Request> = requests.by_ref().take(BATCH).collect();
        let ops: Vec<OpCode> = batch.iter().map(Request::op_code).collect();
        for request in batch {
            c.send(xid, request).await;
            xid += 1;
        }
        for op in ops {
            let frame = c.recv_frame().await.expect("the member closed the session");
            match ServerMessage::decode_frame(frame.clone()).expect("a reply") {
                ServerMessage::Reply { .. } => {
                    replies.push(ReplyFrame::decode_reply(frame, op).expect("a reply"));
                }
                ServerMessage::Notification { .. } => panic!("no watch was set"),
            }
        }
    }
    replies
}

fn assert_all_ok(replies: &[ReplyFrame], what: &str) {
    for (i, r) in replies.iter().enumerate() {
        assert_eq!(r.header.err, 0, "{what} #{i} failed");
    }
}

fn create(path: String, data: Bytes) -> Request {
    Request::Create(CreateRequest {
        path,
        data: Some(data),
        acl: Acl::open_unsafe(),
        flags: CreateMode::Persistent.code(),
    })
}

/// Reads a node on the leader over and over until `stop`; returns how many
/// answers came and the longest wait for one.
async fn probe_leader(addr: SocketAddr, stop: Arc<AtomicBool>) -> (usize, Duration) {
    let mut c = session(addr).await;
    let (mut answers, mut longest) = (0, Duration::ZERO);
    let mut xid = 1;
    while !stop.load(Ordering::SeqCst) {
        let asked = tokio::time::Instant::now();
        let reply = c
            .call(
                xid,
                Request::GetData(GetDataRequest {
                    path: path_of(0),
                    watch: false,
                }),
            )
            .await;
        assert_eq!(
            reply.header.err, 0,
            "the leader answers reads during the sync"
        );
        longest = longest.max(asked.elapsed());
        answers += 1;
        xid += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (answers, longest)
}

/// How the follower should come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Snap,
    DiffFromLogs,
}

/// The scenario: `nodes` znodes, a follower killed while `missed` setData
/// go on, restarted while a client reads on the leader; then the leader is
/// killed and the follower must hold everything.
async fn rejoin_scenario(nodes: usize, missed: usize, extra_cfg: &str, expect: Expect) {
    let dir = tempfile::tempdir().unwrap();
    let mut members = start_ensemble(dir.path(), extra_cfg);
    let leader = wait_for_leader(&members, &[0, 1, 2]).await;

    let mut c = session(members[leader].addr).await;
    let root = pipelined(&mut c, 1, vec![create("/big".into(), Bytes::new())]).await;
    assert_all_ok(&root, "create /big");
    let creates = (0..nodes)
        .map(|i| create(path_of(i), data_of(i, 0)))
        .collect();
    assert_all_ok(&pipelined(&mut c, 10, creates).await, "create");

    let behind = (leader + 1) % 3;
    members[behind].kill();
    let updates = (0..missed)
        .map(|i| {
            Request::SetData(SetDataRequest {
                path: path_of(i % nodes),
                data: Some(data_of(i % nodes, 1)),
                version: -1,
            })
        })
        .collect();
    assert_all_ok(&pipelined(&mut c, 1_000_000, updates).await, "setData");

    let stop = Arc::new(AtomicBool::new(false));
    let prober = tokio::spawn(probe_leader(members[leader].addr, stop.clone()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    members[behind].start();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while mode_of(members[behind].addr).await.as_deref() != Some("follower") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the follower never rejoined; its log ends with:\n{}",
            tail(&members[behind].log_text())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let (answers, longest) = prober.await.unwrap();
    if std::env::var("ZK_TEST_VERBOSE").is_ok() {
        for m in &members {
            for l in m
                .log_text()
                .lines()
                .filter(|l| l.contains("SNAP") || l.contains("DIFF") || l.contains("snapshot"))
            {
                eprintln!("{l}");
            }
        }
        eprintln!("answers {answers}, longest {longest:?}");
    }
    let installed = members[behind]
        .log_text()
        .contains("installing the leader's snapshot");
    let from_logs = members[leader]
        .log_text()
        .contains("DIFF from the txn logs");
    match expect {
        Expect::Snap => assert!(installed, "the follower was synced by SNAP"),
        Expect::DiffFromLogs => assert!(
            from_logs && !installed,
            "the follower was synced by a DIFF from the leader's log files"
        ),
    }
    assert!(
        answers > 0,
        "the leader answered reads while the follower synced"
    );
    assert!(
        longest < Duration::from_secs(2),
        "a read on the leader waited {longest:?} during the sync"
    );

    // The leader dies: the rejoined follower and the third member form
    // the quorum, so everything acknowledged must be on the follower.
    members[leader].kill();
    let live: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    wait_for_leader(&members, &live).await;
    let mut c = session(members[behind].addr).await;
    let sync = c
        .call(
            1,
            Request::Sync(SyncRequest {
                path: Some("/big".into()),
            }),
        )
        .await;
    assert_eq!(sync.header.err, 0);
    let reads = (0..nodes)
        .map(|i| {
            Request::GetData(GetDataRequest {
                path: path_of(i),
                watch: false,
            })
        })
        .collect();
    let replies = pipelined(&mut c, 10, reads).await;
    for (i, reply) in replies.iter().enumerate() {
        let version = u32::from(i < missed);
        match &reply.response {
            Response::GetData(r) => assert_eq!(
                r.data.as_ref(),
                Some(&data_of(i, version)),
                "{} on the rejoined follower",
                path_of(i)
            ),
            other => panic!("{}: {other:?} (err {})", path_of(i), reply.header.err),
        }
    }
}

/// With `snapshotSizeFactor=0` a learner behind the in-memory log always
/// gets SNAP (by default a few MB of missed txns against a 50 MB tree
/// would come as a DIFF from the log files).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_far_behind_a_large_tree_rejoins_by_snap_while_the_leader_serves() {
    let megabytes: usize = std::env::var("ZK_LARGE_STATE_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let nodes = megabytes * 1024 * 1024 / NODE_SIZE;
    rejoin_scenario(nodes, MISSED, "snapshotSizeFactor=0\n", Expect::Snap).await;
}

/// 1,500 missed txns of about 1 KB are more than the leader keeps in
/// memory but less than a third of the 6 MB tree: Apache's rule sends them
/// from the txn log files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_behind_the_in_memory_log_rejoins_by_a_diff_from_the_leaders_log_files() {
    rejoin_scenario(6 * 1024, 1_500, "", Expect::DiffFromLogs).await;
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
