//! Length-prefixed framing for `tokio_util::codec`: a 4-byte big-endian
//! signed length, then that many bytes (WIRE.md §1, §12).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::jute::{Jute, DEFAULT_MAX_BUFFER};

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The length prefix is negative or above the configured maximum.
    /// Apache closes the connection without a reply ("Len error").
    #[error("frame length {len} out of range (max {max})")]
    BadLength { len: i64, max: usize },
    /// The stream ended inside a frame.
    #[error("connection closed inside a frame: {buffered} of {expected} bytes read")]
    Truncated { buffered: usize, expected: usize },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Splits a byte stream into frame bodies and prefixes outgoing ones.
///
/// Decoded items are the frame bodies, without the length prefix, as
/// [`Bytes`] so records decoded from them borrow their data fields.
#[derive(Debug, Clone, Copy)]
pub struct FrameCodec {
    max_frame_len: usize,
}

impl Default for FrameCodec {
    fn default() -> Self {
        FrameCodec::new(DEFAULT_MAX_BUFFER)
    }
}

impl FrameCodec {
    /// A codec that rejects incoming frames longer than `max_frame_len`
    /// (Apache's `jute.maxbuffer`, 0xfffff by default).
    pub fn new(max_frame_len: usize) -> Self {
        FrameCodec { max_frame_len }
    }

    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }
}

const PREFIX: usize = 4;

impl Decoder for FrameCodec {
    type Item = Bytes;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        if src.len() < PREFIX {
            return Ok(None);
        }
        let len = i32::from_be_bytes([src[0], src[1], src[2], src[3]]);
        let len = match usize::try_from(len) {
            Ok(len) if len <= self.max_frame_len => len,
            _ => {
                return Err(FrameError::BadLength {
                    len: len.into(),
                    max: self.max_frame_len,
                })
            }
        };
        if src.len() < PREFIX + len {
            src.reserve(PREFIX + len - src.len());
            return Ok(None);
        }
        src.advance(PREFIX);
        Ok(Some(src.split_to(len).freeze()))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => {
                let expected = if src.len() >= PREFIX {
                    PREFIX + i32::from_be_bytes([src[0], src[1], src[2], src[3]]) as usize
                } else {
                    PREFIX
                };
                Err(FrameError::Truncated {
                    buffered: src.len(),
                    expected,
                })
            }
        }
    }
}

/// Any jute value can be sent as one frame: the length is patched in after
/// encoding, so the body is written once, straight into the output buffer.
impl<T: Jute> Encoder<T> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, item: T, dst: &mut BytesMut) -> Result<(), FrameError> {
        encode_frame(&item, dst);
        Ok(())
    }
}

/// Appends `item` to `dst` as one length-prefixed frame.
pub fn encode_frame<T: Jute>(item: &T, dst: &mut BytesMut) {
    write_frame(dst, |buf| item.encode(buf));
}

/// Appends one length-prefixed frame whose body `body` writes.
pub fn write_frame(dst: &mut BytesMut, body: impl FnOnce(&mut BytesMut)) {
    let start = dst.len();
    dst.put_i32(0);
    body(dst);
    let len = dst.len() - start - PREFIX;
    let len = i32::try_from(len).unwrap_or(i32::MAX);
    dst[start..start + PREFIX].copy_from_slice(&len.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{ExistsRequest, RequestHeader};
    use crate::request::{Request, RequestFrame};
    use crate::OpCode;

    #[test]
    fn encodes_the_worked_ping_frame() {
        let mut buf = BytesMut::new();
        FrameCodec::default()
            .encode(RequestFrame::new(-2, Request::Ping), &mut buf)
            .unwrap();
        assert_eq!(&buf[..], &[0, 0, 0, 8, 0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 11]);
    }

    #[test]
    fn waits_for_a_whole_frame() {
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::from(&[0, 0, 0, 3, 1, 2][..]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(&[3, 0, 0]);
        assert_eq!(&codec.decode(&mut buf).unwrap().unwrap()[..], &[1, 2, 3]);
        assert_eq!(&buf[..], &[0, 0]);
    }

    #[test]
    fn rejects_oversize_and_negative_lengths() {
        let mut codec = FrameCodec::new(16);
        let mut big = BytesMut::from(&[0, 0, 0, 17][..]);
        assert!(matches!(
            codec.decode(&mut big),
            Err(FrameError::BadLength { len: 17, max: 16 })
        ));
        let mut neg = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
        assert!(matches!(
            codec.decode(&mut neg),
            Err(FrameError::BadLength { len: -1, .. })
        ));
    }

    #[test]
    fn four_letter_words_are_out_of_range_lengths() {
        let mut buf = BytesMut::from(&b"ruok"[..]);
        assert!(matches!(
            FrameCodec::default().decode(&mut buf),
            Err(FrameError::BadLength {
                len: 0x72756f6b,
                ..
            })
        ));
    }

    #[test]
    fn eof_inside_a_frame_is_truncated() {
        let mut buf = BytesMut::from(&[0, 0, 0, 9, 1][..]);
        assert!(matches!(
            FrameCodec::default().decode_eof(&mut buf),
            Err(FrameError::Truncated {
                buffered: 5,
                expected: 13
            })
        ));
    }

    #[test]
    fn body_and_prefix_agree() {
        let mut buf = BytesMut::new();
        write_frame(&mut buf, |b| {
            RequestHeader::new(1, OpCode::Exists).encode(b);
            ExistsRequest {
                path: "/a".into(),
                watch: true,
            }
            .encode(b);
        });
        assert_eq!(&buf[..4], &[0, 0, 0, 0x0f]);
        assert_eq!(buf.len(), 4 + 0x0f);
    }
}
