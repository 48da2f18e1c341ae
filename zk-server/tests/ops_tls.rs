//! TLS on `secureClientPort` with Apache's `ssl.*` keys (PEM stores), as
//! Apache's own tools use it: the Java zkCli over Netty with
//! `zookeeper.client.secure=true`, and kazoo with `use_ssl`. Certificates
//! are made with the openssl command line for each test. Skipped (with a
//! notice) when openssl, zkCli or kazoo is missing.

mod ops_support;
#[path = "../../tests/support/oracle.rs"]
#[allow(dead_code)]
mod oracle;

use std::path::{Path, PathBuf};
use std::process::Command;

use zk_server::config::{ClientAuth, StoreSpec, TlsConfig};
use zk_server::{Server, ServerConfig};

/// zkCli's main class, run as zkCli.sh runs it. Debian's zkCli.sh fixes
/// the class path, and its `zookeeper.jar` manifest leaves out the Netty
/// jars the Netty client socket needs (netty-resolver, netty-codec), so
/// the test adds them itself.
const ZKCLI_CLASSPATH: &str = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar:\
     /usr/share/java/netty-resolver.jar:/usr/share/java/netty-codec.jar";

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1/localhost and a client
/// certificate, both signed by the CA. Key stores are Apache's PEM form:
/// the key and the certificate in one file.
struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    fn make() -> Option<Certs> {
        if !oracle::require(oracle::Oracle::OpenSsl) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=zk-test-ca",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        for (name, cn) in [("server", "localhost"), ("client", "zk-client")] {
            std::fs::write(
                d.join(format!("{name}.ext")),
                "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
                 keyUsage=critical,digitalSignature,keyEncipherment\n\
                 extendedKeyUsage=serverAuth,clientAuth\n",
            )
            .unwrap();
            openssl(
                d,
                &[
                    "req",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-keyout",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.csr"),
                    "-subj",
                    &format!("/CN={cn}"),
                ],
            );
            openssl(
                d,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &format!("{name}.csr"),
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-out",
                    &format!("{name}.crt"),
                    "-days",
                    "2",
                    "-extfile",
                    &format!("{name}.ext"),
                ],
            );
            let key = std::fs::read_to_string(d.join(format!("{name}.key"))).unwrap();
            let crt = std::fs::read_to_string(d.join(format!("{name}.crt"))).unwrap();
            std::fs::write(d.join(format!("{name}.pem")), format!("{key}{crt}")).unwrap();
        }
        Some(Certs { dir })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn tls(&self, client_auth: ClientAuth) -> TlsConfig {
        TlsConfig {
            secure_client_port: Some(0),
            key_store: StoreSpec {
                location: Some(self.path("server.pem")),
                password: None,
                kind: Some("PEM".into()),
            },
            trust_store: StoreSpec {
                location: Some(self.path("ca.pem")),
                password: None,
                kind: Some("PEM".into()),
            },
            client_auth,
            ..TlsConfig::default()
        }
    }
}

async fn start_tls(dir: &Path, tls: TlsConfig) -> Server {
    let mut config = ServerConfig {
        client_port_address: Some("127.0.0.1".parse().unwrap()),
        four_letter_whitelist: zk_server::config::FourLetterWhitelist::All,
        ..ServerConfig::standalone(dir, 0)
    };
    config.security.tls = tls;
    Server::start(config).await.expect("our TLS server starts")
}

/// Runs a Python snippet; its stdout, or None when kazoo is missing.
fn python(script: &str, args: &[&str]) -> Option<(bool, String)> {
    if !oracle::require(oracle::Oracle::Kazoo) {
        return None;
    }
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    Some((
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

const KAZOO_TLS: &str = r#"
import sys
from kazoo.client import KazooClient
host, ca, cert, key = sys.argv[1:5]
zk = KazooClient(hosts=host, use_ssl=True, ca=ca, certfile=cert or None,
                 keyfile=key or None, verify_certs=True, timeout=10)
zk.start(timeout=15)
zk.create("/kazoo-tls", b"over tls")
data, stat = zk.get("/kazoo-tls")
print(data.decode(), stat.version)
zk.stop()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kazoo_with_a_client_certificate_writes_and_reads_over_tls() {
    let Some(certs) = Certs::make() else { return };
    let dir = tempfile::tempdir().unwrap();
    let ours = start_tls(dir.path(), certs.tls(ClientAuth::Need)).await;
    let secure = ours.secure_addr().unwrap().to_string();
    let file = |name: &str| certs.path(name).display().to_string();
    let args: Vec<String> = vec![
        secure,
        file("ca.pem"),
        file("client.crt"),
        file("client.key"),
    ];
    let out = tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        python(KAZOO_TLS, &refs)
    })
    .await
    .unwrap();
    if let Some((ok, text)) = out {
        assert!(ok, "{text}");
        assert!(text.contains("over tls 0"), "{text}");
    }
    ours.shutdown().await;
}

/// With `ssl.clientAuth=need`, a client without a certificate gets no
/// session (the handshake, or the first read after it, fails).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_a_certificate_is_refused_when_client_auth_is_need() {
    let Some(certs) = Certs::make() else { return };
    let dir = tempfile::tempdir().unwrap();
    let ours = start_tls(dir.path(), certs.tls(ClientAuth::Need)).await;
    let script = r#"
import socket, ssl, sys
host, port = sys.argv[1].rsplit(":", 1)
ctx = ssl.create_default_context(cafile=sys.argv[2])
try:
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as s:
            s.sendall(b"ruok")
            answer = s.recv(100)
            print("answered", answer)
except (ssl.SSLError, ConnectionError, OSError) as e:
    print("refused", type(e).__name__)
"#;
    let secure = ours.secure_addr().unwrap().to_string();
    let ca = certs.path("ca.pem").to_str().unwrap().to_string();
    let out = tokio::task::spawn_blocking(move || python(script, &[&secure, &ca]))
        .await
        .unwrap();
    if let Some((ok, text)) = out {
        assert!(ok, "{text}");
        assert!(
            text.starts_with("refused") || text.starts_with("answered b''"),
            "{text}"
        );
    }
    ours.shutdown().await;
}

/// A four-letter word over TLS, with `ssl.clientAuth=none` (server
/// authentication only).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_letter_words_answer_over_tls_without_client_auth() {
    let Some(certs) = Certs::make() else { return };
    let dir = tempfile::tempdir().unwrap();
    let ours = start_tls(dir.path(), certs.tls(ClientAuth::None)).await;
    let script = r#"
import socket, ssl, sys
host, port = sys.argv[1].rsplit(":", 1)
ctx = ssl.create_default_context(cafile=sys.argv[2])
with socket.create_connection((host, int(port)), timeout=10) as raw:
    with ctx.wrap_socket(raw, server_hostname=host) as s:
        s.sendall(b"ruok")
        print(s.recv(100).decode())
"#;
    let secure = ours.secure_addr().unwrap().to_string();
    let ca = certs.path("ca.pem").to_str().unwrap().to_string();
    let out = tokio::task::spawn_blocking(move || python(script, &[&secure, &ca]))
        .await
        .unwrap();
    if let Some((ok, text)) = out {
        assert!(ok, "{text}");
        assert_eq!(text.trim(), "imok");
    }
    // The plain port still serves beside the secure one, and conf names
    // the secure port.
    assert_ne!(ours.local_addr(), ours.secure_addr().unwrap());
    let plain = ours.local_addr();
    let conf = tokio::task::spawn_blocking(move || ops_support::four_letter_word(plain, "conf"))
        .await
        .unwrap();
    let expected = format!("secureClientPort={}\n", ours.secure_addr().unwrap().port());
    assert!(conf.contains(&expected), "{conf}");
    ours.shutdown().await;
}

/// Apache's Java zkCli over TLS: Netty client socket, PEM trust and key
/// stores, hostname verification on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_java_zkcli_creates_and_reads_over_tls() {
    let Some(certs) = Certs::make() else { return };
    if !oracle::require_all(&[oracle::Oracle::ZkCli, oracle::Oracle::NettyClient]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ours = start_tls(dir.path(), certs.tls(ClientAuth::Need)).await;
    let flags = vec![
        "-Dzookeeper.client.secure=true".to_string(),
        "-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty".into(),
        format!(
            "-Dzookeeper.ssl.trustStore.location={}",
            certs.path("ca.pem").display()
        ),
        "-Dzookeeper.ssl.trustStore.type=PEM".into(),
        format!(
            "-Dzookeeper.ssl.keyStore.location={}",
            certs.path("client.pem").display()
        ),
        "-Dzookeeper.ssl.keyStore.type=PEM".into(),
    ];
    let server = ours.secure_addr().unwrap().to_string();
    let run = move |args: &[&str]| {
        let out = Command::new("timeout")
            .arg("60")
            .arg("java")
            .arg("-cp")
            .arg(ZKCLI_CLASSPATH)
            .args(&flags)
            .arg("org.apache.zookeeper.ZooKeeperMain")
            .arg("-server")
            .arg(&server)
            .args(args)
            .output()
            .unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let (created, read) = tokio::task::spawn_blocking(move || {
        (
            run(&["create", "/java-tls", "hello"]),
            run(&["get", "/java-tls"]),
        )
    })
    .await
    .unwrap();
    assert!(created.contains("Created /java-tls"), "{created}");
    assert!(read.lines().any(|l| l.trim() == "hello"), "{read}");
    ours.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secure_port_alone_opens_no_plain_port() {
    let Some(certs) = Certs::make() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "dataDir={}\nsecureClientPort=0\nsecureClientPortAddress=127.0.0.1\n\
             ssl.keyStore.location={}\nssl.trustStore.location={}\nadmin.enableServer=false\n",
            dir.path().join("data").display(),
            certs.path("server.pem").display(),
            certs.path("ca.pem").display()
        ),
    )
    .unwrap();
    let config = ServerConfig::from_file(&cfg).unwrap().config;
    assert!(config.security.tls.secure_only);
    let ours = Server::start(config).await.unwrap();
    assert_eq!(Some(ours.local_addr()), ours.secure_addr());
    ours.shutdown().await;
}

#[test]
fn store_problems_refuse_start_up_with_a_clear_error() {
    let parse = |extra: &str| {
        ServerConfig::parse(
            &format!("dataDir=/d\nclientPort=1\nsecureClientPort=2\n{extra}"),
            Path::new("."),
        )
        .map(|_| ())
        .unwrap_err()
        .to_string()
    };
    let jks = parse("ssl.keyStore.location=/k.jks\nssl.clientAuth=none\n");
    assert!(
        jks.contains("JKS stores are not supported yet: convert to PEM"),
        "{jks}"
    );
    let no_trust = parse("ssl.keyStore.location=/k.pem\n");
    assert!(no_trust.contains("ssl.trustStore.location"), "{no_trust}");
    let no_key = parse("ssl.clientAuth=none\n");
    assert!(no_key.contains("needs ssl.keyStore.location"), "{no_key}");
}

/// The AdminServer lists TLS sessions under `secure_connections`, apart
/// from the plain port's, as Apache lists its two connection factories.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_server_lists_tls_sessions_as_secure_connections() {
    let Some(certs) = Certs::make() else { return };
    if !oracle::require(oracle::Oracle::Kazoo) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig {
        client_port_address: Some("127.0.0.1".parse().unwrap()),
        ..ServerConfig::standalone(dir.path(), 0)
    };
    config.security.tls = certs.tls(ClientAuth::Need);
    config.ops.admin.enabled = true;
    config.ops.admin.address = "127.0.0.1".parse().unwrap();
    config.ops.admin.port = 0;
    let ours = Server::start(config).await.unwrap();
    let admin = ours.admin_addr().unwrap();
    let script = r#"
import sys
from kazoo.client import KazooClient
host, ca, cert, key = sys.argv[1:5]
zk = KazooClient(hosts=host, use_ssl=True, ca=ca, certfile=cert, keyfile=key,
                 verify_certs=True, timeout=10)
zk.start(timeout=15)
print("ready", flush=True)
sys.stdin.readline()
zk.stop()
"#;
    let file = |name: &str| certs.path(name).display().to_string();
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(ours.secure_addr().unwrap().to_string())
        .arg(file("ca.pem"))
        .arg(file("client.crt"))
        .arg(file("client.key"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let answer = tokio::task::spawn_blocking(move || {
        use std::io::{BufRead, Write};
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        let json = ops_support::admin_json(admin, "connections");
        let _ = child.stdin.take().unwrap().write_all(b"done\n");
        let _ = child.wait();
        json
    })
    .await
    .unwrap();
    assert_eq!(
        answer["connections"].as_array().unwrap().len(),
        0,
        "{answer}"
    );
    let secure = answer["secure_connections"].as_array().unwrap();
    assert_eq!(secure.len(), 1, "{answer}");
    assert!(secure[0]["session_id"].as_i64().unwrap() != 0, "{answer}");
    ours.shutdown().await;
}
