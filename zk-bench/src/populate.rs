//! Populate: create `count` znodes as fast as `sessions x in_flight`
//! workers can, one series `create`. Used to load a server before
//! measuring its memory, and as a bulk-create throughput number.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use zk_client::{Acl, Client, CreateMode};

use crate::session::is_terminal;
use crate::stats::Recorder;
use crate::workload::{Layout, Op};

/// Shared by the workers: the next node number to create.
#[derive(Debug)]
struct Plan {
    layout: Layout,
    value: Vec<u8>,
    count: u64,
    next: AtomicU64,
}

/// Creates nodes `0..count` below the layout's scratch dir.
pub async fn run(
    clients: &[Client],
    in_flight: usize,
    layout: Layout,
    value: Vec<u8>,
    count: u64,
) -> Recorder {
    let plan = Arc::new(Plan {
        layout,
        value,
        count,
        next: AtomicU64::new(0),
    });
    let mut tasks = Vec::new();
    for client in clients {
        for _ in 0..in_flight {
            tasks.push(tokio::spawn(worker(client.clone(), plan.clone())));
        }
    }
    let mut merged = Recorder::new();
    for task in tasks {
        match task.await {
            Ok(recorder) => merged.merge(recorder),
            Err(e) => merged.error(format!("worker task failed: {e}")),
        }
    }
    merged
}

async fn worker(client: Client, plan: Arc<Plan>) -> Recorder {
    let mut recorder = Recorder::new();
    loop {
        let i = plan.next.fetch_add(1, Ordering::Relaxed);
        if i >= plan.count {
            break;
        }
        let path = plan.layout.populated(i);
        let started = std::time::Instant::now();
        let created = client
            .create(
                &path,
                &plan.value,
                &Acl::open_unsafe(),
                CreateMode::Persistent,
            )
            .await;
        match created {
            Ok(_) => recorder.record(Op::Create.series(), started.elapsed()),
            Err(e) => {
                recorder.error(e.to_string());
                if is_terminal(&e) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    recorder
}
