//! Jute's binary archive: the primitive encoding every ZooKeeper record uses.
//!
//! Integers are big-endian two's complement; `ustring` and `buffer` are an
//! `int` length followed by that many bytes, with `-1` meaning null; a
//! `vector` is an `int` count followed by its elements; a record is its
//! fields in declaration order with no tag and no length prefix.
//!
//! Decoding reads from a [`Reader`] over [`Bytes`], so `buffer` fields are
//! sliced out of the frame without copying. Every read is bounds-checked and
//! returns a [`DecodeError`] instead of panicking, whatever the input.

use bytes::{Buf, BufMut, Bytes};

/// Apache's default `jute.maxbuffer`: 0xfffff bytes (1 MiB less one byte).
pub const DEFAULT_MAX_BUFFER: usize = 0xfffff;

/// Apache bounds every string or buffer inside a record by
/// `jute.maxbuffer + zookeeper.jute.maxbuffer.extrasize`, where the extra
/// size defaults to `jute.maxbuffer` itself.
pub const DEFAULT_MAX_FIELD_LEN: usize = DEFAULT_MAX_BUFFER * 2;

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended before the record did.
    #[error("unexpected end of input reading {what}: needed {needed} bytes, {remaining} left")]
    UnexpectedEof {
        what: &'static str,
        needed: usize,
        remaining: usize,
    },
    /// A string, buffer or vector length is negative (other than the null
    /// marker -1) or larger than the configured bound.
    #[error("unreasonable length {len} for {what} (limit {limit})")]
    UnreasonableLength {
        what: &'static str,
        len: i64,
        limit: usize,
    },
    /// A field that may not be null (a path, say) was encoded as null.
    #[error("unexpected null {what}")]
    UnexpectedNull { what: &'static str },
    /// A number that should name an enumeration value does not.
    #[error("unknown {what} value {value}")]
    UnknownValue { what: &'static str, value: i64 },
    /// An op inside a multi or multiRead has a null path. Apache's server
    /// fails on it before it looks at any op, without logging a txn.
    #[error("null path inside multi")]
    NullPathInMulti,
    /// The bytes are well formed but not allowed here, e.g. a read op
    /// inside a `multi` or a write op inside a `multiRead`.
    #[error("invalid record: {0}")]
    Invalid(&'static str),
}

/// What a null `ustring` (length -1) becomes where a record field is a
/// plain [`String`].
///
/// Apache's `BinaryInputArchive` hands a null string on as Java `null`, and
/// what its server then does depends on where the field is used: some
/// requests treat it exactly as an empty string (a null path in setData is
/// refused by the same path check as ""), others fail on it (a null path in
/// getData is a `NullPointerException`, answered MarshallingError). The
/// request decoder picks the mode per opcode so that each outcome is
/// Apache's (docs/COMPATIBILITY.md, "Malformed requests").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NullStrings {
    /// A null where a `String` is expected is a [`DecodeError::UnexpectedNull`].
    #[default]
    Reject,
    /// A null decodes as "" and is counted ([`Reader::nulls_seen`]).
    AsEmpty,
}

/// A cursor over one frame (or any byte string) that decodes jute primitives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reader {
    buf: Bytes,
    max_field_len: usize,
    null_strings: NullStrings,
    nulls_seen: usize,
    reject_null_vectors: bool,
}

impl Reader {
    /// A reader over `buf` with Apache's default field bound.
    pub fn new(buf: Bytes) -> Self {
        Self::with_max_field_len(buf, DEFAULT_MAX_FIELD_LEN)
    }

    /// A reader whose strings and buffers may be at most `max_field_len` long.
    pub fn with_max_field_len(buf: Bytes, max_field_len: usize) -> Self {
        Reader {
            buf,
            max_field_len,
            null_strings: NullStrings::Reject,
            nulls_seen: 0,
            reject_null_vectors: false,
        }
    }

    /// Sets what a null `ustring` in a `String` field becomes from now on.
    pub fn set_null_strings(&mut self, mode: NullStrings) {
        self.null_strings = mode;
    }

    /// The current null-string mode.
    pub fn null_strings(&self) -> NullStrings {
        self.null_strings
    }

    /// How many null strings were read as "" under [`NullStrings::AsEmpty`].
    pub fn nulls_seen(&self) -> usize {
        self.nulls_seen
    }

    /// Makes a null vector (count -1) an error instead of an empty vector:
    /// Apache's server iterates some lists without a null check.
    pub fn set_reject_null_vectors(&mut self, reject: bool) {
        self.reject_null_vectors = reject;
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// True when every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The bytes not yet read, consuming them.
    pub fn take_rest(&mut self) -> Bytes {
        std::mem::take(&mut self.buf)
    }

    /// A view of the bytes not yet read.
    pub fn peek_rest(&self) -> &[u8] {
        &self.buf
    }

    fn need(&self, what: &'static str, needed: usize) -> Result<(), DecodeError> {
        if self.buf.len() < needed {
            Err(DecodeError::UnexpectedEof {
                what,
                needed,
                remaining: self.buf.len(),
            })
        } else {
            Ok(())
        }
    }

    pub fn read_u8(&mut self) -> Result<u8, DecodeError> {
        self.need("byte", 1)?;
        Ok(self.buf.get_u8())
    }

    /// A jute `boolean`: any non-zero byte is true, as Java's reader has it.
    pub fn read_bool(&mut self) -> Result<bool, DecodeError> {
        self.need("boolean", 1)?;
        Ok(self.buf.get_u8() != 0)
    }

    pub fn read_i32(&mut self) -> Result<i32, DecodeError> {
        self.need("int", 4)?;
        Ok(self.buf.get_i32())
    }

    pub fn read_i64(&mut self) -> Result<i64, DecodeError> {
        self.need("long", 8)?;
        Ok(self.buf.get_i64())
    }

    /// Reads a length prefix; `None` for the null marker -1.
    fn read_len(&mut self, what: &'static str) -> Result<Option<usize>, DecodeError> {
        let len = self.read_i32()?;
        match len {
            -1 => Ok(None),
            n if n < -1 || n as usize > self.max_field_len => {
                Err(DecodeError::UnreasonableLength {
                    what,
                    len: n.into(),
                    limit: self.max_field_len,
                })
            }
            n => Ok(Some(n as usize)),
        }
    }

    /// A jute `buffer`, `None` when null. The bytes share the frame's memory.
    pub fn read_opt_buffer(&mut self) -> Result<Option<Bytes>, DecodeError> {
        match self.read_len("buffer")? {
            None => Ok(None),
            Some(len) => {
                self.need("buffer", len)?;
                Ok(Some(self.buf.split_to(len)))
            }
        }
    }

    /// A jute `ustring`, `None` when null. Invalid UTF-8 (Java writes
    /// CESU-8 for characters outside the BMP) is replaced with U+FFFD, as
    /// Java's reader does.
    pub fn read_opt_string(&mut self) -> Result<Option<String>, DecodeError> {
        match self.read_len("ustring")? {
            None => Ok(None),
            Some(len) => {
                self.need("ustring", len)?;
                let raw = self.buf.split_to(len);
                Ok(Some(match std::str::from_utf8(&raw) {
                    Ok(s) => s.to_owned(),
                    Err(_) => String::from_utf8_lossy(&raw).into_owned(),
                }))
            }
        }
    }

    /// A vector count; `None` for null. Any other negative count is an
    /// empty vector, as in Java's reader (its index is done at once when the
    /// count is not positive). Counts are not bounded by Java's reader, so
    /// the caller must not preallocate from it blindly.
    pub fn read_vec_len(&mut self) -> Result<Option<usize>, DecodeError> {
        let count = self.read_i32()?;
        match count {
            -1 if self.reject_null_vectors => Err(DecodeError::UnexpectedNull { what: "vector" }),
            -1 => Ok(None),
            n if n < -1 => Ok(Some(0)),
            n => Ok(Some(n as usize)),
        }
    }

    /// A `ustring` where a value is expected: null is an error or "",
    /// as [`NullStrings`] says.
    pub fn read_string(&mut self) -> Result<String, DecodeError> {
        match self.read_opt_string()? {
            Some(s) => Ok(s),
            None => match self.null_strings {
                NullStrings::Reject => Err(DecodeError::UnexpectedNull { what: "ustring" }),
                NullStrings::AsEmpty => {
                    self.nulls_seen += 1;
                    Ok(String::new())
                }
            },
        }
    }
}

/// Encoding of jute primitives onto any [`BufMut`].
pub trait JuteWrite: BufMut {
    fn put_bool_jute(&mut self, v: bool) {
        self.put_u8(u8::from(v));
    }

    /// A `ustring`; `None` is written as the null marker.
    fn put_opt_string(&mut self, s: Option<&str>) {
        match s {
            None => self.put_i32(-1),
            Some(s) => {
                self.put_i32(len_i32(s.len()));
                self.put_slice(s.as_bytes());
            }
        }
    }

    /// A `buffer`; `None` is written as the null marker.
    fn put_opt_buffer(&mut self, b: Option<&[u8]>) {
        match b {
            None => self.put_i32(-1),
            Some(b) => {
                self.put_i32(len_i32(b.len()));
                self.put_slice(b);
            }
        }
    }
}

impl<B: BufMut + ?Sized> JuteWrite for B {}

/// Jute lengths are signed 32-bit. Anything longer cannot be represented on
/// the wire at all; saturate, and the peer's length check rejects it.
fn len_i32(len: usize) -> i32 {
    i32::try_from(len).unwrap_or(i32::MAX)
}

/// A value with a jute encoding: primitives, strings, buffers, vectors and
/// records all implement it, so records are just lists of `Jute` fields.
pub trait Jute: Sized {
    fn encode<B: BufMut>(&self, buf: &mut B);
    fn decode(r: &mut Reader) -> Result<Self, DecodeError>;

    /// Encodes into a fresh byte string.
    fn to_bytes(&self) -> Bytes {
        let mut buf = bytes::BytesMut::new();
        self.encode(&mut buf);
        buf.freeze()
    }

    /// Decodes from a byte string, ignoring bytes left after the value
    /// (Apache's reader ignores them too).
    fn from_bytes(bytes: Bytes) -> Result<Self, DecodeError> {
        Self::decode(&mut Reader::new(bytes))
    }
}

impl Jute for i32 {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        buf.put_i32(*self);
    }
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        r.read_i32()
    }
}

impl Jute for i64 {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        buf.put_i64(*self);
    }
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        r.read_i64()
    }
}

impl Jute for bool {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        buf.put_bool_jute(*self);
    }
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        r.read_bool()
    }
}

/// A `ustring` that should hold a value (paths, schemes). Null on the wire
/// is an error, or "" where the reader was told so ([`NullStrings`]).
impl Jute for String {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        buf.put_opt_string(Some(self));
    }
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        r.read_string()
    }
}

/// A nullable `ustring`.
impl Jute for Option<String> {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        buf.put_opt_string(self.as_deref());
    }
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        r.read_opt_string()
    }
}

/// A `buffer` where null and empty mean the same (passwords, auth data,
/// tokens): null decodes as empty.
impl Jute for Bytes {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        buf.put_opt_buffer(Some(self));
    }
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(r.read_opt_buffer()?.unwrap_or_default())
    }
}

/// A `buffer` whose null-ness matters (znode data: a node created with null
/// data reads back as null).
impl Jute for Option<Bytes> {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        buf.put_opt_buffer(self.as_deref());
    }
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        r.read_opt_buffer()
    }
}

/// The most elements a vector decode reserves room for up front.
const MAX_VEC_PREALLOC: usize = 1024;

/// A `vector`; a null vector decodes as empty.
impl<T: Jute> Jute for Vec<T> {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        buf.put_i32(len_i32(self.len()));
        for item in self {
            item.encode(buf);
        }
    }
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let count = r.read_vec_len()?.unwrap_or(0);
        // Every element takes at least one byte, so a count larger than the
        // bytes left is a lie; and a large element type times a large lying
        // count is still a lot of memory: reserve a bounded amount and let
        // the vector grow as elements really decode.
        let mut items = Vec::with_capacity(count.min(r.remaining()).min(MAX_VEC_PREALLOC));
        for _ in 0..count {
            items.push(T::decode(r)?);
        }
        Ok(items)
    }
}

/// Declares a jute record: a struct whose fields are encoded in order.
///
/// ```ignore
/// record! {
///     /// doc
///     pub struct ExistsRequest { pub path: String, pub watch: bool }
/// }
/// ```
#[macro_export]
macro_rules! record {
    ($(
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty ),* $(,)?
        }
    )*) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty ),*
        }

        impl $crate::jute::Jute for $name {
            #[allow(unused_variables)]
            fn encode<B: ::bytes::BufMut>(&self, buf: &mut B) {
                $( $crate::jute::Jute::encode(&self.$field, buf); )*
            }
            #[allow(unused_variables)]
            fn decode(r: &mut $crate::jute::Reader) -> ::std::result::Result<Self, $crate::jute::DecodeError> {
                Ok($name { $( $field: $crate::jute::Jute::decode(r)? ),* })
            }
        }
    )*};
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(bytes: &[u8]) -> Reader {
        Reader::new(Bytes::copy_from_slice(bytes))
    }

    #[test]
    fn null_and_empty_buffers_are_distinct() {
        let null: Option<Bytes> = None;
        let empty: Option<Bytes> = Some(Bytes::new());
        assert_eq!(&null.to_bytes()[..], &[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(&empty.to_bytes()[..], &[0, 0, 0, 0]);
        assert_eq!(Option::<Bytes>::from_bytes(null.to_bytes()).unwrap(), None);
        assert_eq!(
            Option::<Bytes>::from_bytes(empty.to_bytes()).unwrap(),
            Some(Bytes::new())
        );
    }

    #[test]
    fn buffers_share_the_frame_memory() {
        let frame = Bytes::from_static(&[0, 0, 0, 3, b'a', b'b', b'c']);
        let data = Option::<Bytes>::from_bytes(frame.clone()).unwrap().unwrap();
        assert_eq!(data.as_ptr(), frame[4..].as_ptr());
    }

    #[test]
    fn length_below_minus_one_is_unreasonable() {
        let err = reader(&[0xff, 0xff, 0xff, 0xfe])
            .read_opt_buffer()
            .unwrap_err();
        assert!(matches!(
            err,
            DecodeError::UnreasonableLength { len: -2, .. }
        ));
    }

    #[test]
    fn length_above_the_bound_is_unreasonable() {
        let mut r = Reader::with_max_field_len(Bytes::from_static(&[0, 0, 0, 9]), 8);
        assert!(matches!(
            r.read_opt_string(),
            Err(DecodeError::UnreasonableLength {
                len: 9,
                limit: 8,
                ..
            })
        ));
    }

    #[test]
    fn null_string_is_an_error_where_a_value_is_required() {
        assert_eq!(
            String::from_bytes(Bytes::from_static(&[0xff; 4])),
            Err(DecodeError::UnexpectedNull { what: "ustring" })
        );
    }

    #[test]
    fn truncated_input_reports_what_was_missing() {
        assert!(matches!(
            reader(&[0, 0, 0, 5, b'a']).read_opt_string(),
            Err(DecodeError::UnexpectedEof {
                what: "ustring",
                needed: 5,
                remaining: 1
            })
        ));
    }

    #[test]
    fn any_nonzero_byte_is_true() {
        assert!(reader(&[7]).read_bool().unwrap());
        assert!(!reader(&[0]).read_bool().unwrap());
    }

    #[test]
    fn null_string_can_be_read_as_empty_and_is_counted() {
        let mut r = reader(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, b'a']);
        r.set_null_strings(NullStrings::AsEmpty);
        assert_eq!(String::decode(&mut r).unwrap(), "");
        assert_eq!(String::decode(&mut r).unwrap(), "a");
        assert_eq!(r.nulls_seen(), 1);
    }

    #[test]
    fn negative_vector_count_is_an_empty_vector_as_in_java() {
        let v = Vec::<i32>::from_bytes(Bytes::from_static(&[0xff, 0xff, 0xff, 0xfb])).unwrap();
        assert!(v.is_empty());
    }

    #[test]
    fn null_vector_is_empty_unless_rejected() {
        let null = Bytes::from_static(&[0xff; 4]);
        assert!(Vec::<i32>::from_bytes(null.clone()).unwrap().is_empty());
        let mut r = Reader::new(null);
        r.set_reject_null_vectors(true);
        assert_eq!(
            Vec::<i32>::decode(&mut r),
            Err(DecodeError::UnexpectedNull { what: "vector" })
        );
    }

    #[test]
    fn huge_vector_count_does_not_preallocate() {
        let r = Vec::<i64>::from_bytes(Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 0, 0]));
        assert!(matches!(r, Err(DecodeError::UnexpectedEof { .. })));
    }

    #[test]
    fn invalid_utf8_is_replaced_not_rejected() {
        let s = String::from_bytes(Bytes::from_static(&[0, 0, 0, 2, 0xed, 0xa0])).unwrap();
        assert!(s.contains('\u{fffd}'));
    }
}
