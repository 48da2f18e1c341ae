//! Our own server as a shared target for the suites that run the same
//! scenarios against Apache ZooKeeper and against us.

use std::net::SocketAddr;
use std::sync::OnceLock;

static SHARED: OnceLock<SocketAddr> = OnceLock::new();

/// The address of one `zk_server::testing::TestingServer` shared by every
/// test of the calling test binary, started on first use with Apache's
/// settings (tickTime 2000, so session timeouts are negotiated as Apache
/// negotiates them; TTL and container nodes enabled).
///
/// It runs on a thread and tokio runtime of its own, so it outlives the
/// per-test runtimes of `#[tokio::test]`, and lives as long as the test
/// process.
pub fn shared_server() -> SocketAddr {
    *SHARED.get_or_init(start)
}

fn start() -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("zk-server".into())
        .spawn(move || {
            let runtime = tokio::runtime::Runtime::new().expect("server runtime");
            runtime.block_on(async move {
                let server = zk_server::testing::TestingServer::start_with(|cfg| {
                    cfg.tick_time_ms = 2000;
                    cfg.extended_types_enabled = true;
                })
                .await
                .expect("start our server");
                tx.send(server.addr()).expect("report the address");
                std::future::pending::<()>().await;
            });
        })
        .expect("spawn the server thread");
    rx.recv().expect("our server started")
}
