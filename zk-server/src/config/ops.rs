//! Operator-facing keys of `zoo.cfg` that are not about the data: the
//! AdminServer (`admin.*`), the metrics provider (`metricsProvider.*`) and
//! `standaloneEnabled`. Kept apart from the core keys in `config.rs`.

use std::net::{IpAddr, Ipv4Addr};

/// Apache's AdminServer defaults (`JettyAdminServer`).
pub const DEFAULT_ADMIN_PORT: u16 = 8080;
pub const DEFAULT_COMMAND_URL: &str = "/commands";
/// `PrometheusMetricsProvider`'s default port.
pub const DEFAULT_METRICS_PORT: u16 = 7000;
/// The provider class whose endpoint we serve.
pub const PROMETHEUS_PROVIDER: &str =
    "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider";
/// Apache's default provider: no metrics endpoint.
pub const NULL_PROVIDER: &str = "org.apache.zookeeper.metrics.impl.NullMetricsProvider";

/// The HTTP AdminServer (`admin.enableServer` and friends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminServerConfig {
    pub enabled: bool,
    pub address: IpAddr,
    pub port: u16,
    /// Where the commands live, e.g. `/commands/ruok`.
    pub command_url: String,
}

impl AdminServerConfig {
    /// Apache's defaults: on, all interfaces, port 8080. A zoo.cfg that
    /// says nothing gets these, as with Apache.
    pub fn apache_default() -> Self {
        AdminServerConfig {
            enabled: true,
            address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: DEFAULT_ADMIN_PORT,
            command_url: DEFAULT_COMMAND_URL.to_string(),
        }
    }

    /// Off: servers built in code (tests, embedding) open no HTTP port
    /// unless asked.
    pub fn disabled() -> Self {
        AdminServerConfig {
            enabled: false,
            ..Self::apache_default()
        }
    }
}

/// The Prometheus endpoint (`metricsProvider.className` naming Apache's
/// `PrometheusMetricsProvider`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrometheusConfig {
    pub host: IpAddr,
    pub port: u16,
}

/// The operator keys together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpsConfig {
    /// `standaloneEnabled` (default true). With `false`, a config with a
    /// single `server.N` line still runs as an ensemble member, as Apache's.
    pub standalone_enabled: bool,
    pub admin: AdminServerConfig,
    /// `None`: no metrics endpoint (Apache's NullMetricsProvider).
    pub prometheus: Option<PrometheusConfig>,
    /// The zoo.cfg text as read (the AdminServer's
    /// `initial_configuration`); `None` for configs built in code.
    pub initial_config: Option<String>,
    /// `metricsProvider.httpHost` / `httpPort` seen before or without the
    /// class name; applied when the class name turns the provider on.
    pending_metrics: PrometheusConfig,
}

impl Default for OpsConfig {
    fn default() -> Self {
        OpsConfig {
            standalone_enabled: true,
            admin: AdminServerConfig::disabled(),
            prometheus: None,
            initial_config: None,
            pending_metrics: PrometheusConfig {
                host: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                port: DEFAULT_METRICS_PORT,
            },
        }
    }
}

impl OpsConfig {
    /// What a zoo.cfg starts from: Apache's defaults (AdminServer on).
    pub fn zoo_cfg_default() -> Self {
        OpsConfig {
            admin: AdminServerConfig::apache_default(),
            ..OpsConfig::default()
        }
    }

    /// Turns the Prometheus endpoint on at `host:port` (for code and tests).
    pub fn with_prometheus(mut self, host: IpAddr, port: u16) -> Self {
        self.pending_metrics = PrometheusConfig { host, port };
        self.prometheus = Some(self.pending_metrics.clone());
        self
    }
}

/// Applies one operator key. `Ok(false)`: not one of ours.
pub(super) fn apply(ops: &mut OpsConfig, key: &str, value: &str) -> Result<bool, String> {
    match key {
        "standaloneEnabled" => ops.standalone_enabled = super::parse_bool(value)?,
        "admin.enableServer" => ops.admin.enabled = super::parse_bool(value)?,
        "admin.serverAddress" => ops.admin.address = super::resolve_host(value)?,
        "admin.serverPort" => ops.admin.port = super::parse_num(value)?,
        "admin.commandURL" => {
            if !value.starts_with('/') {
                return Err("must start with '/'".into());
            }
            ops.admin.command_url = value.trim_end_matches('/').to_string();
            if ops.admin.command_url.is_empty() {
                ops.admin.command_url = "/".into();
            }
        }
        "metricsProvider.className" => match value {
            PROMETHEUS_PROVIDER => ops.prometheus = Some(ops.pending_metrics.clone()),
            NULL_PROVIDER => ops.prometheus = None,
            _ => {
                return Err(format!(
                    "unsupported metrics provider; use {PROMETHEUS_PROVIDER} or {NULL_PROVIDER}"
                ))
            }
        },
        "metricsProvider.httpHost" => {
            ops.pending_metrics.host = super::resolve_host(value)?;
            if let Some(p) = &mut ops.prometheus {
                p.host = ops.pending_metrics.host;
            }
        }
        "metricsProvider.httpPort" => {
            ops.pending_metrics.port = super::parse_num(value)?;
            if let Some(p) = &mut ops.prometheus {
                p.port = ops.pending_metrics.port;
            }
        }
        // Apache's switch for JVM metrics; there is no JVM to report on.
        "metricsProvider.exportJvmInfo" => {
            super::parse_bool(value)?;
        }
        _ => return Ok(false),
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServerConfig;
    use std::path::Path;

    fn parse(extra: &str) -> ServerConfig {
        ServerConfig::parse(
            &format!("dataDir=/d\nclientPort=1\n{extra}"),
            Path::new("."),
        )
        .unwrap()
        .config
    }

    #[test]
    fn a_zoo_cfg_gets_apaches_admin_server_defaults() {
        let c = parse("");
        assert_eq!(c.ops.admin, AdminServerConfig::apache_default());
        assert!(c.ops.prometheus.is_none());
        assert!(c.ops.standalone_enabled);
    }

    #[test]
    fn admin_keys_are_honoured() {
        let c = parse(
            "admin.enableServer=false\nadmin.serverAddress=127.0.0.1\nadmin.serverPort=9090\n\
             admin.commandURL=/cmds/\nstandaloneEnabled=false\n",
        );
        assert!(!c.ops.admin.enabled);
        assert_eq!(c.ops.admin.address, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(c.ops.admin.port, 9090);
        assert_eq!(c.ops.admin.command_url, "/cmds");
        assert!(!c.ops.standalone_enabled);
    }

    #[test]
    fn prometheus_is_on_only_with_its_class_name_whatever_the_key_order() {
        let c = parse("metricsProvider.httpPort=7001\n");
        assert!(c.ops.prometheus.is_none());
        let c = parse(&format!(
            "metricsProvider.httpPort=7001\nmetricsProvider.className={PROMETHEUS_PROVIDER}\n\
             metricsProvider.httpHost=127.0.0.1\n"
        ));
        let p = c.ops.prometheus.unwrap();
        assert_eq!((p.host, p.port), (IpAddr::V4(Ipv4Addr::LOCALHOST), 7001));
        let c = parse(&format!(
            "metricsProvider.className={PROMETHEUS_PROVIDER}\n"
        ));
        assert_eq!(c.ops.prometheus.unwrap().port, DEFAULT_METRICS_PORT);
    }

    #[test]
    fn an_unknown_metrics_provider_is_an_error() {
        let err = ServerConfig::parse(
            "dataDir=/d\nclientPort=1\nmetricsProvider.className=com.example.Mine\n",
            Path::new("."),
        )
        .unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
    }
}
