//! The `zk-server` binary as an operator meets it: `--version`, `--help`,
//! plain logs when stderr is not a terminal, each config warning once,
//! one readable recovery line, and start-up refused for security settings
//! it cannot honour.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_zk-server");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn version_prints_release_commit_and_a_real_build_date() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("zk-server 0."), "{text}");
    assert!(text.contains("(git "), "{text}");
    assert!(!text.contains("1970-01-01"), "{text}");
    // built YYYY-MM-DD HH:MM UTC
    let date = text.split("built ").nth(1).unwrap();
    assert_eq!(&date[4..5], "-", "{text}");
    assert!(date[..4].parse::<u32>().unwrap() >= 2024, "{text}");
}

#[test]
fn help_exits_zero_and_a_bad_flag_exits_two() {
    let help = Command::new(BIN).arg("--help").output().unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("usage: zk-server"));
    let bad = Command::new(BIN).arg("--frobnicate").output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn an_unsupported_security_key_refuses_start_up_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    for (key, line) in [
        ("ssl.crl", "ssl.crl=true"),
        ("sslQuorum", "sslQuorum=true"),
        (
            "authProvider.1",
            "authProvider.1=org.apache.zookeeper.server.auth.X509AuthenticationProvider",
        ),
        ("requireClientAuthScheme", "requireClientAuthScheme=sasl"),
    ] {
        let cfg = dir.path().join("zoo.cfg");
        std::fs::write(
            &cfg,
            format!(
                "dataDir={}\nclientPort={}\n{line}\n",
                dir.path().join("data").display(),
                free_port()
            ),
        )
        .unwrap();
        let out = Command::new(BIN).arg(&cfg).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{line}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("line 3: {key} is not supported")),
            "{line}: {stderr}"
        );
        assert!(!dir.path().join("data").exists(), "{line}: started anyway");
    }
}

/// Kills the child on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(cfg: &Path) -> Running {
    Running(
        Command::new(BIN)
            .arg(cfg)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

/// Reads stderr lines until one contains `marker` (or the deadline).
fn read_log_until(child: &mut Child, marker: &str) -> String {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut log = String::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                log.push_str(&line);
                log.push('\n');
                if line.contains(marker) {
                    return log;
                }
            }
            Err(_) => break,
        }
    }
    panic!("no '{marker}' in the log:\n{log}");
}

#[test]
fn logs_to_a_pipe_are_plain_with_each_warning_once_and_one_recovery_line() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "dataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
             admin.enableServer=false\nstandaloneEnabled=true\nno.such.key=1\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let mut server = start(&cfg);
    let log = read_log_until(&mut server.0, "serving");
    assert!(
        !log.contains('\u{1b}'),
        "ANSI escapes in a piped log:\n{log}"
    );
    assert_eq!(log.matches("unknown key 'no.such.key'").count(), 1, "{log}");
    assert!(!log.contains("standaloneEnabled"), "{log}");
    assert!(!log.contains("admin.enableServer"), "{log}");
    let recovery: Vec<&str> = log.lines().filter(|l| l.contains("recovered")).collect();
    assert_eq!(recovery.len(), 1, "{log}");
    assert!(
        recovery[0].contains("recovered to zxid 0x0: no snapshot"),
        "{}",
        recovery[0]
    );
    assert!(!recovery[0].contains("RecoveryReport"), "{}", recovery[0]);
    // It serves.
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut s = TcpStream::connect(addr).unwrap();
    std::io::Write::write_all(&mut s, b"srvr").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("Zookeeper version: 3.8.0-zk-rs-"),
        "{answer}"
    );
}
