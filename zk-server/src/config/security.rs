//! Security keys of `zoo.cfg`. A security setting we cannot honour must
//! never be dropped with a warning: the operator would believe the server
//! protected when it is open. So every such key stops start-up with an
//! error naming it; the ones we implement are parsed here:
//! `enforce.auth.enabled` / `enforce.auth.schemes` (Apache 3.8's
//! `AuthenticationHelper`) and `authProvider.N` naming a built-in provider.

use std::collections::BTreeMap;

/// Apache's built-in providers and the scheme each serves.
const BUILT_IN_PROVIDERS: &[(&str, &str)] = &[
    (
        "org.apache.zookeeper.server.auth.DigestAuthenticationProvider",
        "digest",
    ),
    (
        "org.apache.zookeeper.server.auth.IPAuthenticationProvider",
        "ip",
    ),
];

/// Providers Apache ships that we do not implement (yet).
/// Apache's SASL provider: the `sasl` scheme (auth/ and db/acl.rs).
pub const SASL_PROVIDER: &str = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider";

const UNSUPPORTED_PROVIDERS: &[&str] = &[
    "org.apache.zookeeper.server.auth.X509AuthenticationProvider",
    "org.apache.zookeeper.server.auth.KerberosName",
];

/// The schemes every server offers without configuration (Apache's
/// `ProviderRegistry` always registers ip and digest).
pub const DEFAULT_SCHEMES: &[&str] = &["digest", "ip"];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityConfig {
    /// `enforce.auth.enabled`: requests of a connection without an identity
    /// of one of `enforce_auth_schemes` are refused with
    /// SessionClosedRequireSaslAuth and the connection is closed.
    pub enforce_auth_enabled: bool,
    /// `enforce.auth.schemes`, comma separated, in the order given.
    pub enforce_auth_schemes: Vec<String>,
    /// `authProvider.N` lines: N -> class name (built-in providers only).
    pub auth_providers: BTreeMap<String, String>,
    /// `secureClientPort` and `ssl.*` (config/tls.rs).
    pub tls: super::tls::TlsConfig,
    /// `authProvider.N` names the SASL provider: the `sasl` ACL scheme.
    pub sasl_provider: bool,
    /// The JAAS `Server` section (from `-Djava.security.auth.login.config`,
    /// as zkServer.sh passes it): SASL DIGEST-MD5 users. Set by the binary
    /// or by code, never by zoo.cfg.
    pub sasl_login: Option<crate::auth::jaas::ServerLogin>,
}

impl SecurityConfig {
    /// The schemes clients can authenticate with.
    pub fn available_schemes(&self) -> Vec<&str> {
        let mut schemes: Vec<&str> = DEFAULT_SCHEMES.to_vec();
        if self.sasl_provider && !schemes.contains(&"sasl") {
            schemes.push("sasl");
        }
        for class in self.auth_providers.values() {
            if let Some((_, scheme)) = BUILT_IN_PROVIDERS.iter().find(|(c, _)| c == class) {
                if !schemes.contains(scheme) {
                    schemes.push(scheme);
                }
            }
        }
        schemes
    }

    /// Is a connection holding identities of `schemes` allowed to send
    /// requests? Always, unless enforcement is on.
    pub fn admits<'a>(&self, mut schemes: impl Iterator<Item = &'a str>) -> bool {
        !self.enforce_auth_enabled
            || schemes.any(|s| self.enforce_auth_schemes.iter().any(|e| e == s))
    }

    /// Start-up checks Apache makes in `AuthenticationHelper`.
    pub(super) fn validate(&self) -> Result<(), String> {
        self.tls.validate()?;
        if !self.enforce_auth_enabled {
            return Ok(());
        }
        if self.enforce_auth_schemes.is_empty() {
            return Err(
                "enforce.auth.enabled is true: enforce.auth.schemes must be configured".into(),
            );
        }
        let available = self.available_schemes();
        for scheme in &self.enforce_auth_schemes {
            if !available.contains(&scheme.as_str()) {
                return Err(format!(
                    "enforce.auth.schemes: authentication scheme '{scheme}' is not available \
                     (available: {})",
                    available.join(", ")
                ));
            }
        }
        Ok(())
    }
}

/// What a key means to the security block.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    NotOurs,
    Applied,
    /// A security setting we do not implement: start-up must stop.
    Unsupported(String),
}

/// Applies one key (already stripped of `zookeeper.`).
pub(super) fn apply(sec: &mut SecurityConfig, key: &str, value: &str) -> Result<Outcome, String> {
    if let Some(n) = key.strip_prefix("authProvider.") {
        return Ok(auth_provider(sec, n, value));
    }
    match super::tls::apply(&mut sec.tls, key, value)? {
        super::tls::Outcome::Applied => return Ok(Outcome::Applied),
        super::tls::Outcome::Unsupported(why) => return Ok(Outcome::Unsupported(why)),
        super::tls::Outcome::NotOurs => {}
    }
    match key {
        "enforce.auth.enabled" => sec.enforce_auth_enabled = super::parse_bool(value)?,
        "enforce.auth.schemes" => {
            sec.enforce_auth_schemes = value
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        }
        // Apache 3.8: the same as enforcing the sasl scheme.
        "sessionRequireClientSASLAuth" => {
            if super::parse_bool(value)? {
                sec.enforce_auth_enabled = true;
                sec.enforce_auth_schemes = vec!["sasl".into()];
            }
        }
        // Off is what we do anyway; on means quorum SASL we do not have.
        "quorum.auth.enableSasl"
        | "quorum.auth.learnerRequireSasl"
        | "quorum.auth.serverRequireSasl" => {
            if super::parse_bool(value)? {
                return Ok(Outcome::Unsupported(
                    "SASL authentication is not supported".into(),
                ));
            }
        }
        "sslQuorum" | "portUnification" | "client.portUnification" => {
            if super::parse_bool(value)? {
                return Ok(Outcome::Unsupported(
                    "quorum TLS and port unification are not supported yet".into(),
                ));
            }
        }
        "requireClientAuthScheme" => {
            return Ok(Outcome::Unsupported(
                "requireClientAuthScheme (SASL) is not supported; \
                 use enforce.auth.enabled with enforce.auth.schemes"
                    .into(),
            ))
        }
        _ if key.starts_with("ssl.quorum.") => {
            return Ok(Outcome::Unsupported(
                "quorum TLS is not supported yet".into(),
            ))
        }
        _ if key.starts_with("ssl.") || key.starts_with("X509AuthenticationProvider.") => {
            return Ok(Outcome::Unsupported(
                "this TLS setting is not supported yet".into(),
            ))
        }
        _ if key.starts_with("quorum.auth.") => {
            return Ok(Outcome::Unsupported(
                "quorum authentication is not supported".into(),
            ))
        }
        _ => return Ok(Outcome::NotOurs),
    }
    Ok(Outcome::Applied)
}

fn auth_provider(sec: &mut SecurityConfig, n: &str, class: &str) -> Outcome {
    if class == SASL_PROVIDER {
        sec.sasl_provider = true;
        sec.auth_providers.insert(n.to_string(), class.to_string());
        return Outcome::Applied;
    }
    if BUILT_IN_PROVIDERS.iter().any(|(c, _)| *c == class) {
        sec.auth_providers.insert(n.to_string(), class.to_string());
        Outcome::Applied
    } else if UNSUPPORTED_PROVIDERS.contains(&class) {
        Outcome::Unsupported(format!("authentication provider {class} is not supported"))
    } else {
        Outcome::Unsupported(format!(
            "unknown authentication provider {class}; built-in providers: {}",
            BUILT_IN_PROVIDERS
                .iter()
                .map(|(c, _)| *c)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigError, ServerConfig};
    use std::path::Path;

    fn parse(extra: &str) -> Result<ServerConfig, ConfigError> {
        ServerConfig::parse(
            &format!("dataDir=/d\nclientPort=1\n{extra}"),
            Path::new("."),
        )
        .map(|p| p.config)
    }

    #[test]
    fn each_unsupported_security_key_refuses_the_configuration_naming_it() {
        for line in [
            "ssl.crl=true",
            "ssl.context.supplier.class=com.example.Ctx",
            "ssl.quorum.keyStore.location=/q.pem",
            "zookeeper.ssl.fips=true",
            "sslQuorum=true",
            "requireClientAuthScheme=sasl",
            "quorum.auth.enableSasl=true",
            "authProvider.2=com.example.MyProvider",
        ] {
            let err = parse(&format!("{line}\n")).unwrap_err();
            let key = line.split('=').next().unwrap();
            assert!(
                matches!(&err, ConfigError::UnsupportedSecurity { line: 3, key: k, .. } if k == key),
                "{line}: {err}"
            );
        }
    }

    #[test]
    fn built_in_providers_and_disabled_sasl_are_accepted() {
        let c = parse(
            "authProvider.1=org.apache.zookeeper.server.auth.DigestAuthenticationProvider\n\
             authProvider.2=org.apache.zookeeper.server.auth.IPAuthenticationProvider\n\
             sessionRequireClientSASLAuth=false\n",
        )
        .unwrap();
        assert_eq!(c.security.auth_providers.len(), 2);
        assert_eq!(c.security.available_schemes(), vec!["digest", "ip"]);
    }

    #[test]
    fn enforce_auth_needs_available_schemes() {
        let c = parse("enforce.auth.enabled=true\nenforce.auth.schemes=digest, ip\n").unwrap();
        assert_eq!(c.security.enforce_auth_schemes, vec!["digest", "ip"]);
        assert!(matches!(
            parse("enforce.auth.enabled=true\n").unwrap_err(),
            ConfigError::Invalid(_)
        ));
        let err = parse("enforce.auth.enabled=true\nenforce.auth.schemes=sasl\n").unwrap_err();
        assert!(err.to_string().contains("'sasl' is not available"), "{err}");
        // Schemes without enforcement are harmless, as in Apache.
        assert!(parse("enforce.auth.schemes=sasl\n").is_ok());
    }

    #[test]
    fn enforcement_admits_a_connection_with_an_enforced_scheme_only() {
        let sec = SecurityConfig {
            enforce_auth_enabled: true,
            enforce_auth_schemes: vec!["digest".into()],
            ..SecurityConfig::default()
        };
        assert!(!sec.admits(["ip"].into_iter()));
        assert!(sec.admits(["ip", "digest"].into_iter()));
        assert!(SecurityConfig::default().admits(std::iter::empty()));
    }
}
