//! Decodes the input as a server's frame body, the way a client does: first
//! by xid alone (notification or reply), then the reply body for every
//! opcode it could answer; and as a connect response. Oracles: no panic;
//! whatever decodes survives a re-encode unchanged.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use zk_proto::{ConnectResponse, Jute, OpCode, Reader, Response, ServerMessage};

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);

    if let Ok(ServerMessage::Reply { body, .. }) = ServerMessage::decode_frame(bytes.clone()) {
        for &op in OpCode::ALL {
            if let Ok(response) = Response::decode_body(op, &mut body.clone()) {
                let mut again = BytesMut::new();
                response.encode_body(&mut again);
                let reread = Response::decode_body(op, &mut Reader::new(again.freeze()));
                assert_eq!(reread, Ok(response));
            }
        }
    }

    if let Ok(connect) = ConnectResponse::from_bytes(bytes) {
        assert_eq!(ConnectResponse::from_bytes(connect.to_bytes()), Ok(connect));
    }
});
