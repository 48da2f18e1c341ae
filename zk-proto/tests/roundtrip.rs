//! Round-trip properties of every zk-proto record: for any value `x`,
//! `decode(encode(x)) == x`, the decoder consumes exactly the encoded bytes,
//! and re-encoding the decoded value gives the very same bytes.
//!
//! The few places where the wire cannot tell two values apart (old-format
//! txn records, multi/multiRead op mixes, empty log records) have their own
//! tests at the end, one rule each.

mod strategies;

use std::fmt::Debug;

use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use strategies::*;
use zk_proto::disk::{self, Adler32, LogRecord};
use zk_proto::response::encode_notification;
use zk_proto::txn::{CloseSessionTxn, CreateTxn, TxnDigest};
use zk_proto::*;

/// The round-trip property for any jute value.
fn assert_round_trip<T: Jute + PartialEq + Debug>(value: &T) -> Result<(), TestCaseError> {
    let encoded = value.to_bytes();
    let mut reader = Reader::new(encoded.clone());
    let decoded = T::decode(&mut reader)
        .map_err(|e| TestCaseError::fail(format!("{value:?} does not decode: {e}")))?;
    prop_assert_eq!(reader.remaining(), 0, "decoder left bytes unread");
    prop_assert_eq!(&decoded, value);
    prop_assert_eq!(decoded.to_bytes(), encoded, "re-encoding changed the bytes");
    Ok(())
}

/// The round-trip property for a reply body, which is typed by the opcode
/// of the request it answers rather than by anything in its bytes.
fn assert_response_round_trip(op: OpCode, response: &Response) -> Result<(), TestCaseError> {
    let encoded = encode_response(response);
    let mut reader = Reader::new(encoded.clone());
    let decoded = Response::decode_body(op, &mut reader)
        .map_err(|e| TestCaseError::fail(format!("{op:?} reply does not decode: {e}")))?;
    prop_assert_eq!(reader.remaining(), 0, "decoder left bytes unread");
    prop_assert_eq!(&decoded, response);
    prop_assert_eq!(encode_response(&decoded), encoded);
    Ok(())
}

fn encode_response(response: &Response) -> Bytes {
    let mut buf = BytesMut::new();
    response.encode_body(&mut buf);
    buf.freeze()
}

fn encode_reply(frame: &ReplyFrame) -> Bytes {
    let mut buf = BytesMut::new();
    frame.encode(&mut buf);
    buf.freeze()
}

/// Adler-32 straight from its definition: two running sums modulo 65521,
/// reduced after every byte. Slow, obviously right.
fn reference_adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in bytes {
        a = (a + u32::from(byte)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

// ---------------------------------------------------------------------------
// data.rs
// ---------------------------------------------------------------------------

proptest! {
    #[test]
    fn id_round_trips(v in id()) { assert_round_trip(&v)?; }

    #[test]
    fn acl_round_trips(v in acl()) { assert_round_trip(&v)?; }

    #[test]
    fn acl_list_round_trips(v in acls()) { assert_round_trip(&v)?; }

    #[test]
    fn stat_round_trips(v in stat()) { assert_round_trip(&v)?; }

    #[test]
    fn stat_persisted_round_trips(v in stat_persisted()) { assert_round_trip(&v)?; }

    #[test]
    fn client_info_round_trips(v in client_info()) { assert_round_trip(&v)?; }

    #[test]
    fn any_unicode_string_round_trips(v in text()) { assert_round_trip(&v)?; }

    #[test]
    fn nullable_string_round_trips(v in opt_text()) { assert_round_trip(&v)?; }

    #[test]
    fn null_empty_and_full_data_round_trip(v in data()) { assert_round_trip(&v)?; }
}

// ---------------------------------------------------------------------------
// proto.rs
// ---------------------------------------------------------------------------

proptest! {
    #[test]
    fn connect_request_round_trips_with_and_without_read_only(v in connect_request()) {
        assert_round_trip(&v)?;
    }

    #[test]
    fn connect_response_round_trips_with_and_without_read_only(v in connect_response()) {
        assert_round_trip(&v)?;
    }

    #[test]
    fn request_header_round_trips(v in request_header()) { assert_round_trip(&v)?; }

    #[test]
    fn reply_header_round_trips(v in reply_header()) { assert_round_trip(&v)?; }

    #[test]
    fn multi_header_round_trips(v in multi_header()) { assert_round_trip(&v)?; }

    #[test]
    fn watcher_event_round_trips(v in watcher_event()) { assert_round_trip(&v)?; }

    #[test]
    fn create_request_round_trips(v in create_request()) { assert_round_trip(&v)?; }

    #[test]
    fn create_ttl_request_round_trips(v in create_ttl_request()) { assert_round_trip(&v)?; }

    #[test]
    fn delete_request_round_trips(v in delete_request()) { assert_round_trip(&v)?; }

    #[test]
    fn delete_container_request_round_trips(v in delete_container_request()) {
        assert_round_trip(&v)?;
    }

    #[test]
    fn exists_request_round_trips(v in exists_request()) { assert_round_trip(&v)?; }

    #[test]
    fn get_data_request_round_trips(v in get_data_request()) { assert_round_trip(&v)?; }

    #[test]
    fn set_data_request_round_trips(v in set_data_request()) { assert_round_trip(&v)?; }

    #[test]
    fn get_acl_request_round_trips(v in get_acl_request()) { assert_round_trip(&v)?; }

    #[test]
    fn set_acl_request_round_trips(v in set_acl_request()) { assert_round_trip(&v)?; }

    #[test]
    fn get_children_request_round_trips(v in get_children_request()) {
        assert_round_trip(&v)?;
    }

    #[test]
    fn check_version_request_round_trips(v in check_version_request()) {
        assert_round_trip(&v)?;
    }

    #[test]
    fn sync_request_round_trips(v in sync_request()) { assert_round_trip(&v)?; }

    #[test]
    fn reconfig_request_round_trips_with_null_member_lists(v in reconfig_request()) {
        assert_round_trip(&v)?;
    }

    #[test]
    fn check_watches_request_round_trips(v in check_watches_request()) {
        assert_round_trip(&v)?;
    }

    #[test]
    fn remove_watches_request_round_trips(v in remove_watches_request()) {
        assert_round_trip(&v)?;
    }

    #[test]
    fn add_watch_request_round_trips(v in add_watch_request()) { assert_round_trip(&v)?; }

    #[test]
    fn auth_packet_round_trips(v in auth_packet()) { assert_round_trip(&v)?; }

    #[test]
    fn set_watches_round_trips(v in set_watches()) { assert_round_trip(&v)?; }

    #[test]
    fn set_watches2_round_trips(v in set_watches2()) { assert_round_trip(&v)?; }

    #[test]
    fn get_sasl_request_round_trips(v in get_sasl_request()) { assert_round_trip(&v)?; }

    #[test]
    fn get_ephemerals_request_round_trips(v in get_ephemerals_request()) {
        assert_round_trip(&v)?;
    }

    #[test]
    fn get_all_children_number_request_round_trips(v in get_all_children_number_request()) {
        assert_round_trip(&v)?;
    }

    #[test]
    fn create_response_round_trips(v in create_response()) { assert_round_trip(&v)?; }

    #[test]
    fn create2_response_round_trips(v in create2_response()) { assert_round_trip(&v)?; }

    #[test]
    fn exists_response_round_trips(v in exists_response()) { assert_round_trip(&v)?; }

    #[test]
    fn get_data_response_round_trips(v in get_data_response()) { assert_round_trip(&v)?; }

    #[test]
    fn set_data_response_round_trips(v in set_data_response()) { assert_round_trip(&v)?; }

    #[test]
    fn get_acl_response_round_trips(v in get_acl_response()) { assert_round_trip(&v)?; }

    #[test]
    fn set_acl_response_round_trips(v in set_acl_response()) { assert_round_trip(&v)?; }

    #[test]
    fn get_children_response_round_trips(v in get_children_response()) {
        assert_round_trip(&v)?;
    }

    #[test]
    fn get_children2_response_round_trips(v in get_children2_response()) {
        assert_round_trip(&v)?;
    }

    #[test]
    fn sync_response_round_trips(v in sync_response()) { assert_round_trip(&v)?; }

    #[test]
    fn error_response_round_trips(v in error_response()) { assert_round_trip(&v)?; }

    #[test]
    fn set_sasl_response_round_trips(v in set_sasl_response()) { assert_round_trip(&v)?; }

    #[test]
    fn get_ephemerals_response_round_trips(v in get_ephemerals_response()) {
        assert_round_trip(&v)?;
    }

    #[test]
    fn get_all_children_number_response_round_trips(v in get_all_children_number_response()) {
        assert_round_trip(&v)?;
    }

    #[test]
    fn who_am_i_response_round_trips(v in who_am_i_response()) { assert_round_trip(&v)?; }
}

// ---------------------------------------------------------------------------
// request.rs
// ---------------------------------------------------------------------------

proptest! {
    #[test]
    fn every_request_round_trips_through_its_frame(v in request_frame()) {
        assert_round_trip(&v)?;
    }

    #[test]
    fn request_frame_decodes_from_frame_bytes(v in request_frame()) {
        prop_assert_eq!(RequestFrame::decode_frame(v.to_bytes()).ok(), Some(v));
    }

    #[test]
    fn multi_request_of_write_ops_round_trips(v in multi_write()) { assert_round_trip(&v)?; }

    #[test]
    fn multi_request_of_read_ops_round_trips(v in multi_read()) { assert_round_trip(&v)?; }

    #[test]
    fn multi_request_record_round_trips_any_op_mix(
        ops in proptest::collection::vec(prop_oneof![write_op(), read_op()], 0..8)
    ) {
        assert_round_trip(&MultiRequest { ops })?;
    }

    #[test]
    fn multi_request_body_rejects_a_read_op(
        mut ops in proptest::collection::vec(write_op(), 0..4),
        read in read_op(),
        at in any::<prop::sample::Index>(),
    ) {
        ops.insert(at.index(ops.len() + 1), read);
        let body = MultiRequest { ops }.to_bytes();
        prop_assert_eq!(
            Request::decode_body(OpCode::Multi.code(), &mut Reader::new(body)),
            Err(DecodeError::Invalid("read op inside multi"))
        );
    }

    #[test]
    fn multi_read_request_body_rejects_a_write_op(
        mut ops in proptest::collection::vec(read_op(), 0..4),
        write in write_op(),
        at in any::<prop::sample::Index>(),
    ) {
        ops.insert(at.index(ops.len() + 1), write);
        let body = MultiRequest { ops }.to_bytes();
        prop_assert_eq!(
            Request::decode_body(OpCode::MultiRead.code(), &mut Reader::new(body)),
            Err(DecodeError::Invalid("write op inside multiRead"))
        );
    }
}

// ---------------------------------------------------------------------------
// response.rs
// ---------------------------------------------------------------------------

proptest! {
    #[test]
    fn every_reply_body_round_trips_for_its_opcode((op, response) in op_and_response()) {
        assert_response_round_trip(op, &response)?;
    }

    #[test]
    fn multi_response_round_trips(v in multi_response()) { assert_round_trip(&v)?; }

    #[test]
    fn reply_frame_round_trips((op, frame) in op_and_reply_frame()) {
        let encoded = encode_reply(&frame);
        let decoded = ReplyFrame::decode_reply(encoded.clone(), op);
        prop_assert_eq!(decoded.as_ref(), Ok(&frame));
        prop_assert_eq!(encode_reply(&frame), encoded);
    }

    #[test]
    fn failed_reply_is_just_its_header((op, header, body) in (op_code(), reply_header(), raw_bytes())
        .prop_filter("a failed reply", |(_, h, _)| h.err != 0))
    {
        // Whatever a server puts after a failed reply's header is ignored.
        let mut buf = BytesMut::new();
        header.encode(&mut buf);
        buf.put_slice(&body);
        let decoded = ReplyFrame::decode_reply(buf.freeze(), op);
        prop_assert_eq!(decoded, Ok(ReplyFrame { header, response: Response::Empty }));
    }

    #[test]
    fn notification_frame_round_trips(zxid in any::<i64>(), event in watcher_event()) {
        let mut buf = BytesMut::new();
        encode_notification(zxid, &event, &mut buf);
        match ServerMessage::decode_frame(buf.freeze()) {
            Ok(ServerMessage::Notification { zxid: got_zxid, event: got }) => {
                prop_assert_eq!(got_zxid, zxid);
                prop_assert_eq!(got, event);
            }
            other => return Err(TestCaseError::fail(format!("not a notification: {other:?}"))),
        }
    }

    #[test]
    fn server_message_leaves_a_reply_body_for_its_opcode(
        (op, frame) in op_and_reply_frame()
            .prop_filter("not a notification", |(_, f)| f.header.xid != xid::NOTIFICATION)
    ) {
        let encoded = encode_reply(&frame);
        match ServerMessage::decode_frame(encoded) {
            Ok(ServerMessage::Reply { header, mut body }) => {
                prop_assert_eq!(&header, &frame.header);
                if header.err == 0 {
                    let response = Response::decode_body(op, &mut body);
                    prop_assert_eq!(response.as_ref(), Ok(&frame.response));
                }
                prop_assert!(body.is_empty());
            }
            other => return Err(TestCaseError::fail(format!("not a reply: {other:?}"))),
        }
    }
}

// ---------------------------------------------------------------------------
// txn.rs
// ---------------------------------------------------------------------------

proptest! {
    #[test]
    fn txn_header_round_trips(v in any::<i32>().prop_flat_map(txn_header)) {
        assert_round_trip(&v)?;
    }

    #[test]
    fn sub_txn_record_round_trips(v in sub_txn()) { assert_round_trip(&v)?; }

    #[test]
    fn txn_digest_round_trips(v in txn_digest()) { assert_round_trip(&v)?; }

    #[test]
    fn every_txn_entry_round_trips_with_and_without_digest(v in txn_entry()) {
        assert_round_trip(&v)?;
    }

    #[test]
    fn txn_body_round_trips_for_its_type(v in txn()) {
        let mut buf = BytesMut::new();
        v.encode_body(&mut buf);
        let encoded = buf.freeze();
        let mut reader = Reader::new(encoded.clone());
        let decoded = Txn::decode_body(v.op_code().code(), &mut reader);
        prop_assert_eq!(decoded.as_ref(), Ok(&v));
        prop_assert!(reader.is_empty());
    }

    #[test]
    fn create_txn_keeps_any_parent_cversion(
        create in create_txn(),
        digest in proptest::option::of(txn_digest()),
        header in txn_header(OpCode::Create.code()),
    ) {
        // -1 is also what an old record without the field reads as; an
        // explicit one (and any other value) must survive, digest or not.
        assert_round_trip(&TxnEntry { header, txn: Txn::Create(create), digest })?;
    }
}

/// A V0 create record (no `parentCVersion`) reads as -1, and so re-encodes
/// four bytes longer: the one create that is not byte-identical.
#[test]
fn create_txn_without_parent_cversion_reads_as_minus_one() {
    let create = CreateTxn {
        path: "/old".into(),
        data: Some(Bytes::from_static(b"v0")),
        acl: Acl::open_unsafe(),
        ephemeral: true,
        parent_cversion: 17,
    };
    let full = Txn::Create(create.clone());
    let mut buf = BytesMut::new();
    full.encode_body(&mut buf);
    let v0 = buf.split_to(buf.len() - 4).freeze();

    let decoded = Txn::decode_body(OpCode::Create.code(), &mut Reader::new(v0.clone())).unwrap();
    let expected = Txn::Create(CreateTxn {
        parent_cversion: -1,
        ..create
    });
    assert_eq!(decoded, expected);
    let mut reencoded = BytesMut::new();
    decoded.encode_body(&mut reencoded);
    assert_eq!(reencoded.len(), v0.len() + 4);
}

/// A create record followed by 1 to 3 stray bytes is still a V0 record:
/// the field is read only when all four of its bytes are there.
#[test]
fn create_txn_with_a_partial_parent_cversion_reads_as_minus_one() {
    let mut buf = BytesMut::new();
    Txn::Create(CreateTxn {
        path: "/p".into(),
        ..Default::default()
    })
    .encode_body(&mut buf);
    let short = buf.split_to(buf.len() - 1).freeze();
    match Txn::decode_body(OpCode::Create.code(), &mut Reader::new(short)).unwrap() {
        Txn::Create(c) => assert_eq!(c.parent_cversion, -1),
        other => panic!("expected a create, got {other:?}"),
    }
}

/// A close-session entry with nothing after its header has no record.
#[test]
fn close_session_without_record_decodes_as_none() {
    let entry = TxnEntry {
        header: TxnHeader {
            client_id: 5,
            cxid: 1,
            zxid: 9,
            time: 1_700_000_000_000,
            txn_type: OpCode::CloseSession.code(),
        },
        txn: Txn::CloseSession(None),
        digest: None,
    };
    let bytes = entry.to_bytes();
    assert_eq!(bytes.len(), 32, "the header alone");
    assert_eq!(TxnEntry::from_bytes(bytes).unwrap(), entry);
}

/// An empty close-session record is not the same as none: it is a count
/// of zero paths, and stays `Some`.
#[test]
fn close_session_with_empty_record_stays_some() {
    let txn = Txn::CloseSession(Some(CloseSessionTxn::default()));
    let mut buf = BytesMut::new();
    txn.encode_body(&mut buf);
    assert_eq!(&buf[..], &[0, 0, 0, 0]);
    let decoded = Txn::decode_body(OpCode::CloseSession.code(), &mut Reader::new(buf.freeze()));
    assert_eq!(decoded, Ok(txn));
}

/// Without a record, the bytes after a close-session header are taken as
/// the record: a digest there does not come back as a digest. This is why
/// the strategies never pair `CloseSession(None)` with a digest.
#[test]
fn close_session_without_record_cannot_carry_a_digest() {
    let entry = TxnEntry {
        header: TxnHeader {
            txn_type: OpCode::CloseSession.code(),
            ..Default::default()
        },
        txn: Txn::CloseSession(None),
        digest: Some(TxnDigest {
            version: 0,
            tree_digest: 0,
        }),
    };
    // Digest version 0 reads as a path count of 0, the 8 digest bytes that
    // follow are too few to be a digest: a record, and no digest.
    let decoded = TxnEntry::from_bytes(entry.to_bytes()).unwrap();
    assert_eq!(
        decoded.txn,
        Txn::CloseSession(Some(CloseSessionTxn::default()))
    );
    assert_eq!(decoded.digest, None);
}

/// Only one level of multi exists: a multi inside a multi is refused.
#[test]
fn multi_txn_nested_in_multi_is_rejected() {
    let nested = Txn::Multi(vec![Txn::Multi(vec![])]);
    let mut buf = BytesMut::new();
    nested.encode_body(&mut buf);
    assert_eq!(
        Txn::decode_body(OpCode::Multi.code(), &mut Reader::new(buf.freeze())),
        Err(DecodeError::Invalid("multi nested inside multi"))
    );
}

// ---------------------------------------------------------------------------
// disk.rs
// ---------------------------------------------------------------------------

proptest! {
    #[test]
    fn file_header_round_trips(v in file_header()) { assert_round_trip(&v)?; }

    #[test]
    fn snapshot_session_round_trips(v in snapshot_session()) { assert_round_trip(&v)?; }

    #[test]
    fn acl_cache_entry_round_trips(v in acl_cache_entry()) { assert_round_trip(&v)?; }

    #[test]
    fn data_node_round_trips(v in data_node()) { assert_round_trip(&v)?; }

    #[test]
    fn zxid_digest_round_trips(v in zxid_digest()) { assert_round_trip(&v)?; }

    #[test]
    fn log_record_round_trips_and_is_followed_by_the_end(
        txn_bytes in proptest::collection::vec(any::<u8>(), 1..512),
        padding in 0usize..64,
    ) {
        let mut buf = BytesMut::new();
        disk::encode_log_record(&txn_bytes, &mut buf);
        let record_len = buf.len();
        buf.put_bytes(0, padding);
        let input = buf.freeze();
        match disk::decode_log_record(&input) {
            LogRecord::Txn { txn_bytes: got, consumed } => {
                prop_assert_eq!(&got[..], &txn_bytes[..]);
                prop_assert_eq!(consumed, record_len);
                prop_assert_eq!(disk::decode_log_record(&input.slice(consumed..)), LogRecord::End);
                let mut again = BytesMut::new();
                disk::encode_log_record(&got, &mut again);
                prop_assert_eq!(&again[..], &input[..record_len]);
            }
            other => return Err(TestCaseError::fail(format!("not a record: {other:?}"))),
        }
    }

    #[test]
    fn txn_entry_round_trips_through_a_log_record(entry in txn_entry()) {
        let mut buf = BytesMut::new();
        disk::encode_log_record(&entry.to_bytes(), &mut buf);
        match disk::decode_log_record(&buf.freeze()) {
            LogRecord::Txn { txn_bytes, .. } => {
                prop_assert_eq!(TxnEntry::from_bytes(txn_bytes), Ok(entry));
            }
            other => return Err(TestCaseError::fail(format!("not a record: {other:?}"))),
        }
    }

    #[test]
    fn log_record_cut_short_is_torn(
        txn_bytes in proptest::collection::vec(any::<u8>(), 1..128),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut buf = BytesMut::new();
        disk::encode_log_record(&txn_bytes, &mut buf);
        // Cut anywhere from just after the checksum and length to just
        // before the end marker.
        let whole = buf.freeze();
        let keep = 12 + cut.index(whole.len() - 12);
        prop_assert_eq!(disk::decode_log_record(&whole.slice(..keep)), LogRecord::Torn);
    }

    #[test]
    fn adler32_matches_the_definition(bytes in proptest::collection::vec(any::<u8>(), 0..20_000)) {
        prop_assert_eq!(Adler32::checksum(&bytes), reference_adler32(&bytes));
    }

    #[test]
    fn adler32_is_the_same_however_the_input_is_split(
        bytes in proptest::collection::vec(any::<u8>(), 0..20_000),
        lengths in proptest::collection::vec(0usize..9000, 1..8),
    ) {
        let mut adler = Adler32::new();
        for chunk in split_into_chunks(&bytes, &lengths) {
            adler.update(chunk);
        }
        prop_assert_eq!(adler.value(), reference_adler32(&bytes));
    }
}

/// Every byte 0xff is the worst case for the deferred modulo: the sums
/// grow fastest. Large enough to cross several reduction blocks.
#[test]
fn adler32_of_long_runs_of_0xff_matches_the_definition() {
    let bytes = vec![0xffu8; 100_000];
    assert_eq!(Adler32::checksum(&bytes), reference_adler32(&bytes));
}

/// An empty txn is never written; if it were, its length of 0 would make
/// the record indistinguishable from a torn one.
#[test]
fn empty_log_record_reads_as_torn() {
    let mut buf = BytesMut::new();
    disk::encode_log_record(&[], &mut buf);
    assert_eq!(disk::decode_log_record(&buf.freeze()), LogRecord::Torn);
}
