//! The `zk-server` binary: `zk-server [--truncate-corrupt-txnlog] [zoo.cfg]`.
//!
//! Without an argument it runs a standalone server on port 2181 with its
//! data under `./data`. With a zoo.cfg it honours Apache's keys; unknown
//! keys are warned about, malformed lines are fatal. `server.N` lines
//! start ensemble mode: `myid` in the data dir names this member.
//!
//! A txn-log record whose checksum fails stops start-up, naming the file
//! and offset. `--truncate-corrupt-txnlog` (or `truncateCorruptTxnLog=true`
//! in zoo.cfg) cuts the log there instead, losing that txn and every later
//! one on this server: an operator's decision, made once.
//!
//! Exit codes: 0 after SIGTERM / Ctrl-C; 1 when start-up fails (the
//! message names the file); after a durability failure while running
//! (fail-stop, see `zk_server::FailStop`): 10 for a snapshot write, 13
//! for TRUNC / SNAP / a committed txn that cannot be applied, 1 for the
//! txn log and epoch files.

use std::path::PathBuf;
use std::process::ExitCode;

use zk_server::config::{Parsed, ServerConfig};
use zk_server::Server;

fn usage() -> ExitCode {
    eprintln!("usage: zk-server [--truncate-corrupt-txnlog] [zoo.cfg]");
    ExitCode::from(2)
}

const TRUNCATE_CORRUPT_FLAG: &str = "--truncate-corrupt-txnlog";

/// Removes every `flag` from `args`; true if there was one.
fn take_flag(args: &mut Vec<String>, flag: &str) -> bool {
    let before = args.len();
    args.retain(|a| a != flag);
    args.len() != before
}

/// The configuration to run: the zoo.cfg given, or the defaults.
fn load_config(args: &[String]) -> Result<ServerConfig, String> {
    match args {
        [] => Ok(ServerConfig {
            tick_time_ms: 2000,
            ..ServerConfig::standalone(PathBuf::from("data"), 2181)
        }),
        [path] => {
            let Parsed { config, warnings } =
                ServerConfig::from_file(path.as_ref()).map_err(|e| format!("{path}: {e}"))?;
            for w in warnings {
                tracing::warn!("{path}: {w}");
                eprintln!("warning: {path}: {w}");
            }
            Ok(config)
        }
        _ => Err(String::new()),
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        return usage();
    }
    let truncate_corrupt = take_flag(&mut args, TRUNCATE_CORRUPT_FLAG);
    let config = match load_config(&args) {
        Ok(config) => ServerConfig {
            truncate_corrupt_txn_log: config.truncate_corrupt_txn_log || truncate_corrupt,
            ..config
        },
        Err(e) if e.is_empty() => return usage(),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(config))
}

async fn run(config: ServerConfig) -> ExitCode {
    let mode = if config.peers.is_empty() {
        "standalone".to_string()
    } else {
        format!("ensemble of {}", config.peers.len())
    };
    println!(
        "zk-server: {mode}, client port {}, data dir {}, log dir {}",
        config.client_port,
        config.data_dir.display(),
        config.log_dir().display()
    );
    let server = match Server::start(config).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("zk-server: listening on {}", server.local_addr());
    tokio::select! {
        _ = wait_for_signal() => {}
        failure = server.failed() => {
            // Fail-stop (zk_server::FailStop): exit so a supervisor
            // restarts us; recovery starts from what is on disk.
            eprintln!("error: stopping after a durability failure: {failure}");
            server.kill().await;
            return ExitCode::from(failure.exit_code());
        }
    }
    println!("zk-server: shutting down");
    server.shutdown().await;
    ExitCode::SUCCESS
}

/// Ctrl-C or SIGTERM.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
