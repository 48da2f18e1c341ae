//! Encoding what the server sends: whole frames (length prefix included),
//! ready to be queued on a connection's outgoing channel.

use bytes::{Bytes, BytesMut};
use zk_proto::response::encode_notification;
use zk_proto::{
    write_frame, ConnectResponse, ErrorCode, Jute, ReplyHeader, Response, WatcherEvent,
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
    use zk_proto::Stat;

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
