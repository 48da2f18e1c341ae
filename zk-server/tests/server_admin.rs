//! Four-letter words on the client port.

mod server_common;

use server_common::{four_letter, RawClient};
use zk_proto::CreateMode;
use zk_server::config::FourLetterWhitelist;
use zk_server::testing::TestingServer;

#[tokio::test]
async fn ruok_answers_imok_without_newline() {
    let server = TestingServer::start().await.unwrap();
    assert_eq!(four_letter(server.addr(), "ruok").await, "imok");
}

#[tokio::test]
async fn srvr_reports_standalone_mode_zxid_and_node_count() {
    let server = TestingServer::start().await.unwrap();
    let mut c = RawClient::session(server.addr(), 3000).await;
    let created = c.create(1, "/n", b"", CreateMode::Persistent).await;
    let text = four_letter(server.addr(), "srvr").await;
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("Zookeeper version: 3.8.0-"), "{text}");
    assert!(lines[1].starts_with("Latency min/avg/max: "), "{text}");
    // The client's connection and the asking one, as Apache counts.
    assert!(text.contains("\nConnections: 2\n"), "{text}");
    assert!(
        text.contains(&format!("\nZxid: 0x{:x}\n", created.header.zxid)),
        "{text}"
    );
    assert!(text.contains("\nMode: standalone\n"), "{text}");
    // Fresh tree counts 5 (/ twice, /zookeeper, quota, config), plus /n.
    assert!(text.ends_with("Node count: 6\n"), "{text}");
}

#[tokio::test]
async fn mntr_lists_the_keys_monitoring_tools_parse() {
    let server = TestingServer::start().await.unwrap();
    let text = four_letter(server.addr(), "mntr").await;
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("zk_version\t"));
    assert_eq!(lines.next(), Some("zk_server_state\tstandalone"));
    for key in [
        "zk_avg_latency",
        "zk_packets_received",
        "zk_num_alive_connections",
        "zk_outstanding_requests",
        "zk_znode_count",
        "zk_watch_count",
        "zk_ephemerals_count",
        "zk_approximate_data_size",
    ] {
        assert!(
            text.contains(&format!("\n{key}\t")),
            "{key} missing:\n{text}"
        );
    }
    assert!(text.contains("\nzk_znode_count\t5\n"), "{text}");
}

#[tokio::test]
async fn words_outside_the_whitelist_are_refused_with_apaches_text() {
    let server = TestingServer::start_with(|c| {
        c.four_letter_whitelist = FourLetterWhitelist::default();
    })
    .await
    .unwrap();
    assert_eq!(
        four_letter(server.addr(), "ruok").await,
        "ruok is not executed because it is not in the whitelist.\n"
    );
    // srvr is always allowed.
    assert!(four_letter(server.addr(), "srvr")
        .await
        .starts_with("Zookeeper version:"));
}

#[tokio::test]
async fn cons_lists_the_session_of_each_connection() {
    let server = TestingServer::start().await.unwrap();
    let c = RawClient::session(server.addr(), 3000).await;
    let text = four_letter(server.addr(), "cons").await;
    assert!(
        text.contains(&format!(",sid=0x{:x},", c.session_id)),
        "{text}"
    );
    assert!(text.ends_with(")\n\n"), "{text}");
}

#[tokio::test]
async fn stat_conf_envi_wchs_dump_isro_answer_in_apache_shape() {
    let server = TestingServer::start().await.unwrap();
    let mut c = RawClient::session(server.addr(), 3000).await;
    c.create(1, "/e", b"", CreateMode::Ephemeral).await;
    c.get(2, "/e", true).await;

    let stat = four_letter(server.addr(), "stat").await;
    assert!(stat.contains("\nClients:\n /127.0.0.1:"), "{stat}");
    let conf = four_letter(server.addr(), "conf").await;
    assert!(
        conf.starts_with(&format!("clientPort={}\n", server.port())),
        "{conf}"
    );
    assert!(conf.contains("\ntickTime=200\n"), "{conf}");
    let envi = four_letter(server.addr(), "envi").await;
    assert!(
        envi.starts_with("Environment:\nzookeeper.version="),
        "{envi}"
    );
    assert_eq!(
        four_letter(server.addr(), "wchs").await,
        "1 connections watching 1 paths\nTotal watches:1\n"
    );
    let wchc = four_letter(server.addr(), "wchc").await;
    assert_eq!(wchc, format!("0x{:x}\n\t/e\n\n", c.session_id));
    let dump = four_letter(server.addr(), "dump").await;
    assert!(
        dump.contains(&format!("0x{:x}:\n\t/e\n", c.session_id)),
        "{dump}"
    );
    assert_eq!(four_letter(server.addr(), "isro").await, "rw");
    assert_eq!(
        four_letter(server.addr(), "srst").await,
        "Server stats reset.\n"
    );
}

#[tokio::test]
async fn a_closed_connection_leaves_no_watches_or_listing_behind() {
    let server = TestingServer::start().await.unwrap();
    let mut c = RawClient::session(server.addr(), 3000).await;
    c.create(1, "/w", b"", CreateMode::Persistent).await;
    c.get(2, "/w", true).await;
    c.call(3, zk_proto::Request::CloseSession).await;
    assert!(c.closed_without_more().await);
    // The server forgets the connection asynchronously; poll briefly.
    let deadline = tokio::time::Instant::now() + server_common::WAIT;
    loop {
        let wchs = four_letter(server.addr(), "wchs").await;
        let cons = four_letter(server.addr(), "cons").await;
        // Only the asking connection itself is left in `cons`.
        let listed = cons.lines().filter(|l| !l.is_empty()).count();
        if wchs == "0 connections watching 0 paths\nTotal watches:0\n" && listed == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still listed:\n{wchs}{cons}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
