//! Every workload, run briefly against an in-process server: it produces
//! samples, no request fails, and the run leaves the tree as it found it.
//! Timings are never asserted (the machines are shared and noisy).

use clap::Parser;
use zk_bench::cli::Args;
use zk_bench::report::Report;
use zk_client::Client;
use zk_server::testing::TestingServer;

const ROOT: &str = "/zk-bench-test";

fn args(server: &TestingServer, workload: &str, extra: &[&str]) -> Args {
    let connect = server.connect_string();
    let mut argv = vec![
        "zk-bench",
        workload,
        "--connect",
        &connect,
        "--sessions",
        "2",
        "--in-flight",
        "2",
        "--duration",
        "300ms",
        "--warmup",
        "100ms",
        "--keys",
        "16",
        "--watchers",
        "3",
        "--value-size",
        "100",
        "--root",
        ROOT,
    ];
    argv.extend_from_slice(extra);
    Args::try_parse_from(argv).expect("valid arguments")
}

async fn run(server: &TestingServer, workload: &str, extra: &[&str]) -> Report {
    zk_bench::run(&args(server, workload, extra))
        .await
        .unwrap_or_else(|e| panic!("{workload} failed: {e}"))
}

/// Children left under the bench root once a run is over.
async fn leftovers(server: &TestingServer) -> Vec<String> {
    let client = Client::connect(&server.connect_string())
        .await
        .expect("connect");
    let children = client.get_children(ROOT).await.unwrap_or_default();
    client.close().await.expect("close");
    children
}

fn assert_clean_run(report: &Report, series: &[&str]) {
    assert!(report.errors.is_empty(), "errors: {:?}", report.errors);
    assert!(report.latency.count > 0, "no samples: {report:?}");
    for name in series {
        let found = report.series.iter().find(|s| s.name == *name);
        assert!(found.is_some_and(|s| s.count > 0), "no {name} samples");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_workload_issues_only_get_data_and_cleans_up() {
    let server = TestingServer::start().await.expect("server");
    let report = run(&server, "read", &[]).await;
    assert_clean_run(&report, &["getData"]);
    assert_eq!(report.series.len(), 1);
    assert!(leftovers(&server).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_workload_issues_only_set_data() {
    let server = TestingServer::start().await.expect("server");
    let report = run(&server, "write", &[]).await;
    assert_clean_run(&report, &["setData"]);
    assert_eq!(report.series.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_workload_with_half_reads_issues_both_kinds() {
    let server = TestingServer::start().await.expect("server");
    let report = run(&server, "mixed", &["--read-ratio", "50"]).await;
    assert_clean_run(&report, &["getData", "setData"]);
    assert_eq!(report.read_ratio, Some(50));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_delete_workload_leaves_no_node_behind() {
    let server = TestingServer::start().await.expect("server");
    let report = run(&server, "create-delete", &[]).await;
    assert_clean_run(&report, &["create", "delete"]);
    assert!(leftovers(&server).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_workload_measures_every_round_to_the_last_watcher() {
    let server = TestingServer::start().await.expect("server");
    let report = run(&server, "watch", &[]).await;
    assert_clean_run(&report, &["fanout", "setData", "ack_to_last_event"]);
    assert_eq!(report.latency.name, "fanout");
    // One fan-out sample per acknowledged write.
    let writes = report
        .series
        .iter()
        .find(|s| s.name == "setData")
        .map(|s| s.count);
    assert_eq!(writes, Some(report.latency.count));
    assert!(leftovers(&server).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_workload_opens_and_closes_sessions() {
    let server = TestingServer::start().await.expect("server");
    let report = run(&server, "churn", &[]).await;
    assert_clean_run(&report, &["connect", "close", "session"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn populate_with_keep_leaves_exactly_count_nodes() {
    let server = TestingServer::start().await.expect("server");
    let report = run(&server, "populate", &["--count", "200", "--keep"]).await;
    assert_clean_run(&report, &["create"]);
    assert_eq!(report.latency.count, 200);
    let runs = leftovers(&server).await;
    assert_eq!(runs.len(), 1);
    let client = Client::connect(&server.connect_string())
        .await
        .expect("connect");
    let nodes = client
        .get_children(&format!("{ROOT}/{}/nodes", runs[0]))
        .await
        .expect("populated nodes");
    assert_eq!(nodes.len(), 200);
    client.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_server_is_a_connect_error_not_a_hang() {
    // A port nothing listens on: bind, note it, drop.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let connect = format!("127.0.0.1:{port}");
    let args = Args::try_parse_from(["zk-bench", "read", "--connect", &connect, "--sessions", "1"])
        .expect("valid arguments");
    let outcome =
        tokio::time::timeout(std::time::Duration::from_secs(30), zk_bench::run(&args)).await;
    match outcome {
        Ok(Err(zk_bench::error::BenchError::Connect { .. })) => {}
        other => panic!("expected a connect error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_on_a_healthy_server_reports_no_outage_and_cleans_up() {
    let server = TestingServer::start().await.expect("server");
    let report = run(&server, "failover", &[]).await;
    assert_clean_run(&report, &["setData"]);
    assert_eq!(report.outages, Some(Vec::new()));
    assert!(leftovers(&server).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_reports_the_crash_and_stops_soon_after_writes_resume() {
    let mut server = TestingServer::start().await.expect("server");
    let mut args = args(&server, "failover", &[]);
    args.duration = std::time::Duration::from_secs(30);
    args.warmup = std::time::Duration::from_millis(300);
    let crash = async {
        // Into the measured window, then a crash and a restart on the
        // same port and data.
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        server.kill().await;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        server.restart().await.expect("restart");
    };
    let (report, ()) = tokio::join!(zk_bench::run(&args), crash);
    let report = report.expect("failover run");
    let outages = report.outages.expect("outages reported");
    assert_eq!(outages.len(), 1, "{outages:?}");
    let outage = &outages[0];
    assert!(outage.errors > 0);
    assert!(
        outage.gap_us().is_some_and(|gap| gap >= 300_000),
        "{outage:?}"
    );
    // Stopped about a second after recovery, far short of --duration.
    assert!(report.measured_s < 20.0, "ran {} s", report.measured_s);
}
