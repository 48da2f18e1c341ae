//! `zk-bench`: a load generator for ZooKeeper servers (ours or Apache's),
//! reporting throughput and HDR-histogram latency percentiles.
//!
//! Each workload works in its own subtree `<root>/run-<pid>-<random>`,
//! created before the measured window and removed after it (unless
//! `--keep`). See `docs/PERFORMANCE.md` for how the numbers are used.

pub mod churn;
pub mod cli;
pub mod cpu;
pub mod error;
pub mod failover;
pub mod fanout;
pub mod load;
pub mod populate;
pub mod report;
pub mod session;
pub mod stats;
pub mod timing;
pub mod workload;

use std::time::{Duration, Instant};

use rand::{Rng, RngCore};
use zk_client::{Acl, Client, CreateMode};

use crate::cli::{Args, Workload};
use crate::error::BenchError;
use crate::report::Report;
use crate::session::{close_all, connect_one, connect_pool, create_all, delete_tree, ensure_path};
use crate::stats::{Recorder, SeriesSummary};
use crate::timing::Window;
use crate::workload::Layout;

/// Runs the workload `args` describe and reports on it.
pub async fn run(args: &Args) -> Result<Report, BenchError> {
    args.validate().map_err(BenchError::Option)?;
    let mut rng = rand::thread_rng();
    let run_id = format!("run-{}-{:08x}", std::process::id(), rng.gen::<u32>());
    let layout = Layout::new(&args.root, &run_id);
    let mut value = vec![0u8; args.value_size];
    rng.fill_bytes(&mut value);
    let seed = rng.gen::<u64>();

    let outcome = match args.workload {
        Workload::Read | Workload::Write | Workload::Mixed | Workload::CreateDelete => {
            run_load(args, &layout, value, seed).await?
        }
        Workload::Watch => run_watch(args, &layout, &value).await?,
        Workload::Churn => run_churn(args).await,
        Workload::Populate => run_populate(args, &layout, value).await?,
        Workload::Failover => run_failover(args, &layout, value).await?,
    };
    Ok(build_report(args, outcome))
}

/// Samples and the window they were taken over.
struct Outcome {
    recorder: Recorder,
    headline: Headline,
    warmup: Duration,
    measured: Duration,
    client_cpu_percent: Option<f64>,
    outages: Option<Vec<failover::Outage>>,
}

/// Which latency the report leads with.
enum Headline {
    /// Every request, all op types pooled.
    AllRequests,
    /// One named series.
    Series(&'static str),
}

fn build_report(args: &Args, outcome: Outcome) -> Report {
    let Outcome {
        recorder,
        headline,
        warmup,
        measured,
        client_cpu_percent,
        outages,
    } = outcome;
    let latency: SeriesSummary = match headline {
        Headline::AllRequests => recorder.summarize_all("all", measured),
        Headline::Series(name) => recorder
            .summarize(measured)
            .into_iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| Recorder::new().summarize_all(name, measured)),
    };
    Report {
        workload: args.workload.name().to_string(),
        connect: args.connect.clone(),
        sessions: args.sessions,
        in_flight: args.in_flight,
        value_size: args.value_size,
        read_ratio: (args.workload == Workload::Mixed).then_some(args.read_ratio),
        watchers: (args.workload == Workload::Watch).then_some(args.watchers),
        count: (args.workload == Workload::Populate).then_some(args.count),
        warmup_s: warmup.as_secs_f64(),
        measured_s: measured.as_secs_f64(),
        throughput_per_s: latency.per_second,
        series: recorder.summarize(measured),
        latency,
        errors: recorder.errors().clone(),
        client_cpu_percent,
        outages,
    }
}

/// Samples this process's CPU at the window's start and end.
fn spawn_cpu_sampler(window: Window) -> tokio::task::JoinHandle<Option<f64>> {
    tokio::spawn(async move {
        tokio::time::sleep_until(window.measure_from.into()).await;
        let before = cpu::process_cpu_time();
        let from = Instant::now();
        tokio::time::sleep_until(window.end.into()).await;
        cpu::percent_of_core(before, cpu::process_cpu_time(), from.elapsed())
    })
}

async fn run_load(
    args: &Args,
    layout: &Layout,
    value: Vec<u8>,
    seed: u64,
) -> Result<Outcome, BenchError> {
    let clients = connect_pool(&args.connect, args.sessions, args.session_timeout).await?;
    let concurrency = args.sessions * args.in_flight;
    let setup = async {
        if args.workload == Workload::CreateDelete {
            ensure_path(&clients[0], &layout.scratch_dir()).await
        } else {
            ensure_path(&clients[0], &layout.keys_dir()).await?;
            let keys = (0..args.keys).map(|i| layout.key(i)).collect();
            create_all(&clients, keys, &value, concurrency).await
        }
    };
    if let Err(e) = setup.await {
        close_all(&clients).await;
        return Err(e);
    }
    let window = Window::starting_now(args.warmup, args.duration);
    let cpu = spawn_cpu_sampler(window);
    let plan = load::LoadPlan {
        workload: args.workload,
        layout: layout.clone(),
        keys: args.keys,
        read_ratio: args.read_ratio,
        value,
        window,
        seed,
    };
    let recorder = load::run(&clients, args.in_flight, plan).await;
    let client_cpu_percent = cpu.await.ok().flatten();
    let cleaned = cleanup(args, &clients, layout, concurrency).await;
    close_all(&clients).await;
    cleaned?;
    Ok(Outcome {
        recorder,
        headline: Headline::AllRequests,
        warmup: args.warmup,
        measured: window.measured(),
        client_cpu_percent,
        outages: None,
    })
}

async fn run_watch(args: &Args, layout: &Layout, value: &[u8]) -> Result<Outcome, BenchError> {
    let writer = connect_one(&args.connect, args.session_timeout).await?;
    let watchers = match connect_pool(&args.connect, args.watchers, args.session_timeout).await {
        Ok(w) => w,
        Err(e) => {
            let _ = writer.close().await;
            return Err(e);
        }
    };
    let path = layout.watched();
    let result = async {
        ensure_path(&writer, &layout.run).await?;
        match writer
            .create(&path, value, &Acl::open_unsafe(), CreateMode::Persistent)
            .await
        {
            Ok(_) | Err(zk_client::Error::NodeExists) => {}
            Err(source) => return Err(BenchError::Setup { path, source }),
        }
        let window = Window::starting_now(args.warmup, args.duration);
        let cpu = spawn_cpu_sampler(window);
        let recorder = fanout::run(&writer, &watchers, &path, value, window).await?;
        Ok((recorder, window, cpu.await.ok().flatten()))
    }
    .await;
    close_all(&watchers).await;
    let cleaned = cleanup(args, std::slice::from_ref(&writer), layout, 1).await;
    let _ = writer.close().await;
    let (recorder, window, client_cpu_percent) = result?;
    cleaned?;
    Ok(Outcome {
        recorder,
        headline: Headline::Series("fanout"),
        warmup: args.warmup,
        measured: window.measured(),
        client_cpu_percent,
        outages: None,
    })
}

async fn run_churn(args: &Args) -> Outcome {
    let window = Window::starting_now(args.warmup, args.duration);
    let cpu = spawn_cpu_sampler(window);
    let recorder = churn::run(&args.connect, args.sessions, args.session_timeout, window).await;
    Outcome {
        recorder,
        headline: Headline::Series("session"),
        warmup: args.warmup,
        measured: window.measured(),
        client_cpu_percent: cpu.await.ok().flatten(),
        outages: None,
    }
}

async fn run_populate(args: &Args, layout: &Layout, value: Vec<u8>) -> Result<Outcome, BenchError> {
    let clients = connect_pool(&args.connect, args.sessions, args.session_timeout).await?;
    if let Err(e) = ensure_path(&clients[0], &layout.scratch_dir()).await {
        close_all(&clients).await;
        return Err(e);
    }
    let started = Instant::now();
    let cpu_before = cpu::process_cpu_time();
    let recorder = populate::run(&clients, args.in_flight, layout.clone(), value, args.count).await;
    let elapsed = started.elapsed();
    let client_cpu_percent = cpu::percent_of_core(cpu_before, cpu::process_cpu_time(), elapsed);
    let cleaned = cleanup(args, &clients, layout, args.sessions * args.in_flight).await;
    close_all(&clients).await;
    cleaned?;
    Ok(Outcome {
        recorder,
        headline: Headline::Series("create"),
        warmup: Duration::ZERO,
        measured: elapsed,
        client_cpu_percent,
        outages: None,
    })
}

async fn run_failover(args: &Args, layout: &Layout, value: Vec<u8>) -> Result<Outcome, BenchError> {
    let clients = connect_pool(&args.connect, args.sessions, args.session_timeout).await?;
    let keys: Vec<String> = (0..args.sessions).map(|i| layout.key(i)).collect();
    let setup = async {
        ensure_path(&clients[0], &layout.keys_dir()).await?;
        create_all(&clients, keys.clone(), &value, args.sessions).await
    };
    if let Err(e) = setup.await {
        close_all(&clients).await;
        return Err(e);
    }
    let window = Window::starting_now(args.warmup, args.duration);
    // The script that kills the leader waits for this line, so the kill
    // lands inside the measured window whatever the set-up took.
    let announce = tokio::spawn(async move {
        tokio::time::sleep_until(window.measure_from.into()).await;
        eprintln!("zk-bench: measuring");
    });
    let writers = failover::Writers {
        connect: args.connect.clone(),
        session_timeout: args.session_timeout,
        keys,
        value,
    };
    let outcome = failover::run(clients, writers, window).await;
    announce.abort();
    // The writers closed their sessions; clean up with a fresh one.
    let cleaned = match connect_one(&args.connect, args.session_timeout).await {
        Ok(client) => {
            let cleaned = cleanup(args, std::slice::from_ref(&client), layout, 1).await;
            let _ = client.close().await;
            cleaned
        }
        Err(e) => Err(e),
    };
    cleaned?;
    let measured = outcome
        .stopped
        .saturating_duration_since(window.measure_from);
    Ok(Outcome {
        recorder: outcome.recorder,
        headline: Headline::Series("setData"),
        warmup: args.warmup,
        measured,
        client_cpu_percent: None,
        outages: Some(outcome.outages),
    })
}

/// Removes the run's subtree unless `--keep`.
async fn cleanup(
    args: &Args,
    clients: &[Client],
    layout: &Layout,
    concurrency: usize,
) -> Result<(), BenchError> {
    if args.keep {
        return Ok(());
    }
    delete_tree(clients, &layout.run, concurrency).await
}
