//! Apache ZooKeeper 3.8 (Debian package `zookeeper`) as child processes on
//! free 127.0.0.1 ports with their own temporary data dirs: a standalone
//! server ([`ApacheZk`]) and an ensemble whose members can be killed and
//! restarted ([`ApacheEnsemble`]).
//!
//! Every JVM runs under a small `sh` guard that holds a pipe from this
//! process: when the pipe closes (the handle is dropped, or the test
//! process exits in any way) the guard kills the JVM. So even servers kept
//! in a `static` for a whole test binary never outlive it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian installs the server jar and its classpath.
const JAR: &str = "/usr/share/java/zookeeper.jar";
const CONF_DIR: &str = "/etc/zookeeper/conf";

/// How long a server may take to start serving.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running standalone Apache ZooKeeper; killed when dropped.
#[derive(Debug)]
pub struct ApacheZk {
    process: JavaProcess,
    addr: SocketAddr,
    dir: PathBuf,
}

/// Why Apache ZooKeeper could not be started.
#[derive(Debug)]
pub enum StartError {
    /// The Debian package is not installed (`.ci/run` installs it).
    NotInstalled,
    Io(std::io::Error),
    /// It did not start serving in time.
    NotReady(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::NotInstalled => write!(f, "Apache ZooKeeper is not installed ({JAR})"),
            StartError::Io(e) => write!(f, "starting Apache ZooKeeper: {e}"),
            StartError::NotReady(log) => write!(f, "Apache ZooKeeper did not start:\n{log}"),
        }
    }
}

impl std::error::Error for StartError {}

impl From<std::io::Error> for StartError {
    fn from(e: std::io::Error) -> Self {
        StartError::Io(e)
    }
}

/// True when the Debian package is installed.
pub fn installed() -> bool {
    Path::new(JAR).exists()
}

/// A port nobody listens on right now.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A JVM running `QuorumPeerMain cfg` under the `sh` guard.
#[derive(Debug)]
struct JavaProcess {
    guard: Child,
    /// Closing this makes the guard kill the JVM.
    lifeline: Option<ChildStdin>,
}

impl JavaProcess {
    fn spawn(cfg: &Path, log: &Path) -> std::io::Result<JavaProcess> {
        // The guard starts the JVM in the background, reports its pid, then
        // blocks reading the lifeline; EOF (our end closed) kills the JVM.
        let script = r#""$@" </dev/null >>"$ZK_LOG" 2>&1 & pid=$!; echo $pid; read _ignored; kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null; exit 0"#;
        let mut guard = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("zk-guard")
            .arg("java")
            .arg("-Dzookeeper.extendedTypesEnabled=true")
            .arg(format!(
                "-Dzookeeper.log.dir={}",
                log.parent().unwrap_or(Path::new("/tmp")).display()
            ))
            .arg("-Xmx256m")
            .arg("-cp")
            .arg(format!("{CONF_DIR}:{JAR}"))
            .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
            .arg(cfg)
            .env("ZK_LOG", log)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let lifeline = guard.stdin.take();
        // Wait for the pid line so the JVM surely exists before we go on.
        if let Some(out) = guard.stdout.take() {
            let mut line = String::new();
            BufReader::new(out).read_line(&mut line)?;
        }
        Ok(JavaProcess { guard, lifeline })
    }

    /// Kills the JVM (SIGKILL) and waits for it.
    fn kill(&mut self) {
        drop(self.lifeline.take());
        let _ = self.guard.wait();
    }
}

impl Drop for JavaProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn base_config(data_dir: &Path, client_port: u16, tick_ms: u32) -> String {
    format!(
        "tickTime={tick_ms}\ndataDir={}\nclientPort={client_port}\nclientPortAddress=127.0.0.1\n\
         admin.enableServer=false\n4lw.commands.whitelist=*\nextendedTypesEnabled=true\n",
        data_dir.display()
    )
}

fn unique_dir(tag: &str, port: u16) -> PathBuf {
    std::env::temp_dir().join(format!("apache-zk-{tag}-{}-{port}", std::process::id()))
}

impl ApacheZk {
    /// Starts a standalone server with fsync on, TTL nodes enabled, every
    /// four-letter word allowed, and `extra` appended to its zoo.cfg.
    pub fn start(extra: &str) -> Result<Self, StartError> {
        if !installed() {
            return Err(StartError::NotInstalled);
        }
        let port = free_port()?;
        let dir = unique_dir("standalone", port);
        std::fs::create_dir_all(dir.join("data"))?;
        let cfg = dir.join("zoo.cfg");
        std::fs::write(
            &cfg,
            format!("{}{extra}\n", base_config(&dir.join("data"), port, 2000)),
        )?;
        let process = JavaProcess::spawn(&cfg, &dir.join("server.log"))?;
        let zk = ApacheZk {
            process,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
        };
        wait_serving(zk.addr, START_TIMEOUT)
            .map_err(|()| StartError::NotReady(read_log(&zk.dir.join("server.log"))))?;
        Ok(zk)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's `dataDir` (its files are under `version-2/`). It
    /// outlives [`ApacheZk::stop`] and is removed on drop.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Kills the server (SIGKILL) and waits for it to exit, keeping its
    /// data dir so its files can be inspected.
    pub fn stop(&mut self) {
        self.process.kill();
    }

    /// `127.0.0.1:<port>`, a connect string for clients.
    pub fn connect_string(&self) -> String {
        self.addr.to_string()
    }

    /// Sends a four-letter word and returns the whole answer.
    pub fn four_letter_word(&self, word: &str) -> std::io::Result<String> {
        four_letter_word(self.addr, word)
    }
}

impl Drop for ApacheZk {
    fn drop(&mut self) {
        self.process.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// True once the server at `addr` answers `srvr` with a mode, i.e. it is
/// serving requests (standalone, or in a quorum).
pub fn is_serving(addr: SocketAddr) -> bool {
    matches!(four_letter_word(addr, "srvr"), Ok(answer) if answer.contains("Mode:"))
}

fn wait_serving(addr: SocketAddr, within: Duration) -> Result<(), ()> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if is_serving(addr) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(())
}

/// Sends a four-letter word to `addr` and returns the whole answer.
pub fn four_letter_word(addr: SocketAddr, word: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(word.as_bytes())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

/// One member of an [`ApacheEnsemble`].
#[derive(Debug)]
struct Member {
    cfg: PathBuf,
    log: PathBuf,
    addr: SocketAddr,
    process: Option<JavaProcess>,
}

/// An Apache ZooKeeper ensemble on 127.0.0.1 (tickTime 1000 ms, so session
/// timeouts from 2 s to 20 s); every member is killed when dropped.
#[derive(Debug)]
pub struct ApacheEnsemble {
    dir: PathBuf,
    members: Vec<Member>,
}

impl ApacheEnsemble {
    /// Starts `size` members and waits until all of them serve.
    pub fn start(size: usize) -> Result<Self, StartError> {
        if !installed() {
            return Err(StartError::NotInstalled);
        }
        let ports: Vec<(u16, u16, u16)> = (0..size)
            .map(|_| Ok((free_port()?, free_port()?, free_port()?)))
            .collect::<std::io::Result<_>>()?;
        let dir = unique_dir("ensemble", ports.first().map_or(0, |p| p.0));
        let servers: String = ports
            .iter()
            .enumerate()
            .map(|(i, (_, quorum, election))| {
                format!("server.{}=127.0.0.1:{quorum}:{election}\n", i + 1)
            })
            .collect();
        let mut members = Vec::new();
        for (i, (client, _, _)) in ports.iter().enumerate() {
            let member_dir = dir.join(format!("m{}", i + 1));
            let data = member_dir.join("data");
            std::fs::create_dir_all(&data)?;
            std::fs::write(data.join("myid"), format!("{}\n", i + 1))?;
            let cfg = member_dir.join("zoo.cfg");
            std::fs::write(
                &cfg,
                format!(
                    "{}initLimit=10\nsyncLimit=5\nreconfigEnabled=false\n{servers}",
                    base_config(&data, *client, 1000)
                ),
            )?;
            members.push(Member {
                cfg,
                log: member_dir.join("server.log"),
                addr: SocketAddr::from(([127, 0, 0, 1], *client)),
                process: None,
            });
        }
        let mut ensemble = ApacheEnsemble { dir, members };
        for i in 0..size {
            let m = &mut ensemble.members[i];
            m.process = Some(JavaProcess::spawn(&m.cfg, &m.log)?);
        }
        for i in 0..size {
            ensemble.wait_serving(i)?;
        }
        Ok(ensemble)
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Client address of member `i` (0-based).
    pub fn addr(&self, i: usize) -> SocketAddr {
        self.members[i].addr
    }

    /// Every member, `host:port,host:port,...`.
    pub fn connect_string(&self) -> String {
        self.members
            .iter()
            .map(|m| m.addr.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The member with this client address.
    pub fn member_at(&self, addr: SocketAddr) -> Option<usize> {
        self.members.iter().position(|m| m.addr == addr)
    }

    /// Kills member `i` with SIGKILL.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut p) = self.members[i].process.take() {
            p.kill();
        }
    }

    pub fn is_running(&self, i: usize) -> bool {
        self.members[i].process.is_some()
    }

    /// Starts member `i` again (on its old data) and waits until it serves.
    pub fn restart(&mut self, i: usize) -> Result<(), StartError> {
        self.kill(i);
        let m = &mut self.members[i];
        m.process = Some(JavaProcess::spawn(&m.cfg, &m.log)?);
        self.wait_serving(i)
    }

    /// Waits until member `i` serves requests (it is in a quorum).
    pub fn wait_serving(&self, i: usize) -> Result<(), StartError> {
        let m = &self.members[i];
        wait_serving(m.addr, START_TIMEOUT).map_err(|()| StartError::NotReady(read_log(&m.log)))
    }

    /// Sends a four-letter word to member `i`.
    pub fn four_letter_word(&self, i: usize, word: &str) -> std::io::Result<String> {
        four_letter_word(self.members[i].addr, word)
    }
}

impl Drop for ApacheEnsemble {
    fn drop(&mut self) {
        for m in &mut self.members {
            if let Some(mut p) = m.process.take() {
                p.kill();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
