//! Encode and decode cost of the messages a ZooKeeper connection carries
//! most: the common requests and replies, notifications, a logged txn, and
//! the frame codec splitting a buffer of many frames.
//!
//! Run: `cargo bench -p zk-proto --bench codec` (add `-- --quick` for a
//! fast look).

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use tokio_util::codec::Decoder;

use zk_proto::response::encode_notification;
use zk_proto::txn::SetDataTxn;
use zk_proto::*;

const KIB: usize = 1024;

fn stat() -> Stat {
    Stat {
        czxid: 0x1_0000_0002,
        mzxid: 0x1_0000_0007,
        ctime: 1_700_000_000_000,
        mtime: 1_700_000_000_500,
        version: 3,
        cversion: 100,
        aversion: 0,
        ephemeral_owner: 0,
        data_length: KIB as i32,
        num_children: 100,
        pzxid: 0x1_0000_0009,
    }
}

fn payload() -> Bytes {
    Bytes::from((0..KIB).map(|i| i as u8).collect::<Vec<u8>>())
}

fn get_data_request() -> RequestFrame {
    RequestFrame::new(
        7,
        Request::GetData(GetDataRequest {
            path: "/app/config/service-a".into(),
            watch: true,
        }),
    )
}

fn set_data_request() -> RequestFrame {
    RequestFrame::new(
        8,
        Request::SetData(SetDataRequest {
            path: "/app/config/service-a".into(),
            data: Some(payload()),
            version: 3,
        }),
    )
}

fn create_request() -> RequestFrame {
    RequestFrame::new(
        9,
        Request::Create2(CreateRequest {
            path: "/app/locks/lock-".into(),
            data: Some(Bytes::from_static(b"10.0.0.7:2181")),
            acl: Acl::open_unsafe(),
            flags: CreateMode::EphemeralSequential.code(),
        }),
    )
}

fn multi_request() -> RequestFrame {
    let ops = (0..10)
        .map(|i| match i % 3 {
            0 => MultiOp::Check(CheckVersionRequest {
                path: format!("/app/items/{i}"),
                version: i,
            }),
            1 => MultiOp::SetData(SetDataRequest {
                path: format!("/app/items/{i}"),
                data: Some(Bytes::from_static(b"value")),
                version: -1,
            }),
            _ => MultiOp::Create(CreateRequest {
                path: format!("/app/items/{i}"),
                data: None,
                acl: Acl::open_unsafe(),
                flags: 0,
            }),
        })
        .collect();
    RequestFrame::new(10, Request::Multi(MultiRequest { ops }))
}

fn reply(response: Response) -> ReplyFrame {
    ReplyFrame {
        header: ReplyHeader {
            xid: 7,
            zxid: 0x1_0000_0009,
            err: 0,
        },
        response,
    }
}

fn get_data_reply() -> ReplyFrame {
    reply(Response::GetData(GetDataResponse {
        data: Some(payload()),
        stat: stat(),
    }))
}

fn get_children2_reply() -> ReplyFrame {
    reply(Response::GetChildren2(GetChildren2Response {
        children: (0..100).map(|i| format!("member-{i:010}")).collect(),
        stat: stat(),
    }))
}

fn notification() -> WatcherEvent {
    WatcherEvent {
        event_type: EventType::NodeDataChanged.code(),
        state: KeeperState::SyncConnected.code(),
        path: "/app/config/service-a".into(),
    }
}

fn set_data_txn() -> TxnEntry {
    TxnEntry {
        header: TxnHeader {
            client_id: 0x0100_00ce_7180_000e,
            cxid: 8,
            zxid: 0x1_0000_000a,
            time: 1_700_000_001_000,
            txn_type: OpCode::SetData.code(),
        },
        txn: Txn::SetData(SetDataTxn {
            path: "/app/config/service-a".into(),
            data: Some(payload()),
            version: 4,
        }),
        digest: Some(txn::TxnDigest {
            version: 2,
            tree_digest: 0x1234_5678_9abc,
        }),
    }
}

fn encode_reply(frame: &ReplyFrame) -> Bytes {
    let mut buf = BytesMut::new();
    frame.encode(&mut buf);
    buf.freeze()
}

/// Encode and decode benchmarks for one request frame.
fn bench_request(c: &mut Criterion, name: &str, frame: RequestFrame) {
    let bytes = frame.to_bytes();
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    let mut buf = BytesMut::with_capacity(bytes.len());
    group.bench_function("encode", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&frame).encode(&mut buf);
            black_box(buf.len())
        })
    });
    group.bench_function("decode", |b| {
        b.iter(|| RequestFrame::decode_frame(black_box(bytes.clone())).unwrap())
    });
    group.finish();
}

/// Encode and decode benchmarks for one reply frame to an `op` request.
fn bench_reply(c: &mut Criterion, name: &str, op: OpCode, frame: ReplyFrame) {
    let bytes = encode_reply(&frame);
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    let mut buf = BytesMut::with_capacity(bytes.len());
    group.bench_function("encode", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&frame).encode(&mut buf);
            black_box(buf.len())
        })
    });
    group.bench_function("decode", |b| {
        b.iter(|| ReplyFrame::decode_reply(black_box(bytes.clone()), op).unwrap())
    });
    group.finish();
}

fn requests(c: &mut Criterion) {
    bench_request(c, "get_data_request", get_data_request());
    bench_request(c, "set_data_request_1k", set_data_request());
    bench_request(c, "create2_request", create_request());
    bench_request(c, "multi_request_10_ops", multi_request());
}

fn replies(c: &mut Criterion) {
    bench_reply(c, "get_data_reply_1k", OpCode::GetData, get_data_reply());
    bench_reply(
        c,
        "get_children2_reply_100",
        OpCode::GetChildren2,
        get_children2_reply(),
    );
}

fn notifications(c: &mut Criterion) {
    let event = notification();
    let mut buf = BytesMut::new();
    encode_notification(0x1_0000_000a, &event, &mut buf);
    let bytes = buf.split().freeze();
    let mut group = c.benchmark_group("notification");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("encode", |b| {
        b.iter(|| {
            buf.clear();
            encode_notification(0x1_0000_000a, black_box(&event), &mut buf);
            black_box(buf.len())
        })
    });
    group.bench_function("decode", |b| {
        b.iter(|| ServerMessage::decode_frame(black_box(bytes.clone())).unwrap())
    });
    group.finish();
}

fn txns(c: &mut Criterion) {
    let entry = set_data_txn();
    let bytes = entry.to_bytes();
    let mut group = c.benchmark_group("txn_entry_set_data_1k");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    let mut buf = BytesMut::with_capacity(bytes.len());
    group.bench_function("encode", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&entry).encode(&mut buf);
            black_box(buf.len())
        })
    });
    group.bench_function("decode", |b| {
        b.iter(|| TxnEntry::from_bytes(black_box(bytes.clone())).unwrap())
    });
    group.finish();
}

fn frame_codec(c: &mut Criterion) {
    // A pipelined burst: 100 getData requests back to back in one read.
    let mut stream = BytesMut::new();
    for xid in 0..100 {
        encode_frame(
            &RequestFrame::new(
                xid,
                Request::GetData(GetDataRequest {
                    path: format!("/app/config/service-{xid}"),
                    watch: false,
                }),
            ),
            &mut stream,
        );
    }
    let mut group = c.benchmark_group("frame_codec_100_frames");
    group.throughput(Throughput::Bytes(stream.len() as u64));
    group.bench_function("split", |b| {
        b.iter_batched_ref(
            || stream.clone(),
            |buf| {
                let mut codec = FrameCodec::default();
                let mut n = 0;
                while let Some(frame) = codec.decode(buf).unwrap() {
                    black_box(frame);
                    n += 1;
                }
                assert_eq!(n, 100);
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("split_and_decode", |b| {
        b.iter_batched_ref(
            || stream.clone(),
            |buf| {
                let mut codec = FrameCodec::default();
                while let Some(frame) = codec.decode(buf).unwrap() {
                    black_box(RequestFrame::decode_frame(frame).unwrap());
                }
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, requests, replies, notifications, txns, frame_codec);
criterion_main!(benches);
