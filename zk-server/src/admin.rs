//! Four-letter words (OPS.md §1–§2): recognising them and formatting their
//! output exactly as Apache ZooKeeper 3.8 does. Everything here is pure: the
//! pipeline gathers the numbers into the structs below, these functions
//! turn them into text.

use std::fmt::Write as _;
use std::net::SocketAddr;

/// The version string srvr, stat, mntr and envi report, in Apache's
/// `<release>-<commit>, built on <date> UTC` form. Monitoring scripts
/// parse the `x.y.z` prefix, so it names the Apache release we follow;
/// the commit and date come from `build.rs`.
pub fn version_string() -> String {
    format!(
        "3.8.0-zk-rs-{}-{}, built on {} UTC",
        env!("CARGO_PKG_VERSION"),
        env!("ZK_GIT_COMMIT"),
        env!("ZK_BUILD_DATE")
    )
}

/// `zk-server --version`: our release, the commit, the build date and the
/// protocol release we follow.
pub fn long_version() -> String {
    format!(
        "zk-server {} (git {}, built {} UTC), compatible with Apache ZooKeeper 3.8.0",
        env!("CARGO_PKG_VERSION"),
        env!("ZK_GIT_COMMIT"),
        env!("ZK_BUILD_DATE")
    )
}

/// The commands we answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FourLetterWord {
    Ruok,
    Srvr,
    Stat,
    Mntr,
    Conf,
    Cons,
    Envi,
    Wchs,
    Wchc,
    Wchp,
    Dump,
    Isro,
    Crst,
    Srst,
    Dirs,
    Hash,
    Gtmk,
    Stmk,
}

impl FourLetterWord {
    pub const ALL: &'static [FourLetterWord] = &[
        FourLetterWord::Ruok,
        FourLetterWord::Srvr,
        FourLetterWord::Stat,
        FourLetterWord::Mntr,
        FourLetterWord::Conf,
        FourLetterWord::Cons,
        FourLetterWord::Envi,
        FourLetterWord::Wchs,
        FourLetterWord::Wchc,
        FourLetterWord::Wchp,
        FourLetterWord::Dump,
        FourLetterWord::Isro,
        FourLetterWord::Crst,
        FourLetterWord::Srst,
        FourLetterWord::Dirs,
        FourLetterWord::Hash,
        FourLetterWord::Gtmk,
        FourLetterWord::Stmk,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FourLetterWord::Ruok => "ruok",
            FourLetterWord::Srvr => "srvr",
            FourLetterWord::Stat => "stat",
            FourLetterWord::Mntr => "mntr",
            FourLetterWord::Conf => "conf",
            FourLetterWord::Cons => "cons",
            FourLetterWord::Envi => "envi",
            FourLetterWord::Wchs => "wchs",
            FourLetterWord::Wchc => "wchc",
            FourLetterWord::Wchp => "wchp",
            FourLetterWord::Dump => "dump",
            FourLetterWord::Isro => "isro",
            FourLetterWord::Crst => "crst",
            FourLetterWord::Srst => "srst",
            FourLetterWord::Dirs => "dirs",
            FourLetterWord::Hash => "hash",
            FourLetterWord::Gtmk => "gtmk",
            FourLetterWord::Stmk => "stmk",
        }
    }

    /// The command whose ASCII bytes are the first four of a connection.
    pub fn from_prefix(prefix: [u8; 4]) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|w| w.name().as_bytes() == prefix)
    }
}

/// Apache's `ZooTrace` mask (process-wide, as in the JVM). We have no
/// trace log of our own; `gtmk`/`stmk` keep the value so tools that set
/// and read it back see what Apache shows. 306 is Apache's default.
static TRACE_MASK: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(306);

/// The words answered without the server's state: `gtmk` prints the mask,
/// `stmk` (followed by an 8-byte big-endian mask) sets and prints it; an
/// `stmk` without its mask gets an empty answer, as from Apache.
pub fn answer_trace_mask(word: FourLetterWord, new_mask: Option<i64>) -> Option<String> {
    use std::sync::atomic::Ordering;
    match (word, new_mask) {
        (FourLetterWord::Gtmk, _) => Some(TRACE_MASK.load(Ordering::Relaxed).to_string()),
        (FourLetterWord::Stmk, Some(mask)) => {
            TRACE_MASK.store(mask, Ordering::Relaxed);
            Some(mask.to_string())
        }
        (FourLetterWord::Stmk, None) => Some(String::new()),
        _ => None,
    }
}

/// `dirs`: the bytes in the snapshot and txn-log directories.
pub fn format_dirs(datadir_size: u64, logdir_size: u64) -> String {
    format!("datadir_size: {datadir_size}\nlogdir_size: {logdir_size}\n")
}

/// `hash`: Apache lists the tree digest logged every 128 txns
/// (`<zxid hex>: <digest>`). We compute the digest when asked, so we
/// print the one line we can vouch for: the current tree at the last
/// applied zxid, in the same form.
pub fn format_hash(digests: &[(i64, u64)]) -> String {
    let mut out = String::new();
    for (zxid, digest) in digests {
        let _ = writeln!(out, "{zxid:x}: {digest}");
    }
    out
}

/// What a known command outside the whitelist answers.
pub fn not_whitelisted(word: FourLetterWord) -> String {
    format!(
        "{} is not executed because it is not in the whitelist.\n",
        word.name()
    )
}

pub const RUOK: &str = "imok";
pub const ISRO_READ_WRITE: &str = "rw";
/// What most words print on an ensemble member that does not serve (OPS.md
/// §1.1); `isro` prints [`ISRO_NOT_SERVING`] instead.
pub const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests\n";
pub const ISRO_NOT_SERVING: &str = "null";
pub const CRST: &str = "Connection stats reset.\n";
pub const SRST: &str = "Server stats reset.\n";

/// Request latency in ms since start or the last `srst`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Latency {
    pub min: u64,
    pub max: u64,
    pub total: u64,
    pub count: u64,
}

impl Latency {
    pub fn record(&mut self, ms: u64) {
        if self.count == 0 || ms < self.min {
            self.min = ms;
        }
        self.max = self.max.max(ms);
        self.total += ms;
        self.count += 1;
    }

    /// Average rounded to 4 decimals, as ServerStats does.
    pub fn avg(&self) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let avg = self.total as f64 / self.count as f64;
        (avg * 10_000.0).round() / 10_000.0
    }
}

/// The numbers srvr, stat and part of mntr print.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSummary {
    pub latency: Latency,
    pub packets_received: u64,
    pub packets_sent: u64,
    pub connections: usize,
    pub outstanding: u64,
    pub zxid: i64,
    /// `standalone`, `leader`, ...
    pub mode: &'static str,
    pub node_count: usize,
}

/// One client connection as cons/stat/dump list it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionInfo {
    pub remote: SocketAddr,
    /// Java's interestOps: 1 = reading.
    pub interest_ops: u32,
    pub queued: u64,
    pub packets_received: u64,
    pub packets_sent: u64,
    pub session: Option<SessionConnInfo>,
    /// On the secure client port (the AdminServer lists these apart).
    pub secure: bool,
}

/// The session part of a full `cons` line.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionConnInfo {
    pub session_id: i64,
    /// OPS.md `lop` code, e.g. `CREA`.
    pub last_op: &'static str,
    pub established_ms: u64,
    pub timeout_ms: i32,
    pub last_cxid: Option<i32>,
    /// -1 after a reset.
    pub last_zxid: i64,
    pub last_response_ms: u64,
    pub last_latency: u64,
    pub latency: Latency,
}

/// Java prints socket addresses as `/ip:port`.
fn java_addr(addr: &SocketAddr) -> String {
    format!("/{addr}")
}

/// Java's `Double.toString` for the values we print (no exponent range).
pub fn java_double(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e7 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

fn write_stats_block(out: &mut String, s: &ServerSummary) {
    let _ = write!(
        out,
        "Latency min/avg/max: {}/{}/{}\nReceived: {}\nSent: {}\nConnections: {}\n\
         Outstanding: {}\nZxid: 0x{:x}\nMode: {}\nNode count: {}\n",
        s.latency.min,
        java_double(s.latency.avg()),
        s.latency.max,
        s.packets_received,
        s.packets_sent,
        s.connections,
        s.outstanding,
        s.zxid,
        s.mode,
        s.node_count
    );
}

pub fn format_srvr(s: &ServerSummary) -> String {
    let mut out = format!("Zookeeper version: {}\n", version_string());
    write_stats_block(&mut out, s);
    out
}

pub fn format_stat(s: &ServerSummary, conns: &[ConnectionInfo]) -> String {
    let mut out = format!("Zookeeper version: {}\nClients:\n", version_string());
    for c in conns {
        out.push_str(&connection_line(c, true));
        out.push('\n');
    }
    out.push('\n');
    write_stats_block(&mut out, s);
    out
}

pub fn format_cons(conns: &[ConnectionInfo]) -> String {
    let mut out = String::new();
    for c in conns {
        out.push_str(&connection_line(c, false));
        out.push('\n');
    }
    out.push('\n');
    out
}

/// `ServerCnxn.dumpConnectionInfo`: brief for stat, full for cons.
pub fn connection_line(c: &ConnectionInfo, brief: bool) -> String {
    let mut out = format!(
        " {}[{:x}](queued={},recved={},sent={}",
        java_addr(&c.remote),
        c.interest_ops,
        c.queued,
        c.packets_received,
        c.packets_sent
    );
    if let (false, Some(s)) = (brief, &c.session) {
        let _ = write!(
            out,
            ",sid=0x{:x},lop={},est={},to={}",
            s.session_id, s.last_op, s.established_ms, s.timeout_ms
        );
        if let Some(cxid) = s.last_cxid {
            let _ = write!(out, ",lcxid=0x{cxid:x}");
        }
        // Apache prints the integer average here.
        let avg = s.latency.total.checked_div(s.latency.count).unwrap_or(0);
        let _ = write!(
            out,
            ",lzxid=0x{:x},lresp={},llat={},minlat={},avglat={},maxlat={}",
            s.last_zxid, s.last_response_ms, s.last_latency, s.latency.min, avg, s.latency.max
        );
    }
    out.push(')');
    out
}

/// The facts `conf` prints for a standalone server.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfInfo {
    pub client_port: u16,
    /// The bound `secureClientPort`; -1 without TLS, as Apache prints it.
    pub secure_client_port: i32,
    pub data_dir: String,
    pub data_dir_size: u64,
    pub data_log_dir: String,
    pub data_log_size: u64,
    pub tick_time: u32,
    pub max_client_cnxns: u32,
    pub min_session_timeout: i32,
    pub max_session_timeout: i32,
    pub server_id: u64,
}

pub fn format_conf(c: &ConfInfo) -> String {
    format!(
        "clientPort={}\nsecureClientPort={}\ndataDir={}\ndataDirSize={}\ndataLogDir={}\n\
         dataLogSize={}\ntickTime={}\nmaxClientCnxns={}\nminSessionTimeout={}\n\
         maxSessionTimeout={}\nclientPortListenBacklog=-1\nserverId={}\n",
        c.client_port,
        c.secure_client_port,
        c.data_dir,
        c.data_dir_size,
        c.data_log_dir,
        c.data_log_size,
        c.tick_time,
        c.max_client_cnxns,
        c.min_session_timeout,
        c.max_session_timeout,
        c.server_id
    )
}

/// A mntr value: integers plainly, doubles Java-style, strings as-is.
#[derive(Debug, Clone, PartialEq)]
pub enum Metric {
    Int(i64),
    Double(f64),
    Text(String),
}

/// `zk_<key>\t<value>\n` per entry, in the given order.
pub fn format_mntr(metrics: &[(&str, Metric)]) -> String {
    let mut out = String::new();
    for (key, value) in metrics {
        let value = match value {
            Metric::Int(n) => n.to_string(),
            Metric::Double(d) => java_double(*d),
            Metric::Text(t) => t.clone(),
        };
        let _ = writeln!(out, "zk_{key}\t{value}");
    }
    out
}

/// The mntr metrics of a standalone server, version and state first.
pub fn standalone_metrics(s: &ServerSummary, extra: &MntrExtra) -> Vec<(&'static str, Metric)> {
    let mut metrics = vec![
        ("version", Metric::Text(version_string())),
        ("server_state", Metric::Text(s.mode.to_string())),
        ("avg_latency", Metric::Double(s.latency.avg())),
        ("max_latency", Metric::Int(s.latency.max as i64)),
        ("min_latency", Metric::Int(s.latency.min as i64)),
        ("packets_received", Metric::Int(s.packets_received as i64)),
        ("packets_sent", Metric::Int(s.packets_sent as i64)),
        ("num_alive_connections", Metric::Int(s.connections as i64)),
        ("outstanding_requests", Metric::Int(s.outstanding as i64)),
        ("uptime", Metric::Int(extra.uptime_ms as i64)),
        ("znode_count", Metric::Int(s.node_count as i64)),
        ("watch_count", Metric::Int(extra.watch_count as i64)),
        (
            "ephemerals_count",
            Metric::Int(extra.ephemerals_count as i64),
        ),
        (
            "approximate_data_size",
            Metric::Int(extra.approximate_data_size as i64),
        ),
        ("global_sessions", Metric::Int(extra.global_sessions as i64)),
        ("local_sessions", Metric::Int(0)),
        ("connection_drop_probability", Metric::Double(0.0)),
        (
            "auth_failed_count",
            Metric::Int(extra.auth_failed_count as i64),
        ),
        (
            "last_client_response_size",
            Metric::Int(extra.last_client_response_size),
        ),
        (
            "max_client_response_size",
            Metric::Int(extra.max_client_response_size),
        ),
        (
            "min_client_response_size",
            Metric::Int(extra.min_client_response_size),
        ),
        ("snap_count", Metric::Int(extra.snap_count as i64)),
        ("commit_count", Metric::Int(extra.commit_count as i64)),
        (
            "connection_rejected",
            Metric::Int(extra.connection_rejected as i64),
        ),
    ];
    if let Some((open, max)) = extra.file_descriptors {
        metrics.push(("open_file_descriptor_count", Metric::Int(open as i64)));
        metrics.push(("max_file_descriptor_count", Metric::Int(max as i64)));
    }
    metrics
}

/// Open and maximum file descriptors of this process (mntr's
/// `zk_open_file_descriptor_count` / `zk_max_file_descriptor_count`);
/// `None` where /proc is unavailable.
pub fn file_descriptor_counts() -> Option<(u64, u64)> {
    let open = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let max = parse_max_open_files(&limits)?;
    Some((open, max))
}

/// The soft limit of the `Max open files` line of /proc/self/limits.
fn parse_max_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// mntr values beyond the srvr summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MntrExtra {
    pub uptime_ms: u64,
    pub watch_count: usize,
    pub ephemerals_count: usize,
    pub approximate_data_size: u64,
    pub global_sessions: usize,
    pub auth_failed_count: u64,
    /// -1 = none yet.
    pub last_client_response_size: i64,
    pub max_client_response_size: i64,
    pub min_client_response_size: i64,
    pub snap_count: u64,
    pub commit_count: u64,
    pub connection_rejected: u64,
    /// (open, max) file descriptors, where known.
    pub file_descriptors: Option<(u64, u64)>,
}

/// `wchs`: counts from the data-watch table.
pub fn format_wchs(connections: usize, paths: usize, total: usize) -> String {
    format!("{connections} connections watching {paths} paths\nTotal watches:{total}\n")
}

/// `wchc`: per session, the watched paths.
pub fn format_wchc(by_session: &[(i64, Vec<String>)]) -> String {
    let mut out = String::new();
    for (session, paths) in by_session {
        let _ = writeln!(out, "0x{session:x}");
        for p in paths {
            let _ = writeln!(out, "\t{p}");
        }
    }
    out.push('\n');
    out
}

/// `wchp`: per path, the watching sessions.
pub fn format_wchp(by_path: &[(String, Vec<i64>)]) -> String {
    let mut out = String::new();
    for (path, sessions) in by_path {
        let _ = writeln!(out, "{path}");
        for s in sessions {
            let _ = writeln!(out, "\t0x{s:x}");
        }
    }
    out.push('\n');
    out
}

/// The facts `dump` prints: expiry buckets (epoch ms) of sessions and of
/// connections, and each session's ephemerals.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DumpInfo {
    pub session_buckets: Vec<(u64, Vec<i64>)>,
    pub ephemerals: Vec<(i64, Vec<String>)>,
    pub connection_buckets: Vec<(u64, Vec<(SocketAddr, i64)>)>,
}

pub fn format_dump(d: &DumpInfo) -> String {
    let sessions: usize = d.session_buckets.iter().map(|(_, s)| s.len()).sum();
    let mut out = format!(
        "SessionTracker dump:\nSession Sets ({})/({}):\n",
        d.session_buckets.len(),
        sessions
    );
    for (expiry, ids) in &d.session_buckets {
        let _ = writeln!(out, "{} expire at {}:", ids.len(), java_date(*expiry));
        for id in ids {
            let _ = writeln!(out, "\t0x{id:x}");
        }
    }
    let _ = writeln!(
        out,
        "ephemeral nodes dump:\nSessions with Ephemerals ({}):",
        d.ephemerals.len()
    );
    for (id, paths) in &d.ephemerals {
        let _ = writeln!(out, "0x{id:x}:");
        for p in paths {
            let _ = writeln!(out, "\t{p}");
        }
    }
    let conns: usize = d.connection_buckets.iter().map(|(_, c)| c.len()).sum();
    let _ = writeln!(
        out,
        "Connections dump:\nConnections Sets ({})/({}):",
        d.connection_buckets.len(),
        conns
    );
    for (expiry, list) in &d.connection_buckets {
        let _ = writeln!(out, "{} expire at {}:", list.len(), java_date(*expiry));
        for (addr, id) in list {
            let _ = writeln!(out, "\tip: {} sessionId: 0x{id:x}", java_addr(addr));
        }
    }
    out
}

/// `envi`: Apache's keys in Apache's order; Java-only facts are `<NA>` or
/// the nearest Rust fact.
pub fn format_envi(env: &[(&str, String)]) -> String {
    let mut out = String::from("Environment:\n");
    for (k, v) in env {
        let _ = writeln!(out, "{k}={v}");
    }
    out
}

/// The environment envi reports, gathered from the process. The
/// `java.*` facts have no meaning without a JVM and stay `<NA>` (Apache
/// itself prints `<NA>` for what it does not know); the others are the
/// process's: the executable for the class path, the loader path for
/// the library path, and memory in Apache's `<n>MB` form: `free` is the
/// memory the system has available, `max` the system's total, `total`
/// what this process holds (resident).
pub fn environment() -> Vec<(&'static str, String)> {
    let na = || "<NA>".to_string();
    let user = current_user();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| na());
    let cwd = std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_else(|_| na());
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| na());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mb =
        |text: &str, key: &str| kib_field(text, key).map_or_else(na, |k| format!("{}MB", k / 1024));
    vec![
        ("zookeeper.version", version_string()),
        ("host.name", host),
        ("java.version", na()),
        ("java.vendor", na()),
        ("java.home", na()),
        ("java.class.path", exe),
        (
            "java.library.path",
            std::env::var("LD_LIBRARY_PATH").unwrap_or_default(),
        ),
        ("java.io.tmpdir", std::env::temp_dir().display().to_string()),
        ("java.compiler", na()),
        ("os.name", os_name()),
        ("os.arch", java_arch()),
        ("os.version", os_version()),
        ("user.name", user.as_ref().map_or_else(na, |u| u.0.clone())),
        ("user.home", user.as_ref().map_or_else(na, |u| u.1.clone())),
        ("user.dir", cwd),
        ("os.memory.free", mb(&meminfo, "MemAvailable:")),
        ("os.memory.max", mb(&meminfo, "MemTotal:")),
        ("os.memory.total", mb(&status, "VmRSS:")),
    ]
}

/// A `Key:   1234 kB` line of /proc/meminfo or /proc/self/status.
fn kib_field(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// Java's `os.arch` names (`amd64` where Rust says `x86_64`).
fn java_arch() -> String {
    match std::env::consts::ARCH {
        "x86_64" => "amd64".into(),
        other => other.into(),
    }
}

/// (name, home) of the effective user: `USER`/`HOME`, else /etc/passwd
/// for our uid (a systemd service often has neither variable).
fn current_user() -> Option<(String, String)> {
    if let (Ok(name), Ok(home)) = (std::env::var("USER"), std::env::var("HOME")) {
        return Some((name, home));
    }
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .nth(1)?
        .to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd_entry(&passwd, &uid)
}

/// The (name, home) of `uid` in passwd-format text.
fn passwd_entry(passwd: &str, uid: &str) -> Option<(String, String)> {
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 6 && f[2] == uid).then(|| (f[0].to_string(), f[5].to_string()))
    })
}

/// Java reports `Linux`, `Mac OS X`, ...: capitalised.
fn os_name() -> String {
    match std::env::consts::OS {
        "linux" => "Linux".into(),
        "macos" => "Mac OS X".into(),
        other => other.into(),
    }
}

fn os_version() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|_| "<NA>".into())
}

/// Java's `Date.toString()` in UTC: `Sun Nov 22 02:42:43 UTC 2026`.
pub fn java_date(epoch_ms: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = epoch_ms / 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {}",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        day,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        year
    )
}

/// Days since 1970-01-01 to (year, month 1-12, day 1-31), proleptic
/// Gregorian (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> ServerSummary {
        ServerSummary {
            latency: Latency {
                min: 0,
                max: 16,
                total: 0,
                count: 0,
            },
            packets_received: 108,
            packets_sent: 113,
            connections: 2,
            outstanding: 0,
            zxid: 0x48,
            mode: "standalone",
            node_count: 17,
        }
    }

    #[test]
    fn four_letter_words_are_recognised_by_their_bytes() {
        assert_eq!(
            FourLetterWord::from_prefix(*b"ruok"),
            Some(FourLetterWord::Ruok)
        );
        assert_eq!(
            FourLetterWord::from_prefix(*b"mntr"),
            Some(FourLetterWord::Mntr)
        );
        assert_eq!(FourLetterWord::from_prefix([0, 0, 0, 45]), None);
    }

    #[test]
    fn refusal_text_matches_apache() {
        assert_eq!(
            not_whitelisted(FourLetterWord::Ruok),
            "ruok is not executed because it is not in the whitelist.\n"
        );
    }

    #[test]
    fn srvr_matches_the_ops_example_layout() {
        let mut s = summary();
        s.latency = Latency {
            min: 0,
            max: 16,
            total: 19053,
            count: 10000,
        };
        let text = format_srvr(&s);
        let body = text.split_once('\n').unwrap().1;
        assert_eq!(
            body,
            "Latency min/avg/max: 0/1.9053/16\nReceived: 108\nSent: 113\nConnections: 2\n\
             Outstanding: 0\nZxid: 0x48\nMode: standalone\nNode count: 17\n"
        );
        assert!(text.starts_with("Zookeeper version: 3.8.0-"));
        assert!(text.lines().next().unwrap().ends_with(" UTC"));
    }

    #[test]
    fn average_latency_prints_java_style() {
        assert_eq!(java_double(0.0), "0.0");
        assert_eq!(java_double(1.9053), "1.9053");
        assert_eq!(java_double(2.0), "2.0");
        let mut l = Latency::default();
        l.record(1);
        l.record(2);
        l.record(2);
        assert_eq!(l.avg(), 1.6667);
        assert_eq!((l.min, l.max), (1, 2));
    }

    fn conn(session: bool) -> ConnectionInfo {
        ConnectionInfo {
            secure: false,
            remote: "127.0.0.1:46372".parse().unwrap(),
            interest_ops: 1,
            queued: 0,
            packets_received: 4,
            packets_sent: 5,
            session: session.then_some(SessionConnInfo {
                session_id: 0x100000ce7180013,
                last_op: "CREA",
                established_ms: 1795315351856,
                timeout_ms: 30000,
                last_cxid: Some(3),
                last_zxid: 0x48,
                last_response_ms: 944630,
                last_latency: 1,
                latency: Latency {
                    min: 0,
                    max: 5,
                    total: 10,
                    count: 4,
                },
            }),
        }
    }

    #[test]
    fn cons_full_line_matches_the_observed_one() {
        assert_eq!(
            connection_line(&conn(true), false),
            " /127.0.0.1:46372[1](queued=0,recved=4,sent=5,sid=0x100000ce7180013,lop=CREA,\
             est=1795315351856,to=30000,lcxid=0x3,lzxid=0x48,lresp=944630,llat=1,minlat=0,\
             avglat=2,maxlat=5)"
        );
        assert_eq!(
            format_cons(&[conn(false)]),
            " /127.0.0.1:46372[1](queued=0,recved=4,sent=5)\n\n"
        );
    }

    #[test]
    fn stat_lists_brief_connections_then_the_stats() {
        let text = format_stat(&summary(), &[conn(true)]);
        let rest = text.split_once('\n').unwrap().1;
        assert!(rest.starts_with(
            "Clients:\n /127.0.0.1:46372[1](queued=0,recved=4,sent=5)\n\nLatency min/avg/max: "
        ));
    }

    #[test]
    fn conf_matches_the_observed_standalone_block() {
        let c = ConfInfo {
            client_port: 21810,
            secure_client_port: -1,
            data_dir: "/tmp/zkt/data/version-2".into(),
            data_dir_size: 457,
            data_log_dir: "/tmp/zkt/data/version-2".into(),
            data_log_size: 457,
            tick_time: 2000,
            max_client_cnxns: 60,
            min_session_timeout: 4000,
            max_session_timeout: 40000,
            server_id: 0,
        };
        assert_eq!(
            format_conf(&c),
            "clientPort=21810\nsecureClientPort=-1\ndataDir=/tmp/zkt/data/version-2\n\
             dataDirSize=457\ndataLogDir=/tmp/zkt/data/version-2\ndataLogSize=457\n\
             tickTime=2000\nmaxClientCnxns=60\nminSessionTimeout=4000\n\
             maxSessionTimeout=40000\nclientPortListenBacklog=-1\nserverId=0\n"
        );
    }

    #[test]
    fn mntr_lines_are_tab_separated_with_version_and_state_first() {
        let text = format_mntr(&standalone_metrics(&summary(), &MntrExtra::default()));
        let mut lines = text.lines();
        assert!(lines.next().unwrap().starts_with("zk_version\t3.8.0-"));
        assert_eq!(lines.next(), Some("zk_server_state\tstandalone"));
        assert!(text.contains("zk_znode_count\t17\n"));
        assert!(text.contains("zk_avg_latency\t0.0\n"));
        assert!(text
            .lines()
            .all(|l| l.starts_with("zk_") && l.contains('\t')));
    }

    #[test]
    fn max_open_files_is_read_from_the_soft_limit_column() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(parse_max_open_files(limits), Some(1024));
        assert_eq!(parse_max_open_files("nothing here"), None);
    }

    #[test]
    fn watch_listings_match_apache_layout() {
        assert_eq!(
            format_wchs(1, 2, 3),
            "1 connections watching 2 paths\nTotal watches:3\n"
        );
        assert_eq!(
            format_wchc(&[(0x10, vec!["/a".into(), "/b".into()])]),
            "0x10\n\t/a\n\t/b\n\n"
        );
        assert_eq!(
            format_wchp(&[("/a".into(), vec![0x10, 0x11])]),
            "/a\n\t0x10\n\t0x11\n\n"
        );
    }

    #[test]
    fn java_date_matches_date_to_string() {
        // 2026-11-22T02:42:43Z was a Sunday (OPS.md's example).
        assert_eq!(java_date(1_795_315_363_000), "Sun Nov 22 02:42:43 UTC 2026");
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
    }

    #[test]
    fn dump_lists_sessions_ephemerals_and_connections() {
        let d = DumpInfo {
            session_buckets: vec![(0, vec![0x1])],
            ephemerals: vec![(0x1, vec!["/e".into()])],
            connection_buckets: vec![(0, vec![("127.0.0.1:5".parse().unwrap(), 0x1)])],
        };
        assert_eq!(
            format_dump(&d),
            "SessionTracker dump:\nSession Sets (1)/(1):\n1 expire at Thu Jan 01 00:00:00 UTC 1970:\n\
             \t0x1\nephemeral nodes dump:\nSessions with Ephemerals (1):\n0x1:\n\t/e\n\
             Connections dump:\nConnections Sets (1)/(1):\n1 expire at Thu Jan 01 00:00:00 UTC 1970:\n\
             \tip: /127.0.0.1:5 sessionId: 0x1\n"
        );
    }

    #[test]
    fn envi_says_what_the_process_knows_and_na_only_for_java_facts() {
        let env = environment();
        let na: Vec<&str> = env
            .iter()
            .filter(|(_, v)| v == "<NA>")
            .map(|(k, _)| *k)
            .collect();
        assert!(na.iter().all(|k| k.starts_with("java.")), "{na:?}");
        let mem = |k: &str| env.iter().find(|(n, _)| *n == k).unwrap().1.clone();
        assert!(mem("os.memory.total").ends_with("MB"));
        assert!(mem("os.memory.max").ends_with("MB"));
    }

    #[test]
    fn passwd_lookup_finds_name_and_home_by_uid() {
        let passwd =
            "root:x:0:0:root:/root:/bin/sh\nzk:x:107:113::/var/lib/zookeeper:/usr/sbin/nologin\n";
        assert_eq!(
            passwd_entry(passwd, "107"),
            Some(("zk".into(), "/var/lib/zookeeper".into()))
        );
        assert_eq!(passwd_entry(passwd, "5"), None);
    }

    #[test]
    fn trace_mask_words_read_and_set_the_mask_as_apache() {
        assert_eq!(
            answer_trace_mask(FourLetterWord::Stmk, None),
            Some(String::new())
        );
        assert_eq!(
            answer_trace_mask(FourLetterWord::Stmk, Some(511)),
            Some("511".into())
        );
        assert_eq!(
            answer_trace_mask(FourLetterWord::Gtmk, None),
            Some("511".into())
        );
        assert_eq!(
            answer_trace_mask(FourLetterWord::Stmk, Some(306)),
            Some("306".into())
        );
        assert_eq!(answer_trace_mask(FourLetterWord::Srvr, None), None);
    }

    #[test]
    fn dirs_and_hash_match_apaches_layout() {
        assert_eq!(
            format_dirs(457, 1024),
            "datadir_size: 457\nlogdir_size: 1024\n"
        );
        assert_eq!(
            format_hash(&[(0x80, 1656315912), (0x100, 2147789103)]),
            "80: 1656315912\n100: 2147789103\n"
        );
    }

    #[test]
    fn envi_starts_with_zookeeper_version() {
        let text = format_envi(&environment());
        assert!(text.starts_with("Environment:\nzookeeper.version=3.8.0-"));
        assert!(text.contains("\nos.name=") && text.contains("\nhost.name="));
    }
}
