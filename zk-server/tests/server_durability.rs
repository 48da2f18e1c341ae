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
    let child = Command::new(env!("CARGO_BIN_EXE_zk-server"))
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

#[tokio::test]
async fn kill_dash_nine_of_the_binary_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
             preAllocSize=1024\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    let mut first = spawn_binary(&cfg);
    wait_until_serving(addr).await;
    create_n(addr, 50).await;
    let status = Command::new("kill")
        .args(["-9", &first.0.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let _ = first.0.wait();

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

/// The offset just past the last whole record of a txn log file.
fn end_of_records(log: &[u8]) -> usize {
    let log = bytes::Bytes::copy_from_slice(log);
    let mut at = 16; // the file header
    while let zk_proto::disk::LogRecord::Txn { consumed, .. } =
        zk_proto::disk::decode_log_record(&log.slice(at..))
    {
        at += consumed;
    }
    at
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
