//! TLS keys of `zoo.cfg`: `secureClientPort`, `secureClientPortAddress`
//! and Apache's client-side `ssl.*` keys (`ClientX509Util`). What we can
//! honour is parsed here; what we cannot (JKS stores, CRL/OCSP, custom
//! SSL context suppliers, quorum TLS) is refused by `security.rs`.

use std::net::IpAddr;
use std::path::PathBuf;

/// A key or trust store: Apache's `ssl.keyStore.*` / `ssl.trustStore.*`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoreSpec {
    pub location: Option<PathBuf>,
    pub password: Option<String>,
    /// `PEM`, `PKCS12`, `JKS`, `BCFKS`; `None`: from the file extension.
    pub kind: Option<String>,
}

/// The store formats we read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Pem,
}

impl StoreSpec {
    /// The format, as Apache's `KeyStoreFileType.fromPropertyValueOrFileName`.
    pub fn store_kind(&self) -> Result<StoreKind, String> {
        let named = match &self.kind {
            Some(k) => k.to_ascii_uppercase(),
            None => {
                let name = self
                    .location
                    .as_ref()
                    .and_then(|p| p.extension())
                    .map(|e| e.to_string_lossy().to_ascii_lowercase())
                    .unwrap_or_default();
                match name.as_str() {
                    "pem" | "crt" | "key" => "PEM".into(),
                    "p12" | "pfx" => "PKCS12".into(),
                    "jks" => "JKS".into(),
                    "bcfks" => "BCFKS".into(),
                    other => {
                        return Err(format!(
                            "cannot tell the store type from the extension '.{other}': set the .type key"
                        ))
                    }
                }
            }
        };
        match named.as_str() {
            "PEM" => Ok(StoreKind::Pem),
            other => Err(format!(
                "{other} stores are not supported yet: convert to PEM (e.g. `openssl pkcs12 \
                 -in store.p12 -nodes -out store.pem`, after `keytool -importkeystore \
                 -deststoretype PKCS12` for JKS) and set the type to PEM"
            )),
        }
    }
}

/// `ssl.clientAuth`: whether clients must present a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    None,
    Want,
    /// Apache's default.
    #[default]
    Need,
}

/// The client-port TLS settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsConfig {
    pub secure_client_port: Option<u16>,
    pub secure_client_port_address: Option<IpAddr>,
    pub key_store: StoreSpec,
    pub trust_store: StoreSpec,
    pub client_auth: ClientAuth,
    /// `ssl.enabledProtocols` (or `ssl.protocol`): `TLSv1.2`, `TLSv1.3`.
    pub protocols: Vec<String>,
    /// `ssl.ciphersuites`: IANA names, as Java and rustls both use them.
    pub cipher_suites: Vec<String>,
    /// `ssl.handshakeDetectionTimeoutMillis` (Apache's default 5000).
    pub handshake_timeout_ms: Option<u64>,
    /// `secureClientPort` without `clientPort`: no plain listener.
    pub secure_only: bool,
}

/// What a key means to the TLS block.
pub(super) enum Outcome {
    NotOurs,
    Applied,
    Unsupported(String),
}

fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Applies one key (already stripped of `zookeeper.`).
pub(super) fn apply(tls: &mut TlsConfig, key: &str, value: &str) -> Result<Outcome, String> {
    match key {
        "secureClientPort" => tls.secure_client_port = Some(super::parse_num(value)?),
        "secureClientPortAddress" => {
            tls.secure_client_port_address = Some(super::resolve_host(value)?)
        }
        "ssl.keyStore.location" => tls.key_store.location = Some(super::parse_dir(value)?),
        "ssl.keyStore.password" => tls.key_store.password = Some(value.to_string()),
        "ssl.keyStore.type" => tls.key_store.kind = Some(value.to_string()),
        "ssl.trustStore.location" => tls.trust_store.location = Some(super::parse_dir(value)?),
        "ssl.trustStore.password" => tls.trust_store.password = Some(value.to_string()),
        "ssl.trustStore.type" => tls.trust_store.kind = Some(value.to_string()),
        "ssl.clientAuth" => {
            tls.client_auth = match value.to_ascii_lowercase().as_str() {
                "none" => ClientAuth::None,
                "want" => ClientAuth::Want,
                "need" | "" => ClientAuth::Need,
                _ => return Err("expected none, want or need".into()),
            }
        }
        "ssl.protocol" => {
            if tls.protocols.is_empty() {
                tls.protocols = list(value);
            }
        }
        "ssl.enabledProtocols" => tls.protocols = list(value),
        "ssl.ciphersuites" => tls.cipher_suites = list(value),
        "ssl.handshakeDetectionTimeoutMillis" => {
            tls.handshake_timeout_ms = Some(super::parse_positive(value)?)
        }
        // The server does not verify client host names on the client port
        // (Apache's ClientX509Util); the key is for clients and quorum.
        "ssl.hostnameVerification" => {
            super::parse_bool(value)?;
        }
        "ssl.crl" | "ssl.ocsp" => {
            if super::parse_bool(value)? {
                return Ok(Outcome::Unsupported(
                    "certificate revocation checks (CRL/OCSP) are not supported".into(),
                ));
            }
        }
        "ssl.context.supplier.class" | "ssl.authProvider" | "ssl.sslProvider" => {
            return Ok(Outcome::Unsupported(
                "Java SSL providers cannot be loaded; TLS is built in (rustls)".into(),
            ))
        }
        _ => return Ok(Outcome::NotOurs),
    }
    Ok(Outcome::Applied)
}

impl TlsConfig {
    /// Start-up checks: a secure port needs a key store; a client
    /// certificate requirement needs something to check it against.
    pub(super) fn validate(&self) -> Result<(), String> {
        if self.secure_client_port.is_none() {
            return Ok(());
        }
        if self.key_store.location.is_none() {
            return Err("secureClientPort needs ssl.keyStore.location".into());
        }
        self.key_store
            .store_kind()
            .map_err(|e| format!("ssl.keyStore: {e}"))?;
        if self.trust_store.location.is_some() {
            self.trust_store
                .store_kind()
                .map_err(|e| format!("ssl.trustStore: {e}"))?;
        } else if self.client_auth != ClientAuth::None {
            return Err(format!(
                "ssl.clientAuth is {} (Apache's default is need): set ssl.trustStore.location \
                 to the CA certificates client certificates must chain to, or ssl.clientAuth=none",
                if self.client_auth == ClientAuth::Need {
                    "need"
                } else {
                    "want"
                }
            ));
        }
        for p in &self.protocols {
            if p != "TLSv1.2" && p != "TLSv1.3" {
                return Err(format!(
                    "ssl protocol {p} is not supported (TLSv1.2, TLSv1.3)"
                ));
            }
        }
        Ok(())
    }
}
