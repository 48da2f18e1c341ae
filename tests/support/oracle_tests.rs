//! The test kit's own tests of [`crate::oracle`]: a missing oracle fails
//! a test when oracles are required, and is a counted skip otherwise. Kept
//! out of `oracle.rs`, which zk-server's tests include by path.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::oracle::{require, Oracle, LOG_ENV, REQUIRE_ENV};

/// Runs one of this binary's tests in a child process with `env`,
/// PATH pointing at an empty directory (no java, no python3), and the
/// record log in a scratch file; returns its success and output.
fn run_child(test: &str, require: bool, log: &Path) -> (bool, String) {
    let exe = std::env::current_exe().expect("the test binary");
    let empty = log.with_extension("empty-path");
    std::fs::create_dir_all(&empty).expect("an empty PATH directory");
    let mut cmd = Command::new(exe);
    cmd.args([test, "--exact", "--ignored", "--nocapture"])
        .env("PATH", &empty)
        .env(LOG_ENV, log)
        .env_remove(REQUIRE_ENV);
    if require {
        cmd.env(REQUIRE_ENV, "1");
    }
    let out = cmd.output().expect("run the child test");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn scratch(tag: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("zk-oracle-{tag}-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// What the demonstrations run in a child process: a test that needs
/// Java, started where Java cannot be found.
#[test]
#[ignore = "run as a child process by the tests below, with PATH emptied"]
fn child_needing_java() {
    if !require(Oracle::Java) {
        return;
    }
    panic!("java was found on an empty PATH");
}

#[test]
fn a_missing_oracle_fails_the_test_when_oracles_are_required() {
    let log = scratch("required");
    let (ok, out) = run_child("oracle_tests::child_needing_java", true, &log);
    assert!(!ok, "the child passed without java:\n{out}");
    assert!(out.contains("ZK_REQUIRE_ORACLES=1"), "{out}");
    let records = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(records.starts_with("failed\tjava\t"), "{records}");
}

#[test]
fn a_missing_oracle_is_a_counted_skip_when_not_required() {
    let log = scratch("optional");
    let (ok, out) = run_child("oracle_tests::child_needing_java", false, &log);
    assert!(ok, "the child failed:\n{out}");
    assert!(out.contains("SKIPPED"), "{out}");
    let records = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(records.lines().count(), 1, "{records}");
    assert!(records.starts_with("skipped\tjava\t"), "{records}");
}
