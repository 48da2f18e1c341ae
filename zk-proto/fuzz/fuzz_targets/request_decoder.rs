//! Decodes the input as a client's frame body: as a request frame (header
//! and typed body) and as a connect request, the two things a server reads
//! from a client. Oracles: no panic; whatever decodes survives a re-encode
//! unchanged.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use zk_proto::{ConnectRequest, Jute, RequestFrame};

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);

    if let Ok(request) = RequestFrame::decode_frame(bytes.clone()) {
        assert_eq!(RequestFrame::decode_frame(request.to_bytes()), Ok(request));
    }

    if let Ok(connect) = ConnectRequest::from_bytes(bytes) {
        assert_eq!(ConnectRequest::from_bytes(connect.to_bytes()), Ok(connect));
    }
});
