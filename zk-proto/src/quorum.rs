//! Quorum-port and election-port records (ZAB.md §2-§5).
//!
//! * [`QuorumPacket`]: the one record exchanged between a leader and its
//!   learners on the quorum port, with its [`PacketType`] numbers (§5.1) and
//!   the small payloads some types carry ([`LearnerInfo`], LEADERINFO's and
//!   ACKEPOCH's ints).
//! * [`Notification`]: the Fast Leader Election message (§4.1), with the
//!   decode rules for the legacy 28- and 40-byte forms.
//! * [`ElectionHello`]: the first bytes a connector writes on the election
//!   port (§3).
//! * zxid helpers: a zxid is `(epoch << 32) | counter` (§2).

use bytes::{Buf, BufMut, Bytes};

use crate::consts::int_enum;
use crate::data::Id;
use crate::jute::{DecodeError, Jute, JuteWrite, Reader};
use crate::record;

/// The zxid of txn `counter` of `epoch`; counter 0 means "epoch started,
/// no txn yet" (the NEWLEADER zxid).
pub const fn make_zxid(epoch: u32, counter: u32) -> i64 {
    (((epoch as u64) << 32) | counter as u64) as i64
}

/// The epoch half of a zxid.
pub const fn zxid_epoch(zxid: i64) -> u32 {
    ((zxid as u64) >> 32) as u32
}

/// The counter half of a zxid.
pub const fn zxid_counter(zxid: i64) -> u32 {
    (zxid as u64 & 0xffff_ffff) as u32
}

/// The protocol version learners and leaders announce (`0x10000`).
pub const LEARNER_PROTOCOL_VERSION: i32 = 0x10000;

int_enum! {
    /// `Leader.*` packet type constants (ZAB.md §5.1).
    pub enum PacketType as "quorum packet type" {
        Request = 1,
        Proposal = 2,
        Ack = 3,
        Commit = 4,
        Ping = 5,
        Revalidate = 6,
        Sync = 7,
        Inform = 8,
        CommitAndActivate = 9,
        NewLeader = 10,
        FollowerInfo = 11,
        UpToDate = 12,
        Diff = 13,
        Trunc = 14,
        Snap = 15,
        ObserverInfo = 16,
        LeaderInfo = 17,
        AckEpoch = 18,
        InformAndActivate = 19,
    }
}

int_enum! {
    /// `QuorumPeer.ServerState` as election notifications encode it (§2).
    pub enum ServerState as "server state" {
        Looking = 0,
        Following = 1,
        Leading = 2,
        Observing = 3,
    }
}

/// One packet on the quorum port: `{int type, long zxid, buffer data,
/// vector<Id> authinfo}`, no length prefix. The type stays a raw int so a
/// packet of an unknown type still decodes (the receiver decides what to do
/// with it); [`QuorumPacket::kind`] names it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QuorumPacket {
    pub packet_type: i32,
    pub zxid: i64,
    /// `None` is the null buffer (-1), which most packet types carry.
    pub data: Option<Bytes>,
    /// `None` is the null vector (-1): every packet but REQUEST sends null.
    pub authinfo: Option<Vec<Id>>,
}

impl QuorumPacket {
    /// A packet with null data and null authinfo.
    pub fn new(kind: PacketType, zxid: i64) -> Self {
        QuorumPacket {
            packet_type: kind.code(),
            zxid,
            data: None,
            authinfo: None,
        }
    }

    /// The same packet carrying `data`.
    pub fn with_data(mut self, data: Bytes) -> Self {
        self.data = Some(data);
        self
    }

    /// The packet type, if it is one we know.
    pub fn kind(&self) -> Option<PacketType> {
        PacketType::from_code(self.packet_type)
    }
}

impl Jute for QuorumPacket {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        buf.put_i32(self.packet_type);
        buf.put_i64(self.zxid);
        self.data.encode(buf);
        match &self.authinfo {
            None => buf.put_i32(-1),
            Some(ids) => ids.encode(buf),
        }
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let packet_type = r.read_i32()?;
        let zxid = r.read_i64()?;
        let data = Option::<Bytes>::decode(r)?;
        let authinfo = match r.read_vec_len()? {
            None => None,
            Some(count) => {
                let mut ids = Vec::with_capacity(count.min(r.remaining()));
                for _ in 0..count {
                    ids.push(Id::decode(r)?);
                }
                Some(ids)
            }
        };
        Ok(QuorumPacket {
            packet_type,
            zxid,
            data,
            authinfo,
        })
    }
}

record! {
    /// FOLLOWERINFO / OBSERVERINFO data: who the learner is.
    pub struct LearnerInfo {
        pub server_id: i64,
        pub protocol_version: i32,
        pub config_version: i64,
    }
}

impl LearnerInfo {
    /// Decodes the data of a FOLLOWERINFO, accepting the shorter forms older
    /// learners send: just the id (8 bytes), or id + protocol version (12).
    /// Missing fields read as protocol 0 and config version 0.
    pub fn decode_lenient(data: Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new(data);
        let server_id = r.read_i64()?;
        let protocol_version = if r.remaining() >= 4 { r.read_i32()? } else { 0 };
        let config_version = if r.remaining() >= 8 { r.read_i64()? } else { 0 };
        Ok(LearnerInfo {
            server_id,
            protocol_version,
            config_version,
        })
    }
}

/// LEADERINFO data: the leader's protocol version (an int).
pub fn leader_info_data(protocol_version: i32) -> Bytes {
    Bytes::copy_from_slice(&protocol_version.to_be_bytes())
}

/// ACKEPOCH data: the learner's currentEpoch, or -1 when it had already
/// accepted the proposed epoch (such an ack does not count).
pub fn ack_epoch_data(current_epoch: Option<u32>) -> Bytes {
    let v: i32 = current_epoch.map_or(-1, |e| e as i32);
    Bytes::copy_from_slice(&v.to_be_bytes())
}

/// Reads the int carried by LEADERINFO or ACKEPOCH.
pub fn read_int_data(data: Option<&Bytes>) -> Result<i32, DecodeError> {
    let data = data.ok_or(DecodeError::UnexpectedNull {
        what: "packet data",
    })?;
    Reader::new(data.clone()).read_i32()
}

/// The current notification format version.
pub const NOTIFICATION_VERSION: i32 = 2;

/// Shortest notification a receiver accepts (legacy form without peerEpoch).
pub const NOTIFICATION_MIN_LEN: usize = 28;

/// Legacy form of exactly 40 bytes: has peerEpoch, version is not read.
const NOTIFICATION_LEGACY40_LEN: usize = 40;

/// A Fast Leader Election notification (ZAB.md §4.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Notification {
    /// The sender's [`ServerState`] code.
    pub state: i32,
    /// Proposed leader id.
    pub leader: i64,
    /// Proposed leader's last zxid.
    pub zxid: i64,
    /// Sender's logical clock (election round).
    pub election_epoch: i64,
    /// Proposed leader's currentEpoch.
    pub peer_epoch: i64,
    /// Format version; 2 for what we send, 0 for the legacy forms.
    pub version: i32,
    /// The sender's QuorumVerifier text; empty for legacy forms.
    pub config: Bytes,
}

impl Notification {
    /// Encodes the current (version 2) layout, whatever `version` says.
    pub fn encode<B: BufMut>(&self, buf: &mut B) {
        buf.put_i32(self.state);
        buf.put_i64(self.leader);
        buf.put_i64(self.zxid);
        buf.put_i64(self.election_epoch);
        buf.put_i64(self.peer_epoch);
        buf.put_i32(NOTIFICATION_VERSION);
        buf.put_opt_buffer(Some(&self.config));
    }

    /// Encodes into a fresh byte string (the message payload, without the
    /// election port's int length prefix).
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = bytes::BytesMut::new();
        self.encode(&mut buf);
        buf.freeze()
    }

    /// Decodes one whole message payload. The form depends on the payload
    /// length, as Apache's receiver decides it: 28 bytes has no peerEpoch
    /// (derived from the zxid), 40 bytes has no version; otherwise a version
    /// follows, and versions above 1 carry the config.
    pub fn decode_message(payload: Bytes) -> Result<Self, DecodeError> {
        let len = payload.len();
        if len < NOTIFICATION_MIN_LEN {
            return Err(DecodeError::UnexpectedEof {
                what: "notification",
                needed: NOTIFICATION_MIN_LEN,
                remaining: len,
            });
        }
        let mut r = Reader::new(payload);
        let state = r.read_i32()?;
        let leader = r.read_i64()?;
        let zxid = r.read_i64()?;
        let election_epoch = r.read_i64()?;
        let peer_epoch = if len == NOTIFICATION_MIN_LEN {
            i64::from(zxid_epoch(zxid))
        } else {
            r.read_i64()?
        };
        let version = if len == NOTIFICATION_MIN_LEN || len == NOTIFICATION_LEGACY40_LEN {
            0
        } else {
            r.read_i32()?
        };
        let config = if version > 1 {
            Bytes::decode(&mut r)?
        } else {
            Bytes::new()
        };
        Ok(Notification {
            state,
            leader,
            zxid,
            election_epoch,
            peer_epoch,
            version,
            config,
        })
    }
}

/// First protocol version of the election handshake.
pub const ELECTION_PROTOCOL_V1: i64 = -65536;
/// Second version, sent only when multiAddress is enabled.
pub const ELECTION_PROTOCOL_V2: i64 = -65535;
/// Bounds on the handshake's address string.
pub const ELECTION_ADDRESS_MAX_LEN: usize = 2048;

/// What a connector writes first on the election port (ZAB.md §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElectionHello {
    /// A pre-3.5 peer sends only its id (a non-negative long).
    Legacy { server_id: i64 },
    /// `long protocolVersion, long myId, int len, byte[len] address`.
    Versioned {
        protocol_version: i64,
        server_id: i64,
        /// `host:port`, or `h1:p1|h2:p2|…` for V2.
        address: String,
    },
}

impl ElectionHello {
    /// A V1 handshake for `server_id` listening on `address`.
    pub fn v1(server_id: i64, address: impl Into<String>) -> Self {
        ElectionHello::Versioned {
            protocol_version: ELECTION_PROTOCOL_V1,
            server_id,
            address: address.into(),
        }
    }

    /// The announced server id.
    pub fn server_id(&self) -> i64 {
        match self {
            ElectionHello::Legacy { server_id } | ElectionHello::Versioned { server_id, .. } => {
                *server_id
            }
        }
    }

    pub fn encode<B: BufMut>(&self, buf: &mut B) {
        match self {
            ElectionHello::Legacy { server_id } => buf.put_i64(*server_id),
            ElectionHello::Versioned {
                protocol_version,
                server_id,
                address,
            } => {
                buf.put_i64(*protocol_version);
                buf.put_i64(*server_id);
                buf.put_opt_string(Some(address));
            }
        }
    }

    /// Decodes the handshake. Unknown negative versions and address lengths
    /// outside 1..=2048 are rejected, as Apache closes such connections.
    pub fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let first = r.read_i64()?;
        if first >= 0 {
            return Ok(ElectionHello::Legacy { server_id: first });
        }
        if first != ELECTION_PROTOCOL_V1 && first != ELECTION_PROTOCOL_V2 {
            return Err(DecodeError::UnknownValue {
                what: "election protocol version",
                value: first,
            });
        }
        let server_id = r.read_i64()?;
        let len = r.read_i32()?;
        let len = usize::try_from(len)
            .ok()
            .filter(|l| (1..=ELECTION_ADDRESS_MAX_LEN).contains(l))
            .ok_or(DecodeError::UnreasonableLength {
                what: "election address",
                len: len.into(),
                limit: ELECTION_ADDRESS_MAX_LEN,
            })?;
        let raw = r.peek_rest();
        if raw.len() < len {
            return Err(DecodeError::UnexpectedEof {
                what: "election address",
                needed: len,
                remaining: raw.len(),
            });
        }
        let address = String::from_utf8_lossy(&raw[..len]).into_owned();
        let mut rest = r.take_rest();
        rest.advance(len);
        *r = Reader::new(rest);
        Ok(ElectionHello::Versioned {
            protocol_version: first,
            server_id,
            address,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn zxid_splits_into_epoch_and_counter() {
        let z = make_zxid(3, 7);
        assert_eq!(z, 0x0000_0003_0000_0007);
        assert_eq!(zxid_epoch(z), 3);
        assert_eq!(zxid_counter(z), 7);
        assert_eq!(zxid_epoch(make_zxid(u32::MAX, 0)), u32::MAX);
    }

    #[test]
    fn packet_type_numbers_match_the_spec() {
        assert_eq!(PacketType::Request.code(), 1);
        assert_eq!(PacketType::FollowerInfo.code(), 11);
        assert_eq!(PacketType::ObserverInfo.code(), 16);
        assert_eq!(PacketType::InformAndActivate.code(), 19);
        assert_eq!(PacketType::ALL.len(), 19);
        assert!(PacketType::try_from(20).is_err());
    }

    #[test]
    fn ack_packet_has_null_data_and_null_authinfo() {
        let p = QuorumPacket::new(PacketType::Ack, make_zxid(1, 2));
        assert_eq!(
            hex(&p.to_bytes()),
            "00000003\
             0000000100000002\
             ffffffff\
             ffffffff"
        );
        assert_eq!(QuorumPacket::from_bytes(p.to_bytes()).unwrap(), p);
    }

    #[test]
    fn request_packet_carries_data_and_authinfo() {
        let p = QuorumPacket {
            packet_type: PacketType::Request.code(),
            zxid: -1,
            data: Some(Bytes::from_static(&[0xab])),
            authinfo: Some(vec![Id::new("ip", "1")]),
        };
        assert_eq!(
            hex(&p.to_bytes()),
            "00000001ffffffffffffffff00000001ab00000001\
             000000026970\
             0000000131"
        );
        assert_eq!(QuorumPacket::from_bytes(p.to_bytes()).unwrap(), p);
    }

    #[test]
    fn unknown_packet_type_still_decodes() {
        let p = QuorumPacket {
            packet_type: 99,
            ..QuorumPacket::default()
        };
        let back = QuorumPacket::from_bytes(p.to_bytes()).unwrap();
        assert_eq!(back.kind(), None);
    }

    #[test]
    fn truncated_packet_is_an_error_not_a_panic() {
        let bytes = QuorumPacket::new(PacketType::Ping, 5).to_bytes();
        for cut in 0..bytes.len() {
            assert!(
                QuorumPacket::from_bytes(bytes.slice(..cut)).is_err(),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn learner_info_is_twenty_bytes() {
        let li = LearnerInfo {
            server_id: 2,
            protocol_version: LEARNER_PROTOCOL_VERSION,
            config_version: 0,
        };
        assert_eq!(
            hex(&li.to_bytes()),
            "0000000000000002000100000000000000000000"
        );
        assert_eq!(LearnerInfo::decode_lenient(li.to_bytes()).unwrap(), li);
    }

    #[test]
    fn old_learner_info_with_only_an_id_decodes() {
        let li =
            LearnerInfo::decode_lenient(Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 9])).unwrap();
        assert_eq!(li.server_id, 9);
        assert_eq!(li.protocol_version, 0);
    }

    #[test]
    fn ack_epoch_data_is_an_int_or_minus_one() {
        assert_eq!(&ack_epoch_data(Some(4))[..], &[0, 0, 0, 4]);
        assert_eq!(&ack_epoch_data(None)[..], &[0xff; 4]);
        assert_eq!(
            read_int_data(Some(&leader_info_data(0x10000))).unwrap(),
            0x10000
        );
        assert!(read_int_data(None).is_err());
    }

    #[test]
    fn notification_version_2_layout() {
        let n = Notification {
            state: ServerState::Looking.code(),
            leader: 3,
            zxid: make_zxid(1, 5),
            election_epoch: 2,
            peer_epoch: 1,
            version: NOTIFICATION_VERSION,
            config: Bytes::from_static(b"v"),
        };
        let bytes = n.to_bytes();
        assert_eq!(
            hex(&bytes),
            "00000000\
             0000000000000003\
             0000000100000005\
             0000000000000002\
             0000000000000001\
             00000002\
             0000000176"
        );
        assert_eq!(Notification::decode_message(bytes).unwrap(), n);
    }

    #[test]
    fn legacy_28_byte_notification_derives_peer_epoch_from_zxid() {
        let mut buf = Vec::new();
        buf.put_i32(1);
        buf.put_i64(2);
        buf.put_i64(make_zxid(7, 1));
        buf.put_i64(4);
        let n = Notification::decode_message(Bytes::from(buf)).unwrap();
        assert_eq!(n.peer_epoch, 7);
        assert_eq!(n.version, 0);
        assert_eq!(n.election_epoch, 4);
    }

    #[test]
    fn legacy_40_byte_notification_has_peer_epoch_but_no_version() {
        let mut buf = Vec::new();
        buf.put_i32(2);
        buf.put_i64(2);
        buf.put_i64(make_zxid(7, 1));
        buf.put_i64(4);
        buf.put_i64(6);
        buf.put_i32(1);
        let n = Notification::decode_message(Bytes::from(buf)).unwrap();
        assert_eq!(n.peer_epoch, 6);
        assert_eq!(n.version, 0);
        assert!(n.config.is_empty());
    }

    #[test]
    fn notification_shorter_than_28_bytes_is_dropped() {
        assert!(Notification::decode_message(Bytes::from_static(&[0; 27])).is_err());
    }

    #[test]
    fn election_hello_v1_layout_and_round_trip() {
        let h = ElectionHello::v1(3, "127.0.0.1:3888");
        let mut buf = Vec::new();
        h.encode(&mut buf);
        assert_eq!(
            hex(&buf[..20]),
            "ffffffffffff0000\
             0000000000000003\
             0000000e"
        );
        assert_eq!(&buf[20..], b"127.0.0.1:3888");
        let mut r = Reader::new(Bytes::from(buf));
        assert_eq!(ElectionHello::decode(&mut r).unwrap(), h);
        assert!(r.is_empty());
    }

    #[test]
    fn election_hello_with_a_non_negative_first_long_is_legacy() {
        let mut r = Reader::new(Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 5]));
        assert_eq!(
            ElectionHello::decode(&mut r).unwrap(),
            ElectionHello::Legacy { server_id: 5 }
        );
    }

    #[test]
    fn election_hello_rejects_bad_versions_and_lengths() {
        let mut buf = Vec::new();
        buf.put_i64(-7);
        assert!(ElectionHello::decode(&mut Reader::new(Bytes::from(buf))).is_err());
        let mut buf = Vec::new();
        buf.put_i64(ELECTION_PROTOCOL_V1);
        buf.put_i64(1);
        buf.put_i32(0);
        assert!(ElectionHello::decode(&mut Reader::new(Bytes::from(buf))).is_err());
        let mut buf = Vec::new();
        buf.put_i64(ELECTION_PROTOCOL_V1);
        buf.put_i64(1);
        buf.put_i32(4);
        buf.put_slice(b"ab");
        assert!(ElectionHello::decode(&mut Reader::new(Bytes::from(buf))).is_err());
    }
}
