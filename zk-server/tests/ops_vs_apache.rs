//! Monitoring as Apache ZooKeeper 3.8.0 offers it, compared with a running
//! Apache (Debian package, AdminServer on): the `mntr` keys, the
//! AdminServer's commands and their JSON keys, and the Prometheus names.
//! What we deliberately do not report is listed, with the reason, in
//! `zk_server::metrics::OMITTED` (mntr, Prometheus) and [`JSON_OMITTED`]
//! (AdminServer). Skipped (with a notice) when Apache is not installed.

mod ops_support;
#[path = "../../tests/support/oracle.rs"]
#[allow(dead_code)]
mod oracle;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use ops_support::{
    admin_json, four_letter_word, http_get, make_traffic, start_ours, ApacheWithAdmin,
};
use serde_json::Value;
use zk_server::metrics::{Counter, OMITTED};

/// AdminServer JSON fields we do not report, and why.
const JSON_OMITTED: &[(&str, &str)] = &[
    (
        "server_stats.fsync_threshold_exceed_count",
        "the txn-log thread does not yet report fsync durations",
    ),
    ("server_stats.non_mtlsremote_conn_count", "no TLS yet"),
    ("server_stats.non_mtlslocal_conn_count", "no TLS yet"),
];

/// Commands whose keys are not comparable: JVM system properties, and
/// `monitor`, whose keys are the mntr keys (compared in the mntr test).
const JSON_NOT_COMPARED: &[&str] = &["system_properties", "monitor"];

/// Summary metrics print as `<prefix>_<name>` in mntr.
const SUMMARY_PREFIXES: &[&str] = &[
    "avg_", "min_", "max_", "cnt_", "sum_", "p50_", "p95_", "p99_", "p999_",
];

fn omitted(name: &str) -> bool {
    OMITTED.iter().any(|(n, _)| *n == name)
}

fn mntr_keys(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.split('\t').next())
        .map(|k| k.strip_prefix("zk_").unwrap_or(k).to_string())
        .collect()
}

/// The metric an mntr key reports: itself, or the summary it is part of
/// (`avg_readlatency` -> `readlatency`; Apache's per-namespace summary
/// sets print `<prefix>_<namespace>_write_per_namespace`).
fn metric_of(key: &str) -> Vec<String> {
    let mut names = vec![key.to_string()];
    for p in SUMMARY_PREFIXES {
        if let Some(base) = key.strip_prefix(p) {
            names.push(base.to_string());
            for set in ["read_per_namespace", "write_per_namespace"] {
                if base.ends_with(&format!("_{set}")) {
                    names.push(set.to_string());
                }
            }
        }
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mntr_reports_every_apache_key_except_the_documented_omissions() {
    let Some(apache) = ApacheWithAdmin::start("mntr") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ours = start_ours(dir.path()).await;
    let (a, o) = (apache.client, ours.local_addr());
    let (apache_text, our_text) = tokio::task::spawn_blocking(move || {
        let _c1 = make_traffic(a);
        let _c2 = make_traffic(o);
        (four_letter_word(a, "mntr"), four_letter_word(o, "mntr"))
    })
    .await
    .unwrap();
    let apache_keys = mntr_keys(&apache_text);
    let our_keys = mntr_keys(&our_text);
    assert!(apache_keys.len() > 400, "{apache_text}");

    let invented: Vec<&String> = our_keys.difference(&apache_keys).collect();
    assert!(
        invented.is_empty(),
        "keys Apache 3.8.0 does not have: {invented:?}"
    );
    let missing: Vec<&String> = apache_keys
        .iter()
        .filter(|k| !our_keys.contains(*k) && !metric_of(k).iter().any(|m| omitted(m)))
        .collect();
    assert!(
        missing.is_empty(),
        "Apache keys neither reported nor documented as omitted: {missing:?}"
    );
    // Units: a summary's average is a double, its count an integer, as in Apache.
    for line in our_text.lines() {
        let (k, v) = line.split_once('\t').unwrap();
        if k.starts_with("zk_avg_") {
            assert!(v.contains('.'), "{line}");
        }
        if k.starts_with("zk_cnt_") {
            assert!(v.parse::<u64>().is_ok(), "{line}");
        }
    }
    ours.shutdown().await;
}

/// Keys of an object, nested objects as `outer.inner`; for arrays of
/// objects, the keys of their first element as `outer[].inner`.
fn json_keys(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    // Maps keyed by session, path, time or id: their keys are values.
    const VALUE_KEYED: &[&str] = &[
        "expiry_time_to_session_ids",
        "session_id_to_ephemeral_paths",
        "session_id_to_watched_paths",
        "path_to_session_ids",
        "current_config",
    ];
    if let Value::Object(map) = v {
        for (k, inner) in map {
            let key = format!("{prefix}{k}");
            out.insert(key.clone());
            match inner {
                Value::Object(_) if !VALUE_KEYED.contains(&k.as_str()) => {
                    json_keys(inner, &format!("{key}."), out);
                }
                Value::Array(items) => {
                    if let Some(first @ Value::Object(_)) = items.first() {
                        json_keys(first, &format!("{key}[]."), out);
                    }
                }
                _ => {}
            }
        }
    }
}

fn command_links(body: &str) -> BTreeSet<String> {
    body.split("<a href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(|s| s.rsplit('/').next().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_server_has_apaches_commands_with_apaches_json_keys() {
    let Some(apache) = ApacheWithAdmin::start("admin") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ours = start_ours(dir.path()).await;
    let our_admin = ours.admin_addr().expect("the AdminServer runs");
    let (a, o) = (apache.client, ours.local_addr());
    let apache_admin = apache.admin;
    let report = tokio::task::spawn_blocking(move || {
        // A client with a session, an ephemeral and a watch on each, so
        // lists have elements to compare.
        let _c1 = make_traffic(a);
        let _c2 = make_traffic(o);
        let apache_cmds = command_links(&http_get(apache_admin, "/commands").2);
        let our_cmds = command_links(&http_get(our_admin, "/commands").2);
        assert_eq!(our_cmds, apache_cmds, "the /commands list");
        assert_eq!(apache_cmds.len(), zk_server::admin_commands::COMMANDS.len());
        let mut diffs = BTreeMap::new();
        for cmd in &apache_cmds {
            if JSON_NOT_COMPARED.contains(&cmd.as_str()) {
                continue;
            }
            let (mut ak, mut ok) = (BTreeSet::new(), BTreeSet::new());
            json_keys(&admin_json(apache_admin, cmd), "", &mut ak);
            json_keys(&admin_json(our_admin, cmd), "", &mut ok);
            if cmd == "connections" {
                // The traffic's session is listed in full on both.
                for keys in [&ak, &ok] {
                    assert!(keys.contains("connections[].session_id"), "{keys:?}");
                }
            }
            let missing: Vec<String> = ak
                .difference(&ok)
                .filter(|k| !JSON_OMITTED.iter().any(|(o, _)| o == k))
                .filter(|k| !(cmd == "hash" && k.starts_with("digests[]")))
                .cloned()
                .collect();
            let extra: Vec<String> = ok
                .difference(&ak)
                .filter(|k| !(cmd == "hash" && k.starts_with("digests[]")))
                .cloned()
                .collect();
            if !missing.is_empty() || !extra.is_empty() {
                diffs.insert(cmd.clone(), (missing, extra));
            }
        }
        diffs
    })
    .await
    .unwrap();
    assert!(
        report.is_empty(),
        "(missing, extra) keys per command: {report:#?}"
    );
    ours.shutdown().await;
}

/// Parses a scrape with the Python Prometheus client's parser:
/// family name -> (type, sample names). None when it is not installed.
fn parse_with_prometheus_client(text: &str) -> Option<BTreeMap<String, (String, Vec<String>)>> {
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for f in text_string_to_metric_families(sys.stdin.read()):
    out[f.name] = [f.type, sorted({s.name for s in f.samples})]
print(json.dumps(out))
"#;
    let probe = Command::new("python3")
        .args(["-c", "import prometheus_client"])
        .output()
        .ok()?;
    if !probe.status.success() {
        return None;
    }
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    use std::io::Write;
    child.stdin.take()?.write_all(text.as_bytes()).ok()?;
    let out = child.wait_with_output().ok()?;
    assert!(
        out.status.success(),
        "the scrape does not parse: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: BTreeMap<String, (String, Vec<String>)> =
        serde_json::from_slice(&out.stdout).unwrap();
    Some(parsed)
}

/// Apache's Prometheus provider is not in the Debian package, so its
/// output cannot be scraped here. It exports the same registry mntr
/// prints (PrometheusMetricsProvider.java), under the same names: a
/// summary per `avg_/min_/max_/cnt_/sum_` group, the rest as gauges or
/// counters. So the expected names are Apache's running mntr's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrape_parses_and_uses_apaches_metric_names() {
    let Some(apache) = ApacheWithAdmin::start("prometheus") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ours = start_ours(dir.path()).await;
    let metrics = ours.metrics_addr().expect("the metrics endpoint runs");
    let (a, o) = (apache.client, ours.local_addr());
    let (apache_mntr, (status, content_type, scrape)) = tokio::task::spawn_blocking(move || {
        let _c1 = make_traffic(a);
        let _c2 = make_traffic(o);
        (four_letter_word(a, "mntr"), http_get(metrics, "/metrics"))
    })
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    if !oracle::require(oracle::Oracle::PrometheusClient) {
        ours.shutdown().await;
        return;
    }
    let families =
        parse_with_prometheus_client(&scrape).expect("prometheus_client parses the scrape");

    // Apache's names: summaries are the avg_ groups, the rest plain keys.
    let keys = mntr_keys(&apache_mntr);
    let summaries: BTreeSet<String> = keys
        .iter()
        .filter_map(|k| k.strip_prefix("avg_"))
        .filter(|base| keys.contains(&format!("cnt_{base}")))
        .map(str::to_string)
        .collect();
    let plain: BTreeSet<String> = keys
        .iter()
        .filter(|k| !metric_of(k).iter().skip(1).any(|m| summaries.contains(m)))
        .filter(|k| !["version", "server_state"].contains(&k.as_str()))
        .cloned()
        .collect();
    let apache_names: BTreeSet<&String> = summaries.iter().chain(&plain).collect();

    for (name, (kind, samples)) in &families {
        if name.starts_with("process_") {
            continue; // simpleclient_hotspot's process exports
        }
        assert!(apache_names.contains(name), "{name}: not an Apache metric");
        if summaries.contains(name) {
            assert_eq!(kind, "summary", "{name}");
            assert!(
                samples.contains(&format!("{name}_count")),
                "{name}: {samples:?}"
            );
            assert!(
                samples.contains(&format!("{name}_sum")),
                "{name}: {samples:?}"
            );
        } else if Counter::ALL.iter().any(|c| c.name() == name) {
            assert_eq!(kind, "counter", "{name}");
        }
    }
    for name in apache_names {
        let documented = omitted(name) || name.ends_with("_per_namespace");
        assert!(
            families.contains_key(name) || documented,
            "{name}: exported by Apache, neither by us nor documented as omitted"
        );
    }
    ours.shutdown().await;
}
