//! On-disk framing: txn-log and snapshot file headers, the txn-log record
//! frame with its Adler-32 checksum, and the records of a snapshot
//! (ZAB.md §9). Pure byte formats; reading and writing files is the
//! server's business.

use bytes::{Buf, BufMut, Bytes};

use crate::data::{Acl, StatPersisted};
use crate::jute::{DecodeError, Jute, Reader};
use crate::record;

/// "ZKLG": the magic number of a txn log file.
pub const TXN_LOG_MAGIC: i32 = 0x5A4B_4C47;
/// "ZKSN": the magic number of a snapshot file.
pub const SNAPSHOT_MAGIC: i32 = 0x5A4B_534E;
/// The file format version both kinds of file carry.
pub const FILE_VERSION: i32 = 2;
/// The marker byte after every txn-log record.
pub const RECORD_END: u8 = b'B';
/// What Apache writes after the nodes of a SNAP sync stream.
pub const SNAP_SYNC_SIGNATURE: &str = "BenWasHere";

record! {
    /// The 16-byte header of txn-log and snapshot files.
    pub struct FileHeader {
        pub magic: i32,
        pub version: i32,
        pub dbid: i64,
    }

    /// One session in a snapshot.
    pub struct SnapshotSession {
        pub session_id: i64,
        pub timeout: i32,
    }

    /// One entry of a snapshot's ACL cache.
    pub struct AclCacheEntry {
        pub acl_ref: i64,
        pub acls: Vec<Acl>,
    }

    /// A znode in a snapshot, after its path.
    pub struct DataNode {
        pub data: Option<Bytes>,
        /// -1 for OPEN_ACL_UNSAFE, else a key of the ACL cache.
        pub acl_ref: i64,
        pub stat: StatPersisted,
    }

    /// The optional digest trailer of a snapshot (digest version 2+).
    pub struct ZxidDigest {
        pub zxid: i64,
        pub digest_version: i32,
        pub digest: i64,
    }
}

impl FileHeader {
    pub const fn txn_log() -> Self {
        FileHeader {
            magic: TXN_LOG_MAGIC,
            version: FILE_VERSION,
            dbid: 0,
        }
    }

    pub const fn snapshot() -> Self {
        FileHeader {
            magic: SNAPSHOT_MAGIC,
            version: FILE_VERSION,
            dbid: -1,
        }
    }
}

/// Adler-32, the checksum of txn-log records and snapshot seals (Java's
/// `java.util.zip.Adler32`), computed by the `adler2` crate.
#[derive(Debug, Clone, Default)]
pub struct Adler32(adler2::Adler32);

impl Adler32 {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0.write_slice(bytes);
    }

    pub fn value(&self) -> u32 {
        self.0.checksum()
    }

    pub fn checksum(bytes: &[u8]) -> u32 {
        adler2::adler32_slice(bytes)
    }
}

/// Writes one txn-log record: checksum, length, the txn bytes, `'B'`.
pub fn encode_log_record<B: BufMut>(txn_bytes: &[u8], buf: &mut B) {
    buf.put_i64(i64::from(Adler32::checksum(txn_bytes)));
    buf.put_i32(i32::try_from(txn_bytes.len()).unwrap_or(i32::MAX));
    buf.put_slice(txn_bytes);
    buf.put_u8(RECORD_END);
}

/// What the next bytes of a txn log hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogRecord {
    /// A whole, checksummed record: its txn bytes, and how many bytes of
    /// the input it took.
    Txn { txn_bytes: Bytes, consumed: usize },
    /// The end of the written part: zero padding or the end of the input.
    End,
    /// A record that stops short, or lacks its end marker: a write torn by
    /// a crash. Everything from here on is to be discarded.
    Torn,
    /// A whole record whose checksum does not match its bytes.
    Corrupt { stored: i64, computed: u32 },
}

/// Reads the record at the start of `input` (which must begin right after
/// the previous record or the file header).
pub fn decode_log_record(input: &Bytes) -> LogRecord {
    let mut buf = &input[..];
    if buf.len() < 12 {
        // A checksum and length that are all zero padding end the log; a
        // partial header that is not zeros is a torn write.
        return if buf.iter().all(|&b| b == 0) {
            LogRecord::End
        } else {
            LogRecord::Torn
        };
    }
    let stored = buf.get_i64();
    let len = buf.get_i32();
    if len == 0 && stored == 0 {
        return LogRecord::End;
    }
    let len = match usize::try_from(len) {
        Ok(len) if len > 0 => len,
        _ => return LogRecord::Torn,
    };
    if buf.len() < len + 1 || buf[len] != RECORD_END {
        return LogRecord::Torn;
    }
    let txn_bytes = input.slice(12..12 + len);
    let computed = Adler32::checksum(&txn_bytes);
    if i64::from(computed) != stored {
        return LogRecord::Corrupt { stored, computed };
    }
    LogRecord::Txn {
        txn_bytes,
        consumed: 12 + len + 1,
    }
}

/// Reads a snapshot's `ustring "/"` after a seal and checks it.
pub fn decode_seal_marker(r: &mut Reader) -> Result<(), DecodeError> {
    let marker = String::decode(r)?;
    if marker == "/" {
        Ok(())
    } else {
        Err(DecodeError::Invalid("snapshot seal not followed by \"/\""))
    }
}

/// Writes a snapshot seal: the running checksum and the `"/"` marker.
pub fn encode_seal<B: BufMut>(checksum: u32, buf: &mut B) {
    buf.put_i64(i64::from(checksum));
    "/".to_string().encode(buf);
}

/// The lowercase, unpadded hex Apache uses in `log.<zxid>` and
/// `snapshot.<zxid>` file names.
pub fn zxid_file_name(prefix: &str, zxid: i64) -> String {
    format!("{prefix}.{zxid:x}")
}

/// The zxid in a `log.<hex>` / `snapshot.<hex>[.gz|.snappy]` file name,
/// if `name` is such a file with that prefix.
pub fn parse_zxid_file_name(name: &str, prefix: &str) -> Option<i64> {
    let rest = name.strip_prefix(prefix)?.strip_prefix('.')?;
    let hex = rest.split('.').next()?;
    u64::from_str_radix(hex, 16).ok().map(|z| z as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    #[test]
    fn adler32_matches_zlibs_values() {
        // Values from zlib's adler32 (Python's zlib.adler32), which Java's
        // java.util.zip.Adler32 is.
        assert_eq!(Adler32::checksum(b""), 1);
        assert_eq!(Adler32::checksum(b"Wikipedia"), 0x11E6_0398);
        assert_eq!(Adler32::checksum(&[0xff; 100_000]), 0x149A_302C);
        let ramp: Vec<u8> = (0..=255u8).cycle().take(256_000).collect();
        assert_eq!(Adler32::checksum(&ramp), 0xA73B_292F);
    }

    /// Adler-32 by its definition, one byte at a time: the reference the
    /// crate must agree with on any input and any chunking.
    fn adler32_by_definition(bytes: &[u8]) -> u32 {
        let (mut a, mut b) = (1u32, 0u32);
        for &byte in bytes {
            a = (a + u32::from(byte)) % 65521;
            b = (b + a) % 65521;
        }
        (b << 16) | a
    }

    #[test]
    fn adler32_agrees_with_its_definition_in_any_chunking() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for len in [0, 1, 2, 15, 16, 5551, 5552, 5553, 11_104, 70_000] {
            let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let expected = adler32_by_definition(&data);
            assert_eq!(Adler32::checksum(&data), expected, "len {len}");
            let mut chunked = Adler32::new();
            let mut rest = &data[..];
            while !rest.is_empty() {
                let take = (next() as usize % 9000).min(rest.len()).max(1);
                chunked.update(&rest[..take]);
                rest = &rest[take..];
            }
            assert_eq!(chunked.value(), expected, "len {len} in chunks");
        }
    }

    #[test]
    fn file_headers_are_16_bytes_with_magic_first() {
        let bytes = FileHeader::txn_log().to_bytes();
        assert_eq!(&bytes[..], b"ZKLG\0\0\0\x02\0\0\0\0\0\0\0\0");
        assert_eq!(&FileHeader::snapshot().to_bytes()[..4], b"ZKSN");
    }

    #[test]
    fn log_record_round_trips() {
        let mut buf = BytesMut::new();
        encode_log_record(b"hello", &mut buf);
        buf.put_bytes(0, 64);
        let input = buf.freeze();
        match decode_log_record(&input) {
            LogRecord::Txn {
                txn_bytes,
                consumed,
            } => {
                assert_eq!(&txn_bytes[..], b"hello");
                assert_eq!(consumed, 8 + 4 + 5 + 1);
                assert_eq!(decode_log_record(&input.slice(consumed..)), LogRecord::End);
            }
            other => panic!("expected a record, got {other:?}"),
        }
    }

    #[test]
    fn torn_and_corrupt_records_are_told_apart() {
        let mut buf = BytesMut::new();
        encode_log_record(b"hello", &mut buf);
        let whole = buf.freeze();
        assert_eq!(
            decode_log_record(&whole.slice(..whole.len() - 1)),
            LogRecord::Torn
        );
        let mut flipped = whole.to_vec();
        flipped[13] ^= 1;
        assert!(matches!(
            decode_log_record(&Bytes::from(flipped)),
            LogRecord::Corrupt { .. }
        ));
    }

    #[test]
    fn file_names_use_unpadded_lowercase_hex() {
        assert_eq!(zxid_file_name("log", 0x1_0000_0001), "log.100000001");
        assert_eq!(
            parse_zxid_file_name("snapshot.1a.gz", "snapshot"),
            Some(0x1a)
        );
        assert_eq!(parse_zxid_file_name("log.zz", "log"), None);
        assert_eq!(parse_zxid_file_name("logx.1", "log"), None);
    }
}
