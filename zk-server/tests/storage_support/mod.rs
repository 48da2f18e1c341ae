//! Helpers shared by the `storage_*` tests: txn entries built from zk-proto
//! records (no dependency on the db module), raw log files laid out byte by
//! byte, and a stand-in snapshot body.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use zk_proto::data::StatPersisted;
use zk_proto::disk::{
    encode_log_record, zxid_file_name, AclCacheEntry, DataNode, FileHeader, SnapshotSession,
};
use zk_proto::txn::CreateTxn;
use zk_proto::{Acl, DecodeError, Jute, OpCode, Reader, Txn, TxnEntry, TxnHeader};

/// A create of `/n<zxid>` logged at `zxid`.
pub fn entry(zxid: i64) -> TxnEntry {
    TxnEntry {
        header: TxnHeader {
            client_id: 0x1234,
            cxid: zxid as i32,
            zxid,
            time: 1_700_000_000_000 + zxid,
            txn_type: OpCode::Create.code(),
        },
        txn: Txn::Create(CreateTxn {
            path: format!("/n{zxid}"),
            data: Some(Bytes::from(format!("data of {zxid}"))),
            acl: Acl::open_unsafe(),
            ephemeral: false,
            parent_cversion: zxid as i32,
        }),
        digest: None,
    }
}

pub fn entry_bytes(zxid: i64) -> Bytes {
    entry(zxid).to_bytes()
}

pub fn v2(dir: &Path) -> PathBuf {
    dir.join("version-2")
}

pub fn log_path(dir: &Path, zxid: i64) -> PathBuf {
    v2(dir).join(zxid_file_name("log", zxid))
}

pub fn snapshot_path(dir: &Path, zxid: i64) -> PathBuf {
    v2(dir).join(zxid_file_name("snapshot", zxid))
}

/// A log file's bytes and where each record starts: header, then one
/// record per zxid, then `padding` zero bytes.
pub struct RawLog {
    pub bytes: Vec<u8>,
    pub record_offsets: Vec<usize>,
}

pub fn raw_log(zxids: impl IntoIterator<Item = i64>, padding: usize) -> RawLog {
    let mut buf = BytesMut::new();
    FileHeader::txn_log().encode(&mut buf);
    let mut record_offsets = Vec::new();
    for zxid in zxids {
        record_offsets.push(buf.len());
        encode_log_record(&entry_bytes(zxid), &mut buf);
    }
    let mut bytes = buf.to_vec();
    bytes.resize(bytes.len() + padding, 0);
    RawLog {
        bytes,
        record_offsets,
    }
}

/// Writes `<dir>/version-2/log.<first zxid>` holding `zxids`.
pub fn write_raw_log(
    dir: &Path,
    zxids: std::ops::RangeInclusive<i64>,
    padding: usize,
) -> (PathBuf, RawLog) {
    std::fs::create_dir_all(v2(dir)).unwrap();
    let path = log_path(dir, *zxids.start());
    let raw = raw_log(zxids, padding);
    std::fs::write(&path, &raw.bytes).unwrap();
    (path, raw)
}

/// The zxids of every txn in the logs of `dir` from `from` on.
pub fn logged_zxids(dir: &Path, from: i64) -> Vec<i64> {
    zk_server::storage::TxnLogReader::open(dir, from)
        .unwrap()
        .map(|e| e.unwrap().header.zxid)
        .collect()
}

/// A snapshot body as Apache lays it out: one session, an empty ACL
/// cache, the root node and one child named `/<label>`, then `"/"`.
pub fn snapshot_body(label: &str) -> Bytes {
    let mut b = BytesMut::new();
    vec![SnapshotSession {
        session_id: 7,
        timeout: 30_000,
    }]
    .encode(&mut b);
    Vec::<AclCacheEntry>::new().encode(&mut b);
    for path in [String::new(), format!("/{label}")] {
        path.encode(&mut b);
        DataNode {
            data: Some(Bytes::new()),
            acl_ref: -1,
            stat: StatPersisted::default(),
        }
        .encode(&mut b);
    }
    "/".to_string().encode(&mut b);
    b.freeze()
}

/// What a stand-in body holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    pub zxid: i64,
    pub sessions: Vec<SnapshotSession>,
    pub paths: Vec<String>,
}

/// Walks a snapshot body: sessions, ACL cache, nodes until `"/"`.
pub fn load_body(r: &mut Reader, zxid: i64) -> Result<Body, DecodeError> {
    let sessions = Vec::<SnapshotSession>::decode(r)?;
    let _acls = Vec::<AclCacheEntry>::decode(r)?;
    let mut paths = Vec::new();
    loop {
        let path = String::decode(r)?;
        if path == "/" {
            return Ok(Body {
                zxid,
                sessions,
                paths,
            });
        }
        DataNode::decode(r)?;
        paths.push(path);
    }
}

/// Waits (bounded) until the watch shows at least `zxid`.
pub async fn wait_durable(rx: &mut tokio::sync::watch::Receiver<i64>, zxid: i64) {
    tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|d| *d >= zxid))
        .await
        .expect("durable zxid did not advance in time")
        .expect("txn log writer stopped");
}
