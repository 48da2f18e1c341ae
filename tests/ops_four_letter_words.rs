//! The operator four-letter words Apache 3.8 answers and we added (`dirs`,
//! `hash`, `gtmk`, `stmk`), compared with Apache ZooKeeper 3.8.0 itself.
//! Skipped (with a notice) when the Debian `zookeeper` package is missing.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use zk_client::{Acl, Client, CreateMode};
use zk_server::config::FourLetterWhitelist;
use zk_server::{Server, ServerConfig};
use zk_testkit::apache::{self, ApacheZk};

/// Sends `bytes` as a four-letter-word connection and reads the answer.
fn ask(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(bytes).unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).unwrap();
    out
}

fn stmk(mask: i64) -> Vec<u8> {
    let mut bytes = b"stmk".to_vec();
    bytes.extend_from_slice(&mask.to_be_bytes());
    bytes
}

async fn start_ours(data_dir: &Path) -> Server {
    let config = ServerConfig {
        client_port_address: Some("127.0.0.1".parse().unwrap()),
        four_letter_whitelist: FourLetterWhitelist::All,
        ..ServerConfig::standalone(data_dir, 0)
    };
    Server::start(config).await.expect("our server starts")
}

fn apache_or_skip(test: &str) -> Option<ApacheZk> {
    if !apache::installed() {
        eprintln!("{test}: skipped, Apache ZooKeeper is not installed");
        return None;
    }
    Some(ApacheZk::start("").expect("Apache ZooKeeper starts"))
}

/// Apache logs its tree digest every 128 txns; loading Apache's data dir
/// at such a zxid, our `hash` must print the same number for the same
/// tree (so the digest algorithm, not just the layout, is Apache's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_of_apaches_tree_is_the_digest_apache_logged_at_that_zxid() {
    let Some(mut zk) = apache_or_skip("hash") else {
        return;
    };
    let client = Client::connect(&zk.connect_string()).await.unwrap();
    client
        .create(
            "/digest",
            b"start",
            &Acl::open_unsafe(),
            CreateMode::Persistent,
        )
        .await
        .unwrap();
    client
        .create("/digest/e", b"", &Acl::open_unsafe(), CreateMode::Ephemeral)
        .await
        .unwrap();
    let target = 0x100;
    let mut i = 0u32;
    loop {
        let stat = client
            .set_data("/digest", format!("v{i}").as_bytes(), None)
            .await
            .unwrap();
        i += 1;
        assert!(stat.mzxid <= target, "overshot: 0x{:x}", stat.mzxid);
        if stat.mzxid == target {
            break;
        }
    }
    let apache_hash = zk.four_letter_word("hash").unwrap();
    let expected = apache_hash
        .lines()
        .find(|l| l.starts_with("100: "))
        .unwrap_or_else(|| panic!("Apache logged no digest at 0x100: {apache_hash:?}"))
        .to_string();
    // Kill before the client closes, so the log ends at 0x100.
    zk.stop();
    drop(client);
    let copy = TempDir::new("hash");
    copy_dir(&zk.data_dir(), &copy.0);
    let ours = start_ours(&copy.0).await;
    let answer = ask(ours.local_addr(), b"hash");
    assert_eq!(answer, format!("{expected}\n"));
    ours.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dirs_gtmk_and_stmk_answer_as_apache_does() {
    let Some(zk) = apache_or_skip("dirs") else {
        return;
    };
    let dir = TempDir::new("dirs");
    let ours = start_ours(&dir.0).await;
    for addr in [zk.addr(), ours.local_addr()] {
        let dirs = ask(addr, b"dirs");
        let keys: Vec<&str> = dirs.lines().filter_map(|l| l.split(": ").next()).collect();
        assert_eq!(keys, ["datadir_size", "logdir_size"], "{addr}: {dirs:?}");
        assert!(dirs
            .lines()
            .all(|l| l.split(": ").nth(1).unwrap().parse::<u64>().unwrap() > 0));
        // The mask is per process; set it, read it back, restore the default.
        assert_eq!(ask(addr, &stmk(0x1ff)), "511", "{addr}");
        assert_eq!(ask(addr, b"gtmk"), "511", "{addr}");
        assert_eq!(ask(addr, &stmk(306)), "306", "{addr}");
        assert_eq!(ask(addr, b"stmk"), "", "{addr}: stmk without a mask");
    }
    ours.shutdown().await;
}

/// A directory under the system temp dir, removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "zk-ops-4lw-{tag}-{}-{}",
            std::process::id(),
            apache::free_port().unwrap()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
