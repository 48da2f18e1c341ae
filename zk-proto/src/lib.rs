//! The ZooKeeper jute codec: every record of the client protocol (3.5 to
//! 3.9), every record the server writes to its txn log and snapshots, and a
//! `tokio_util` frame codec. Byte-compatible with Apache ZooKeeper.
//!
//! No IO happens here: records encode to any [`bytes::BufMut`] and decode
//! from a [`Reader`] over [`bytes::Bytes`], sharing data payloads with the
//! frame they came in. Decoding never panics, whatever the input.
//!
//! ```
//! use bytes::BytesMut;
//! use zk_proto::{encode_frame, FrameCodec, Jute, Request, RequestFrame, GetDataRequest};
//! use tokio_util::codec::Decoder;
//!
//! let frame = RequestFrame::new(1, Request::GetData(GetDataRequest { path: "/a".into(), watch: false }));
//! let mut wire = BytesMut::new();
//! encode_frame(&frame, &mut wire);
//! let body = FrameCodec::default().decode(&mut wire).unwrap().unwrap();
//! assert_eq!(RequestFrame::decode_frame(body).unwrap(), frame);
//! ```

pub mod codec;
pub mod consts;
pub mod data;
pub mod disk;
pub mod jute;
pub mod proto;
pub mod quorum;
pub mod request;
pub mod response;
pub mod txn;

pub use codec::{encode_frame, write_frame, FrameCodec, FrameError};
pub use consts::{
    xid, AddWatchMode, CreateMode, ErrorCode, EventType, KeeperState, OpCode, Perms, WatcherType,
};
pub use data::{Acl, ClientInfo, Id, Stat, StatPersisted};
pub use jute::{DecodeError, Jute, JuteWrite, Reader};
pub use proto::*;
pub use request::{MultiOp, MultiRequest, Request, RequestFrame};
pub use response::{MultiResponse, MultiResult, ReplyFrame, Response, ServerMessage};
pub use txn::{Txn, TxnEntry, TxnHeader};
