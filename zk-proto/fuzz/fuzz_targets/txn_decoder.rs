//! Decodes the input as what a server reads back from disk or from its
//! leader: a txn entry (log record payload, PROPOSAL, INFORM), a txn-log
//! record frame, and the snapshot records. Oracles: no panic; a txn entry
//! that decodes survives a re-encode unchanged; a log record never claims
//! more bytes than it was given.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use zk_proto::disk::{self, AclCacheEntry, DataNode, FileHeader, LogRecord, ZxidDigest};
use zk_proto::{Jute, Reader, TxnEntry};

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);

    if let Ok(entry) = TxnEntry::from_bytes(bytes.clone()) {
        assert_eq!(TxnEntry::from_bytes(entry.to_bytes()), Ok(entry));
    }

    if let LogRecord::Txn {
        txn_bytes,
        consumed,
    } = disk::decode_log_record(&bytes)
    {
        assert!(consumed <= bytes.len());
        assert_eq!(consumed, txn_bytes.len() + 13);
        let _ = TxnEntry::from_bytes(txn_bytes);
    }

    // A snapshot body: header, then nodes and ACL cache entries.
    let mut r = Reader::new(bytes);
    let _ = FileHeader::decode(&mut r);
    while !r.is_empty() {
        let before = r.remaining();
        let _ = AclCacheEntry::decode(&mut r);
        let _ = String::decode(&mut r).and_then(|_| DataNode::decode(&mut r));
        let _ = ZxidDigest::decode(&mut r);
        if r.remaining() == before {
            break;
        }
    }
});
