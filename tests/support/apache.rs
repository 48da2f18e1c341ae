//! Apache ZooKeeper 3.8 (Debian package `zookeeper`) as a child process on a
//! free 127.0.0.1 port with its own temporary data dir.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian installs the server jar and its classpath.
const JAR: &str = "/usr/share/java/zookeeper.jar";
const CONF_DIR: &str = "/etc/zookeeper/conf";

/// A running standalone Apache ZooKeeper; killed when dropped.
#[derive(Debug)]
pub struct ApacheZk {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

/// Why Apache ZooKeeper could not be started.
#[derive(Debug)]
pub enum StartError {
    /// The Debian package is not installed (`.ci/run` installs it).
    NotInstalled,
    Io(std::io::Error),
    /// It did not answer `ruok` in time.
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

impl ApacheZk {
    /// Starts a standalone server with fsync on, TTL nodes enabled, every
    /// four-letter word allowed, and `extra` appended to its zoo.cfg.
    pub fn start(extra: &str) -> Result<Self, StartError> {
        if !installed() {
            return Err(StartError::NotInstalled);
        }
        let port = free_port()?;
        let dir = std::env::temp_dir().join(format!("apache-zk-{}-{port}", std::process::id()));
        std::fs::create_dir_all(dir.join("data"))?;
        let cfg = dir.join("zoo.cfg");
        std::fs::write(
            &cfg,
            format!(
                "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
                 admin.enableServer=false\n4lw.commands.whitelist=*\nextendedTypesEnabled=true\n{extra}\n",
                dir.join("data").display()
            ),
        )?;
        let log = std::fs::File::create(dir.join("server.log"))?;
        let child = Command::new("java")
            .arg("-Dzookeeper.extendedTypesEnabled=true")
            .arg(format!("-Dzookeeper.log.dir={}", dir.display()))
            .arg("-cp")
            .arg(format!("{CONF_DIR}:{JAR}"))
            .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let zk = ApacheZk {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
        };
        zk.wait_ready(Duration::from_secs(60))?;
        Ok(zk)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:<port>`, a connect string for clients.
    pub fn connect_string(&self) -> String {
        self.addr.to_string()
    }

    /// Sends a four-letter word and returns the whole answer.
    pub fn four_letter_word(&self, word: &str) -> std::io::Result<String> {
        four_letter_word(self.addr, word)
    }

    fn wait_ready(&self, within: Duration) -> Result<(), StartError> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if matches!(self.four_letter_word("ruok").as_deref(), Ok("imok")) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        Err(StartError::NotReady(log))
    }
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

impl Drop for ApacheZk {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
