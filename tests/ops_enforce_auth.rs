//! `enforce.auth.enabled=true` with `enforce.auth.schemes=digest`: a client
//! that has not authenticated with digest is refused as Apache 3.8.0
//! refuses it (a bare reply header: its xid, zxid 0, error
//! SessionClosedRequireSaslAuth; then the connection closes), and one
//! that has is served. Each scenario runs against Apache ZooKeeper 3.8.0
//! configured the same way and against our server; the observations must
//! be equal. Skipped (with a notice) when Apache is not installed.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use zk_proto::{
    encode_frame, AuthPacket, ConnectRequest, ConnectResponse, GetDataRequest, Jute, ReplyHeader,
    Request, RequestFrame,
};
use zk_server::config::SecurityConfig;
use zk_server::{Server, ServerConfig};
use zk_testkit::apache::{self, ApacheZk};

const ENFORCE: &str = "enforce.auth.enabled=true\nenforce.auth.schemes=digest\n";

/// What a client sees: each reply header as (xid, err, zxid when the
/// request failed), and whether the server then closed the connection.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    replies: Vec<(i32, i32, Option<i64>)>,
    end: End,
}

struct Raw {
    stream: TcpStream,
}

impl Raw {
    fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut raw = Raw { stream };
        raw.send(&ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout: 30_000,
            session_id: 0,
            passwd: Bytes::from(vec![0u8; 16]),
            read_only: Some(false),
        });
        let response =
            ConnectResponse::from_bytes(raw.receive().expect("a connect response")).unwrap();
        assert!(response.timeout > 0, "session refused");
        raw
    }

    fn send(&mut self, item: &impl Jute) {
        let mut buf = BytesMut::new();
        encode_frame(item, &mut buf);
        self.stream.write_all(&buf).unwrap();
    }

    /// The next frame, or why there is none.
    fn receive(&mut self) -> Result<Bytes, End> {
        let mut len = [0u8; 4];
        match self.stream.read_exact(&mut len) {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset
                ) =>
            {
                return Err(End::Closed)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(End::Silent)
            }
            Err(e) => panic!("reading a reply: {e}"),
        }
        let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
        self.stream.read_exact(&mut body).unwrap();
        Ok(Bytes::from(body))
    }

    /// Sends each request, records each reply; stops at the first request
    /// without one.
    fn run(mut self, requests: Vec<RequestFrame>) -> Seen {
        let mut replies = Vec::new();
        for frame in requests {
            // A write may fail once the server has closed: that is an end too.
            let mut buf = BytesMut::new();
            encode_frame(&frame, &mut buf);
            if self.stream.write_all(&buf).is_err() {
                return Seen {
                    replies,
                    end: End::Closed,
                };
            }
            match self.receive() {
                Ok(bytes) => {
                    let h = ReplyHeader::from_bytes(bytes).unwrap();
                    replies.push((h.xid, h.err, (h.err != 0).then_some(h.zxid)));
                }
                Err(end) => return Seen { replies, end },
            }
        }
        // Nothing more was asked: the connection is either closed or idle.
        self.stream
            .set_read_timeout(Some(Duration::from_millis(1500)))
            .unwrap();
        let end = match self.receive() {
            Ok(_) => panic!("an unexpected frame"),
            Err(end) => end,
        };
        Seen { replies, end }
    }
}

/// How a scenario ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// The server closed the connection.
    Closed,
    /// No answer within the read timeout; the connection stays open.
    Silent,
}

fn get_root(xid: i32) -> RequestFrame {
    RequestFrame::new(
        xid,
        Request::GetData(GetDataRequest {
            path: "/".into(),
            watch: false,
        }),
    )
}

fn add_auth(scheme: &str, auth: &'static [u8]) -> RequestFrame {
    RequestFrame::new(
        zk_proto::xid::AUTH,
        Request::Auth(AuthPacket {
            auth_type: 0,
            scheme: scheme.into(),
            auth: Some(Bytes::from_static(auth)),
        }),
    )
}

fn ping() -> RequestFrame {
    RequestFrame::new(zk_proto::xid::PING, Request::Ping)
}

/// The scenarios, each on a fresh connection.
fn scenarios() -> Vec<(&'static str, Vec<RequestFrame>)> {
    vec![
        ("a read before any addauth", vec![get_root(1), get_root(2)]),
        ("a ping before any addauth", vec![ping()]),
        (
            "a read after addauth digest",
            vec![add_auth("digest", b"alice:secret"), get_root(1)],
        ),
        (
            "addauth with a scheme nobody serves",
            vec![add_auth("kerberos-ish", b"x"), get_root(1)],
        ),
    ]
}

fn observe(addr: SocketAddr) -> Vec<(&'static str, Seen)> {
    scenarios()
        .into_iter()
        .map(|(name, requests)| (name, Raw::connect(addr).run(requests)))
        .collect()
}

#[test]
fn an_unauthenticated_client_is_refused_as_apache_refuses_it() {
    if !apache::installed() {
        eprintln!("enforce.auth: skipped, Apache ZooKeeper is not installed");
        return;
    }
    let apache = ApacheZk::start(ENFORCE).expect("Apache ZooKeeper starts");
    let expected = observe(apache.addr());

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = std::env::temp_dir().join(format!(
        "zk-ops-enforce-{}-{}",
        std::process::id(),
        apache::free_port().unwrap()
    ));
    let config = ServerConfig {
        client_port_address: Some("127.0.0.1".parse().unwrap()),
        security: SecurityConfig {
            enforce_auth_enabled: true,
            enforce_auth_schemes: vec!["digest".into()],
            ..SecurityConfig::default()
        },
        ..ServerConfig::standalone(&dir, 0)
    };
    let ours = runtime
        .block_on(Server::start(config))
        .expect("our server starts");
    let actual = observe(ours.local_addr());
    runtime.block_on(ours.shutdown());
    let _ = std::fs::remove_dir_all(&dir);

    // What Apache does, spelled out: refused with -124 at zxid 0, closed.
    assert_eq!(
        expected[0].1,
        Seen {
            replies: vec![(1, -124, Some(0))],
            end: End::Closed
        },
        "Apache's behaviour changed?"
    );
    for ((name, apache_seen), (_, our_seen)) in expected.iter().zip(&actual) {
        assert_eq!(our_seen, apache_seen, "{name}");
    }
}
