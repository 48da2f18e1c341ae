//! The AdminServer's commands answered from the writer task's state, with
//! Apache 3.8.0's JSON keys (`Commands.java`). The same facts the
//! four-letter words print (`report.rs`), shaped as Apache's JSON.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde_json::{json, Map, Value};

use super::{dir_size, Pipeline};
use crate::admin::{self, ConnectionInfo, FourLetterWord, Metric};
use crate::admin_commands::{self, CommandSpec};

/// The HTTP asker is not a client connection; the 4lw helpers list their
/// asker first, so it is dropped from what they return.
const NO_ASKER: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);

fn metric_value(m: &Metric) -> Value {
    match m {
        Metric::Int(n) => json!(n),
        Metric::Double(d) => json!(d),
        Metric::Text(t) => json!(t),
    }
}

/// `ServerCnxn.getConnectionInfo(brief)`.
fn connection_json(c: &ConnectionInfo, brief: bool) -> Value {
    let mut m = Map::new();
    m.insert("remote_socket_address".into(), json!(c.remote.to_string()));
    m.insert("interest_ops".into(), json!(c.interest_ops));
    m.insert("outstanding_requests".into(), json!(c.queued));
    m.insert("packets_received".into(), json!(c.packets_received));
    m.insert("packets_sent".into(), json!(c.packets_sent));
    if let (false, Some(s)) = (brief, &c.session) {
        m.insert("session_id".into(), json!(s.session_id));
        m.insert("last_operation".into(), json!(s.last_op));
        m.insert("established".into(), json!(s.established_ms));
        m.insert("session_timeout".into(), json!(s.timeout_ms));
        if let Some(cxid) = s.last_cxid {
            m.insert("last_cxid".into(), json!(cxid));
        }
        m.insert("last_zxid".into(), json!(s.last_zxid));
        m.insert("last_response_time".into(), json!(s.last_response_ms));
        m.insert("last_latency".into(), json!(s.last_latency));
        m.insert("min_latency".into(), json!(s.latency.min));
        let avg = s.latency.total.checked_div(s.latency.count).unwrap_or(0);
        m.insert("avg_latency".into(), json!(avg));
        m.insert("max_latency".into(), json!(s.latency.max));
    }
    Value::Object(m)
}

impl Pipeline {
    fn serving(&self) -> bool {
        match &self.quorum {
            None => true,
            Some(q) => q.serving,
        }
    }

    /// Runs an AdminServer command: its fields, then `command` and
    /// `error`, as Apache's `CommandResponse`.
    pub(super) fn admin_command(&mut self, name: &str, kwargs: &[(String, String)]) -> Value {
        let Some(spec) = admin_commands::lookup(name) else {
            return respond(name, Map::new(), Some(admin_commands::unknown(name)));
        };
        if spec.server_required && !self.serving() {
            return respond(
                spec.primary,
                Map::new(),
                Some(admin_commands::NOT_SERVING.into()),
            );
        }
        let (fields, error) = self.run_admin(spec, kwargs);
        respond(spec.primary, fields, error)
    }

    fn run_admin(
        &mut self,
        spec: &CommandSpec,
        kwargs: &[(String, String)],
    ) -> (Map<String, Value>, Option<String>) {
        let mut m = Map::new();
        let mut error = None;
        match spec.primary {
            "configuration" => {
                let c = self.conf_info();
                m.insert("client_port".into(), json!(c.client_port));
                m.insert("data_dir".into(), json!(c.data_dir));
                m.insert("data_log_dir".into(), json!(c.data_log_dir));
                m.insert("tick_time".into(), json!(c.tick_time));
                m.insert("max_client_cnxns".into(), json!(c.max_client_cnxns));
                m.insert("min_session_timeout".into(), json!(c.min_session_timeout));
                m.insert("max_session_timeout".into(), json!(c.max_session_timeout));
                m.insert("server_id".into(), json!(c.server_id));
                m.insert("client_port_listen_backlog".into(), json!(-1));
            }
            "connection_stat_reset" => {
                self.four_letter_text(FourLetterWord::Crst, NO_ASKER);
            }
            "connections" => {
                m.insert("connections".into(), self.connections_json(false, false));
                m.insert(
                    "secure_connections".into(),
                    self.connections_json(false, true),
                );
            }
            "dirs" => {
                let c = &self.shared.config;
                m.insert(
                    "datadir_size".into(),
                    json!(dir_size(&c.snap_version_dir())),
                );
                m.insert("logdir_size".into(), json!(dir_size(&c.log_version_dir())));
            }
            "dump" => {
                let d = self.dump_info(NO_ASKER);
                let expiry: Map<String, Value> = d
                    .session_buckets
                    .iter()
                    .map(|(at, ids)| (at.to_string(), json!(ids)))
                    .collect();
                let ephemerals: Map<String, Value> = d
                    .ephemerals
                    .iter()
                    .map(|(id, paths)| (id.to_string(), json!(paths)))
                    .collect();
                m.insert("expiry_time_to_session_ids".into(), Value::Object(expiry));
                m.insert(
                    "session_id_to_ephemeral_paths".into(),
                    Value::Object(ephemerals),
                );
            }
            "environment" => {
                for (k, v) in admin::environment() {
                    m.insert(k.into(), json!(v));
                }
            }
            "get_trace_mask" => {
                let mask = admin::answer_trace_mask(FourLetterWord::Gtmk, None)
                    .and_then(|t| t.parse::<i64>().ok());
                m.insert("tracemask".into(), json!(mask));
            }
            "set_trace_mask" => match kwargs.iter().find(|(k, _)| k == "traceMask") {
                None => error = Some("setTraceMask requires long traceMask argument".into()),
                Some((_, v)) => match v.parse::<i64>() {
                    Ok(mask) => {
                        admin::answer_trace_mask(FourLetterWord::Stmk, Some(mask));
                        m.insert("tracemask".into(), json!(mask));
                    }
                    Err(_) => {
                        error = Some(format!(
                            "setTraceMask requires long traceMask argument, got {v}"
                        ))
                    }
                },
            },
            "hash" => {
                let zxid = self.db.last_processed_zxid();
                let digest = crate::tree_digest::tree_digest(self.db.tree());
                m.insert(
                    "digests".into(),
                    json!([{
                        "zxid": zxid,
                        "digest": digest,
                        "digest_version": crate::tree_digest::DIGEST_VERSION,
                    }]),
                );
            }
            "initial_configuration" => {
                let text = self.shared.config.ops.initial_config.clone();
                m.insert("initial_configuration".into(), json!(text));
            }
            "is_read_only" => {
                m.insert("read_only".into(), json!(false));
            }
            "last_snapshot" => {
                let (zxid, timestamp) = newest_snapshot(&self.shared.config.snap_version_dir());
                m.insert("zxid".into(), json!(format!("{zxid:x}")));
                m.insert("timestamp".into(), json!(timestamp));
            }
            "leader" => match &self.quorum {
                None => error = Some("server is not initialized".into()),
                Some(q) => {
                    m.insert("is_leader".into(), json!(q.is_serving_leader()));
                }
            },
            "monitor" => {
                for (k, v) in self.monitor_entries() {
                    m.insert(k, metric_value(&v));
                }
            }
            "observer_connection_stat_reset" | "ruok" => {}
            "observers" => {
                m.insert("synced_observers".into(), json!(0));
                m.insert("observers".into(), json!([]));
            }
            "server_stats" => self.server_stats_json(&mut m),
            "stats" => {
                self.server_stats_json(&mut m);
                m.insert("connections".into(), self.connections_json(true, false));
                m.insert(
                    "secure_connections".into(),
                    self.connections_json(true, true),
                );
            }
            "stat_reset" => {
                self.four_letter_text(FourLetterWord::Srst, NO_ASKER);
            }
            "system_properties" => {
                // No JVM: the process facts envi reports, under Java's
                // names, and the zoo.cfg keys Apache would have turned
                // into `zookeeper.*` properties.
                for (k, v) in admin::environment() {
                    if !v.is_empty() && v != "<NA>" && k != "zookeeper.version" {
                        m.insert(k.into(), json!(v));
                    }
                }
            }
            "voting_view" => {
                let view: BTreeMap<String, String> = self
                    .shared
                    .config
                    .peers
                    .iter()
                    .filter(|_| self.shared.config.runs_as_ensemble())
                    .map(|p| {
                        let role = match p.role {
                            crate::config::PeerRole::Participant => "participant",
                            crate::config::PeerRole::Observer => "observer",
                        };
                        (
                            p.id.to_string(),
                            format!("{}:{}:{}:{role}", p.host, p.quorum_port, p.election_port),
                        )
                    })
                    .collect();
                m.insert("current_config".into(), json!(view));
            }
            "watch_summary" => {
                let w = self.db.watches().summary();
                m.insert("num_connections".into(), json!(w.connections));
                m.insert("num_paths".into(), json!(w.paths));
                m.insert("num_total_watches".into(), json!(w.watches));
            }
            "watches" => {
                let by: Map<String, Value> = super::report::watches_by_session(self.watch_facts())
                    .into_iter()
                    .map(|(s, paths)| (s.to_string(), json!(paths)))
                    .collect();
                m.insert("session_id_to_watched_paths".into(), Value::Object(by));
            }
            "watches_by_path" => {
                let by: Map<String, Value> = super::report::watches_by_path(self.watch_facts())
                    .into_iter()
                    .map(|(p, sessions)| (p, json!(sessions)))
                    .collect();
                m.insert("path_to_session_ids".into(), Value::Object(by));
            }
            "zabstate" => match &self.quorum {
                None => {
                    m.insert("voting".into(), json!(false));
                    m.insert("zabstate".into(), json!(""));
                }
                Some(q) => {
                    let zxid = self.db.last_processed_zxid();
                    m.insert("myid".into(), json!(q.status().my_id));
                    m.insert("is_leader".into(), json!(q.is_serving_leader()));
                    m.insert("voting".into(), json!(true));
                    m.insert("last_zxid".into(), json!(format!("0x{zxid:x}")));
                    m.insert("zab_epoch".into(), json!(zxid >> 32));
                    m.insert("zab_counter".into(), json!(zxid & 0xffff_ffff));
                    let state = if q.serving { "broadcast" } else { "election" };
                    m.insert("zabstate".into(), json!(state));
                }
            },
            other => error = Some(admin_commands::unknown(other)),
        }
        (m, error)
    }

    /// The plain or the secure port's connections (Apache lists each
    /// factory's apart).
    fn connections_json(&self, brief: bool, secure: bool) -> Value {
        let conns: Vec<Value> = self
            .connection_infos(NO_ASKER)
            .iter()
            .skip(1)
            .filter(|c| c.secure == secure)
            .map(|c| connection_json(c, brief))
            .collect();
        Value::Array(conns)
    }

    /// `server_stats`: Apache's `ServerStats` bean and friends.
    fn server_stats_json(&self, m: &mut Map<String, Value>) {
        let s = self.summary();
        let extra = self.mntr_extra();
        let c = &self.shared.config;
        let buffers = json!({
            "last_buffer_size": extra.last_client_response_size,
            "min_buffer_size": extra.min_client_response_size,
            "max_buffer_size": extra.max_client_response_size,
        });
        m.insert("version".into(), json!(admin::version_string()));
        m.insert("read_only".into(), json!(false));
        m.insert(
            "server_stats".into(),
            json!({
                "packets_sent": s.packets_sent,
                "packets_received": s.packets_received,
                "client_response_stats": buffers,
                "data_dir_size": dir_size(&c.snap_version_dir()),
                "log_dir_size": dir_size(&c.log_version_dir()),
                "provider_null": false,
                "server_state": s.mode,
                "last_processed_zxid": s.zxid,
                "outstanding_requests": s.outstanding,
                "avg_latency": s.latency.avg(),
                "max_latency": s.latency.max,
                "min_latency": s.latency.min,
                // summary() counts a 4lw asker; an HTTP asker is none.
                "num_alive_client_connections": s.connections.saturating_sub(1),
                "uptime": extra.uptime_ms,
                "auth_failed_count": extra.auth_failed_count,
            }),
        );
        m.insert("client_response".into(), buffers);
        m.insert("node_count".into(), json!(s.node_count));
    }

    /// Every mntr entry (the `monitor` command, the Prometheus gauges).
    pub(super) fn monitor_entries(&self) -> Vec<(String, Metric)> {
        let mut summary = self.summary();
        summary.connections = summary.connections.saturating_sub(1);
        let extra = self.mntr_extra();
        let mut out: Vec<(String, Metric)> = admin::standalone_metrics(&summary, &extra)
            .into_iter()
            .chain(self.quorum_metrics())
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        out.extend(self.shared.metrics.mntr_entries());
        out
    }

    /// Apache's registered gauges, for the Prometheus endpoint: the
    /// numeric mntr values that are not the metrics registry's.
    pub(super) fn gauges(&self) -> Vec<(String, f64)> {
        let mut summary = self.summary();
        summary.connections = summary.connections.saturating_sub(1);
        let extra = self.mntr_extra();
        admin::standalone_metrics(&summary, &extra)
            .into_iter()
            .chain(self.quorum_metrics())
            .filter_map(|(k, v)| match v {
                Metric::Int(n) => Some((k.to_string(), n as f64)),
                Metric::Double(d) => Some((k.to_string(), d)),
                Metric::Text(_) => None,
            })
            .collect()
    }
}

/// Apache's `CommandResponse`: the fields, then `command` and `error`.
fn respond(command: &str, mut fields: Map<String, Value>, error: Option<String>) -> Value {
    fields.insert("command".into(), json!(command));
    fields.insert("error".into(), json!(error));
    Value::Object(fields)
}

/// The newest snapshot's zxid and its file time in seconds (Apache's
/// `last_snapshot` reports the zxid in hex and when it was taken); -1 and
/// -1 when there is none.
fn newest_snapshot(dir: &std::path::Path) -> (i64, i64) {
    let newest = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let zxid = i64::from_str_radix(name.strip_prefix("snapshot.")?, 16).ok()?;
            Some((zxid, e))
        })
        .max_by_key(|(zxid, _)| *zxid);
    match newest {
        None => (-1, -1),
        Some((zxid, entry)) => {
            let secs = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(-1, |d| d.as_secs() as i64);
            (zxid, secs)
        }
    }
}
