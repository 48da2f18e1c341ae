//! SASL DIGEST-MD5 as Apache's server does it: users from the JAAS
//! `Server` section, `authProvider.1=...SASLAuthenticationProvider` for
//! the `sasl` ACL scheme. kazoo (`sasl_options`, pure-sasl) runs the same
//! script against Apache ZooKeeper 3.8.0 configured the same way and
//! against our server; Apache's Java zkCli authenticates with a JAAS
//! `Client` section. Skipped (with a notice) when kazoo/pure-sasl or
//! Apache is missing.

mod ops_support;
#[path = "../../tests/support/oracle.rs"]
#[allow(dead_code)]
mod oracle;

use std::path::Path;
use std::process::Command;

use ops_support::ApacheWithAdmin;
use zk_server::auth::jaas;
use zk_server::{Server, ServerConfig};

const SERVER_JAAS: &str = r#"
Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="adminsecret"
    user_bob="bobsecret";
};
"#;

const SASL_PROVIDER: &str =
    "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider";

/// Authenticates as bob, creates a node only bob may read, shows that an
/// anonymous client cannot read it and that a wrong password is refused.
const KAZOO_SCRIPT: &str = r#"
import sys
from kazoo.client import KazooClient
from kazoo.security import make_acl
from kazoo.exceptions import NoAuthError, AuthFailedError
host = sys.argv[1]
def client(password):
    opts = {"mechanism": "DIGEST-MD5", "username": "bob", "password": password}
    return KazooClient(hosts=host, sasl_options=opts, timeout=10)
bob = client("bobsecret")
bob.start(timeout=15)
bob.create("/sasl-only", b"secret", acl=[make_acl("sasl", "bob", all=True)])
print("bob reads", bob.get("/sasl-only")[0].decode())
print("acl", [(a.id.scheme, a.id.id, a.perms) for a in bob.get_acls("/sasl-only")[0]])
anon = KazooClient(hosts=host, timeout=10)
anon.start(timeout=15)
try:
    anon.get("/sasl-only")
    print("anonymous reads it")
except NoAuthError:
    print("anonymous: NoAuth")
anon.stop()
bob.stop()
# kazoo reports the refusal either from start() or from the next call,
# depending on a race in its own connection thread; both mean refused.
wrong = client("not-it")
try:
    wrong.start(timeout=10)
    try:
        wrong.get("/sasl-only")
        print("wrong password: reads")
    except Exception as e:
        print("wrong password: refused")
except Exception as e:
    print("wrong password: refused")
finally:
    try:
        wrong.stop()
    except Exception:
        pass
"#;

fn run_kazoo(host: String) -> String {
    let out = Command::new("timeout")
        .args(["120", "python3", "-c", KAZOO_SCRIPT, &host])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn start_ours(dir: &Path) -> Server {
    let mut config = ServerConfig {
        client_port_address: Some("127.0.0.1".parse().unwrap()),
        ..ServerConfig::standalone(dir, 0)
    };
    config.security.sasl_provider = true;
    config.security.sasl_login = Some(jaas::parse(SERVER_JAAS).unwrap());
    Server::start(config).await.expect("our server starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kazoo_digest_md5_behaves_as_against_apache() {
    if !oracle::require_all(&[oracle::Oracle::Kazoo, oracle::Oracle::PureSasl]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ours = start_ours(dir.path()).await;
    let host = ours.local_addr().to_string();
    let our_out = tokio::task::spawn_blocking(move || run_kazoo(host))
        .await
        .unwrap();
    assert!(our_out.contains("bob reads secret"), "{our_out}");
    assert!(our_out.contains("anonymous: NoAuth"), "{our_out}");
    assert!(our_out.contains("wrong password: refused"), "{our_out}");

    let jaas_file = dir.path().join("server-jaas.conf");
    std::fs::write(&jaas_file, SERVER_JAAS).unwrap();
    let flags = vec![format!(
        "-Djava.security.auth.login.config={}",
        jaas_file.display()
    )];
    let apache = tokio::task::spawn_blocking(move || {
        ApacheWithAdmin::start_with("sasl", SASL_PROVIDER, &flags)
    })
    .await
    .unwrap();
    if let Some(apache) = apache {
        let host = apache.client.to_string();
        let apache_out = tokio::task::spawn_blocking(move || run_kazoo(host))
            .await
            .unwrap();
        assert_eq!(our_out, apache_out);
    }
    ours.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_java_zkcli_authenticates_with_a_jaas_client_section() {
    if !oracle::require(oracle::Oracle::ZkCli) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ours = start_ours(dir.path()).await;
    let client_jaas = dir.path().join("client-jaas.conf");
    std::fs::write(
        &client_jaas,
        "Client {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  \
         username=\"bob\"\n  password=\"bobsecret\";\n};\n",
    )
    .unwrap();
    let server = ours.local_addr().to_string();
    let out = tokio::task::spawn_blocking(move || {
        let out = Command::new("timeout")
            .arg("60")
            .arg("java")
            .arg(format!(
                "-Djava.security.auth.login.config={}",
                client_jaas.display()
            ))
            .arg("-cp")
            .arg("/etc/zookeeper/conf:/usr/share/java/zookeeper.jar")
            .arg("org.apache.zookeeper.ZooKeeperMain")
            .arg("-server")
            .arg(&server)
            .arg("whoami")
            .output()
            .unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
    .await
    .unwrap();
    assert!(out.contains("SaslAuthenticated"), "{out}");
    assert!(out.lines().any(|l| l.trim() == "sasl: bob"), "{out}");
    ours.shutdown().await;
}

#[test]
fn the_binary_refuses_a_jaas_file_without_a_server_section() {
    let dir = tempfile::tempdir().unwrap();
    let jaas = dir.path().join("jaas.conf");
    std::fs::write(&jaas, "Client { m required; };\n").unwrap();
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "dataDir={}\nclientPort={}\nadmin.enableServer=false\n",
            dir.path().join("data").display(),
            ops_support::free_port()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_zk-server"))
        .arg(format!(
            "-Djava.security.auth.login.config={}",
            jaas.display()
        ))
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no 'Server' section"), "{stderr}");
}
