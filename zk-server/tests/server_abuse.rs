//! Hostile clients (issue 10): each abuse runs against a real `zk-server`
//! process while another client keeps working. The bounds are behaviour,
//! not speed: the server's RSS grows by less than 1 GB, and the other
//! client's requests (and a new handshake) are answered within 1 s while
//! the abuse goes on.
//!
//! `ZK_ABUSE_BIG=1` runs the multiRead case at full size (1,500 nodes of
//! 1 MB: 1.5 GB of state); by default its nodes are 2 KB, which is still
//! past the reply limit.

mod server_common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use server_common::{err_of, RawClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zk_proto::{
    encode_frame, ConnectResponse, CreateMode, ErrorCode, ExistsRequest, GetDataRequest, Jute,
    MultiOp, MultiRequest, OpCode, Request, RequestFrame, Response,
};

/// Growth of the server's RSS the abuse may cause.
const RSS_GROWTH_LIMIT: u64 = 1 << 30;
/// How long another client may wait for an answer during the abuse.
const ANSWER_LIMIT: Duration = Duration::from_secs(1);
/// How long each abuse runs.
const ABUSE_FOR: Duration = Duration::from_secs(6);
/// Just under jute.maxbuffer with the request's header and path.
const ONE_MB: usize = 1_000_000;

/// A `zk-server` process, killed when dropped.
struct Proc {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Starts a standalone server with `extra` zoo.cfg lines and waits
    /// until it answers `ruok`.
    async fn start(extra: &str) -> Proc {
        let dir = tempfile::tempdir().unwrap();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let cfg = dir.path().join("zoo.cfg");
        std::fs::write(
            &cfg,
            format!(
                "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
                 maxClientCnxns=0\n4lw.commands.whitelist=*\nforceSync=no\n{extra}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = spawn(&cfg);
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let proc = Proc {
            child,
            addr,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !answers_ruok(addr).await {
            assert!(Instant::now() < deadline, "server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        proc
    }

    /// The resident set size, from /proc.
    fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("server process gone");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .expect("VmRSS")
            * 1024
    }
}

/// True once the server answers `ruok` with `imok`.
async fn answers_ruok(addr: SocketAddr) -> bool {
    let Ok(Ok(mut stream)) =
        tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(addr)).await
    else {
        return false;
    };
    if stream.write_all(b"ruok").await.is_err() {
        return false;
    }
    let mut out = String::new();
    let read = tokio::time::timeout(Duration::from_secs(2), stream.read_to_string(&mut out)).await;
    matches!(read, Ok(Ok(_))) && out == "imok"
}

/// The process-level tests measure RSS and latency: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn spawn(cfg: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_zk-server"))
        .arg(cfg)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn zk-server")
}

fn frame(xid: i32, request: Request) -> BytesMut {
    let mut buf = BytesMut::new();
    encode_frame(&RequestFrame::new(xid, request), &mut buf);
    buf
}

fn get_data(path: &str) -> Request {
    Request::GetData(GetDataRequest {
        path: path.into(),
        watch: false,
    })
}

fn exists(path: &str) -> Request {
    Request::Exists(ExistsRequest {
        path: path.into(),
        watch: false,
    })
}

/// A session's raw socket after the handshake (for the abusers).
async fn session_socket(addr: SocketAddr) -> TcpStream {
    let c = RawClient::session(addr, 30_000).await;
    c.stream
}

/// Writes `batch` over and over until `until`; the writes block once the
/// server stops reading, which is the point.
async fn flood(mut stream: TcpStream, batch: Bytes, until: Instant) -> TcpStream {
    while Instant::now() < until {
        let left = until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.write_all(&batch)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => break, // closed by the server
            Err(_) => break,     // the server stopped reading us
        }
    }
    stream
}

/// What another client saw while the abuse ran.
#[derive(Debug, Default)]
struct Watch {
    slowest: Duration,
    answered: u32,
    peak_rss: u64,
}

/// Until `until`: another session reads `/small` every 50 ms, and every
/// second a new session is opened; every answer must come within
/// [`ANSWER_LIMIT`]. Samples the server's RSS meanwhile.
async fn keep_working(proc: &Proc, until: Instant) -> Watch {
    let mut c = RawClient::session(proc.addr, 30_000).await;
    let mut watch = Watch::default();
    let mut xid = 1;
    let mut last_handshake = Instant::now();
    while Instant::now() < until {
        let asked = Instant::now();
        let reply = tokio::time::timeout(ANSWER_LIMIT, c.call(xid, get_data("/small")))
            .await
            .unwrap_or_else(|_| panic!("getData not answered within {ANSWER_LIMIT:?}"));
        assert_eq!(reply.header.err, 0);
        watch.slowest = watch.slowest.max(asked.elapsed());
        watch.answered += 1;
        xid += 1;
        if last_handshake.elapsed() >= Duration::from_secs(1) {
            let asked = Instant::now();
            let fresh = tokio::time::timeout(ANSWER_LIMIT, RawClient::session(proc.addr, 10_000))
                .await
                .unwrap_or_else(|_| panic!("new session not made within {ANSWER_LIMIT:?}"));
            drop(fresh);
            watch.slowest = watch.slowest.max(asked.elapsed());
            last_handshake = Instant::now();
        }
        watch.peak_rss = watch.peak_rss.max(proc.rss());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    watch
}

/// Creates `/small` and returns the server's RSS once it is set up.
async fn prepare(proc: &Proc, c: &mut RawClient) -> u64 {
    let r = c.create(1, "/small", b"x", CreateMode::Persistent).await;
    assert_eq!(r.header.err, 0);
    proc.rss()
}

fn assert_bounded(baseline: u64, watch: &Watch) {
    let growth = watch.peak_rss.saturating_sub(baseline);
    eprintln!("RSS growth {} MB, {watch:?}", growth >> 20);
    assert!(
        growth < RSS_GROWTH_LIMIT,
        "RSS grew by {} MB (baseline {} MB): {watch:?}",
        growth >> 20,
        baseline >> 20
    );
    assert!(watch.answered > 10, "{watch:?}");
}

#[tokio::test]
async fn a_request_in_the_connect_segment_is_answered_in_order() {
    let server = zk_server::testing::TestingServer::start().await.unwrap();
    let mut c = RawClient::open(server.addr()).await;
    let mut segment = BytesMut::new();
    encode_frame(&server_common::connect_request(10_000), &mut segment);
    segment.extend_from_slice(&frame(1, exists("/zookeeper")));
    segment.extend_from_slice(&frame(2, exists("/absent")));
    segment.extend_from_slice(&frame(3, get_data("/zookeeper")));
    c.write(&segment).await;

    let handshake = c.recv_frame().await.expect("connect response");
    let resp = ConnectResponse::from_bytes(handshake).unwrap();
    assert!(resp.timeout > 0 && resp.session_id != 0, "{resp:?}");
    let first = c.reply_to(1, OpCode::Exists).await;
    assert_eq!(first.header.err, 0);
    let second = c.recv(OpCode::Exists).await.expect("reply 2");
    let server_common::Incoming::Reply(second) = second else {
        panic!("{second:?}")
    };
    assert_eq!(
        (second.header.xid, err_of(&second)),
        (2, Some(ErrorCode::NoNode))
    );
    let third = c.recv(OpCode::GetData).await.expect("reply 3");
    assert!(
        matches!(&third, server_common::Incoming::Reply(r) if r.header.xid == 3 && r.header.err == 0),
        "{third:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_its_1mb_replies_is_stopped_then_closed() {
    let _serial = SERIAL.lock().await;
    let proc = Proc::start("clientStuckTimeoutMs=3000").await;
    let mut c = RawClient::session(proc.addr, 30_000).await;
    let baseline = prepare(&proc, &mut c).await;
    let r = c
        .create(2, "/big", &vec![7u8; ONE_MB], CreateMode::Persistent)
        .await;
    assert_eq!(r.header.err, 0);

    let attacker = session_socket(proc.addr).await;
    let mut batch = BytesMut::new();
    for xid in 1..=100 {
        batch.extend_from_slice(&frame(xid, get_data("/big")));
    }
    let until = Instant::now() + ABUSE_FOR;
    let abuse = tokio::spawn(flood(attacker, batch.freeze(), until));
    let watch = keep_working(&proc, until).await;
    let mut attacker = abuse.await.unwrap();
    assert_bounded(baseline, &watch);

    // Stuck past clientStuckTimeoutMs: the server closes it. Reading now
    // drains what was queued, then finds the end of the stream.
    let mut sink = vec![0u8; 1 << 20];
    let closed = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match attacker.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the stuck connection was never closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_small_requests_never_read_is_bounded() {
    let _serial = SERIAL.lock().await;
    let proc = Proc::start("").await;
    let mut c = RawClient::session(proc.addr, 30_000).await;
    let baseline = prepare(&proc, &mut c).await;

    let attacker = session_socket(proc.addr).await;
    let mut batch = BytesMut::new();
    for xid in 1..=2000 {
        batch.extend_from_slice(&frame(xid, exists("/small")));
    }
    let until = Instant::now() + ABUSE_FOR;
    let abuse = tokio::spawn(flood(attacker, batch.freeze(), until));
    let watch = keep_working(&proc, until).await;
    drop(abuse.await.unwrap());
    assert_bounded(baseline, &watch);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_that_reads_its_replies_is_bounded() {
    let _serial = SERIAL.lock().await;
    let proc = Proc::start("").await;
    let mut c = RawClient::session(proc.addr, 30_000).await;
    let baseline = prepare(&proc, &mut c).await;

    let attacker = session_socket(proc.addr).await;
    let (mut rd, wr) = attacker.into_split();
    let reader = tokio::spawn(async move {
        let mut sink = vec![0u8; 1 << 16];
        let mut total = 0u64;
        while let Ok(n @ 1..) = rd.read(&mut sink).await {
            total += n as u64;
        }
        total
    });
    let mut batch = BytesMut::new();
    for xid in 1..=2000 {
        batch.extend_from_slice(&frame(xid, exists("/small")));
    }
    let batch = batch.freeze();
    let until = Instant::now() + ABUSE_FOR;
    let writer = tokio::spawn(async move {
        let mut wr = wr;
        while Instant::now() < until {
            if wr.write_all(&batch).await.is_err() {
                break;
            }
        }
        wr
    });
    let watch = keep_working(&proc, until).await;
    let wr = writer.await.unwrap();
    drop(wr);
    reader.abort();
    assert_bounded(baseline, &watch);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_read_past_the_reply_limit_fails_and_the_session_goes_on() {
    let big = std::env::var_os("ZK_ABUSE_BIG").is_some();
    let (count, size): (i32, usize) = if big { (1500, ONE_MB) } else { (1500, 2048) };
    let _serial = SERIAL.lock().await;
    let proc = Proc::start("").await;
    let mut c = RawClient::session(proc.addr, 30_000).await;
    let baseline = prepare(&proc, &mut c).await;
    let data = vec![3u8; size];
    // Pipelined creates: one round trip per 100.
    for chunk in 0..count / 100 {
        let mut batch = BytesMut::new();
        for i in 0..100 {
            let n = chunk * 100 + i;
            let request = Request::Create(zk_proto::CreateRequest {
                path: format!("/n{n}"),
                data: Some(Bytes::copy_from_slice(&data)),
                acl: zk_proto::Acl::open_unsafe(),
                flags: CreateMode::Persistent.code(),
            });
            batch.extend_from_slice(&frame(10 + n, request));
        }
        c.write(&batch).await;
        let last = 10 + chunk * 100 + 99;
        let r = c.reply_to(last, OpCode::Create).await;
        assert_eq!(r.header.err, 0);
    }
    let loaded = proc.rss();

    let ops = (0..count)
        .map(|n| {
            MultiOp::GetData(GetDataRequest {
                path: format!("/n{n}"),
                watch: false,
            })
        })
        .collect();
    let asked = Instant::now();
    let reply = c.call(5000, Request::MultiRead(MultiRequest { ops })).await;
    assert_eq!(err_of(&reply), Some(ErrorCode::MarshallingError));
    assert!(asked.elapsed() < ANSWER_LIMIT, "{:?}", asked.elapsed());
    let growth = proc.rss().saturating_sub(loaded);
    assert!(
        growth < RSS_GROWTH_LIMIT,
        "RSS grew by {} MB answering (baseline {} MB)",
        growth >> 20,
        baseline >> 20
    );
    // The session is still good.
    let after = c.call(5001, get_data("/small")).await;
    assert!(matches!(after.response, Response::GetData(_)), "{after:?}");
}

/// Asks a four-letter word and reads the whole answer.
async fn ask(addr: SocketAddr, word: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(word.as_bytes()).await.expect("send word");
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(60), stream.read_to_string(&mut out))
        .await
        .expect("four-letter answer timed out")
        .expect("read answer");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_four_letter_listings_do_not_stall_other_clients() {
    const WATCHES: i32 = 200_000;
    let _serial = SERIAL.lock().await;
    let proc = Proc::start("").await;
    let mut c = RawClient::session(proc.addr, 30_000).await;
    prepare(&proc, &mut c).await;
    // 200k exists watches on absent paths, pipelined.
    let mut watcher = RawClient::session(proc.addr, 30_000).await;
    for chunk in 0..WATCHES / 2000 {
        let mut batch = BytesMut::new();
        for i in 0..2000 {
            let xid = chunk * 2000 + i + 1;
            let request = Request::Exists(ExistsRequest {
                path: format!("/watched/{xid}"),
                watch: true,
            });
            batch.extend_from_slice(&frame(xid, request));
        }
        watcher.write(&batch).await;
        watcher.reply_to((chunk + 1) * 2000, OpCode::Exists).await;
    }
    let wchs = ask(proc.addr, "wchs").await;
    assert!(wchs.contains(&format!("Total watches:{WATCHES}")), "{wchs}");

    // Listings asked back to back, two at a time, while another client works.
    let until = Instant::now() + ABUSE_FOR;
    let addr = proc.addr;
    let listers: Vec<_> = ["wchp", "wchc"]
        .into_iter()
        .map(|word| {
            tokio::spawn(async move {
                let mut lines = 0;
                while Instant::now() < until {
                    lines = ask(addr, word).await.lines().count();
                }
                lines
            })
        })
        .collect();
    let watch = keep_working(&proc, until).await;
    for lister in listers {
        let lines = lister.await.unwrap();
        assert!(lines > WATCHES as usize, "a listing of {lines} lines");
    }
    eprintln!("{watch:?}");
    assert!(watch.answered > 10, "{watch:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_that_never_reads_its_events_is_closed_past_the_hard_cap() {
    // Budget 4 KiB: the hard cap (4x) is 16 KiB of unsent events.
    let server = zk_server::testing::TestingServer::start_with(|c| {
        c.client_max_unsent_bytes = 4096;
    })
    .await
    .unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.addr()).await.unwrap();
    let mut watcher = RawClient::open(server.addr()).await;
    watcher.stream = stream;
    watcher
        .handshake(&server_common::connect_request(30_000))
        .await
        .expect("session");
    let mode = zk_proto::AddWatchMode::PersistentRecursive.code();
    let added = watcher
        .call(
            1,
            Request::AddWatch(zk_proto::AddWatchRequest {
                path: "/".into(),
                mode,
            }),
        )
        .await;
    assert_eq!(added.header.err, 0);

    // Writes fire an event each at the watcher, which reads nothing.
    let mut writer = RawClient::session(server.addr(), 30_000).await;
    let path = format!("/{}", "p".repeat(200));
    let created = writer.create(1, &path, b"", CreateMode::Persistent).await;
    assert_eq!(created.header.err, 0);
    let mut closed = false;
    for round in 0..200 {
        let mut batch = BytesMut::new();
        for i in 0..100 {
            let request = Request::SetData(zk_proto::SetDataRequest {
                path: path.clone(),
                data: None,
                version: -1,
            });
            batch.extend_from_slice(&frame(round * 100 + i + 2, request));
        }
        writer.write(&batch).await;
        writer.reply_to(round * 100 + 101, OpCode::SetData).await;
        if server_common::four_letter(server.addr(), "cons")
            .await
            .lines()
            .filter(|l| l.contains("sid="))
            .count()
            == 1
        {
            closed = true;
            break;
        }
    }
    assert!(closed, "the watcher's connection is still open");
}
