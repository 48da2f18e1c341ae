//! Server configuration and the `zoo.cfg` parser.
//!
//! `zoo.cfg` is a Java properties file: `key=value` lines (`:` also
//! separates), `#` and `!` comments, keys and values trimmed. Apache turns
//! every key it does not know into the system property `zookeeper.<key>`;
//! that is how `snapCount`, `4lw.commands.whitelist` and
//! `DigestAuthenticationProvider.superDigest` reach the server. We honour the
//! same keys, with or without the `zookeeper.` prefix, accept unknown keys
//! with a warning, and reject a malformed line or value naming its line.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

mod ops;
mod security;
mod tls;
pub use ops::{AdminServerConfig, OpsConfig, PrometheusConfig};
pub use security::SecurityConfig;
pub use tls::{ClientAuth, StoreKind, StoreSpec, TlsConfig};

/// Apache's defaults (ZooKeeperServer / QuorumPeerConfig / ZAB.md §1).
pub const DEFAULT_TICK_TIME_MS: u32 = 3000;
pub const DEFAULT_MAX_CLIENT_CNXNS: u32 = 60;
pub const DEFAULT_SNAP_COUNT: u64 = 100_000;
pub const DEFAULT_PREALLOC_KIB: u64 = 65_536;
pub const DEFAULT_SNAP_RETAIN_COUNT: usize = 3;
pub const DEFAULT_CONTAINER_CHECK_INTERVAL_MS: u64 = 60_000;
pub const DEFAULT_JUTE_MAX_BUFFER: usize = zk_proto::jute::DEFAULT_MAX_BUFFER;
/// Apache's `globalOutstandingLimit`.
pub const DEFAULT_GLOBAL_OUTSTANDING_LIMIT: usize = 1000;
/// Ours (Apache has no such bound): unsent reply bytes past which a
/// connection stops being read (docs/PERFORMANCE.md "Back-pressure").
pub const DEFAULT_CLIENT_MAX_UNSENT_BYTES: usize = 16 << 20;
/// Ours: a connection whose queued replies make no progress for this long
/// is closed.
pub const DEFAULT_CLIENT_STUCK_TIMEOUT_MS: u64 = 30_000;

/// Which four-letter words may run (`4lw.commands.whitelist`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FourLetterWhitelist {
    /// `*`: every command.
    All,
    /// The listed commands; `srvr` is always allowed, as in Apache.
    Only(BTreeSet<String>),
}

impl Default for FourLetterWhitelist {
    /// Apache 3.8 with the property unset: only `srvr`.
    fn default() -> Self {
        FourLetterWhitelist::Only(BTreeSet::new())
    }
}

impl FourLetterWhitelist {
    /// Parses the comma-separated list (`*` anywhere means all).
    pub fn parse(value: &str) -> Self {
        let words: BTreeSet<String> = value
            .split(',')
            .map(|w| w.trim().to_ascii_lowercase())
            .filter(|w| !w.is_empty())
            .collect();
        if words.contains("*") {
            FourLetterWhitelist::All
        } else {
            FourLetterWhitelist::Only(words)
        }
    }

    pub fn allows(&self, word: &str) -> bool {
        match self {
            FourLetterWhitelist::All => true,
            FourLetterWhitelist::Only(words) => word == "srvr" || words.contains(word),
        }
    }
}

/// The role a `server.N` line gives its member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerRole {
    Participant,
    Observer,
}

/// One `server.N=host:quorumPort:electionPort[:role][;[clientHost:]clientPort]` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSpec {
    pub id: u64,
    pub host: String,
    pub quorum_port: u16,
    pub election_port: u16,
    pub role: PeerRole,
    /// The optional client address after `;` (host defaults to 0.0.0.0).
    pub client: Option<(String, u16)>,
}

/// Everything the server reads from `zoo.cfg` (or builds in code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    pub tick_time_ms: u32,
    pub data_dir: PathBuf,
    /// Txn logs; `None` means the data dir.
    pub data_log_dir: Option<PathBuf>,
    pub client_port: u16,
    /// Listen address; `None` means all interfaces (0.0.0.0).
    pub client_port_address: Option<IpAddr>,
    /// Concurrent connections per client IP; 0 means unlimited.
    pub max_client_cnxns: u32,
    /// `None` means the default 2 × tickTime.
    pub min_session_timeout_ms: Option<i32>,
    /// `None` means the default 20 × tickTime.
    pub max_session_timeout_ms: Option<i32>,
    pub snap_count: u64,
    /// Txn log growth step in bytes (zoo.cfg gives KiB).
    pub prealloc_size_bytes: u64,
    pub force_sync: bool,
    pub autopurge_snap_retain_count: usize,
    /// Hours between purges; 0 disables autopurge.
    pub autopurge_purge_interval_hours: u32,
    pub four_letter_whitelist: FourLetterWhitelist,
    pub extended_types_enabled: bool,
    /// Largest client frame accepted (`jute.maxbuffer`).
    pub jute_max_buffer: usize,
    /// `DigestAuthenticationProvider.superDigest`: `user:base64(sha1)`.
    pub super_digest: Option<String>,
    pub container_check_interval_ms: u64,
    pub init_limit: Option<u32>,
    pub sync_limit: Option<u32>,
    /// `zookeeper.commitLogCount`: how many of the newest txns a leader
    /// keeps for DIFF; older learners get SNAP. `None`: 500, as Apache.
    pub commit_log_count: Option<usize>,
    /// `zookeeper.snapshotSizeFactor`: a leader sends a learner behind its
    /// in-memory log a DIFF from the txn log files while they are smaller
    /// than the snapshot times this (0 always sends SNAP), in thousandths.
    /// `None`: 0.33.
    pub snapshot_size_factor_permille: Option<u64>,
    /// `globalOutstandingLimit`: requests read and not yet answered,
    /// server-wide, past which connections with a request in flight stop
    /// being read. 0 turns the limit off.
    pub global_outstanding_limit: usize,
    /// `clientMaxUnsentBytes`: a connection whose replies not yet written
    /// pass this stops being read until they drain.
    pub client_max_unsent_bytes: usize,
    /// `clientStuckTimeoutMs`: a connection with replies to write and no
    /// byte written for this long is closed.
    pub client_stuck_timeout_ms: u64,
    /// `server.N` lines; non-empty means ensemble mode.
    pub peers: Vec<PeerSpec>,
    /// This server's id in the ensemble; `None` reads `<dataDir>/myid`.
    pub my_id: Option<u64>,
    /// `peerType`: `observer` makes this member an observer even when its
    /// `server.N` line does not say so.
    pub peer_type: Option<PeerRole>,
    /// `truncateCorruptTxnLog` (ours; `zk-server --truncate-corrupt-txnlog`
    /// sets it too): a whole txn-log record whose checksum fails is cut at
    /// start, with every txn after it, instead of refusing to start. For an
    /// operator who accepts losing those txns on this server.
    pub truncate_corrupt_txn_log: bool,
    /// AdminServer, metrics endpoint, standaloneEnabled (config/ops.rs).
    pub ops: OpsConfig,
    /// enforce.auth.*, authProvider.N (config/security.rs).
    pub security: SecurityConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            tick_time_ms: DEFAULT_TICK_TIME_MS,
            data_dir: PathBuf::from("data"),
            data_log_dir: None,
            client_port: 2181,
            client_port_address: None,
            max_client_cnxns: DEFAULT_MAX_CLIENT_CNXNS,
            min_session_timeout_ms: None,
            max_session_timeout_ms: None,
            snap_count: DEFAULT_SNAP_COUNT,
            prealloc_size_bytes: DEFAULT_PREALLOC_KIB * 1024,
            force_sync: true,
            autopurge_snap_retain_count: DEFAULT_SNAP_RETAIN_COUNT,
            autopurge_purge_interval_hours: 0,
            four_letter_whitelist: FourLetterWhitelist::default(),
            extended_types_enabled: false,
            jute_max_buffer: DEFAULT_JUTE_MAX_BUFFER,
            super_digest: None,
            container_check_interval_ms: DEFAULT_CONTAINER_CHECK_INTERVAL_MS,
            init_limit: None,
            sync_limit: None,
            commit_log_count: None,
            snapshot_size_factor_permille: None,
            global_outstanding_limit: DEFAULT_GLOBAL_OUTSTANDING_LIMIT,
            client_max_unsent_bytes: DEFAULT_CLIENT_MAX_UNSENT_BYTES,
            client_stuck_timeout_ms: DEFAULT_CLIENT_STUCK_TIMEOUT_MS,
            peers: Vec::new(),
            my_id: None,
            peer_type: None,
            truncate_corrupt_txn_log: false,
            ops: OpsConfig::default(),
            security: SecurityConfig::default(),
        }
    }
}

impl ServerConfig {
    /// A standalone server on `port` keeping its data under `data_dir`,
    /// everything else at Apache's defaults.
    pub fn standalone(data_dir: impl Into<PathBuf>, port: u16) -> Self {
        ServerConfig {
            data_dir: data_dir.into(),
            client_port: port,
            ..ServerConfig::default()
        }
    }

    pub fn min_session_timeout(&self) -> i32 {
        self.min_session_timeout_ms
            .unwrap_or(2 * self.tick_time_ms as i32)
    }

    pub fn max_session_timeout(&self) -> i32 {
        self.max_session_timeout_ms
            .unwrap_or(20 * self.tick_time_ms as i32)
    }

    /// Where txn logs live (dataLogDir, else dataDir).
    pub fn log_dir(&self) -> &Path {
        self.data_log_dir.as_deref().unwrap_or(&self.data_dir)
    }

    /// `<dataDir>/version-2`, where snapshots live.
    pub fn snap_version_dir(&self) -> PathBuf {
        self.data_dir.join("version-2")
    }

    /// `<dataLogDir>/version-2`, where txn logs live.
    pub fn log_version_dir(&self) -> PathBuf {
        self.log_dir().join("version-2")
    }

    /// The session timeout a client asking for `requested` ms gets.
    pub fn negotiate_timeout(&self, requested: i32) -> i32 {
        let (min, max) = (self.min_session_timeout(), self.max_session_timeout());
        requested.max(min).min(max.max(min))
    }

    /// Ensemble mode, as Apache's `QuorumPeerConfig.isDistributed`: more
    /// than one voting member, or any `server.N` line with
    /// `standaloneEnabled=false`. One voting member with
    /// `standaloneEnabled=true` (the default) runs standalone.
    pub fn runs_as_ensemble(&self) -> bool {
        let voters = self
            .peers
            .iter()
            .filter(|p| p.role == PeerRole::Participant)
            .count();
        !self.peers.is_empty() && (!self.ops.standalone_enabled || voters > 1)
    }

    /// A standalone server configured by a single `server.N` line listens
    /// where that line's client address says, as Apache's does.
    pub fn adopt_single_peer_client_addr(&mut self) {
        if let [peer] = self.peers.as_slice() {
            if let Some((host, port)) = peer.client.clone() {
                self.client_port = port;
                if let Ok(ip) = resolve_host(&host) {
                    self.client_port_address = Some(ip);
                }
            }
        }
    }

    /// Reads and parses a zoo.cfg file.
    pub fn from_file(path: &Path) -> Result<Parsed, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base)
    }

    /// Parses zoo.cfg text; relative directories are taken as given
    /// (relative to the working directory, as Apache does). `_base` is kept
    /// for error messages only.
    pub fn parse(text: &str, _base: &Path) -> Result<Parsed, ConfigError> {
        let mut config = ServerConfig {
            ops: OpsConfig::zoo_cfg_default(),
            ..ServerConfig::default()
        };
        let mut warnings = Vec::new();
        let mut saw_data_dir = false;
        let mut saw_client_port = false;
        for (index, raw) in text.lines().enumerate() {
            let line_no = index + 1;
            let Some((key, value)) = split_line(raw, line_no)? else {
                continue;
            };
            let at = |reason: String| ConfigError::BadValue {
                line: line_no,
                key: key.to_string(),
                value: value.to_string(),
                reason,
            };
            match apply_key(&mut config, key, value).map_err(at)? {
                KeyOutcome::Known => {}
                KeyOutcome::DataDir => saw_data_dir = true,
                KeyOutcome::ClientPort => saw_client_port = true,
                KeyOutcome::Unsupported(reason) => {
                    return Err(ConfigError::UnsupportedSecurity {
                        line: line_no,
                        key: key.to_string(),
                        reason,
                    })
                }
                KeyOutcome::Unknown => {
                    warnings.push(format!("line {line_no}: unknown key '{key}' ignored"))
                }
            }
        }
        if !saw_data_dir {
            return Err(ConfigError::Missing("dataDir"));
        }
        let secure_only = config.security.tls.secure_client_port.is_some() && !saw_client_port;
        config.security.tls.secure_only = secure_only;
        if !saw_client_port && config.peers.is_empty() && !secure_only {
            return Err(ConfigError::Missing("clientPort"));
        }
        check_validity(&config)?;
        config.ops.initial_config = Some(text.to_string());
        Ok(Parsed { config, warnings })
    }
}

/// A parsed zoo.cfg and the warnings (unknown keys) to log.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub config: ServerConfig,
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("line {line}: malformed line '{text}' (expected key=value)")]
    Malformed { line: usize, text: String },
    #[error("line {line}: invalid value '{value}' for {key}: {reason}")]
    BadValue {
        line: usize,
        key: String,
        value: String,
        reason: String,
    },
    /// A security setting we cannot honour: never ignored, since the
    /// server would then run less protected than the operator believes.
    #[error("line {line}: {key} is not supported: {reason}; refusing to start without it")]
    UnsupportedSecurity {
        line: usize,
        key: String,
        reason: String,
    },
    #[error("{0} is required")]
    Missing(&'static str),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

enum KeyOutcome {
    Known,
    DataDir,
    ClientPort,
    Unsupported(String),
    Unknown,
}

/// Splits a properties line into trimmed key and value; `None` for blank
/// lines and comments.
fn split_line(raw: &str, line: usize) -> Result<Option<(&str, &str)>, ConfigError> {
    let text = raw.trim();
    if text.is_empty() || text.starts_with('#') || text.starts_with('!') {
        return Ok(None);
    }
    let split = text.find(['=', ':']);
    match split {
        Some(at) if at > 0 => Ok(Some((text[..at].trim(), text[at + 1..].trim()))),
        _ => Err(ConfigError::Malformed {
            line,
            text: text.to_string(),
        }),
    }
}

/// Keys that Apache reads as system properties may carry `zookeeper.`.
fn strip_property_prefix(key: &str) -> &str {
    key.strip_prefix("zookeeper.").unwrap_or(key)
}

fn apply_key(config: &mut ServerConfig, key: &str, value: &str) -> Result<KeyOutcome, String> {
    if let Some(id) = key.strip_prefix("server.") {
        config.peers.push(parse_peer(id, value)?);
        return Ok(KeyOutcome::Known);
    }
    match strip_property_prefix(key) {
        "tickTime" => config.tick_time_ms = parse_positive(value)?,
        "dataDir" => {
            config.data_dir = parse_dir(value)?;
            return Ok(KeyOutcome::DataDir);
        }
        "dataLogDir" => config.data_log_dir = Some(parse_dir(value)?),
        "clientPort" => {
            config.client_port = parse_num(value)?;
            return Ok(KeyOutcome::ClientPort);
        }
        "clientPortAddress" => config.client_port_address = Some(resolve_host(value)?),
        "maxClientCnxns" => config.max_client_cnxns = parse_num(value)?,
        "minSessionTimeout" => config.min_session_timeout_ms = parse_timeout(value)?,
        "maxSessionTimeout" => config.max_session_timeout_ms = parse_timeout(value)?,
        "snapCount" => config.snap_count = parse_num::<u64>(value)?.max(2),
        "preAllocSize" => config.prealloc_size_bytes = parse_positive::<u64>(value)? * 1024,
        "forceSync" => config.force_sync = parse_yes_no(value)?,
        "autopurge.snapRetainCount" => {
            config.autopurge_snap_retain_count = parse_num::<usize>(value)?.max(3)
        }
        "autopurge.purgeInterval" => config.autopurge_purge_interval_hours = parse_num(value)?,
        "commitLogCount" => config.commit_log_count = Some(parse_positive(value)?),
        "snapshotSizeFactor" => {
            let factor: f64 = value
                .parse()
                .ok()
                .filter(|f: &f64| f.is_finite() && *f >= 0.0)
                .ok_or("not a non-negative number")?;
            config.snapshot_size_factor_permille = Some((factor * 1000.0).round() as u64);
        }
        "globalOutstandingLimit" => config.global_outstanding_limit = parse_num(value)?,
        "clientMaxUnsentBytes" => config.client_max_unsent_bytes = parse_positive(value)?,
        "clientStuckTimeoutMs" => config.client_stuck_timeout_ms = parse_positive(value)?,
        "4lw.commands.whitelist" => {
            config.four_letter_whitelist = FourLetterWhitelist::parse(value)
        }
        "extendedTypesEnabled" => config.extended_types_enabled = parse_bool(value)?,
        "jute.maxbuffer" => config.jute_max_buffer = parse_positive(value)?,
        "DigestAuthenticationProvider.superDigest" => {
            if !value.contains(':') {
                return Err("expected user:base64digest".into());
            }
            config.super_digest = Some(value.to_string());
        }
        "znode.container.checkIntervalMs" => {
            config.container_check_interval_ms = parse_positive(value)?
        }
        "initLimit" => config.init_limit = Some(parse_positive(value)?),
        "syncLimit" => config.sync_limit = Some(parse_positive(value)?),
        "peerType" => config.peer_type = Some(parse_peer_role(value)?),
        "truncateCorruptTxnLog" => config.truncate_corrupt_txn_log = parse_bool(value)?,
        other => return apply_extension_key(config, other, value),
    }
    Ok(KeyOutcome::Known)
}

/// Keys handled by the submodules: security first (a security key must
/// never fall through to "unknown"), then the operator keys.
fn apply_extension_key(
    config: &mut ServerConfig,
    key: &str,
    value: &str,
) -> Result<KeyOutcome, String> {
    match security::apply(&mut config.security, key, value)? {
        security::Outcome::Applied => return Ok(KeyOutcome::Known),
        security::Outcome::Unsupported(reason) => return Ok(KeyOutcome::Unsupported(reason)),
        security::Outcome::NotOurs => {}
    }
    if ops::apply(&mut config.ops, key, value)? {
        return Ok(KeyOutcome::Known);
    }
    Ok(KeyOutcome::Unknown)
}

/// An IP address, or a host name resolved to its first address (Apache
/// accepts both for clientPortAddress).
fn resolve_host(value: &str) -> Result<IpAddr, String> {
    if let Ok(ip) = value.parse() {
        return Ok(ip);
    }
    use std::net::ToSocketAddrs;
    (value, 0)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve host: {e}"))?
        .next()
        .map(|addr| addr.ip())
        .ok_or_else(|| "host has no address".to_string())
}

fn parse_num<T: std::str::FromStr>(value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| "not a non-negative integer in range".to_string())
}

fn parse_positive<T: std::str::FromStr + PartialEq + Default>(value: &str) -> Result<T, String> {
    let n: T = parse_num(value)?;
    if n == T::default() {
        return Err("must be greater than 0".into());
    }
    Ok(n)
}

/// Session timeouts: `-1` means "use the default", as in Apache.
fn parse_timeout(value: &str) -> Result<Option<i32>, String> {
    let n: i32 = value.parse().map_err(|_| "not an integer".to_string())?;
    match n {
        -1 => Ok(None),
        n if n > 0 => Ok(Some(n)),
        _ => Err("must be positive, or -1 for the default".into()),
    }
}

fn parse_dir(value: &str) -> Result<PathBuf, String> {
    if value.is_empty() {
        return Err("empty path".into());
    }
    Ok(PathBuf::from(value))
}

/// `forceSync` is `yes`/`no` in Apache; accept true/false too.
fn parse_yes_no(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => Err("expected yes or no".into()),
    }
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

/// `peerType=participant|observer`.
fn parse_peer_role(value: &str) -> Result<PeerRole, String> {
    match value.to_ascii_lowercase().as_str() {
        "participant" => Ok(PeerRole::Participant),
        "observer" => Ok(PeerRole::Observer),
        _ => Err("expected participant or observer".into()),
    }
}

fn parse_peer(id: &str, value: &str) -> Result<PeerSpec, String> {
    let id: u64 = id.parse().map_err(|_| "server id is not a number")?;
    let (addr, client) = match value.split_once(';') {
        Some((addr, client)) => (addr.trim(), Some(parse_client_addr(client.trim())?)),
        None => (value, None),
    };
    let parts: Vec<&str> = addr.split(':').collect();
    if parts.len() < 3 || parts.len() > 4 {
        return Err("expected host:quorumPort:electionPort[:participant|observer]".into());
    }
    let port = |s: &str| s.parse::<u16>().map_err(|_| format!("bad port '{s}'"));
    let role = match parts.get(3).map(|r| r.to_ascii_lowercase()) {
        None => PeerRole::Participant,
        Some(r) if r == "participant" => PeerRole::Participant,
        Some(r) if r == "observer" => PeerRole::Observer,
        Some(r) => return Err(format!("unknown peer type '{r}'")),
    };
    Ok(PeerSpec {
        id,
        host: parts[0].to_string(),
        quorum_port: port(parts[1])?,
        election_port: port(parts[2])?,
        role,
        client,
    })
}

fn parse_client_addr(text: &str) -> Result<(String, u16), String> {
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) => (host.to_string(), port),
        None => ("0.0.0.0".to_string(), text),
    };
    let port = port
        .parse()
        .map_err(|_| format!("bad client port '{port}'"))?;
    Ok((host, port))
}

fn check_validity(config: &ServerConfig) -> Result<(), ConfigError> {
    config.security.validate().map_err(ConfigError::Invalid)?;
    if config.min_session_timeout() > config.max_session_timeout() {
        return Err(ConfigError::Invalid(format!(
            "minSessionTimeout {} must not be larger than maxSessionTimeout {}",
            config.min_session_timeout(),
            config.max_session_timeout()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Parsed, ConfigError> {
        ServerConfig::parse(text, Path::new("."))
    }

    #[test]
    fn sample_zoo_cfg_gives_apache_defaults_for_the_rest() {
        let parsed = parse("tickTime=2000\ndataDir=/tmp/zk\nclientPort=2181\n").unwrap();
        let c = parsed.config;
        assert_eq!(c.tick_time_ms, 2000);
        assert_eq!(c.min_session_timeout(), 4000);
        assert_eq!(c.max_session_timeout(), 40000);
        assert_eq!(c.max_client_cnxns, 60);
        assert_eq!(c.log_dir(), Path::new("/tmp/zk"));
        assert_eq!(c.prealloc_size_bytes, 64 * 1024 * 1024);
        assert!(parsed.warnings.is_empty());
    }

    #[test]
    fn back_pressure_keys_are_honoured_with_apache_defaults() {
        let defaults = parse("dataDir=/d\nclientPort=1\n").unwrap().config;
        assert_eq!(defaults.global_outstanding_limit, 1000);
        assert_eq!(defaults.client_max_unsent_bytes, 16 << 20);
        assert_eq!(defaults.client_stuck_timeout_ms, 30_000);
        let text = "dataDir=/d\nclientPort=1\nglobalOutstandingLimit=50\n\
                    zookeeper.clientMaxUnsentBytes=4096\nclientStuckTimeoutMs=250\n";
        let c = parse(text).unwrap().config;
        assert_eq!(c.global_outstanding_limit, 50);
        assert_eq!(c.client_max_unsent_bytes, 4096);
        assert_eq!(c.client_stuck_timeout_ms, 250);
        assert!(parse("dataDir=/d\nclientPort=1\nclientMaxUnsentBytes=0\n").is_err());
    }

    #[test]
    fn every_documented_key_is_honoured() {
        let text = "\
# comment
! also a comment
tickTime = 500
dataDir=/d
dataLogDir=/l
clientPort=2888
clientPortAddress=127.0.0.1
maxClientCnxns=5
minSessionTimeout=1500
maxSessionTimeout=9000
snapCount=1000
preAllocSize=16
forceSync=no
autopurge.snapRetainCount=5
autopurge.purgeInterval=2
4lw.commands.whitelist=ruok, mntr
extendedTypesEnabled=true
jute.maxbuffer=4096
DigestAuthenticationProvider.superDigest=super:abc=
znode.container.checkIntervalMs=100
";
        let c = parse(text).unwrap().config;
        assert_eq!(c.tick_time_ms, 500);
        assert_eq!(c.log_dir(), Path::new("/l"));
        assert_eq!(c.client_port, 2888);
        assert_eq!(c.client_port_address, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(c.max_client_cnxns, 5);
        assert_eq!(
            (c.min_session_timeout(), c.max_session_timeout()),
            (1500, 9000)
        );
        assert_eq!(c.snap_count, 1000);
        assert_eq!(c.prealloc_size_bytes, 16 * 1024);
        assert!(!c.force_sync);
        assert_eq!(c.autopurge_snap_retain_count, 5);
        assert_eq!(c.autopurge_purge_interval_hours, 2);
        assert!(c.four_letter_whitelist.allows("mntr"));
        assert!(!c.four_letter_whitelist.allows("dump"));
        assert!(c.extended_types_enabled);
        assert_eq!(c.jute_max_buffer, 4096);
        assert_eq!(c.super_digest.as_deref(), Some("super:abc="));
        assert_eq!(c.container_check_interval_ms, 100);
    }

    #[test]
    fn system_property_keys_accept_the_zookeeper_prefix() {
        let c = parse(
            "dataDir=/d\nclientPort=1\nzookeeper.DigestAuthenticationProvider.superDigest=u:x\n\
             zookeeper.4lw.commands.whitelist=*\n",
        )
        .unwrap()
        .config;
        assert_eq!(c.super_digest.as_deref(), Some("u:x"));
        assert_eq!(c.four_letter_whitelist, FourLetterWhitelist::All);
    }

    #[test]
    fn truncating_a_corrupt_txn_log_is_off_unless_asked() {
        assert!(
            !parse("dataDir=/d\nclientPort=1\n")
                .unwrap()
                .config
                .truncate_corrupt_txn_log
        );
        let c = parse("dataDir=/d\nclientPort=1\ntruncateCorruptTxnLog=true\n")
            .unwrap()
            .config;
        assert!(c.truncate_corrupt_txn_log);
    }

    #[test]
    fn unknown_keys_are_warnings_naming_the_line() {
        let parsed = parse("dataDir=/d\nclientPort=1\nno.such.key=false\n").unwrap();
        assert_eq!(parsed.warnings.len(), 1);
        assert!(
            parsed.warnings[0].starts_with("line 3:"),
            "{:?}",
            parsed.warnings
        );
    }

    #[test]
    fn a_line_without_separator_is_rejected_with_its_number() {
        let err = parse("dataDir=/d\nclientPort=1\njunk\n").unwrap_err();
        assert!(
            matches!(err, ConfigError::Malformed { line: 3, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("line 3"));
    }

    #[test]
    fn a_bad_value_is_rejected_with_key_and_line() {
        let err = parse("dataDir=/d\nclientPort=abc\n").unwrap_err();
        assert!(
            matches!(&err, ConfigError::BadValue { line: 2, key, .. } if key == "clientPort"),
            "{err}"
        );
        assert!(parse("dataDir=/d\nclientPort=1\ntickTime=0\n").is_err());
        assert!(parse("dataDir=/d\nclientPort=1\nforceSync=maybe\n").is_err());
    }

    #[test]
    fn client_port_address_accepts_a_host_name() {
        let c = parse("dataDir=/d\nclientPort=1\nclientPortAddress=localhost\n")
            .unwrap()
            .config;
        assert!(c.client_port_address.unwrap().is_loopback());
    }

    #[test]
    fn min_timeout_above_max_is_invalid() {
        let err =
            parse("dataDir=/d\nclientPort=1\nminSessionTimeout=5000\nmaxSessionTimeout=4000\n")
                .unwrap_err();
        assert!(matches!(err, ConfigError::Invalid(_)));
    }

    #[test]
    fn data_dir_is_required() {
        assert!(matches!(
            parse("clientPort=1\n").unwrap_err(),
            ConfigError::Missing("dataDir")
        ));
    }

    #[test]
    fn server_lines_are_parsed_into_peers() {
        let c = parse(
            "dataDir=/d\nclientPort=1\nserver.1=10.0.0.1:2888:3888\n\
             server.2=h2:2889:3889:observer;127.0.0.1:2182\n",
        )
        .unwrap()
        .config;
        assert_eq!(c.peers.len(), 2);
        assert_eq!(c.peers[0].id, 1);
        assert_eq!(c.peers[0].quorum_port, 2888);
        assert_eq!(c.peers[1].role, PeerRole::Observer);
        assert_eq!(c.peers[1].client, Some(("127.0.0.1".into(), 2182)));
        assert!(parse("dataDir=/d\nclientPort=1\nserver.x=h:1:2\n").is_err());
        assert!(parse("dataDir=/d\nclientPort=1\nserver.1=h:1\n").is_err());
    }

    #[test]
    fn negotiated_timeout_is_clamped() {
        let c = ServerConfig {
            tick_time_ms: 2000,
            ..ServerConfig::default()
        };
        assert_eq!(c.negotiate_timeout(1000), 4000);
        assert_eq!(c.negotiate_timeout(1_000_000), 40000);
        assert_eq!(c.negotiate_timeout(10000), 10000);
    }

    #[test]
    fn whitelist_always_allows_srvr() {
        let w = FourLetterWhitelist::parse("ruok");
        assert!(w.allows("srvr"));
        assert!(w.allows("ruok"));
        assert!(!w.allows("mntr"));
        assert!(FourLetterWhitelist::default().allows("srvr"));
        assert!(!FourLetterWhitelist::default().allows("ruok"));
    }
}
