//! The Java side of the Curator interop tests: compiling
//! `CuratorPeer.java` against Debian's Apache Curator 5 jars, and running
//! it as a child process that speaks a line protocol (see the comment at
//! the top of the Java file).
//!
//! A peer is killed when its handle is dropped (a failing test unwinds
//! through the drop), and it exits by itself when its stdin closes, so a
//! test process that dies any other way does not leave JVMs behind.

#![allow(dead_code)]

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

/// Where Debian installs Java libraries.
use zk_testkit::oracle::JARS_DIR;

/// Curator 5 and what it needs at compile and run time.
use zk_testkit::oracle::CURATOR_JARS as REQUIRED_JARS;

/// The no-op logging backend: without it slf4j prints a warning, with it
/// the ZooKeeper client stays quiet. Optional.
const QUIET_LOGGING_JAR: &str = "slf4j-nop";

/// The program, compiled from this exact text (its hash names the build
/// directory, so an edit recompiles).
const SOURCE: &str = include_str!("CuratorPeer.java");
const MAIN_CLASS: &str = "CuratorPeer";

/// How long a peer may take to exit after being asked to.
const EXIT_WAIT: Duration = Duration::from_secs(15);

/// Why the Java side cannot run.
#[derive(Debug, thiserror::Error)]
pub enum KitError {
    /// Something the oracle check did not cover is not installed.
    #[error("{0}")]
    Missing(String),
    /// Our Java source does not compile: a bug, the tests fail.
    #[error("javac failed on tests/curator/CuratorPeer.java:\n{0}")]
    Compile(String),
    #[error("preparing the Curator peer: {0}")]
    Io(#[from] std::io::Error),
}

/// A compiled peer and the classpath to run it with.
#[derive(Debug)]
pub struct JavaKit {
    classpath: String,
}

static KIT: OnceLock<Result<JavaKit, KitError>> = OnceLock::new();

/// The compiled peer, compiling it on first use (blocking: call it from
/// `spawn_blocking`). Callers first ask the test kit whether Curator is
/// here (`zk_testkit::oracle::require(Oracle::Curator)`), so anything
/// missing now, or a Java source that does not compile, is a failure.
pub fn kit() -> &'static JavaKit {
    match KIT.get_or_init(JavaKit::prepare) {
        Ok(kit) => kit,
        Err(e) => panic!("{e}"),
    }
}

impl JavaKit {
    fn prepare() -> Result<JavaKit, KitError> {
        for tool in ["java", "javac"] {
            if !runs(tool) {
                return Err(KitError::Missing(format!("`{tool}` is not installed")));
            }
        }
        let jars = library_classpath(Path::new(JARS_DIR))?;
        let classes = compile(&jars)?;
        Ok(JavaKit {
            classpath: format!("{}:{jars}", classes.display()),
        })
    }
}

/// True when `tool -version` runs.
fn runs(tool: &str) -> bool {
    std::process::Command::new(tool)
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The library jars as a classpath, or which one is missing.
fn library_classpath(dir: &Path) -> Result<String, KitError> {
    let mut jars = Vec::new();
    for name in REQUIRED_JARS {
        let jar = dir.join(format!("{name}.jar"));
        if !jar.exists() {
            return Err(KitError::Missing(format!("{} is missing", jar.display())));
        }
        jars.push(jar);
    }
    let quiet = dir.join(format!("{QUIET_LOGGING_JAR}.jar"));
    if quiet.exists() {
        jars.push(quiet);
    }
    Ok(jars
        .iter()
        .map(|j| j.display().to_string())
        .collect::<Vec<_>>()
        .join(":"))
}

/// Compiles [`SOURCE`] once per version of its text into the test target
/// directory and returns the class directory. Compiling into a private
/// directory and renaming it into place keeps concurrent test binaries
/// from seeing half-written classes.
fn compile(classpath: &str) -> Result<PathBuf, KitError> {
    let mut hasher = DefaultHasher::new();
    SOURCE.hash(&mut hasher);
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let classes = base.join(format!("curator-peer-{:016x}", hasher.finish()));
    if classes.join(format!("{MAIN_CLASS}.class")).exists() {
        return Ok(classes);
    }
    let work = base.join(format!("curator-peer-build-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(work.join("classes"))?;
    let source = work.join(format!("{MAIN_CLASS}.java"));
    std::fs::write(&source, SOURCE)?;
    let out = std::process::Command::new("javac")
        .args(["-nowarn", "-Xlint:none", "-encoding", "UTF-8", "-d"])
        .arg(work.join("classes"))
        .arg("-cp")
        .arg(classpath)
        .arg(&source)
        .output()?;
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&work);
        return Err(KitError::Compile(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    // Losing the race to another binary is fine: it put the same classes
    // there.
    if std::fs::rename(work.join("classes"), &classes).is_err() && !classes.exists() {
        return Err(KitError::Io(std::io::Error::other(format!(
            "could not move the compiled peer to {}",
            classes.display()
        ))));
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(classes)
}

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Out,
    Err,
}

/// A running `CuratorPeer`; killed when dropped.
#[derive(Debug)]
pub struct Peer {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<(Stream, String)>,
    /// Everything seen so far, for failure messages.
    transcript: Vec<String>,
}

impl Peer {
    /// Starts `CuratorPeer <args...>` and waits (up to `within`) for its
    /// `READY`, i.e. until its Curator session is connected.
    pub async fn start(kit: &JavaKit, args: &[&str], within: Duration) -> Peer {
        let name = format!("java {}", args.get(1).copied().unwrap_or("peer"));
        let mut child = Command::new("java")
            // Small and quick to start: these peers do little work.
            .args(["-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
            .arg("-cp")
            .arg(&kit.classpath)
            .arg(MAIN_CLASS)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: cannot start java: {e}"));
        let (tx, lines) = mpsc::unbounded_channel();
        if let Some(out) = child.stdout.take() {
            tokio::spawn(forward_lines(out, Stream::Out, tx.clone()));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(forward_lines(err, Stream::Err, tx));
        }
        let stdin = child.stdin.take();
        let mut peer = Peer {
            name,
            child,
            stdin,
            lines,
            transcript: Vec::new(),
        };
        peer.expect(within, "READY", |l| l == "READY").await;
        peer
    }

    /// Sends one command line.
    pub async fn send(&mut self, command: &str) {
        let name = &self.name;
        let stdin = self
            .stdin
            .as_mut()
            .unwrap_or_else(|| panic!("{name}: stdin already closed"));
        let sent = async {
            stdin.write_all(format!("{command}\n").as_bytes()).await?;
            stdin.flush().await
        };
        if let Err(e) = sent.await {
            panic!(
                "{name}: cannot send {command:?}: {e}\n{}",
                self.transcript()
            );
        }
        self.transcript.push(format!("<- {command}"));
    }

    /// The next stdout line within `within`; `None` on timeout or when the
    /// peer's output ended. Stderr lines are only recorded.
    pub async fn next_line(&mut self, within: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let (stream, line) = tokio::time::timeout_at(deadline, self.lines.recv())
                .await
                .ok()??;
            match stream {
                Stream::Out => {
                    self.transcript.push(format!("-> {line}"));
                    return Some(line);
                }
                Stream::Err => self.transcript.push(format!("!! {line}")),
            }
        }
    }

    /// Reads lines until one satisfies `wanted` and returns it. Panics,
    /// with the transcript, on timeout, on end of output, and on an
    /// `ERROR` or `OVERLAP` line nobody asked for.
    pub async fn expect(
        &mut self,
        within: Duration,
        what: &str,
        wanted: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(line) = self.next_line(left).await else {
                panic!(
                    "{}: no {what} within {within:?}\n{}",
                    self.name,
                    self.transcript()
                );
            };
            if wanted(&line) {
                return line;
            }
            if line.starts_with("ERROR") || line.starts_with("OVERLAP") {
                panic!(
                    "{}: failed while waiting for {what}\n{}",
                    self.name,
                    self.transcript()
                );
            }
        }
    }

    /// Sends `command` and returns the rest of the answer line starting
    /// with `prefix`.
    pub async fn ask(&mut self, command: &str, prefix: &str) -> String {
        self.send(command).await;
        let line = self
            .expect(Duration::from_secs(10), prefix, |l| l.starts_with(prefix))
            .await;
        line[prefix.len()..].to_string()
    }

    /// Waits (bounded) for the peer to exit by itself; its exit code.
    pub async fn exit_code(&mut self, within: Duration) -> Option<i32> {
        match tokio::time::timeout(within, self.child.wait()).await {
            Ok(Ok(status)) => status.code(),
            _ => None,
        }
    }

    /// Asks the peer to close its recipe and session and exit; kills it if
    /// it does not within a bound.
    pub async fn shutdown(mut self) {
        if self.stdin.is_some() {
            self.send("exit").await;
        }
        if self.exit_code(EXIT_WAIT).await.is_none() {
            let _ = self.child.kill().await;
        }
    }

    /// Every line so far, one per line (`<-` sent, `->` stdout, `!!`
    /// stderr).
    pub fn transcript(&self) -> String {
        format!(
            "--- {} transcript ---\n{}",
            self.name,
            self.transcript.join("\n")
        )
    }
}

async fn forward_lines(
    from: impl AsyncRead + Unpin,
    stream: Stream,
    to: mpsc::UnboundedSender<(Stream, String)>,
) {
    let mut lines = BufReader::new(from).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if to.send((stream, line)).is_err() {
            break;
        }
    }
}
