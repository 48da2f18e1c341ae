//! The AdminServer and the metrics endpoint of our server alone: the
//! readiness check, the command page, what unknown paths get, and that
//! the registry's metrics move with traffic.

mod ops_support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ops_support::{admin_json, free_port, http_get, make_traffic, start_ours};
use zk_server::testing::TestingCluster;

/// `/commands/ruok` answers without error while the member serves, and
/// with Apache's "not currently serving" error once it lost its quorum:
/// a readiness probe for load balancers and orchestrators.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ruok_over_http_is_a_readiness_check() {
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let next = AtomicUsize::new(0);
    let mut cluster = TestingCluster::start_with(3, 0, |c| {
        c.ops.admin.enabled = true;
        c.ops.admin.address = "127.0.0.1".parse().unwrap();
        c.ops.admin.port = ports[next.fetch_add(1, Ordering::SeqCst) % 3];
    })
    .await
    .unwrap();
    let leader = cluster
        .wait_for_leader(Duration::from_secs(30))
        .await
        .expect("a leader");
    let survivor = (leader + 1) % 3;
    let admin = SocketAddr::from(([127, 0, 0, 1], ports[survivor]));
    wait_until("the member serves", move || ruok_error(admin).is_null()).await;
    for i in 0..3 {
        if i != survivor {
            cluster.kill(i).await;
        }
    }
    wait_until("the member reports it is not serving", move || {
        ruok_error(admin) == "This ZooKeeper instance is not currently serving requests"
    })
    .await;
    // Commands that need no serving server still answer.
    let env = tokio::task::spawn_blocking(move || admin_json(admin, "environment"))
        .await
        .unwrap();
    assert!(env["error"].is_null());
    cluster.stop_all().await;
}

/// The `error` field of `/commands/ruok`.
fn ruok_error(admin: SocketAddr) -> serde_json::Value {
    let v = admin_json(admin, "ruok");
    assert_eq!(v["command"], "ruok");
    v["error"].clone()
}

async fn wait_until(what: &str, check: impl Fn() -> bool + Send + Clone + 'static) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let c = check.clone();
        if tokio::task::spawn_blocking(c).await.unwrap() {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_page_lists_links_and_unknown_paths_are_404() {
    let dir = tempfile::tempdir().unwrap();
    let ours = start_ours(dir.path()).await;
    let admin = ours.admin_addr().unwrap();
    let metrics = ours.metrics_addr().unwrap();
    tokio::task::spawn_blocking(move || {
        let (status, kind, page) = http_get(admin, "/commands");
        assert_eq!((status, kind.as_str()), (200, "text/html;charset=utf-8"));
        assert!(
            page.contains("<a href=\"/commands/ruok\">ruok</a>"),
            "{page}"
        );
        assert_eq!(http_get(admin, "/nope").0, 404);
        assert_eq!(http_get(admin, "/commandsX").0, 404);
        assert_eq!(http_get(metrics, "/").0, 404);
        // Aliases reach their command; unknown names get Apache's error.
        assert_eq!(admin_json(admin, "mntr")["command"], "monitor");
        assert_eq!(
            admin_json(admin, "bogus")["error"],
            "Unknown command: bogus"
        );
    })
    .await
    .unwrap();
    ours.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_metrics_count_what_clients_did() {
    let dir = tempfile::tempdir().unwrap();
    let ours = start_ours(dir.path()).await;
    let admin = ours.admin_addr().unwrap();
    let client = ours.local_addr();
    let metrics = ours.metrics_addr().unwrap();
    tokio::task::spawn_blocking(move || {
        let mut c = make_traffic(client);
        assert_eq!(c.create("/ops/child", false), 0);
        let m = admin_json(admin, "monitor");
        // make_traffic: two creates and a read; then one more create.
        assert_eq!(m["cnt_updatelatency"], 3, "{m}");
        assert!(m["cnt_readlatency"].as_u64().unwrap() >= 1, "{m}");
        assert_eq!(m["connection_request_count"], 1, "{m}");
        assert!(m["bytes_received_count"].as_u64().unwrap() > 0, "{m}");
        assert!(m["response_bytes"].as_u64().unwrap() > 0, "{m}");
        assert_eq!(m["cnt_dbinittime"], 1, "{m}");
        let (_, _, scrape) = http_get(metrics, "/metrics");
        assert!(scrape.contains("\nupdatelatency_count 3.0\n"), "{scrape}");
        assert!(
            scrape.contains("\nconnection_request_count 1.0\n"),
            "{scrape}"
        );
        // stat_reset clears them, as Apache's srst.
        assert!(admin_json(admin, "stat_reset")["error"].is_null());
        let m = admin_json(admin, "monitor");
        assert_eq!(m["cnt_updatelatency"], 0, "{m}");
    })
    .await
    .unwrap();
    ours.shutdown().await;
}
