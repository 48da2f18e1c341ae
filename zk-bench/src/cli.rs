//! The command line: `zk-bench <workload> [options]`.

use std::time::Duration;

use clap::{Parser, ValueEnum};

/// What load to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// getData of random existing keys.
    Read,
    /// setData of random existing keys.
    Write,
    /// create a fresh node, then delete it; each request is one op.
    CreateDelete,
    /// getData or setData of random keys, `--read-ratio` of them reads.
    Mixed,
    /// One writer and `--watchers` sessions watching one node; latency is
    /// the write's start to the last watcher's event.
    Watch,
    /// Sessions opened and closed as fast as `--sessions` loops can.
    Churn,
    /// Create `--count` znodes of `--value-size` bytes, then stop.
    Populate,
    /// `--sessions` writers, one write at a time each, while the leader is
    /// killed from outside; reports the outages (error streaks) and stops
    /// one second after writes resume. Prints `zk-bench: measuring` on
    /// stderr when the measured window opens.
    Failover,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Read => "read",
            Workload::Write => "write",
            Workload::CreateDelete => "create-delete",
            Workload::Mixed => "mixed",
            Workload::Watch => "watch",
            Workload::Churn => "churn",
            Workload::Populate => "populate",
            Workload::Failover => "failover",
        }
    }
}

/// Load generator for ZooKeeper servers: throughput and HDR latency
/// percentiles, as a table or JSON.
#[derive(Debug, Clone, Parser)]
#[command(name = "zk-bench", version)]
pub struct Args {
    /// The workload to run.
    #[arg(value_enum)]
    pub workload: Workload,

    /// Connect string (host:port[,host:port...]).
    #[arg(short, long, default_value = "127.0.0.1:2181")]
    pub connect: String,

    /// Sessions (TCP connections) generating load.
    #[arg(short, long, default_value_t = 16)]
    pub sessions: usize,

    /// Requests in flight per session (closed loop: each slot issues its
    /// next request when the previous reply arrives).
    #[arg(short = 'i', long, default_value_t = 8)]
    pub in_flight: usize,

    /// Bytes of data per znode written or created.
    #[arg(short = 'v', long, default_value_t = 1024)]
    pub value_size: usize,

    /// Measured time, e.g. 10s, 500ms, 2m.
    #[arg(short, long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,

    /// Unmeasured load before the measured window.
    #[arg(short, long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,

    /// Percentage of reads in `mixed`.
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub read_ratio: u8,

    /// Keys the read / write / mixed workloads spread over.
    #[arg(long, default_value_t = 1024)]
    pub keys: usize,

    /// Watching sessions in `watch`.
    #[arg(long, default_value_t = 16)]
    pub watchers: usize,

    /// Znodes created by `populate`.
    #[arg(long, default_value_t = 10_000)]
    pub count: u64,

    /// Parent of the per-run subtree the benchmark works in.
    #[arg(long, default_value = "/zk-bench")]
    pub root: String,

    /// Leave the nodes created in place (populate uses this to measure a
    /// server's memory with the data loaded).
    #[arg(long)]
    pub keep: bool,

    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,

    /// Tokio worker threads of the load generator (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,

    /// Session timeout asked for.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub session_timeout: Duration,
}

impl Args {
    /// Checks the combinations clap cannot express.
    pub fn validate(&self) -> Result<(), String> {
        if self.sessions == 0 {
            return Err("--sessions must be at least 1".into());
        }
        if self.in_flight == 0 {
            return Err("--in-flight must be at least 1".into());
        }
        if self.keys == 0 {
            return Err("--keys must be at least 1".into());
        }
        if self.watchers == 0 {
            return Err("--watchers must be at least 1".into());
        }
        if self.duration.is_zero() && self.workload != Workload::Populate {
            return Err("--duration must be positive".into());
        }
        if !self.root.starts_with('/') || self.root.len() < 2 || self.root.ends_with('/') {
            return Err(format!(
                "--root must be an absolute path below /: {:?}",
                self.root
            ));
        }
        Ok(())
    }
}

/// Parses `250ms`, `5s`, `2m`, or a bare number of seconds (`1.5`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit_secs) = if let Some(n) = text.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("not a duration: {text:?} (try 500ms, 10s, 2m)"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!("not a duration: {text:?}"));
    }
    Duration::try_from_secs_f64(value * unit_secs).map_err(|e| format!("{text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_ms_s_m_and_bare_seconds() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn negative_or_garbage_durations_are_rejected() {
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let args = Args::try_parse_from(["zk-bench", "mixed"]).expect("parses");
        assert_eq!(args.sessions, 16);
        assert_eq!(args.in_flight, 8);
        assert_eq!(args.value_size, 1024);
        assert_eq!(args.read_ratio, 90);
        assert!(args.validate().is_ok());
    }

    #[test]
    fn read_ratio_above_100_is_refused() {
        assert!(Args::try_parse_from(["zk-bench", "mixed", "--read-ratio", "101"]).is_err());
    }

    #[test]
    fn relative_root_is_refused() {
        let args = Args::try_parse_from(["zk-bench", "read", "--root", "bench"]).expect("parses");
        assert!(args.validate().is_err());
    }
}
