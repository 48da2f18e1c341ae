//! Making two CLI sessions' outputs comparable: what differs between two
//! correct servers (zxids, times, session ids, the hash order of children)
//! is rewritten, and what is not the session (JVM log lines, timings) is
//! dropped.
//!
//! - zxids (`cZxid = 0x1f`, `czxid=1f`) become their rank among all zxids
//!   of the output (`z1`, `z2` ...);
//! - times (`ctime = Sun Nov 22 ...`) become `TIME`;
//! - session ids (`Got a new session id: 0x...`, `ephemeralOwner = ...`)
//!   become `session#N` in order of first appearance;
//! - children lists (`[b, a]`, or one child per tab-indented line) and
//!   `ls -R` path runs are sorted: servers keep children in no order;
//! - zkCli prints watch events from another thread, so where they land
//!   among command output is luck: they are taken out and compared as a
//!   sorted list.

use std::collections::{BTreeSet, HashMap};

/// A normalised CLI session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub lines: Vec<String>,
    /// Watch events (zkCli only), sorted.
    pub events: Vec<String>,
}

/// zkCli.sh output (stdout and stderr together).
pub fn zkcli(output: &str) -> Session {
    let mut lines = Vec::new();
    let mut events = Vec::new();
    for line in output.lines() {
        let line = line.trim_end();
        if zkcli_noise(line) {
            continue;
        }
        if line.starts_with("WatchedEvent ") {
            events.push(line.to_string());
        } else if let Some(rest) = line.strip_prefix("Connecting to ") {
            // The server's address differs; that it connects does not.
            let _ = rest;
            lines.push("Connecting to SERVER".into());
        } else {
            lines.push(line.to_string());
        }
    }
    let lines = rewrite_numbers(&sort_path_runs(&lines));
    events.sort();
    Session { lines, events }
}

/// JVM and logging chatter, prompts and blank lines.
fn zkcli_noise(line: &str) -> bool {
    line.is_empty()
        || line == "WATCHER::"
        || line.starts_with("SLF4J:")
        || line.starts_with("JLine support")
        || line.starts_with("log4j:")
        || is_log_line(line)
}

/// `2026-11-22 06:03:01,123 [myid:] - INFO ...` style log lines.
fn is_log_line(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 19
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[7] == b'-'
        && (b[10] == b' ' || b[10] == b'T')
        && b[13] == b':'
}

/// cli_mt output.
pub fn cli_mt(output: &str) -> Session {
    let lines: Vec<String> = output
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with("time = "))
        .map(str::to_string)
        .collect();
    Session {
        lines: rewrite_numbers(&sort_child_runs(&lines)),
        events: Vec::new(),
    }
}

/// Sorts runs of consecutive lines that are tab-indented child names
/// (cli_mt's ls) — a stat line has `=` in it, a child name cannot here.
fn sort_child_runs(lines: &[String]) -> Vec<String> {
    sort_runs(lines, |l| l.starts_with('\t') && !l.contains('='))
}

/// Sorts runs of consecutive absolute paths (zkCli's `ls -R`).
fn sort_path_runs(lines: &[String]) -> Vec<String> {
    sort_runs(lines, |l| l.starts_with('/') && !l.contains(' '))
}

fn sort_runs(lines: &[String], member: impl Fn(&str) -> bool) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    let mut run_start = None;
    for line in lines {
        if member(line) {
            run_start.get_or_insert(out.len());
        } else if let Some(start) = run_start.take() {
            out[start..].sort();
        }
        out.push(line.clone());
    }
    if let Some(start) = run_start {
        out[start..].sort();
    }
    out
}

/// Which number a `key = value` / `key=value` field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Zxid,
    Time,
    Session,
}

fn field_of(key: &str) -> Option<Field> {
    match key.trim().to_ascii_lowercase().as_str() {
        "czxid" | "mzxid" | "pzxid" => Some(Field::Zxid),
        "ctime" | "mtime" => Some(Field::Time),
        "ephemeralowner" | "got a new session id" => Some(Field::Session),
        _ => None,
    }
}

/// Splits `key = value`, `key=value` or `key: value` (the first of them).
fn split_field(line: &str) -> Option<(&str, &str, &str)> {
    let at = line.find(['=', ':'])?;
    let (key, rest) = line.split_at(at);
    Some((key, &rest[..1], rest[1..].trim()))
}

/// Parses a zxid or session id: `0x1f`, or bare hex as cli_mt prints.
fn parse_hex(value: &str) -> Option<u64> {
    let digits = value.strip_prefix("0x").unwrap_or(value);
    u64::from_str_radix(digits, 16).ok()
}

/// Every tab-separated part of a line, so cli_mt's
/// `version=0\taversion=0` style lines are handled piecewise.
fn parts(line: &str) -> impl Iterator<Item = &str> {
    line.split('\t')
}

fn rewrite_numbers(lines: &[String]) -> Vec<String> {
    // Pass 1: every zxid, to rank them.
    let mut zxids = BTreeSet::new();
    for line in lines {
        for part in parts(line) {
            if let Some((key, _, value)) = split_field(part) {
                if field_of(key) == Some(Field::Zxid) {
                    if let Some(z) = parse_hex(value) {
                        zxids.insert(z);
                    }
                }
            }
        }
    }
    let rank: HashMap<u64, usize> = zxids
        .into_iter()
        .filter(|z| *z != 0)
        .enumerate()
        .map(|(i, z)| (z, i + 1))
        .collect();
    let mut sessions: HashMap<u64, usize> = HashMap::new();
    lines
        .iter()
        .map(|line| {
            parts(line)
                .map(|part| rewrite_part(part, &rank, &mut sessions))
                .collect::<Vec<_>>()
                .join("\t")
        })
        .map(|line| sort_bracket_list(&line))
        .collect()
}

fn rewrite_part(
    part: &str,
    rank: &HashMap<u64, usize>,
    sessions: &mut HashMap<u64, usize>,
) -> String {
    let Some((key, sep, value)) = split_field(part) else {
        return part.to_string();
    };
    let replaced = match field_of(key) {
        Some(Field::Zxid) => match parse_hex(value) {
            Some(0) => "0".to_string(),
            Some(z) => rank
                .get(&z)
                .map_or_else(|| value.to_string(), |r| format!("z{r}")),
            None => value.to_string(),
        },
        Some(Field::Time) => "TIME".to_string(),
        Some(Field::Session) => match parse_hex(value) {
            Some(0) => "0".to_string(),
            Some(id) => {
                let next = sessions.len();
                format!("session#{}", sessions.entry(id).or_insert(next))
            }
            None => value.to_string(),
        },
        None => return part.to_string(),
    };
    // Keep the field's own spacing: `czxid=z1`, `cZxid = z1`.
    let space = if part[key.len() + sep.len()..].starts_with(' ') {
        " "
    } else {
        ""
    };
    format!("{key}{sep}{space}{replaced}")
}

/// `[b, a]` → `[a, b]`: zkCli's children and ephemerals lists.
fn sort_bracket_list(line: &str) -> String {
    let Some(inner) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) else {
        return line.to_string();
    };
    if inner.is_empty() {
        return line.to_string();
    }
    let mut items: Vec<&str> = inner.split(", ").collect();
    items.sort_unstable();
    format!("[{}]", items.join(", "))
}

/// A readable report of the first difference between two sessions.
pub fn first_difference(theirs: &Session, ours: &Session) -> Option<String> {
    if theirs.events != ours.events {
        return Some(format!(
            "watch events differ:\n  apache: {:?}\n  ours:   {:?}",
            theirs.events, ours.events
        ));
    }
    let at = (0..theirs.lines.len().max(ours.lines.len()))
        .find(|&i| theirs.lines.get(i) != ours.lines.get(i))?;
    let none = "(nothing)".to_string();
    let mut report = String::new();
    for line in &theirs.lines[at.saturating_sub(5)..at] {
        report.push_str(&format!("    same:   {line}\n"));
    }
    report.push_str(&format!(
        "  apache:   {}\n",
        theirs.lines.get(at).unwrap_or(&none)
    ));
    report.push_str(&format!(
        "  ours:     {}\n",
        ours.lines.get(at).unwrap_or(&none)
    ));
    Some(report)
}
