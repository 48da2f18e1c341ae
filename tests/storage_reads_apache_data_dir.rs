//! Golden test: our storage layer reads a data dir Apache ZooKeeper 3.8
//! wrote. A raw client makes a few writes, the server is killed, then our
//! log reader must find those txns with the right types and paths, our
//! snapshot reader must accept Apache's `snapshot.0`, and recovery must
//! replay the log cleanly (the preallocated zeros are not a torn tail).
//!
//! Skipped (with a notice) when the Debian `zookeeper` package is missing.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use zk_proto::disk::{AclCacheEntry, DataNode, SnapshotSession};
use zk_proto::txn::Txn;
use zk_proto::{
    encode_frame, Acl, ConnectRequest, ConnectResponse, CreateRequest, DecodeError, DeleteRequest,
    Jute, Reader, ReplyHeader, Request, RequestFrame, SetDataRequest, TxnEntry,
};
use zk_server::storage::{read_newest_snapshot, recover, TxnLogReader};
use zk_testkit::apache::ApacheZk;

/// A blocking client that speaks just enough of the protocol.
struct RawClient {
    stream: TcpStream,
    next_xid: i32,
}

impl RawClient {
    fn connect(zk: &ApacheZk) -> (RawClient, i64) {
        let stream = TcpStream::connect_timeout(&zk.addr(), Duration::from_secs(5)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut client = RawClient {
            stream,
            next_xid: 1,
        };
        client.send(&ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout: 30_000,
            session_id: 0,
            passwd: Bytes::from(vec![0u8; 16]),
            read_only: Some(false),
        });
        let response = ConnectResponse::from_bytes(client.receive()).unwrap();
        assert!(response.timeout > 0, "session refused: {response:?}");
        (client, response.session_id)
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

    /// Sends a request and asserts that it succeeded.
    fn call(&mut self, request: Request) {
        let xid = self.next_xid;
        self.next_xid += 1;
        self.send(&RequestFrame::new(xid, request));
        let header = ReplyHeader::from_bytes(self.receive()).unwrap();
        assert_eq!(header.xid, xid);
        assert_eq!(header.err, 0, "request {xid} failed");
    }
}

fn create(path: &str, data: &'static [u8]) -> Request {
    Request::Create(CreateRequest {
        path: path.into(),
        data: Some(Bytes::from_static(data)),
        acl: Acl::open_unsafe(),
        flags: 0,
    })
}

/// The paths of a snapshot body: sessions, ACL cache, nodes until "/".
fn snapshot_paths(r: &mut Reader, _zxid: i64) -> Result<Vec<String>, DecodeError> {
    Vec::<SnapshotSession>::decode(r)?;
    Vec::<AclCacheEntry>::decode(r)?;
    let mut paths = Vec::new();
    loop {
        let path = String::decode(r)?;
        if path == "/" {
            return Ok(paths);
        }
        DataNode::decode(r)?;
        paths.push(path);
    }
}

/// A txn as (type, path) for comparison; path empty for session txns.
fn summary(entry: &TxnEntry) -> (i32, String) {
    let path = match &entry.txn {
        Txn::Create(t) | Txn::Create2(t) => t.path.clone(),
        Txn::SetData(t) => t.path.clone(),
        Txn::Delete(t) => t.path.clone(),
        _ => String::new(),
    };
    (entry.header.txn_type, path)
}

#[test]
fn storage_reads_apache_data_dir() {
    if !zk_testkit::oracle::require(zk_testkit::oracle::Oracle::ApacheZooKeeper) {
        return;
    }
    let mut zk = ApacheZk::start("").expect("Apache ZooKeeper starts");
    let (mut client, session_id) = RawClient::connect(&zk);
    client.call(create("/golden", b"v1"));
    client.call(Request::SetData(SetDataRequest {
        path: "/golden".into(),
        data: Some(Bytes::from_static(b"v2")),
        version: -1,
    }));
    client.call(create("/golden/child", b"c"));
    client.call(Request::Delete(DeleteRequest {
        path: "/golden/child".into(),
        version: -1,
    }));
    client.call(Request::CloseSession);
    zk.stop();
    let data_dir = zk.data_dir();

    let entries: Vec<TxnEntry> = TxnLogReader::open(&data_dir, 0)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let expected = vec![
        (-10, String::new()),
        (1, "/golden".to_string()),
        (5, "/golden".to_string()),
        (1, "/golden/child".to_string()),
        (2, "/golden/child".to_string()),
        (-11, String::new()),
    ];
    assert_eq!(entries.iter().map(summary).collect::<Vec<_>>(), expected);
    assert!(entries.iter().all(|e| e.header.client_id == session_id));
    assert!(
        entries
            .windows(2)
            .all(|w| w[1].header.zxid == w[0].header.zxid + 1),
        "consecutive zxids"
    );
    match &entries[2].txn {
        Txn::SetData(t) => {
            assert_eq!(t.data.as_deref(), Some(&b"v2"[..]));
            assert_eq!(t.version, 1, "setData logs the new version");
        }
        other => panic!("expected setData, got {other:?}"),
    }

    let snapshot = read_newest_snapshot(&data_dir, snapshot_paths)
        .unwrap()
        .expect("Apache's snapshot.0 is valid");
    assert_eq!(snapshot.zxid, 0);
    assert_eq!(
        snapshot.value,
        vec!["", "/zookeeper", "/zookeeper/config", "/zookeeper/quota"]
    );

    let (replayed, report) = recover(
        &data_dir,
        &data_dir,
        |r, zxid| snapshot_paths(r, zxid).map(|_| Vec::new()),
        Vec::new,
        |seen: &mut Vec<i64>, e: &TxnEntry| seen.push(e.header.zxid),
    )
    .unwrap();
    assert_eq!(report.snapshot_zxid, Some(0));
    assert_eq!(replayed.len(), entries.len());
    assert_eq!(report.truncated_files(), 0);
    assert_eq!(report.last_zxid, entries.last().unwrap().header.zxid);
}
