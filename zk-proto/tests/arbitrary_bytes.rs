//! Decoding arbitrary bytes never panics, never hangs and never trusts a
//! length beyond the bytes actually there: every decoder answers `Ok` or an
//! error.
//!
//! Purely random bytes rarely get past the first length check, so most
//! properties also start from valid encodings (a real header with a random
//! body, a valid frame that is truncated or has bytes flipped). Where a
//! decoder does succeed, its answer must be stable: re-encoding the value
//! and decoding again gives the same value.

mod strategies;

use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;
use proptest::sample::Index;
use tokio_util::codec::Decoder;

use strategies::*;
use zk_proto::disk::{self, LogRecord};
use zk_proto::*;

/// Decodes a request frame; if it succeeds, the value must survive a
/// re-encode.
fn check_request_frame(bytes: Bytes) -> Result<(), TestCaseError> {
    if let Ok(frame) = RequestFrame::decode_frame(bytes) {
        prop_assert_eq!(RequestFrame::decode_frame(frame.to_bytes()), Ok(frame));
    }
    Ok(())
}

/// Decodes a reply body for `op`; if it succeeds, the value must survive a
/// re-encode.
fn check_response_body(op: OpCode, body: Bytes) -> Result<(), TestCaseError> {
    if let Ok(response) = Response::decode_body(op, &mut Reader::new(body)) {
        let mut buf = BytesMut::new();
        response.encode_body(&mut buf);
        let again = Response::decode_body(op, &mut Reader::new(buf.freeze()));
        prop_assert_eq!(again, Ok(response));
    }
    Ok(())
}

/// Decodes a txn entry; if it succeeds, the value must survive a re-encode.
fn check_txn_entry(bytes: Bytes) -> Result<(), TestCaseError> {
    if let Ok(entry) = TxnEntry::from_bytes(bytes) {
        prop_assert_eq!(TxnEntry::from_bytes(entry.to_bytes()), Ok(entry));
    }
    Ok(())
}

/// Decodes a stream with the frame codec fed one chunk at a time, the way
/// a connection does: frames are taken as soon as they are whole, the
/// first error ends the connection, and the end of the stream is
/// `decode_eof`. Returns the frames and whether it ended in an error.
fn decode_stream(codec: &mut FrameCodec, chunks: &[&[u8]]) -> (Vec<Bytes>, bool) {
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        // Every frame consumes at least its 4-byte prefix, so this loop
        // ends within buf.len() / 4 + 1 rounds.
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(_) => return (frames, true),
            }
        }
    }
    loop {
        match codec.decode_eof(&mut buf) {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) => return (frames, false),
            Err(_) => return (frames, true),
        }
    }
}

/// Flips the bytes at the given positions.
fn mutate(bytes: &[u8], flips: &[(Index, u8)]) -> Bytes {
    let mut out = bytes.to_vec();
    if !out.is_empty() {
        for (at, mask) in flips {
            let i = at.index(out.len());
            out[i] ^= mask;
        }
    }
    Bytes::from(out)
}

fn flips() -> impl Strategy<Value = Vec<(Index, u8)>> {
    proptest::collection::vec((any::<Index>(), 1u8..=255), 1..4)
}

// ---------------------------------------------------------------------------
// Requests and the handshake
// ---------------------------------------------------------------------------

proptest! {
    #[test]
    fn request_frame_decoder_survives_random_bytes(bytes in raw_bytes()) {
        check_request_frame(Bytes::from(bytes))?;
    }

    #[test]
    fn request_frame_decoder_survives_any_opcode_with_a_random_body(
        op in prop_oneof![op_code().prop_map(OpCode::code), any::<i32>()],
        xid in any::<i32>(),
        body in raw_bytes(),
    ) {
        let mut buf = BytesMut::new();
        RequestHeader { xid, op }.encode(&mut buf);
        buf.put_slice(&body);
        check_request_frame(buf.freeze())?;
    }

    #[test]
    fn request_frame_decoder_survives_truncation(frame in request_frame(), cut in any::<Index>()) {
        let bytes = frame.to_bytes();
        check_request_frame(bytes.slice(..cut.index(bytes.len())))?;
    }

    #[test]
    fn request_frame_decoder_survives_flipped_bytes(frame in request_frame(), flips in flips()) {
        check_request_frame(mutate(&frame.to_bytes(), &flips))?;
    }

    #[test]
    fn connect_request_decoder_survives_random_bytes(bytes in raw_bytes()) {
        if let Ok(req) = ConnectRequest::from_bytes(Bytes::from(bytes)) {
            prop_assert_eq!(ConnectRequest::from_bytes(req.to_bytes()), Ok(req));
        }
    }

    #[test]
    fn connect_response_decoder_survives_random_bytes(bytes in raw_bytes()) {
        if let Ok(resp) = ConnectResponse::from_bytes(Bytes::from(bytes)) {
            prop_assert_eq!(ConnectResponse::from_bytes(resp.to_bytes()), Ok(resp));
        }
    }

    #[test]
    fn connect_request_decoder_survives_flipped_bytes(req in connect_request(), flips in flips()) {
        let _ = ConnectRequest::from_bytes(mutate(&req.to_bytes(), &flips));
    }
}

// ---------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------

proptest! {
    #[test]
    fn server_message_then_every_reply_body_survives_random_bytes(bytes in raw_bytes()) {
        match ServerMessage::decode_frame(Bytes::from(bytes)) {
            Ok(ServerMessage::Reply { body, .. }) => {
                let body = body.peek_rest().to_vec();
                for &op in OpCode::ALL {
                    check_response_body(op, Bytes::from(body.clone()))?;
                }
            }
            Ok(ServerMessage::Notification { .. }) | Err(_) => {}
        }
    }

    #[test]
    fn every_reply_body_decoder_survives_random_bytes(body in raw_bytes()) {
        let body = Bytes::from(body);
        for &op in OpCode::ALL {
            check_response_body(op, body.clone())?;
        }
    }

    #[test]
    fn reply_body_decoder_survives_flipped_bytes(
        (op, response) in op_and_response(),
        flips in flips(),
    ) {
        let mut buf = BytesMut::new();
        response.encode_body(&mut buf);
        check_response_body(op, mutate(&buf, &flips))?;
    }

    #[test]
    fn reply_body_decoder_survives_truncation(
        (op, response) in op_and_response(),
        cut in any::<Index>(),
    ) {
        let mut buf = BytesMut::new();
        response.encode_body(&mut buf);
        let bytes = buf.freeze();
        check_response_body(op, bytes.slice(..cut.index(bytes.len() + 1)))?;
    }

    #[test]
    fn notification_decoder_survives_a_random_body(zxid in any::<i64>(), body in raw_bytes()) {
        let mut buf = BytesMut::new();
        ReplyHeader { xid: xid::NOTIFICATION, zxid, err: 0 }.encode(&mut buf);
        buf.put_slice(&body);
        let _ = ServerMessage::decode_frame(buf.freeze());
    }
}

// ---------------------------------------------------------------------------
// Txns and the txn log
// ---------------------------------------------------------------------------

proptest! {
    #[test]
    fn txn_entry_decoder_survives_random_bytes(bytes in raw_bytes()) {
        check_txn_entry(Bytes::from(bytes))?;
    }

    #[test]
    fn txn_entry_decoder_survives_any_txn_type_with_a_random_body(
        txn_type in prop_oneof![op_code().prop_map(OpCode::code), any::<i32>()],
        header in any::<i32>().prop_flat_map(txn_header),
        body in raw_bytes(),
    ) {
        let mut buf = BytesMut::new();
        TxnHeader { txn_type, ..header }.encode(&mut buf);
        buf.put_slice(&body);
        check_txn_entry(buf.freeze())?;
    }

    #[test]
    fn txn_entry_decoder_survives_flipped_bytes(entry in txn_entry(), flips in flips()) {
        check_txn_entry(mutate(&entry.to_bytes(), &flips))?;
    }

    #[test]
    fn txn_entry_decoder_survives_truncation(entry in txn_entry(), cut in any::<Index>()) {
        let bytes = entry.to_bytes();
        check_txn_entry(bytes.slice(..cut.index(bytes.len())))?;
    }

    #[test]
    fn log_record_decoder_survives_random_bytes(bytes in raw_bytes()) {
        let input = Bytes::from(bytes);
        if let LogRecord::Txn { txn_bytes, consumed } = disk::decode_log_record(&input) {
            prop_assert!(consumed <= input.len());
            prop_assert_eq!(consumed, txn_bytes.len() + 13);
        }
    }

    #[test]
    fn log_record_decoder_survives_any_length_behind_a_valid_checksum(
        len in any::<i32>(),
        body in raw_bytes(),
    ) {
        // A checksum that matches the body, so only the length can be off.
        let mut buf = BytesMut::new();
        buf.put_i64(i64::from(disk::Adler32::checksum(&body)));
        buf.put_i32(len);
        buf.put_slice(&body);
        let _ = disk::decode_log_record(&buf.freeze());
    }
}

// ---------------------------------------------------------------------------
// The frame codec
// ---------------------------------------------------------------------------

proptest! {
    #[test]
    fn frame_codec_gives_the_same_frames_however_the_stream_is_chunked(
        stream in raw_bytes(),
        lengths in chunk_lengths(),
        max in prop_oneof![Just(jute::DEFAULT_MAX_BUFFER), 0usize..64],
    ) {
        let whole = decode_stream(&mut FrameCodec::new(max), &[&stream]);
        let chunked = decode_stream(&mut FrameCodec::new(max), &split_into_chunks(&stream, &lengths));
        prop_assert_eq!(chunked, whole);
    }

    #[test]
    fn frame_codec_splits_valid_frames_at_any_chunking(
        frames in proptest::collection::vec(request_frame(), 0..10),
        lengths in chunk_lengths(),
    ) {
        let mut stream = BytesMut::new();
        for frame in &frames {
            encode_frame(frame, &mut stream);
        }
        let (bodies, failed) =
            decode_stream(&mut FrameCodec::default(), &split_into_chunks(&stream, &lengths));
        prop_assert!(!failed);
        let decoded: Vec<_> = bodies
            .into_iter()
            .map(RequestFrame::decode_frame)
            .collect::<Result<_, _>>()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(decoded, frames);
    }

    #[test]
    fn frame_codec_then_request_decoder_survives_a_random_stream(
        stream in raw_bytes(),
        lengths in chunk_lengths(),
    ) {
        let (bodies, _) =
            decode_stream(&mut FrameCodec::default(), &split_into_chunks(&stream, &lengths));
        for body in bodies {
            check_request_frame(body)?;
        }
    }
}

// ---------------------------------------------------------------------------
// Adversarial inputs
// ---------------------------------------------------------------------------

/// A request frame body: header, then `body`.
fn request_bytes(op: OpCode, body: &[u8]) -> Bytes {
    let mut buf = BytesMut::new();
    RequestHeader::new(1, op).encode(&mut buf);
    buf.put_slice(body);
    buf.freeze()
}

fn be(n: i32) -> [u8; 4] {
    n.to_be_bytes()
}

#[test]
fn path_length_of_i32_max_is_unreasonable() {
    let frame = request_bytes(OpCode::GetData, &be(i32::MAX));
    assert!(matches!(
        RequestFrame::decode_frame(frame),
        Err(DecodeError::UnreasonableLength {
            len: 0x7fff_ffff,
            ..
        })
    ));
}

#[test]
fn path_length_beyond_the_frame_is_unexpected_eof() {
    let frame = request_bytes(OpCode::GetData, &be(1000));
    assert!(matches!(
        RequestFrame::decode_frame(frame),
        Err(DecodeError::UnexpectedEof { .. })
    ));
}

#[test]
fn null_path_is_rejected() {
    let frame = request_bytes(OpCode::Exists, &be(-1));
    assert_eq!(
        RequestFrame::decode_frame(frame),
        Err(DecodeError::UnexpectedNull { what: "ustring" })
    );
}

#[test]
fn path_length_of_minus_two_is_unreasonable() {
    let frame = request_bytes(OpCode::Exists, &be(-2));
    assert!(matches!(
        RequestFrame::decode_frame(frame),
        Err(DecodeError::UnreasonableLength { len: -2, .. })
    ));
}

#[test]
fn data_length_of_minus_two_is_unreasonable() {
    let mut body = BytesMut::new();
    "/a".to_string().encode(&mut body);
    body.put_i32(-2);
    let frame = request_bytes(OpCode::SetData, &body);
    assert!(matches!(
        RequestFrame::decode_frame(frame),
        Err(DecodeError::UnreasonableLength { len: -2, .. })
    ));
}

#[test]
fn huge_acl_count_fails_fast_without_allocating() {
    let mut body = BytesMut::new();
    "/a".to_string().encode(&mut body);
    Option::<Bytes>::None.encode(&mut body);
    body.put_i32(i32::MAX);
    let frame = request_bytes(OpCode::Create, &body);
    assert!(matches!(
        RequestFrame::decode_frame(frame),
        Err(DecodeError::UnexpectedEof { .. })
    ));
}

#[test]
fn huge_children_count_fails_fast_without_allocating() {
    let mut body = BytesMut::new();
    body.put_i32(i32::MAX);
    body.put_slice(&[0, 0, 0, 0]);
    assert!(matches!(
        Response::decode_body(OpCode::GetChildren, &mut Reader::new(body.freeze())),
        Err(DecodeError::UnexpectedEof { .. })
    ));
}

#[test]
fn vector_count_of_minus_two_is_an_empty_vector_as_in_java() {
    let mut body = BytesMut::new();
    body.put_i64(0);
    for _ in 0..3 {
        body.put_i32(-2);
    }
    let frame = request_bytes(OpCode::SetWatches, &body);
    let decoded = RequestFrame::decode_frame(frame).unwrap();
    assert!(matches!(
        decoded.request,
        Request::SetWatches(SetWatches { ref data_watches, .. }) if data_watches.is_empty()
    ));
}

/// 100,000 check ops and no end marker: the decoder reads them all and
/// reports the missing end, in linear time.
#[test]
fn multi_without_its_end_marker_is_unexpected_eof() {
    let body = repeated_check_ops(100_000);
    assert!(matches!(
        RequestFrame::decode_frame(request_bytes(OpCode::Multi, &body)),
        Err(DecodeError::UnexpectedEof { .. })
    ));
}

#[test]
fn multi_with_many_ops_and_its_end_marker_decodes() {
    let mut body = repeated_check_ops(100_000);
    MultiHeader::DONE.encode(&mut body);
    match RequestFrame::decode_frame(request_bytes(OpCode::Multi, &body)) {
        Ok(RequestFrame {
            request: Request::Multi(multi),
            ..
        }) => assert_eq!(multi.ops.len(), 100_000),
        other => panic!("expected a multi, got {other:?}"),
    }
}

fn repeated_check_ops(n: usize) -> BytesMut {
    let mut body = BytesMut::new();
    for _ in 0..n {
        MultiHeader {
            op: OpCode::Check.code(),
            done: false,
            err: -1,
        }
        .encode(&mut body);
        String::new().encode(&mut body);
        body.put_i32(-1);
    }
    body
}

#[test]
fn multi_with_an_op_not_allowed_inside_is_invalid() {
    let mut body = BytesMut::new();
    MultiHeader {
        op: OpCode::Multi.code(),
        done: false,
        err: -1,
    }
    .encode(&mut body);
    assert_eq!(
        RequestFrame::decode_frame(request_bytes(OpCode::Multi, &body)),
        Err(DecodeError::Invalid("op not allowed inside multi"))
    );
}

#[test]
fn multi_reply_of_endless_bodiless_results_is_unexpected_eof() {
    // Delete results have no body: nothing but headers, never done.
    let mut body = BytesMut::new();
    for _ in 0..100_000 {
        MultiHeader {
            op: OpCode::Delete.code(),
            done: false,
            err: 0,
        }
        .encode(&mut body);
    }
    assert!(matches!(
        Response::decode_body(OpCode::Multi, &mut Reader::new(body.freeze())),
        Err(DecodeError::UnexpectedEof { .. })
    ));
}

#[test]
fn multi_txn_with_a_huge_sub_txn_count_fails_fast() {
    let mut buf = BytesMut::new();
    TxnHeader {
        txn_type: OpCode::Multi.code(),
        ..Default::default()
    }
    .encode(&mut buf);
    buf.put_i32(i32::MAX);
    buf.put_i32(OpCode::Delete.code());
    assert!(matches!(
        TxnEntry::from_bytes(buf.freeze()),
        Err(DecodeError::UnexpectedEof { .. })
    ));
}

#[test]
fn frame_length_of_i32_max_is_a_bad_length() {
    let mut buf = BytesMut::from(&be(i32::MAX)[..]);
    assert!(matches!(
        FrameCodec::default().decode(&mut buf),
        Err(FrameError::BadLength {
            len: 0x7fff_ffff,
            ..
        })
    ));
}

#[test]
fn frame_lengths_of_minus_one_and_minus_two_are_bad_lengths() {
    for len in [-1, -2] {
        let mut buf = BytesMut::from(&be(len)[..]);
        assert!(matches!(
            FrameCodec::default().decode(&mut buf),
            Err(FrameError::BadLength { .. })
        ));
    }
}

#[test]
fn frame_of_exactly_the_maximum_length_is_accepted() {
    let mut codec = FrameCodec::new(8);
    let mut buf = BytesMut::from(&[0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8][..]);
    assert_eq!(codec.decode(&mut buf).unwrap().map(|b| b.len()), Some(8));
}

#[test]
fn stream_ending_inside_a_length_prefix_is_truncated() {
    let mut buf = BytesMut::from(&[0, 0][..]);
    assert!(matches!(
        FrameCodec::default().decode_eof(&mut buf),
        Err(FrameError::Truncated {
            buffered: 2,
            expected: 4
        })
    ));
}

#[test]
fn log_record_with_a_huge_or_negative_length_is_torn() {
    for len in [i32::MAX, -1, -2, i32::MIN] {
        let mut buf = BytesMut::new();
        buf.put_i64(1);
        buf.put_i32(len);
        buf.put_slice(b"xB");
        assert_eq!(
            disk::decode_log_record(&buf.freeze()),
            LogRecord::Torn,
            "len {len}"
        );
    }
}
