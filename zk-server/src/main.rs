//! The `zk-server` binary: `zk-server [--truncate-corrupt-txnlog] [zoo.cfg]`.
//!
//! Without an argument it runs a standalone server on port 2181 with its
//! data under `./data`. With a zoo.cfg it honours Apache's keys; unknown
//! keys are warned about, malformed lines and security settings we cannot
//! honour are fatal. `server.N` lines start ensemble mode: `myid` in the
//! data dir names this member.
//!
//! A txn-log record whose checksum fails stops start-up, naming the file
//! and offset. `--truncate-corrupt-txnlog` (or `truncateCorruptTxnLog=true`
//! in zoo.cfg) cuts the log there instead, losing that txn and every later
//! one on this server: an operator's decision, made once.
//!
//! Exit codes: 0 after SIGTERM / Ctrl-C; 1 when start-up fails (the
//! message names the file); 2 for a command-line mistake; after a
//! durability failure while running (fail-stop, see `zk_server::FailStop`):
//! 10 for a snapshot write, 13 for TRUNC / SNAP / a committed txn that
//! cannot be applied, 1 for the txn log and epoch files.

use std::path::PathBuf;
use std::process::ExitCode;

use zk_server::config::{Parsed, ServerConfig};
use zk_server::Server;

const USAGE: &str = "\
usage: zk-server [-Djava.security.auth.login.config=jaas.conf] [--truncate-corrupt-txnlog] [zoo.cfg]
       zk-server --version | --help

Runs a ZooKeeper server. Without zoo.cfg: standalone on port 2181, data in ./data.
The log level follows RUST_LOG (default: info); logs go to stderr, coloured
only when stderr is a terminal. SASL DIGEST-MD5 users come from the JAAS
file's Server section, named as for Apache's JVM (-D above, or in
SERVER_JVMFLAGS / JVMFLAGS as zkServer.sh passes it).
--truncate-corrupt-txnlog cuts the txn log at a record whose checksum fails
(losing it and every later txn) instead of refusing to start.";

const TRUNCATE_CORRUPT_FLAG: &str = "--truncate-corrupt-txnlog";

/// Removes every `flag` from `args`; true if there was one.
fn take_flag(args: &mut Vec<String>, flag: &str) -> bool {
    let before = args.len();
    args.retain(|a| a != flag);
    args.len() != before
}

/// The JVM property Apache reads the JAAS file from.
const JAAS_PROPERTY: &str = "-Djava.security.auth.login.config=";

/// The JAAS file: a `-D` argument, else SERVER_JVMFLAGS, else JVMFLAGS.
fn jaas_path(flags: &[String]) -> Option<PathBuf> {
    let from = |s: &str| {
        s.split_whitespace()
            .find_map(|f| f.strip_prefix(JAAS_PROPERTY))
            .map(PathBuf::from)
    };
    flags
        .iter()
        .find_map(|f| from(f))
        .or_else(|| {
            std::env::var("SERVER_JVMFLAGS")
                .ok()
                .as_deref()
                .and_then(from)
        })
        .or_else(|| std::env::var("JVMFLAGS").ok().as_deref().and_then(from))
}

/// A command-line mistake: usage on stderr, exit status 2.
fn usage_error() -> ExitCode {
    eprintln!("{USAGE}");
    ExitCode::from(2)
}

/// What the arguments ask for.
enum Invocation {
    Help,
    Version,
    Run(Vec<String>),
}

fn invocation(args: Vec<String>) -> Option<Invocation> {
    match args.first().map(String::as_str) {
        Some("-h" | "--help") if args.len() == 1 => Some(Invocation::Help),
        Some("-V" | "--version") if args.len() == 1 => Some(Invocation::Version),
        Some(flag) if flag.starts_with('-') => None,
        _ if args.len() <= 1 => Some(Invocation::Run(args)),
        _ => None,
    }
}

/// Logs to stderr; ANSI colours only on a terminal (a redirected file or
/// the journal gets plain text), and never with NO_COLOR set.
fn init_logging() {
    use std::io::IsTerminal;
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .init();
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
            // Once each, through the log (which is stderr).
            for w in warnings {
                tracing::warn!("{path}: {w}");
            }
            Ok(config)
        }
        _ => Err(String::new()),
    }
}

fn main() -> ExitCode {
    let (jvm_flags, mut args): (Vec<String>, Vec<String>) =
        std::env::args().skip(1).partition(|a| a.starts_with("-D"));
    let truncate_corrupt = take_flag(&mut args, TRUNCATE_CORRUPT_FLAG);
    let args = match invocation(args) {
        Some(Invocation::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(Invocation::Version) => {
            println!("{}", zk_server::admin::long_version());
            return ExitCode::SUCCESS;
        }
        Some(Invocation::Run(args)) => args,
        None => return usage_error(),
    };
    init_logging();
    let mut config = match load_config(&args) {
        Ok(config) => ServerConfig {
            truncate_corrupt_txn_log: config.truncate_corrupt_txn_log || truncate_corrupt,
            ..config
        },
        Err(e) if e.is_empty() => return usage_error(),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = jaas_path(&jvm_flags) {
        match zk_server::auth::jaas::load(&path) {
            Ok(login) => {
                tracing::info!(
                    "SASL DIGEST-MD5 on, {} user(s) from {}",
                    login.users.len(),
                    path.display()
                );
                config.security.sasl_login = Some(login);
            }
            Err(e) => {
                eprintln!("error: JAAS configuration {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
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
    let mode = if !config.runs_as_ensemble() {
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
