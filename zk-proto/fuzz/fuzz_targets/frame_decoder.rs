//! Feeds the input through `FrameCodec` in chunks, the way bytes arrive on
//! a connection, and decodes every frame as a client request.
//!
//! Input layout: the first 4 bytes choose the chunk lengths (each byte + 1,
//! cycled); the rest is the byte stream. Oracles: no panic; chunked
//! decoding gives exactly the frames (and the error, if any) that decoding
//! the whole stream at once gives; a request that decodes survives a
//! re-encode unchanged.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;
use zk_proto::{FrameCodec, Jute, RequestFrame};

/// Frames, and whether the stream ended in an error.
fn decode_stream<'a>(chunks: impl Iterator<Item = &'a [u8]>, max: usize) -> (Vec<Bytes>, bool) {
    let mut codec = FrameCodec::new(max);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
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

/// Consecutive chunks of `stream` whose lengths cycle through `pattern`.
fn chunks<'a>(stream: &'a [u8], pattern: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = stream;
    for &len in pattern.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, tail) = rest.split_at((usize::from(len) + 1).min(rest.len()));
        out.push(chunk);
        rest = tail;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let (pattern, stream) = data.split_at(4);
    // A small bound now and then, so over-long frames are exercised too.
    let max = if pattern[0] & 1 == 1 {
        1024
    } else {
        zk_proto::jute::DEFAULT_MAX_BUFFER
    };

    let whole = decode_stream(std::iter::once(stream), max);
    let chunked = decode_stream(chunks(stream, pattern).into_iter(), max);
    assert_eq!(chunked, whole, "chunking changed what the codec decoded");

    for frame in whole.0 {
        if let Ok(request) = RequestFrame::decode_frame(frame) {
            assert_eq!(RequestFrame::decode_frame(request.to_bytes()), Ok(request));
        }
    }
});
