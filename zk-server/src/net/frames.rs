//! Encoding what the server sends: whole frames (length prefix included),
//! ready to be queued on a connection's outgoing channel.

use bytes::{BufMut, Bytes, BytesMut};
use zk_proto::response::encode_notification;
use zk_proto::{
    write_frame, ConnectResponse, ErrorCode, Jute, MultiResult, ReplyHeader, Response, WatcherEvent,
};

/// Length prefix and reply header.
const HEADER_LEN: usize = 4 + 16;
/// Room for any fixed-size reply body (a Stat is 68 bytes).
const SMALL_BODY: usize = 108;

/// A reply: header, and the body only when the request succeeded.
pub fn reply(xid: i32, zxid: i64, result: &Result<Response, ErrorCode>) -> Bytes {
    let mut buf = BytesMut::with_capacity(HEADER_LEN + body_size_hint(result));
    write_frame(&mut buf, |b| {
        let err = match result {
            Ok(_) => 0,
            Err(code) => code.code(),
        };
        ReplyHeader { xid, zxid, err }.encode(b);
        if let Ok(response) = result {
            response.encode_body(b);
        }
    });
    buf.freeze()
}

/// A frame to write: whole, or spliced around a shared data buffer so a
/// large node's data is not copied into every reply that carries it
/// (net/frames.rs).
#[derive(Debug, Clone)]
pub(crate) enum OutFrame {
    Whole(Bytes),
    Spliced {
        head: Bytes,
        data: Bytes,
        tail: Bytes,
    },
}

impl OutFrame {
    pub fn len(&self) -> usize {
        match self {
            OutFrame::Whole(b) => b.len(),
            OutFrame::Spliced { head, data, tail } => head.len() + data.len() + tail.len(),
        }
    }

    /// The pieces to write, in order.
    pub fn parts(&self) -> impl Iterator<Item = &Bytes> {
        let (a, b, c) = match self {
            OutFrame::Whole(b) => (Some(b), None, None),
            OutFrame::Spliced { head, data, tail } => (Some(head), Some(data), Some(tail)),
        };
        a.into_iter().chain(b).chain(c)
    }
}

impl From<Bytes> for OutFrame {
    fn from(b: Bytes) -> Self {
        OutFrame::Whole(b)
    }
}

/// Node data at least this long goes out spliced (shared with the tree),
/// not copied into the reply.
const SPLICE_MIN: usize = 16 * 1024;
/// A Stat on the wire.
const STAT_LEN: u64 = 68;
/// A multi result header: op (int), done (boolean), err (int).
const MULTI_HEADER_LEN: u64 = 9;

/// The largest reply body the server builds: what Apache's reader accepts
/// in one record, `jute.maxbuffer` plus `zookeeper.jute.maxbuffer.extrasize`
/// (which defaults to `jute.maxbuffer`), never more than a frame's `int`
/// length prefix can say.
pub fn max_reply_len(jute_max_buffer: usize) -> usize {
    jute_max_buffer
        .saturating_mul(2)
        .min(i32::MAX as usize - HEADER_LEN)
}

/// A reply too large to be sent: its body would be `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Oversized {
    pub len: u64,
}

/// A reply whose length (header and body) may not pass `max_len`: the
/// size is known before anything large is built, so an oversized answer
/// (a multiRead of many big nodes) costs nothing but its measurement.
/// Large getData payloads are spliced, not copied.
pub(crate) fn bounded_reply(
    xid: i32,
    zxid: i64,
    result: &Result<Response, ErrorCode>,
    max_len: usize,
) -> Result<OutFrame, Oversized> {
    let body = match result {
        Ok(Response::GetData(r)) => {
            Some(4 + r.data.as_ref().map_or(0, |d| d.len() as u64) + STAT_LEN)
        }
        Ok(Response::Multi(m)) => Some(multi_body_len(&m.results)),
        _ => None,
    };
    if let Some(body) = body {
        let len = 16 + body;
        if len > max_len as u64 {
            return Err(Oversized { len });
        }
    }
    if let Ok(Response::GetData(r)) = result {
        if let Some(data) = r.data.as_ref().filter(|d| d.len() >= SPLICE_MIN) {
            let len = 16 + 4 + data.len() + STAT_LEN as usize;
            let mut head = BytesMut::with_capacity(4 + 16 + 4);
            head.put_i32(len as i32);
            ReplyHeader { xid, zxid, err: 0 }.encode(&mut head);
            head.put_i32(data.len() as i32);
            let mut tail = BytesMut::with_capacity(STAT_LEN as usize);
            r.stat.encode(&mut tail);
            return Ok(OutFrame::Spliced {
                head: head.freeze(),
                data: data.clone(),
                tail: tail.freeze(),
            });
        }
    }
    let frame = reply(xid, zxid, result);
    if frame.len() - 4 > max_len {
        return Err(Oversized {
            len: (frame.len() - 4) as u64,
        });
    }
    Ok(OutFrame::Whole(frame))
}

/// The encoded length of a multi reply body, computed without encoding.
fn multi_body_len(results: &[MultiResult]) -> u64 {
    let string = |s: &str| 4 + s.len() as u64;
    let body = |r: &MultiResult| match r {
        MultiResult::Create(c) => string(&c.path),
        MultiResult::Create2(c) => string(&c.path) + STAT_LEN,
        MultiResult::Delete | MultiResult::Check => 0,
        MultiResult::SetData(_) => STAT_LEN,
        MultiResult::GetData(g) => 4 + g.data.as_ref().map_or(0, |d| d.len() as u64) + STAT_LEN,
        MultiResult::GetChildren(c) => 4 + c.children.iter().map(|s| string(s)).sum::<u64>(),
        MultiResult::Error(_) => 4,
    };
    results
        .iter()
        .map(|r| MULTI_HEADER_LEN + body(r))
        .sum::<u64>()
        + MULTI_HEADER_LEN
}

/// Enough room for most bodies, so encoding one allocates once instead
/// of growing (and copying) the buffer as the data goes in. Bodies this
/// does not foresee, such as long child lists, still grow as needed.
fn body_size_hint(result: &Result<Response, ErrorCode>) -> usize {
    match result {
        Ok(Response::GetData(r)) => SMALL_BODY + r.data.as_ref().map_or(0, |d| d.len()),
        Ok(_) => SMALL_BODY,
        Err(_) => 0,
    }
}

/// A watch notification (xid -1; Apache puts -1 in the zxid field too).
pub fn notification(event: &WatcherEvent) -> Bytes {
    let mut buf = BytesMut::new();
    write_frame(&mut buf, |b| encode_notification(-1, event, b));
    buf.freeze()
}

/// The handshake answer. `read_only` is echoed only when the request
/// carried the trailing boolean (WIRE.md §4.2).
pub fn connect_response(
    timeout: i32,
    session_id: i64,
    passwd: &[u8],
    read_only: Option<bool>,
) -> Bytes {
    let response = ConnectResponse {
        protocol_version: 0,
        timeout,
        session_id,
        passwd: Bytes::copy_from_slice(passwd),
        read_only,
    };
    let mut buf = BytesMut::new();
    write_frame(&mut buf, |b| response.encode(b));
    buf.freeze()
}

/// The refusal of an expired, unknown or wrongly authenticated session:
/// timeout 0, session 0, sixteen zero bytes (WIRE.md §4.3 step 7).
pub fn connect_refused(read_only: Option<bool>) -> Bytes {
    connect_response(0, 0, &[0; 16], read_only.map(|_| false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use zk_proto::proto::{
        Create2Response, CreateResponse, GetChildrenResponse, GetDataResponse, SetDataResponse,
    };
    use zk_proto::{MultiResponse, Stat};

    fn joined(frame: &OutFrame) -> Vec<u8> {
        frame.parts().flat_map(|p| p.to_vec()).collect()
    }

    fn get_data(len: usize) -> Result<Response, ErrorCode> {
        Ok(Response::GetData(GetDataResponse {
            data: Some(Bytes::from(vec![7u8; len])),
            stat: Stat {
                czxid: 3,
                ..Stat::default()
            },
        }))
    }

    #[test]
    fn a_spliced_data_reply_has_the_same_bytes_as_a_copied_one() {
        let result = get_data(SPLICE_MIN + 5);
        let frame = bounded_reply(4, 9, &result, 1 << 20).unwrap();
        assert!(matches!(frame, OutFrame::Spliced { .. }));
        assert_eq!(joined(&frame), reply(4, 9, &result).to_vec());
        assert_eq!(frame.len(), reply(4, 9, &result).len());
    }

    #[test]
    fn the_multi_length_is_computed_exactly() {
        let results = vec![
            MultiResult::Create(CreateResponse { path: "/a".into() }),
            MultiResult::Create2(Create2Response {
                path: "/bé".into(),
                stat: Stat::default(),
            }),
            MultiResult::Delete,
            MultiResult::Check,
            MultiResult::SetData(SetDataResponse {
                stat: Stat::default(),
            }),
            MultiResult::GetData(GetDataResponse {
                data: None,
                stat: Stat::default(),
            }),
            MultiResult::GetData(GetDataResponse {
                data: Some(Bytes::from_static(b"xyz")),
                stat: Stat::default(),
            }),
            MultiResult::GetChildren(GetChildrenResponse {
                children: vec!["c1".into(), "child2".into()],
            }),
            MultiResult::Error(-101),
        ];
        let response = Response::Multi(MultiResponse { results });
        let mut buf = BytesMut::new();
        response.encode_body(&mut buf);
        let Response::Multi(m) = &response else {
            unreachable!()
        };
        assert_eq!(multi_body_len(&m.results), buf.len() as u64);
    }

    #[test]
    fn a_multi_read_larger_than_the_limit_is_refused_before_it_is_built() {
        let big = Bytes::from(vec![0u8; 1 << 20]);
        let results = (0..1500)
            .map(|_| {
                MultiResult::GetData(GetDataResponse {
                    data: Some(big.clone()),
                    stat: Stat::default(),
                })
            })
            .collect();
        let result = Ok(Response::Multi(MultiResponse { results }));
        let refused = bounded_reply(1, 1, &result, max_reply_len(1 << 20)).unwrap_err();
        assert!(refused.len > 1500 << 20, "{refused:?}");
    }

    #[test]
    fn a_reply_within_the_limit_is_built() {
        let result = get_data(100);
        let frame = bounded_reply(1, 1, &result, 1 << 20).unwrap();
        assert_eq!(joined(&frame), reply(1, 1, &result).to_vec());
        assert!(bounded_reply(1, 1, &get_data(2000), 1000).is_err());
    }

    #[test]
    fn the_reply_limit_fits_an_int_length_prefix() {
        assert_eq!(max_reply_len(1_048_575), 2_097_150);
        assert!(max_reply_len(usize::MAX) + HEADER_LEN <= i32::MAX as usize);
    }

    #[test]
    fn failed_reply_is_a_bare_16_byte_header() {
        let frame = reply(7, 9, &Err(ErrorCode::NoNode));
        assert_eq!(&frame[..4], &[0, 0, 0, 16]);
        assert_eq!(&frame[4..8], &[0, 0, 0, 7]);
        assert_eq!(&frame[16..], &(-101i32).to_be_bytes());
    }

    #[test]
    fn successful_reply_carries_the_body() {
        let frame = reply(1, 2, &Ok(Response::Stat(Stat::default())));
        assert_eq!(frame.len(), 4 + 16 + 68);
    }

    #[test]
    fn a_data_reply_is_encoded_into_one_exact_enough_allocation() {
        let data = Bytes::from(vec![1u8; 1024]);
        let result = Ok(Response::GetData(zk_proto::proto::GetDataResponse {
            data: Some(data),
            stat: Stat::default(),
        }));
        let frame = reply(1, 2, &result);
        assert_eq!(frame.len(), HEADER_LEN + 4 + 1024 + 68);
        assert!(frame.len() <= HEADER_LEN + body_size_hint(&result));
    }

    #[test]
    fn refused_connect_echoes_read_only_only_if_asked() {
        assert_eq!(connect_refused(None).len(), 4 + 36);
        assert_eq!(connect_refused(Some(true)).len(), 4 + 37);
        assert_eq!(&connect_refused(None)[4..8], &[0, 0, 0, 0]);
    }
}
