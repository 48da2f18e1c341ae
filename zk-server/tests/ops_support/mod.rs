//! Helpers for the operator tests (ops_*.rs): a plain HTTP GET, our
//! server with its HTTP endpoints on free ports, a minimal raw client to
//! make some traffic, and Apache ZooKeeper 3.8.0 with its AdminServer on
//! (the Debian package leaves the servlet API off Apache's class path, so
//! it is added here).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use zk_proto::{
    encode_frame, Acl, ConnectRequest, ConnectResponse, CreateRequest, GetDataRequest, Jute,
    ReplyHeader, Request, RequestFrame,
};
use zk_server::config::{FourLetterWhitelist, OpsConfig};
use zk_server::{Server, ServerConfig};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET path` with `Connection: close`: (status, content type, body).
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, content_type, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        body = &rest[n + 2..];
    }
    out
}

/// A command's JSON from an AdminServer.
pub fn admin_json(addr: SocketAddr, command: &str) -> serde_json::Value {
    let (status, _, body) = http_get(addr, &format!("/commands/{command}"));
    assert_eq!(status, 200, "{command}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{command}: {e}: {body}"))
}

/// Our standalone server with the AdminServer and the Prometheus endpoint
/// on free 127.0.0.1 ports, every 4lw allowed.
pub async fn start_ours(dir: &Path) -> Server {
    let mut ops = OpsConfig::zoo_cfg_default().with_prometheus("127.0.0.1".parse().unwrap(), 0);
    ops.admin.address = "127.0.0.1".parse().unwrap();
    ops.admin.port = 0;
    let config = ServerConfig {
        client_port_address: Some("127.0.0.1".parse().unwrap()),
        four_letter_whitelist: FourLetterWhitelist::All,
        tick_time_ms: 2000,
        ops,
        ..ServerConfig::standalone(dir, 0)
    };
    Server::start(config).await.expect("our server starts")
}

/// A blocking client speaking just enough of the protocol.
pub struct RawClient {
    stream: TcpStream,
    xid: i32,
}

impl RawClient {
    pub fn connect(addr: SocketAddr) -> RawClient {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut c = RawClient { stream, xid: 0 };
        c.send(&ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout: 30_000,
            session_id: 0,
            passwd: Bytes::from(vec![0u8; 16]),
            read_only: Some(false),
        });
        let r = ConnectResponse::from_bytes(c.receive()).unwrap();
        assert!(r.timeout > 0);
        c
    }

    fn send(&mut self, item: &impl Jute) {
        let mut buf = BytesMut::new();
        encode_frame(item, &mut buf);
        self.stream.write_all(&buf).unwrap();
    }

    fn receive(&mut self) -> Bytes {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).unwrap();
        let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
        self.stream.read_exact(&mut body).unwrap();
        Bytes::from(body)
    }

    /// Sends a request; returns the reply's error code (events skipped).
    pub fn call(&mut self, request: Request) -> i32 {
        self.xid += 1;
        let xid = self.xid;
        self.send(&RequestFrame::new(xid, request));
        loop {
            let h = ReplyHeader::from_bytes(self.receive()).unwrap();
            if h.xid == xid {
                return h.err;
            }
        }
    }

    pub fn create(&mut self, path: &str, ephemeral: bool) -> i32 {
        self.call(Request::Create(CreateRequest {
            path: path.into(),
            data: Some(Bytes::from_static(b"data")),
            acl: Acl::open_unsafe(),
            flags: if ephemeral { 1 } else { 0 },
        }))
    }

    pub fn get_watched(&mut self, path: &str) -> i32 {
        self.call(Request::GetData(GetDataRequest {
            path: path.into(),
            watch: true,
        }))
    }
}

/// Some traffic: a node, an ephemeral child, a data watch; the client is
/// returned so its session (and watch) stay.
pub fn make_traffic(addr: SocketAddr) -> RawClient {
    let mut c = RawClient::connect(addr);
    assert_eq!(c.create("/ops", false), 0);
    assert_eq!(c.create("/ops/e", true), 0);
    assert_eq!(c.get_watched("/ops"), 0);
    c
}

/// Apache ZooKeeper 3.8.0 standalone with its AdminServer; killed on drop
/// (a shell guard kills the JVM if this process dies first).
pub struct ApacheWithAdmin {
    guard: Child,
    lifeline: Option<ChildStdin>,
    pub client: SocketAddr,
    pub admin: SocketAddr,
    dir: PathBuf,
}

const JAR: &str = "/usr/share/java/zookeeper.jar";
const SERVLET_API: &str = "/usr/share/java/servlet-api.jar";

impl ApacheWithAdmin {
    /// None (with a notice) when the Debian packages are missing.
    pub fn start(test: &str) -> Option<ApacheWithAdmin> {
        Self::start_with(test, "", &[])
    }

    /// With `extra` zoo.cfg lines and extra JVM flags.
    pub fn start_with(test: &str, extra: &str, jvm_flags: &[String]) -> Option<ApacheWithAdmin> {
        if !Path::new(JAR).exists() || !Path::new(SERVLET_API).exists() {
            eprintln!("{test}: skipped, Apache ZooKeeper (with the servlet API) is not installed");
            return None;
        }
        let (client, admin) = (free_port(), free_port());
        let dir =
            std::env::temp_dir().join(format!("zk-ops-apache-{}-{client}", std::process::id()));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let cfg = dir.join("zoo.cfg");
        std::fs::write(
            &cfg,
            format!(
                "tickTime=2000\ndataDir={}\nclientPort={client}\nclientPortAddress=127.0.0.1\n\
                 admin.enableServer=true\nadmin.serverAddress=127.0.0.1\nadmin.serverPort={admin}\n\
                 4lw.commands.whitelist=*\n{extra}\n",
                dir.join("data").display()
            ),
        )
        .unwrap();
        let script = r#""$@" </dev/null >>"$ZK_LOG" 2>&1 & pid=$!; echo $pid; read _ignored; kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null; exit 0"#;
        let mut guard = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("zk-guard")
            .arg("java")
            .arg("-Xmx256m")
            .args(jvm_flags)
            .arg("-cp")
            .arg(format!("/etc/zookeeper/conf:{JAR}:{SERVLET_API}"))
            .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
            .arg(&cfg)
            .env("ZK_LOG", dir.join("server.log"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lifeline = guard.stdin.take();
        let mut line = String::new();
        BufReader::new(guard.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let zk = ApacheWithAdmin {
            guard,
            lifeline,
            client: SocketAddr::from(([127, 0, 0, 1], client)),
            admin: SocketAddr::from(([127, 0, 0, 1], admin)),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let serving = |addr| {
            TcpStream::connect(addr).is_ok_and(|mut s| {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut out = String::new();
                s.write_all(b"srvr").is_ok()
                    && s.read_to_string(&mut out).is_ok()
                    && out.contains("Mode:")
            })
        };
        while TcpStream::connect(zk.admin).is_err() || !serving(zk.client) {
            assert!(Instant::now() < deadline, "Apache did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(zk)
    }
}

impl Drop for ApacheWithAdmin {
    fn drop(&mut self) {
        drop(self.lifeline.take());
        let _ = self.guard.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Sends a four-letter word and reads the whole answer.
pub fn four_letter_word(addr: SocketAddr, word: &str) -> String {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(word.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}
