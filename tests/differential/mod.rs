//! Differential testing: the same operation script against Apache
//! ZooKeeper 3.8 and against our server, transcripts compared line by line
//! after normalising what may legitimately differ (see [`normalize`]).
//!
//! Both servers are shared by all tests of a binary and scripts run one at
//! a time: reply headers carry the server's last zxid, so a write from a
//! concurrent script would show up in another's transcript. Each script
//! works under its own top-level node, which is removed afterwards.

#![allow(dead_code)]

pub mod client;
pub mod normalize;
pub mod ops;
pub mod random;
pub mod script;

use std::net::SocketAddr;
use std::sync::OnceLock;

use zk_proto::Request;
use zk_testkit::apache::ApacheZk;

use client::RawClient;
pub use script::Script;

static APACHE: OnceLock<ApacheZk> = OnceLock::new();
static ONE_SCRIPT_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Both servers' addresses, or `None` when Apache ZooKeeper is not
/// installed (a counted skip, or a failure under `ZK_REQUIRE_ORACLES=1`:
/// [`zk_testkit::oracle::require`]).
pub fn servers() -> Option<(SocketAddr, SocketAddr)> {
    if !zk_testkit::oracle::require(zk_testkit::oracle::Oracle::ApacheZooKeeper) {
        return None;
    }
    let apache = APACHE
        .get_or_init(|| ApacheZk::start("").expect("start Apache ZooKeeper"))
        .addr();
    let ours = zk_testkit::ours::shared_server();
    Some((apache, ours))
}

/// Runs `script` (closing every session it leaves open) on both servers
/// and panics, naming `label` and the first differing line, if the
/// normalised transcripts differ. Returns the agreed transcript, so a test
/// can also state what it expects; `None` when the test is skipped.
pub async fn differential(label: &str, script: Script) -> Option<Vec<String>> {
    let (apache, ours) = servers()?;
    let script = script.closing_all();
    let _turn = ONE_SCRIPT_AT_A_TIME.lock().await;
    let (theirs, mine) = tokio::join!(script::run(apache, &script), script::run(ours, &script));
    let root = format!("/{}", script.name);
    tokio::join!(remove_tree(apache, &root), remove_tree(ours, &root));
    let theirs = normalize::render(&theirs);
    let mine = normalize::render(&mine);
    // For investigating a difference: both transcripts in full.
    if std::env::var_os("ZK_DIFF_DUMP").is_some() {
        for (i, step) in script.steps.iter().enumerate() {
            eprintln!("step {i}: {step:?}");
        }
        eprintln!(
            "=== {label}: apache\n{}\n=== {label}: ours\n{}",
            theirs.join("\n"),
            mine.join("\n")
        );
    }
    if let Some(report) = first_difference(&script, &theirs, &mine) {
        panic!("{label}: our server differs from Apache ZooKeeper\n{report}");
    }
    Some(theirs)
}

/// Context lines shown before a difference.
const CONTEXT: usize = 6;

fn first_difference(script: &Script, theirs: &[String], mine: &[String]) -> Option<String> {
    let at = (0..theirs.len().max(mine.len())).find(|&i| theirs.get(i) != mine.get(i))?;
    let mut report = String::new();
    for line in &theirs[at.saturating_sub(CONTEXT)..at] {
        report.push_str(&format!("    same:   {line}\n"));
    }
    let none = "(nothing)".to_string();
    report.push_str(&format!(
        "  apache:   {}\n",
        theirs.get(at).unwrap_or(&none)
    ));
    report.push_str(&format!("  ours:     {}\n", mine.get(at).unwrap_or(&none)));
    if let Some(step) = step_of(theirs.get(at).or(mine.get(at))) {
        if let Some(action) = script.steps.get(step) {
            report.push_str(&format!("  step {step}: {action:?}\n"));
        }
    }
    Some(report)
}

/// The step number a rendered line starts with (`[12] ...`).
fn step_of(line: Option<&String>) -> Option<usize> {
    let line = line?;
    line.strip_prefix('[')?.split(']').next()?.parse().ok()
}

/// Asserts that some line of an agreed transcript contains `needle`: the
/// behaviour a test is about, stated against Apache as well as ours.
pub fn expect_line(transcript: &[String], needle: &str) {
    assert!(
        transcript.iter().any(|l| l.contains(needle)),
        "expected a line containing {needle:?} in:\n{}",
        transcript.join("\n")
    );
}

/// Deletes `root` and everything below it, outside any transcript.
async fn remove_tree(addr: SocketAddr, root: &str) {
    let Ok(mut client) = RawClient::connect(addr).await else {
        return;
    };
    // Depth-first: collect the tree, then delete deepest paths first.
    let mut paths = vec![root.to_string()];
    let mut i = 0;
    while i < paths.len() && paths.len() < 100_000 {
        let path = paths[i].clone();
        if let Ok(ex) = client.call(ops::get_children(&path, false)).await {
            if let zk_proto::Response::GetChildren(r) = ex.reply.response {
                for child in r.children {
                    paths.push(format!("{}/{child}", path.trim_end_matches('/')));
                }
            }
        }
        i += 1;
    }
    for path in paths.iter().rev() {
        let _ = client.call(ops::delete(path, -1)).await;
    }
    let _ = client.call(Request::CloseSession).await;
}
