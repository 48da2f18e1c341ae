//! Seeded random differential scripts: a few hundred creates, sets,
//! deletes, multis, reads with watches and session closes over a small
//! tree with three sessions, against Apache ZooKeeper 3.8 and ours.
//!
//! The default run uses fixed seeds only, so CI is deterministic: a seed
//! that once found a difference stays here as a regression case. To keep
//! exploring, run fresh seeds on purpose (a long local or scheduled run):
//!
//! ```sh
//! ZK_DIFF_SEEDS=1000 cargo test --test differential_random -- --ignored --nocapture fresh_seeds
//! ```
//!
//! It prints every failing seed with the line that replays it:
//! `ZK_DIFF_SEED=<seed> cargo test --test differential_random -- --ignored --nocapture fresh_seeds`.

mod differential;

use differential::{differential, expect_line, random};

/// Steps per random script.
const STEPS: usize = 300;

async fn run_seed(seed: u64) {
    let name = format!("random-{seed}");
    let script = random::script(&name, seed, STEPS);
    let label = format!("seed {seed} (rerun with ZK_DIFF_SEED={seed})");
    if let Some(t) = differential(&label, script).await {
        // A script that only ever failed would prove little.
        expect_line(&t, "err 0 Create");
        expect_line(&t, " event ");
    }
}

#[tokio::test]
async fn random_script_seed_1_matches_apache() {
    run_seed(1).await;
}

#[tokio::test]
async fn random_script_seed_2_matches_apache() {
    run_seed(2).await;
}

#[tokio::test]
async fn random_script_seed_3_matches_apache() {
    run_seed(3).await;
}

/// Regression (issue 18): a session that watched `/d` persistently and then
/// persistent-recursively closes while it owns ephemerals under `/b` and
/// `/d`. Apache 3.8.0 had replaced the first mode by the second, so the
/// generator now keeps one mode per path; the close deletes the
/// ephemerals in Apache's hash-set order.
#[tokio::test]
async fn random_script_seed_1796397224415013430_matches_apache() {
    run_seed(1796397224415013430).await;
}

/// Regression (issue 18): a session watching `/a` persistently, then
/// persistent-recursively, creates `/a/b` (the same 3.8.0 one-mode rule).
#[tokio::test]
async fn random_script_seed_1796397439933379683_matches_apache() {
    run_seed(1796397439933379683).await;
}

/// Fresh seeds, for exploring outside the default run: `ZK_DIFF_SEEDS`
/// of them (default 100), or the one `ZK_DIFF_SEED` names. Every seed
/// runs; each failing one is printed with its replay line, and the test
/// fails at the end if any did.
#[tokio::test]
#[ignore = "explores fresh seeds; run on purpose (see the file's doc)"]
async fn fresh_seeds_match_apache() {
    let seeds: Vec<u64> = match env_u64("ZK_DIFF_SEED") {
        Some(seed) => vec![seed],
        None => {
            let count = env_u64("ZK_DIFF_SEEDS").unwrap_or(100);
            let base = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(4);
            (0..count)
                .map(|i| base.wrapping_add(i.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
                .collect()
        }
    };
    let mut failing = Vec::new();
    for (i, &seed) in seeds.iter().enumerate() {
        // A difference panics inside the task; the others still run.
        if tokio::spawn(run_seed(seed)).await.is_err() {
            eprintln!(
                "FAILING SEED {seed}: replay with ZK_DIFF_SEED={seed} cargo test \
                 --test differential_random -- --ignored --nocapture fresh_seeds"
            );
            failing.push(seed);
        }
        if (i + 1) % 50 == 0 {
            eprintln!(
                "{} of {} seeds run, {} failing",
                i + 1,
                seeds.len(),
                failing.len()
            );
        }
    }
    eprintln!(
        "{} seeds run, {} failing: {failing:?}",
        seeds.len(),
        failing.len()
    );
    assert!(
        failing.is_empty(),
        "seeds that differ from Apache: {failing:?}"
    );
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.trim().parse().ok())
}
