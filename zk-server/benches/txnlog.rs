//! Txn log appends: enqueue a batch of 1 KiB setData txns and wait until
//! the writer announces the last one durable. With fsync this is bounded
//! by the disk's flush latency (one fdatasync per batch: group commit);
//! without, by encoding, checksumming and write(2).
//!
//! `cargo bench -p zk-server --bench txnlog`

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use zk_proto::txn::SetDataTxn;
use zk_proto::{Jute, OpCode, Txn, TxnEntry, TxnHeader};
use zk_server::storage::{LogOptions, TxnLog};

const BATCHES: [u64; 3] = [1, 16, 128];

fn entry_bytes(zxid: i64, data: &Bytes) -> Bytes {
    TxnEntry {
        header: TxnHeader {
            client_id: 0x100,
            cxid: zxid as i32,
            zxid,
            time: 1_700_000_000_000,
            txn_type: OpCode::SetData.code(),
        },
        txn: Txn::SetData(SetDataTxn {
            path: "/bench/k0000001".into(),
            data: Some(data.clone()),
            version: zxid as i32,
        }),
        digest: None,
    }
    .to_bytes()
}

fn append(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let data = Bytes::from(vec![7u8; 1024]);
    for force_sync in [true, false] {
        let name = if force_sync {
            "txnlog/append_fsync"
        } else {
            "txnlog/append_nosync"
        };
        let mut group = c.benchmark_group(name);
        if force_sync {
            // Each sample is dominated by fdatasync: fewer, longer samples.
            group.sample_size(20);
            group.measurement_time(Duration::from_secs(5));
        }
        for batch in BATCHES {
            let dir = tempfile::tempdir().expect("temp dir");
            let log = TxnLog::open(
                dir.path(),
                LogOptions {
                    force_sync,
                    ..LogOptions::default()
                },
            )
            .expect("open log");
            let mut durable = log.durable();
            let mut zxid = 0i64;
            group.throughput(Throughput::Elements(batch));
            group.bench_function(BenchmarkId::from_parameter(batch), |b| {
                b.iter_custom(|iters| {
                    // Encoding is part of the pipeline's cost too, but it is
                    // measured here outside the timed region so the numbers
                    // isolate the log itself.
                    let batches: Vec<Vec<(i64, Bytes)>> = (0..iters)
                        .map(|_| {
                            (0..batch)
                                .map(|_| {
                                    zxid += 1;
                                    (zxid, entry_bytes(zxid, &data))
                                })
                                .collect()
                        })
                        .collect();
                    let started = Instant::now();
                    for entries in batches {
                        let last = entries.last().map_or(0, |e| e.0);
                        for (z, bytes) in entries {
                            log.append(z, bytes);
                        }
                        runtime
                            .block_on(durable.wait_for(|d| *d >= last))
                            .expect("log writer alive");
                    }
                    started.elapsed()
                })
            });
            log.close().expect("close log");
        }
        group.finish();
    }
}

criterion_group!(benches, append);
criterion_main!(benches);
