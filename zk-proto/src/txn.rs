//! Transactions as the server logs them, sends them in PROPOSAL/INFORM
//! packets, and replays them on recovery (ZAB.md §9.3).

use bytes::{BufMut, Bytes, BytesMut};

use crate::consts::OpCode;
use crate::data::Acl;
use crate::jute::{DecodeError, Jute, Reader};
use crate::record;

record! {
    /// Precedes every txn.
    pub struct TxnHeader {
        /// The session that issued the txn; 0 for server-internal ones.
        pub client_id: i64,
        /// The client's xid.
        pub cxid: i32,
        pub zxid: i64,
        /// Milliseconds since the epoch, the leader's clock at proposal.
        pub time: i64,
        /// The [`OpCode`] number.
        pub txn_type: i32,
    }

    /// create (1) and create2 (15).
    pub struct CreateTxn {
        pub path: String,
        pub data: Option<Bytes>,
        pub acl: Vec<Acl>,
        pub ephemeral: bool,
        /// The parent's new persisted cversion (-1: current + 1).
        pub parent_cversion: i32,
    }

    /// createContainer (19).
    pub struct CreateContainerTxn {
        pub path: String,
        pub data: Option<Bytes>,
        pub acl: Vec<Acl>,
        pub parent_cversion: i32,
    }

    /// createTTL (21).
    pub struct CreateTtlTxn {
        pub path: String,
        pub data: Option<Bytes>,
        pub acl: Vec<Acl>,
        pub parent_cversion: i32,
        pub ttl: i64,
    }

    /// delete (2) and deleteContainer (20).
    pub struct DeleteTxn {
        pub path: String,
    }

    /// setData (5) and reconfig (16). `version` is the node's new version.
    pub struct SetDataTxn {
        pub path: String,
        pub data: Option<Bytes>,
        pub version: i32,
    }

    /// setACL (7). `version` is the node's new aversion.
    pub struct SetAclTxn {
        pub path: String,
        pub acl: Vec<Acl>,
        pub version: i32,
    }

    /// check (13), inside a multi.
    pub struct CheckVersionTxn {
        pub path: String,
        pub version: i32,
    }

    /// error (-1): a write that failed still takes a zxid.
    pub struct ErrorTxn {
        pub err: i32,
    }

    /// createSession (-10).
    pub struct CreateSessionTxn {
        pub timeout: i32,
    }

    /// closeSession (-11): the ephemerals to delete.
    pub struct CloseSessionTxn {
        pub paths_to_delete: Vec<String>,
    }

    /// One sub-txn of a multi: its type and its record's bytes.
    pub struct SubTxn {
        pub txn_type: i32,
        pub data: Bytes,
    }

    /// The optional tree digest after a txn (ZAB.md §9.5).
    pub struct TxnDigest {
        pub version: i32,
        pub tree_digest: i64,
    }
}

/// A txn record, typed by the header's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Txn {
    Create(CreateTxn),
    Create2(CreateTxn),
    CreateContainer(CreateContainerTxn),
    CreateTtl(CreateTtlTxn),
    Delete(DeleteTxn),
    DeleteContainer(DeleteTxn),
    SetData(SetDataTxn),
    Reconfig(SetDataTxn),
    SetAcl(SetAclTxn),
    Check(CheckVersionTxn),
    Error(ErrorTxn),
    CreateSession(CreateSessionTxn),
    /// `None` when an old log has no record (delete all the session's
    /// ephemerals).
    CloseSession(Option<CloseSessionTxn>),
    Multi(Vec<Txn>),
}

impl Txn {
    pub fn op_code(&self) -> OpCode {
        match self {
            Txn::Create(_) => OpCode::Create,
            Txn::Create2(_) => OpCode::Create2,
            Txn::CreateContainer(_) => OpCode::CreateContainer,
            Txn::CreateTtl(_) => OpCode::CreateTtl,
            Txn::Delete(_) => OpCode::Delete,
            Txn::DeleteContainer(_) => OpCode::DeleteContainer,
            Txn::SetData(_) => OpCode::SetData,
            Txn::Reconfig(_) => OpCode::Reconfig,
            Txn::SetAcl(_) => OpCode::SetAcl,
            Txn::Check(_) => OpCode::Check,
            Txn::Error(_) => OpCode::Error,
            Txn::CreateSession(_) => OpCode::CreateSession,
            Txn::CloseSession(_) => OpCode::CloseSession,
            Txn::Multi(_) => OpCode::Multi,
        }
    }

    pub fn encode_body<B: BufMut>(&self, buf: &mut B) {
        match self {
            Txn::Create(t) | Txn::Create2(t) => t.encode(buf),
            Txn::CreateContainer(t) => t.encode(buf),
            Txn::CreateTtl(t) => t.encode(buf),
            Txn::Delete(t) | Txn::DeleteContainer(t) => t.encode(buf),
            Txn::SetData(t) | Txn::Reconfig(t) => t.encode(buf),
            Txn::SetAcl(t) => t.encode(buf),
            Txn::Check(t) => t.encode(buf),
            Txn::Error(t) => t.encode(buf),
            Txn::CreateSession(t) => t.encode(buf),
            Txn::CloseSession(t) => {
                if let Some(t) = t {
                    t.encode(buf)
                }
            }
            Txn::Multi(txns) => {
                let subs: Vec<SubTxn> = txns
                    .iter()
                    .map(|t| {
                        let mut data = BytesMut::new();
                        t.encode_body(&mut data);
                        SubTxn {
                            txn_type: t.op_code().code(),
                            data: data.freeze(),
                        }
                    })
                    .collect();
                subs.encode(buf);
            }
        }
    }

    /// Decodes the record of a txn whose header type is `txn_type`. The
    /// reader holds exactly the record's bytes plus, at the top level, an
    /// optional [`TxnDigest`]; records that end early in old logs are read
    /// the way Apache reads them.
    pub fn decode_body(txn_type: i32, r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(match OpCode::try_from(txn_type)? {
            OpCode::Create => Txn::Create(decode_create_txn(r)?),
            OpCode::Create2 => Txn::Create2(decode_create_txn(r)?),
            OpCode::CreateContainer => Txn::CreateContainer(Jute::decode(r)?),
            OpCode::CreateTtl => Txn::CreateTtl(Jute::decode(r)?),
            OpCode::Delete => Txn::Delete(Jute::decode(r)?),
            OpCode::DeleteContainer => Txn::DeleteContainer(Jute::decode(r)?),
            OpCode::SetData => Txn::SetData(Jute::decode(r)?),
            OpCode::Reconfig => Txn::Reconfig(Jute::decode(r)?),
            OpCode::SetAcl => Txn::SetAcl(Jute::decode(r)?),
            OpCode::Check => Txn::Check(Jute::decode(r)?),
            OpCode::Error => Txn::Error(Jute::decode(r)?),
            OpCode::CreateSession => Txn::CreateSession(Jute::decode(r)?),
            OpCode::CloseSession => Txn::CloseSession(if r.is_empty() {
                None
            } else {
                Some(Jute::decode(r)?)
            }),
            OpCode::Multi => {
                let subs = Vec::<SubTxn>::decode(r)?;
                let mut txns = Vec::with_capacity(subs.len());
                for sub in subs {
                    if sub.txn_type == OpCode::Multi.code() {
                        return Err(DecodeError::Invalid("multi nested inside multi"));
                    }
                    txns.push(Txn::decode_body(sub.txn_type, &mut Reader::new(sub.data))?);
                }
                Txn::Multi(txns)
            }
            _ => return Err(DecodeError::Invalid("opcode is not a txn type")),
        })
    }
}

/// Very old (V0) create txns lack `parentCVersion`; Apache reads them as -1.
fn decode_create_txn(r: &mut Reader) -> Result<CreateTxn, DecodeError> {
    let path = Jute::decode(r)?;
    let data = Jute::decode(r)?;
    let acl = Jute::decode(r)?;
    let ephemeral = Jute::decode(r)?;
    let parent_cversion = if r.remaining() >= 4 {
        r.read_i32()?
    } else {
        -1
    };
    Ok(CreateTxn {
        path,
        data,
        acl,
        ephemeral,
        parent_cversion,
    })
}

/// A whole txn: the bytes of one log record, one PROPOSAL, one INFORM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnEntry {
    pub header: TxnHeader,
    pub txn: Txn,
    pub digest: Option<TxnDigest>,
}

impl Jute for TxnEntry {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        self.header.encode(buf);
        self.txn.encode_body(buf);
        if let Some(d) = &self.digest {
            d.encode(buf);
        }
    }

    /// The reader must hold exactly one entry (a log record's `txnBytes`),
    /// since the digest is recognised by being the 12 bytes left over.
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let header = TxnHeader::decode(r)?;
        let txn = Txn::decode_body(header.txn_type, r)?;
        let digest = if r.remaining() >= 12 {
            Some(TxnDigest::decode(r)?)
        } else {
            None
        };
        Ok(TxnEntry {
            header,
            txn,
            digest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_session_entry_with_digest_is_48_bytes() {
        let entry = TxnEntry {
            header: TxnHeader {
                client_id: 0x100000ce718000e,
                cxid: 0,
                zxid: 1,
                time: 1_700_000_000_000,
                txn_type: OpCode::CreateSession.code(),
            },
            txn: Txn::CreateSession(CreateSessionTxn { timeout: 30000 }),
            digest: Some(TxnDigest {
                version: 2,
                tree_digest: 1_234_567,
            }),
        };
        let bytes = entry.to_bytes();
        assert_eq!(bytes.len(), 48, "ZAB.md §9.3 observed size");
        assert_eq!(TxnEntry::from_bytes(bytes).unwrap(), entry);
    }

    #[test]
    fn multi_txn_nests_sub_records_as_buffers() {
        let multi = Txn::Multi(vec![
            Txn::Delete(DeleteTxn { path: "/a".into() }),
            Txn::Error(ErrorTxn { err: -101 }),
        ]);
        let mut buf = BytesMut::new();
        multi.encode_body(&mut buf);
        let expected: &[u8] = &[
            0, 0, 0, 2, // two sub-txns
            0, 0, 0, 2, 0, 0, 0, 6, 0, 0, 0, 2, b'/', b'a', // delete, buffer{ustring "/a"}
            0xff, 0xff, 0xff, 0xff, 0, 0, 0, 4, 0xff, 0xff, 0xff, 0x9b, // error -101
        ];
        assert_eq!(&buf[..], expected);
        let decoded = Txn::decode_body(14, &mut Reader::new(buf.freeze())).unwrap();
        assert_eq!(decoded, multi);
    }

    #[test]
    fn old_create_txn_without_parent_cversion_reads_as_minus_one() {
        let mut buf = BytesMut::new();
        "/x".to_string().encode(&mut buf);
        Some(Bytes::from_static(b"d")).encode(&mut buf);
        Acl::open_unsafe().encode(&mut buf);
        false.encode(&mut buf);
        match Txn::decode_body(1, &mut Reader::new(buf.freeze())).unwrap() {
            Txn::Create(c) => assert_eq!(c.parent_cversion, -1),
            other => panic!("expected create, got {other:?}"),
        }
    }

    #[test]
    fn close_session_without_record_is_none() {
        let txn = Txn::decode_body(-11, &mut Reader::new(Bytes::new())).unwrap();
        assert_eq!(txn, Txn::CloseSession(None));
    }
}
