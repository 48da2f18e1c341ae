//! Real clients (kazoo, Java zkCli.sh, C cli_mt) as child processes, and
//! the normalisers that make two CLI sessions comparable.

#![allow(dead_code)]

pub mod normalize;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

/// A file next to this module (the scripts the tests run).
pub fn script_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(name)
}

/// What a finished child printed.
#[derive(Debug)]
pub struct Output {
    pub success: bool,
    /// stdout then stderr.
    pub text: String,
}

/// How one line of input is fed to an interactive client.
#[derive(Debug, Clone)]
pub struct Feed {
    /// Wait before the first line (the client connects meanwhile).
    pub first_wait: Duration,
    /// Wait after each line, so asynchronous answers land in order.
    pub gap: Duration,
}

/// Runs `program args`, writing `lines` to its stdin as `feed` says, then
/// closing stdin; kills it if it is still running after `limit`.
pub async fn run_interactive(
    program: &str,
    args: &[&str],
    env: &[(&str, &str)],
    lines: &[&str],
    feed: &Feed,
    limit: Duration,
) -> std::io::Result<Output> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn()?;
    let mut stdin = child.stdin.take();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    // Read both pipes while feeding, so a chatty client never blocks.
    let out_task = tokio::spawn(async move {
        let mut buf = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.read_to_end(&mut buf).await;
        }
        buf
    });
    let err_task = tokio::spawn(async move {
        let mut buf = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.read_to_end(&mut buf).await;
        }
        buf
    });
    let drive = async {
        tokio::time::sleep(feed.first_wait).await;
        if let Some(input) = stdin.as_mut() {
            for line in lines {
                if input
                    .write_all(format!("{line}\n").as_bytes())
                    .await
                    .is_err()
                {
                    break;
                }
                let _ = input.flush().await;
                tokio::time::sleep(feed.gap).await;
            }
        }
        drop(stdin.take());
        child.wait().await
    };
    let status = match tokio::time::timeout(limit, drive).await {
        Ok(status) => status?.success(),
        Err(_) => {
            // Over time: kill it; the output so far still tells why.
            let _ = child.kill().await;
            false
        }
    };
    let mut text = String::from_utf8_lossy(&out_task.await.unwrap_or_default()).into_owned();
    text.push_str(&String::from_utf8_lossy(
        &err_task.await.unwrap_or_default(),
    ));
    Ok(Output {
        success: status,
        text,
    })
}

/// Runs a non-interactive command with a time limit.
pub async fn run(program: &str, args: &[&str], limit: Duration) -> std::io::Result<Output> {
    let feed = Feed {
        first_wait: Duration::ZERO,
        gap: Duration::ZERO,
    };
    run_interactive(program, args, &[], &[], &feed, limit).await
}
