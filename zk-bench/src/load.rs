//! Closed-loop request load: read, write, mixed and create-delete.
//! `sessions x in_flight` workers each issue one request at a time and the
//! next as soon as the reply arrives, so the offered load adapts to the
//! server (throughput is what the server sustains at that concurrency).

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use zk_client::{Acl, Client, CreateMode};

use crate::cli::Workload;
use crate::session::is_terminal;
use crate::stats::Recorder;
use crate::timing::{timed, Window};
use crate::workload::{choose_mixed, Layout, Op};

/// What every worker of one run shares.
#[derive(Debug)]
pub struct LoadPlan {
    pub workload: Workload,
    pub layout: Layout,
    pub keys: usize,
    pub read_ratio: u8,
    pub value: Vec<u8>,
    pub window: Window,
    pub seed: u64,
}

/// Runs the workers over `clients` (`in_flight` per client) until the
/// window ends and returns their merged samples.
pub async fn run(clients: &[Client], in_flight: usize, plan: LoadPlan) -> Recorder {
    let plan = Arc::new(plan);
    let mut tasks = Vec::new();
    for (session, client) in clients.iter().enumerate() {
        for slot in 0..in_flight {
            let worker = session * in_flight + slot;
            tasks.push(tokio::spawn(worker_loop(
                client.clone(),
                plan.clone(),
                worker,
            )));
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

async fn worker_loop(client: Client, plan: Arc<LoadPlan>, worker: usize) -> Recorder {
    let mut rng = StdRng::seed_from_u64(plan.seed ^ (worker as u64).wrapping_mul(0x9E37_79B9));
    let mut recorder = Recorder::new();
    let mut seq = 0u64;
    while !plan.window.is_over() {
        let outcome = match plan.workload {
            Workload::CreateDelete => {
                seq += 1;
                create_then_delete(&client, &plan, &mut recorder, worker, seq).await
            }
            _ => {
                let op = next_op(plan.workload, &mut rng, plan.read_ratio);
                let key = plan.layout.key(rng.gen_range(0..plan.keys));
                key_op(&client, &plan, &mut recorder, op, &key).await
            }
        };
        if let Err(e) = outcome {
            if is_terminal(&e) {
                break;
            }
            // Connection loss and the like: do not spin while the client
            // reconnects.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    recorder
}

/// The op a key-based workload issues next.
fn next_op(workload: Workload, rng: &mut StdRng, read_ratio: u8) -> Op {
    match workload {
        Workload::Read => Op::GetData,
        Workload::Write => Op::SetData,
        _ => choose_mixed(rng, read_ratio),
    }
}

async fn key_op(
    client: &Client,
    plan: &LoadPlan,
    recorder: &mut Recorder,
    op: Op,
    key: &str,
) -> Result<(), zk_client::Error> {
    let window = &plan.window;
    match op {
        Op::SetData => timed(
            recorder,
            window,
            op.series(),
            client.set_data(key, &plan.value, None),
        )
        .await
        .map(drop),
        _ => timed(recorder, window, Op::GetData.series(), client.get_data(key))
            .await
            .map(drop),
    }
}

async fn create_then_delete(
    client: &Client,
    plan: &LoadPlan,
    recorder: &mut Recorder,
    worker: usize,
    seq: u64,
) -> Result<(), zk_client::Error> {
    let path = plan.layout.scratch(worker, seq);
    let window = &plan.window;
    let acl = Acl::open_unsafe();
    let create = client.create(&path, &plan.value, &acl, CreateMode::Persistent);
    timed(recorder, window, Op::Create.series(), create).await?;
    timed(
        recorder,
        window,
        Op::Delete.series(),
        client.delete(&path, None),
    )
    .await
}
