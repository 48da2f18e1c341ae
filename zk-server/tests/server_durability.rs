//! Acknowledged writes survive: clean restart, in-process crash, and a
//! real `kill -9` of the `zk-server` binary.

mod server_common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use server_common::{err_of, RawClient, WAIT};
use zk_proto::{CreateMode, ErrorCode, Response};
use zk_server::testing::TestingServer;

async fn create_n(addr: SocketAddr, n: usize) {
    let mut c = RawClient::session(addr, 3000).await;
    for i in 0..n {
        let reply = c
            .create(
                i as i32 + 1,
                &format!("/n{i}"),
                b"v",
                CreateMode::Persistent,
            )
            .await;
        assert_eq!(reply.header.err, 0, "create /n{i}");
    }
}

async fn assert_all_present(addr: SocketAddr, n: usize) {
    let mut c = RawClient::session(addr, 3000).await;
    for i in 0..n {
        let reply = c.get(i as i32 + 1, &format!("/n{i}"), false).await;
        assert_eq!(reply.header.err, 0, "/n{i} lost");
        assert!(
            matches!(&reply.response, Response::GetData(r) if r.data.as_deref() == Some(&b"v"[..]))
        );
    }
}

#[tokio::test]
async fn restart_keeps_acknowledged_writes() {
    let mut server = TestingServer::start().await.unwrap();
    create_n(server.addr(), 20).await;
    server.restart().await.unwrap();
    assert_all_present(server.addr(), 20).await;
}

#[tokio::test]
async fn crash_keeps_acknowledged_writes() {
    let mut server = TestingServer::start().await.unwrap();
    create_n(server.addr(), 20).await;
    server.kill().await;
    server.restart().await.unwrap();
    assert_all_present(server.addr(), 20).await;
}

#[tokio::test]
async fn snapshots_taken_along_the_way_restore_too() {
    // snapCount 10: several snapshots and log rolls during 40 writes.
    let mut server = TestingServer::start_with(|c| c.snap_count = 10)
        .await
        .unwrap();
    create_n(server.addr(), 40).await;
    server.kill().await;
    server.restart().await.unwrap();
    assert_all_present(server.addr(), 40).await;
}

#[tokio::test]
async fn ephemerals_of_a_closed_session_stay_gone_after_restart() {
    let mut server = TestingServer::start().await.unwrap();
    let mut c = RawClient::session(server.addr(), 3000).await;
    c.create(1, "/eph", b"", CreateMode::Ephemeral).await;
    c.call(2, zk_proto::Request::CloseSession).await;
    server.restart().await.unwrap();
    let mut check = RawClient::session(server.addr(), 3000).await;
    assert_eq!(
        err_of(&check.get(1, "/eph", false).await),
        Some(ErrorCode::NoNode)
    );
}

/// Kills the child on drop, so a failing test leaves no process behind.
struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn spawn_binary(cfg: &std::path::Path) -> ServerProcess {
    spawn_binary_with(cfg, &[])
}

fn spawn_binary_with(cfg: &std::path::Path, flags: &[&str]) -> ServerProcess {
    let child = Command::new(env!("CARGO_BIN_EXE_zk-server"))
        .args(flags)
        .arg(cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn zk-server");
    ServerProcess(child)
}

async fn wait_until_serving(addr: SocketAddr) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "server did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A zoo.cfg in `dir` for a standalone binary with its data in
/// `<dir>/data` on a free port.
fn standalone_cfg(dir: &std::path::Path) -> (std::path::PathBuf, SocketAddr) {
    standalone_cfg_at(dir, &dir.join("data"), 1024)
}

/// A zoo.cfg in `dir` with the data in `data_dir`, preallocating
/// `prealloc_kib` KiB of txn log at a time.
fn standalone_cfg_at(
    dir: &std::path::Path,
    data_dir: &std::path::Path,
    prealloc_kib: u64,
) -> (std::path::PathBuf, SocketAddr) {
    let port = free_port();
    let cfg = dir.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
             preAllocSize={prealloc_kib}\n",
            data_dir.display()
        ),
    )
    .unwrap();
    (cfg, format!("127.0.0.1:{port}").parse().unwrap())
}

fn kill_dash_nine(process: &mut ServerProcess) {
    let status = Command::new("kill")
        .args(["-9", &process.0.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let _ = process.0.wait();
}

/// Runs the binary until it exits by itself (bounded); its status and
/// what it wrote on stderr.
async fn run_to_exit(
    cfg: &std::path::Path,
    dir: &std::path::Path,
) -> (std::process::ExitStatus, String) {
    let stderr_path = dir.join("stderr.txt");
    let mut child = ServerProcess(
        Command::new(env!("CARGO_BIN_EXE_zk-server"))
            .arg(cfg)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .expect("spawn zk-server"),
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "zk-server did not exit"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    (status, std::fs::read_to_string(&stderr_path).unwrap())
}

#[tokio::test]
async fn a_flipped_byte_in_the_last_whole_log_record_refuses_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, addr) = standalone_cfg(dir.path());
    let mut first = spawn_binary(&cfg);
    wait_until_serving(addr).await;
    create_n(addr, 10).await;
    kill_dash_nine(&mut first);

    // Damage, not a crash: the last record is whole (length, bytes and end
    // marker all there) but one bit of its txn changed.
    let log_path = newest_log(&dir.path().join("data"));
    let mut log = std::fs::read(&log_path).unwrap();
    let (offsets, _) = record_offsets(&log);
    let last = *offsets.last().unwrap();
    log[last + 20] ^= 0x01;
    std::fs::write(&log_path, &log).unwrap();

    let (status, stderr) = run_to_exit(&cfg, dir.path()).await;
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("CRC check failed"), "{stderr}");
    assert!(stderr.contains(&log_path.display().to_string()), "{stderr}");
    assert!(stderr.contains(&format!("offset {last}")), "{stderr}");
    assert_eq!(
        std::fs::read(&log_path).unwrap(),
        log,
        "the log is left as found"
    );
}

#[tokio::test]
async fn the_truncate_flag_cuts_a_corrupt_last_record_and_starts() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, addr) = standalone_cfg(dir.path());
    let mut first = spawn_binary(&cfg);
    wait_until_serving(addr).await;
    create_n(addr, 10).await;
    kill_dash_nine(&mut first);
    let log_path = newest_log(&dir.path().join("data"));
    let mut log = std::fs::read(&log_path).unwrap();
    let last = *record_offsets(&log).0.last().unwrap();
    log[last + 20] ^= 0x01;
    std::fs::write(&log_path, &log).unwrap();

    let _second = spawn_binary_with(&cfg, &["--truncate-corrupt-txnlog"]);
    wait_until_serving(addr).await;
    assert_all_present(addr, 9).await;
    let mut c = RawClient::session(addr, 3000).await;
    assert_eq!(
        err_of(&c.get(1, "/n9", false).await),
        Some(ErrorCode::NoNode)
    );
}

#[tokio::test]
async fn kill_dash_nine_of_the_binary_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, addr) = standalone_cfg(dir.path());

    let mut first = spawn_binary(&cfg);
    wait_until_serving(addr).await;
    create_n(addr, 50).await;
    kill_dash_nine(&mut first);

    let _second = spawn_binary(&cfg);
    wait_until_serving(addr).await;
    assert_all_present(addr, 50).await;
}

#[test]
fn binary_in_ensemble_mode_without_myid_exits_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            // One voter is an ensemble only with standaloneEnabled=false
            // (otherwise Apache, and we, run standalone).
            "dataDir={}\nclientPort=0\nstandaloneEnabled=false\nserver.1=127.0.0.1:2888:3888\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_zk-server"))
        .arg(&cfg)
        .output()
        .expect("run zk-server");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("myid"), "{stderr}");
}

#[test]
fn binary_rejects_a_malformed_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(&cfg, "dataDir=/tmp/x\nclientPort=notaport\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_zk-server"))
        .arg(&cfg)
        .output()
        .expect("run zk-server");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 2"), "{stderr}");
}

/// The offsets of the whole records of a txn log file, and the offset
/// just past the last one.
fn record_offsets(log: &[u8]) -> (Vec<usize>, usize) {
    let log = bytes::Bytes::copy_from_slice(log);
    let mut at = 16; // the file header
    let mut offsets = Vec::new();
    while let zk_proto::disk::LogRecord::Txn { consumed, .. } =
        zk_proto::disk::decode_log_record(&log.slice(at..))
    {
        offsets.push(at);
        at += consumed;
    }
    (offsets, at)
}

fn end_of_records(log: &[u8]) -> usize {
    record_offsets(log).1
}

fn newest_log(data_dir: &std::path::Path) -> std::path::PathBuf {
    let dir = data_dir.join("version-2");
    std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            let zxid = zk_proto::disk::parse_zxid_file_name(&name, "log")?;
            Some((zxid, dir.join(name)))
        })
        .max()
        .expect("a txn log")
        .1
}

#[tokio::test]
async fn a_torn_log_tail_is_truncated_and_the_log_keeps_working() {
    let mut server = TestingServer::start().await.unwrap();
    create_n(server.addr(), 20).await;
    server.kill().await;

    // A crash in the middle of writing the next record: its header and a
    // few bytes of its body made it to disk, the rest did not.
    let log_path = newest_log(server.data_dir());
    let mut log = std::fs::read(&log_path).unwrap();
    let end = end_of_records(&log);
    let torn: [u8; 20] = [
        0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78, 0, 0, 0, 100, 1, 2, 3, 4, 5, 6, 7, 8,
    ];
    log[end..end + torn.len()].copy_from_slice(&torn);
    std::fs::write(&log_path, &log).unwrap();

    server.restart().await.unwrap();
    assert_all_present(server.addr(), 20).await;

    // Writes after the repaired tail are readable after another crash.
    let mut c = RawClient::session(server.addr(), 3000).await;
    let reply = c.create(1, "/after", b"v", CreateMode::Persistent).await;
    assert_eq!(reply.header.err, 0);
    drop(c);
    server.kill().await;
    server.restart().await.unwrap();
    let mut c = RawClient::session(server.addr(), 3000).await;
    assert_eq!(c.get(1, "/after", false).await.header.err, 0);
    assert_all_present(server.addr(), 20).await;
}

/// A small tmpfs mounted for one test and unmounted when dropped; `None`
/// where this process may not mount (not root): the test then says so and
/// checks nothing (tests/storage_faults.rs covers ENOSPC everywhere, by
/// injection).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().ok()?;
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then_some(Tmpfs { dir })
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Frees space the way an operator would: a bigger file system.
    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.dir.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "remount failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[tokio::test]
async fn a_full_disk_makes_the_binary_exit_non_zero_and_a_restart_with_space_loses_nothing() {
    let Some(disk) = Tmpfs::mount("1m") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (cfg, addr) = standalone_cfg_at(dir.path(), &disk.path().join("data"), 16);
    let stderr_path = dir.path().join("stderr.txt");
    let mut first = ServerProcess(
        Command::new(env!("CARGO_BIN_EXE_zk-server"))
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .expect("spawn zk-server"),
    );
    wait_until_serving(addr).await;

    // 4 KiB nodes until the disk is full: the write that cannot be logged
    // is never answered, and the process exits.
    let mut c = RawClient::session(addr, 30_000).await;
    let data = vec![b'x'; 4096];
    let mut acked = Vec::new();
    for i in 0..1000 {
        let path = format!("/n{i}");
        let request = zk_proto::Request::Create(zk_proto::CreateRequest {
            path: path.clone(),
            data: Some(bytes::Bytes::copy_from_slice(&data)),
            acl: zk_proto::Acl::open_unsafe(),
            flags: CreateMode::Persistent.code(),
        });
        c.send(i + 1, request).await;
        match c.recv(zk_proto::OpCode::Create).await {
            Some(server_common::Incoming::Reply(r)) if r.header.err == 0 => acked.push(path),
            Some(other) => panic!("unexpected answer to {path}: {other:?}"),
            None => break,
        }
    }
    assert!(
        !acked.is_empty() && acked.len() < 1000,
        "{} acked",
        acked.len()
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = first.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "zk-server kept running on a full disk"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");

    disk.resize("64m");
    let _second = spawn_binary(&cfg);
    wait_until_serving(addr).await;
    let mut c = RawClient::session(addr, 30_000).await;
    for (i, path) in acked.iter().enumerate() {
        let reply = c.get(i as i32 + 1, path, false).await;
        assert_eq!(reply.header.err, 0, "acknowledged {path} lost");
    }
}

/// Sends every request at once, then reads every reply, in order; each
/// must succeed.
async fn pipelined(c: &mut RawClient, first_xid: i32, requests: Vec<zk_proto::Request>) {
    let ops: Vec<_> = requests.iter().map(|r| r.op_code()).collect();
    for (i, request) in requests.into_iter().enumerate() {
        c.send(first_xid + i as i32, request).await;
    }
    for (i, op) in ops.into_iter().enumerate() {
        let reply = c.reply_to(first_xid + i as i32, op).await;
        assert_eq!(reply.header.err, 0, "request {i} failed");
    }
}

#[tokio::test]
async fn fuzzy_snapshots_taken_while_writes_go_on_restore_every_acknowledged_write() {
    const NODES: usize = 2000;
    // Several MB of tree, snapshots every 500-1000 txns: each snapshot's
    // walk spans many slices with pipelined writes applied in between.
    let mut server = TestingServer::start_with(|c| c.snap_count = 1000)
        .await
        .unwrap();
    let mut c = RawClient::session(server.addr(), 30_000).await;
    let data = |round: usize, i: usize| {
        let mut v = format!("r{round}-{i}-").into_bytes();
        v.resize(2048, b'.');
        bytes::Bytes::from(v)
    };
    let creates = (0..NODES)
        .map(|i| {
            zk_proto::Request::Create(zk_proto::CreateRequest {
                path: format!("/f{i}"),
                data: Some(data(0, i)),
                acl: zk_proto::Acl::open_unsafe(),
                flags: CreateMode::Persistent.code(),
            })
        })
        .collect();
    pipelined(&mut c, 1, creates).await;
    let after_creates = std::fs::read_dir(server.data_dir().join("version-2"))
        .unwrap()
        .count();
    for round in 1..=3 {
        let sets = (0..NODES)
            .map(|i| {
                zk_proto::Request::SetData(zk_proto::SetDataRequest {
                    path: format!("/f{i}"),
                    data: Some(data(round, i)),
                    version: -1,
                })
            })
            .collect();
        pipelined(&mut c, (round * NODES + 1) as i32, sets).await;
    }
    let snapshots_during_sets = std::fs::read_dir(server.data_dir().join("version-2"))
        .unwrap()
        .count()
        - after_creates;
    assert!(
        snapshots_during_sets > 0,
        "no snapshot (or log roll) happened"
    );
    server.kill().await;

    server.restart().await.unwrap();
    let mut c = RawClient::session(server.addr(), 30_000).await;
    for i in 0..NODES {
        let reply = c.get(i as i32 + 1, &format!("/f{i}"), false).await;
        match &reply.response {
            Response::GetData(r) => assert_eq!(r.data.as_ref(), Some(&data(3, i)), "/f{i}"),
            other => panic!("/f{i}: {other:?}"),
        }
    }
}
