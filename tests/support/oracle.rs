//! The outside programs some tests compare against or drive (Apache
//! ZooKeeper, Java, Curator, kazoo, cli_mt, zkCli), and the one decision
//! every such test makes when one is missing.
//!
//! A test calls [`require`] before it uses an oracle:
//! - present: the test runs, and a `ran` line is recorded;
//! - missing and `ZK_REQUIRE_ORACLES=1` (set by `.ci/run`): [`require`]
//!   panics, so the test fails instead of passing without checking anything;
//! - missing otherwise: a notice goes straight to the terminal's stderr
//!   (libtest captures only `eprintln!`, so the notice shows even when the
//!   test passes), a `skipped` line is recorded, and the test returns.
//!
//! Records go to `oracle-tests.log` in the cargo profile directory
//! (`target/debug/`), or to `$ZK_ORACLE_LOG`; `tools/oracle-summary.sh`
//! counts them, and `.ci/run` prints that count at the end of its run.
//!
//! Only std is used, so zk-server's own tests include this file by path
//! (`#[path]`) and share the decision without depending on the test kit.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The environment variable that turns a missing oracle into a failure.
pub const REQUIRE_ENV: &str = "ZK_REQUIRE_ORACLES";

/// Where records go when set (otherwise the profile directory).
pub const LOG_ENV: &str = "ZK_ORACLE_LOG";

/// The file name of the record log.
pub const LOG_NAME: &str = "oracle-tests.log";

/// Where Debian installs the Apache ZooKeeper server jar.
pub const APACHE_JAR: &str = "/usr/share/java/zookeeper.jar";
/// The Java command-line client of the Debian package `zookeeper`.
pub const ZKCLI: &str = "/usr/share/zookeeper/bin/zkCli.sh";
/// The C command-line client of the Debian package `zookeeper-bin`.
pub const CLI_MT: &str = "/usr/lib/zookeeper/bin/cli_mt";
/// Where Debian installs Java libraries.
pub const JARS_DIR: &str = "/usr/share/java";
/// Curator 5 and what it needs at compile and run time (Debian packages
/// libcurator-recipes-java, libzookeeper-java, libguava-java,
/// libslf4j-java).
pub const CURATOR_JARS: &[&str] = &[
    "curator-recipes",
    "curator-framework",
    "curator-client",
    "zookeeper",
    "zookeeper-jute",
    "guava",
    "slf4j-api",
];

/// An outside program some tests need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Oracle {
    /// A Java runtime (`java`).
    Java,
    /// Apache ZooKeeper 3.8 (Debian package `zookeeper`) and Java to run it.
    ApacheZooKeeper,
    /// Apache Curator 5 jars plus `javac` and `java` to build the peer.
    Curator,
    /// python3 with kazoo.
    Kazoo,
    /// The C client shell `cli_mt` (Debian package `zookeeper-bin`).
    CliMt,
    /// The Java client shell `zkCli.sh`.
    ZkCli,
    /// The `openssl` command (test certificates for TLS).
    OpenSsl,
    /// kazoo's SASL companion, the Python package pure-sasl.
    PureSasl,
    /// The Python Prometheus client (its text-format parser).
    PrometheusClient,
    /// The Netty jars Apache's Java client needs for TLS (Debian package
    /// libnetty-java; the zookeeper jar's manifest does not name them).
    NettyClient,
}

const ALL: [Oracle; 10] = [
    Oracle::Java,
    Oracle::ApacheZooKeeper,
    Oracle::Curator,
    Oracle::Kazoo,
    Oracle::CliMt,
    Oracle::ZkCli,
    Oracle::OpenSsl,
    Oracle::PureSasl,
    Oracle::PrometheusClient,
    Oracle::NettyClient,
];

impl Oracle {
    pub fn name(self) -> &'static str {
        match self {
            Oracle::Java => "java",
            Oracle::ApacheZooKeeper => "apache-zookeeper",
            Oracle::Curator => "curator",
            Oracle::Kazoo => "kazoo",
            Oracle::CliMt => "cli_mt",
            Oracle::ZkCli => "zkCli",
            Oracle::OpenSsl => "openssl",
            Oracle::PureSasl => "pure-sasl",
            Oracle::PrometheusClient => "prometheus_client",
            Oracle::NettyClient => "netty",
        }
    }

    /// How to install it on Debian (what `.ci/run` does).
    pub fn install_hint(self) -> &'static str {
        match self {
            Oracle::Java => "apt-get install -y default-jre-headless",
            Oracle::ApacheZooKeeper => "apt-get install -y zookeeper default-jre-headless",
            Oracle::Curator => "apt-get install -y default-jdk-headless libcurator-recipes-java",
            Oracle::Kazoo => "python3 -m pip install kazoo",
            Oracle::CliMt => "apt-get install -y zookeeper-bin",
            Oracle::ZkCli => "apt-get install -y zookeeper default-jre-headless",
            Oracle::OpenSsl => "apt-get install -y openssl",
            Oracle::PureSasl => "python3 -m pip install pure-sasl",
            Oracle::PrometheusClient => "python3 -m pip install prometheus_client",
            Oracle::NettyClient => "apt-get install -y libnetty-java",
        }
    }

    fn index(self) -> usize {
        ALL.iter().position(|o| *o == self).unwrap_or(0)
    }

    /// `Ok` when present here, else what is missing. Probed once per
    /// process.
    pub fn probe(self) -> Result<(), String> {
        static PROBES: [OnceLock<Result<(), String>>; ALL.len()] =
            [const { OnceLock::new() }; ALL.len()];
        PROBES[self.index()]
            .get_or_init(|| self.probe_now())
            .clone()
    }

    fn probe_now(self) -> Result<(), String> {
        match self {
            Oracle::Java => runs("java", &["-version"]),
            Oracle::ApacheZooKeeper => {
                file(APACHE_JAR)?;
                Oracle::Java.probe()
            }
            Oracle::Curator => {
                runs("java", &["-version"])?;
                runs("javac", &["-version"])?;
                for jar in CURATOR_JARS {
                    file(&format!("{JARS_DIR}/{jar}.jar"))?;
                }
                Ok(())
            }
            Oracle::Kazoo => runs("python3", &["-c", "import kazoo"]),
            Oracle::CliMt => file(CLI_MT),
            Oracle::ZkCli => {
                file(ZKCLI)?;
                Oracle::ApacheZooKeeper.probe()
            }
            Oracle::OpenSsl => runs("openssl", &["version"]),
            Oracle::PureSasl => runs("python3", &["-c", "import puresasl"]),
            Oracle::PrometheusClient => runs("python3", &["-c", "import prometheus_client"]),
            Oracle::NettyClient => {
                file(&format!("{JARS_DIR}/netty-resolver.jar"))?;
                file(&format!("{JARS_DIR}/netty-codec.jar"))
            }
        }
    }
}

fn runs(program: &str, args: &[&str]) -> Result<(), String> {
    let status = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("`{program} {}` failed ({s})", args.join(" "))),
        Err(e) => Err(format!("`{program}` cannot run ({e})")),
    }
}

fn file(path: &str) -> Result<(), String> {
    if Path::new(path).exists() {
        Ok(())
    } else {
        Err(format!("{path} is missing"))
    }
}

/// True when missing oracles must fail the tests that need them.
pub fn required() -> bool {
    matches!(
        std::env::var(REQUIRE_ENV).as_deref(),
        Ok("1" | "true" | "yes")
    )
}

/// The one decision: true when every oracle in `oracles` is present (the
/// test runs); false after a notice and a record when one is missing and
/// not required (the test returns); panics when one is missing and
/// `ZK_REQUIRE_ORACLES=1`.
pub fn require_all(oracles: &[Oracle]) -> bool {
    let missing: Vec<(Oracle, String)> = oracles
        .iter()
        .filter_map(|o| o.probe().err().map(|why| (*o, why)))
        .collect();
    let names = oracles
        .iter()
        .map(|o| o.name())
        .collect::<Vec<_>>()
        .join("+");
    if missing.is_empty() {
        record("ran", &names);
        return true;
    }
    let why = missing
        .iter()
        .map(|(o, why)| format!("{}: {why} ({})", o.name(), o.install_hint()))
        .collect::<Vec<_>>()
        .join("; ");
    if required() {
        record("failed", &names);
        panic!("{REQUIRE_ENV}=1 and an oracle this test needs is missing: {why}");
    }
    record("skipped", &names);
    let line = format!("SKIPPED {}: {why}\n", test_name());
    // Straight to the process's stderr: libtest captures eprintln!, not
    // this, so the notice is seen even when the test passes.
    let _ = std::io::stderr().write_all(line.as_bytes());
    false
}

/// [`require_all`] for one oracle.
pub fn require(oracle: Oracle) -> bool {
    require_all(&[oracle])
}

/// The running test, as libtest names its thread, and the test binary.
fn test_name() -> String {
    let binary = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let thread = std::thread::current();
    match thread.name() {
        Some(name) if name != "main" && !name.starts_with("tokio") => format!("{binary}::{name}"),
        _ => binary,
    }
}

/// The record log: `$ZK_ORACLE_LOG`, or `oracle-tests.log` in the cargo
/// profile directory (test binaries run from `<profile>/deps/`).
pub fn log_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(LOG_ENV) {
        return Some(PathBuf::from(path));
    }
    let exe = std::env::current_exe().ok()?;
    let deps = exe.parent()?;
    let profile = if deps.file_name()? == "deps" {
        deps.parent()?
    } else {
        deps
    };
    Some(profile.join(LOG_NAME))
}

fn record(outcome: &str, oracles: &str) {
    let Some(path) = log_path() else {
        return;
    };
    let line = format!("{outcome}\t{oracles}\t{}\n", test_name());
    // One short append per line: concurrent test processes do not
    // interleave within a line.
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = f.write_all(line.as_bytes());
    }
}
