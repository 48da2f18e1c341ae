//! TLS on the secure client port: Apache's `ssl.*` settings
//! (config/tls.rs) turned into a rustls server configuration. PEM stores
//! as Apache's `PEMFileLoader` reads them: the key store holds the private
//! key and the certificate chain, the trust store the CA certificates that
//! client certificates must chain to.

use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig as RustlsConfig, SupportedCipherSuite};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{ClientAuth, StoreKind, StoreSpec, TlsConfig};

/// Why TLS could not be set up (start-up stops).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{what}: {reason}")]
    Store { what: &'static str, reason: String },
    #[error("TLS configuration: {0}")]
    Config(String),
}

fn store_err(what: &'static str) -> impl Fn(String) -> TlsError {
    move |reason| TlsError::Store { what, reason }
}

/// Apache's handshake deadline default (`ssl.handshakeDetectionTimeoutMillis`).
pub const DEFAULT_HANDSHAKE_TIMEOUT_MS: u64 = 5000;

/// The rustls configuration for `tls`.
pub fn server_config(tls: &TlsConfig) -> Result<Arc<RustlsConfig>, TlsError> {
    let provider = Arc::new(provider_for(&tls.cipher_suites)?);
    let versions = protocol_versions(&tls.protocols)?;
    let (certs, key) = load_key_store(&tls.key_store)?;
    let builder = RustlsConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match (tls.client_auth, &tls.trust_store.location) {
        (ClientAuth::None, _) => builder.with_no_client_auth(),
        (auth, Some(_)) => {
            let roots = Arc::new(load_trust_store(&tls.trust_store)?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider);
            let verifier = if auth == ClientAuth::Want {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier
                .build()
                .map_err(|e| TlsError::Config(format!("client certificate verifier: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        (_, None) => {
            return Err(TlsError::Config(
                "ssl.clientAuth needs ssl.trustStore.location".into(),
            ))
        }
    };
    let config = builder
        .with_single_cert(certs, key)
        .map_err(|e| store_err("ssl.keyStore")(e.to_string()))?;
    Ok(Arc::new(config))
}

/// ring's suites, narrowed to `ssl.ciphersuites` when given (Java and
/// rustls both use the IANA names).
fn provider_for(names: &[String]) -> Result<rustls::crypto::CryptoProvider, TlsError> {
    let mut provider = rustls::crypto::ring::default_provider();
    if names.is_empty() {
        return Ok(provider);
    }
    let known = provider.cipher_suites.clone();
    let name_of = |s: &SupportedCipherSuite| format!("{:?}", s.suite());
    let mut chosen = Vec::new();
    for name in names {
        match known.iter().find(|s| name_of(s) == *name) {
            Some(s) => chosen.push(*s),
            None => {
                return Err(TlsError::Config(format!(
                    "ssl.ciphersuites: {name} is not available (available: {})",
                    known.iter().map(name_of).collect::<Vec<_>>().join(", ")
                )))
            }
        }
    }
    provider.cipher_suites = chosen;
    Ok(provider)
}

fn protocol_versions(
    names: &[String],
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, TlsError> {
    if names.is_empty() {
        return Ok(vec![&rustls::version::TLS13, &rustls::version::TLS12]);
    }
    names
        .iter()
        .map(|n| match n.as_str() {
            "TLSv1.3" => Ok(&rustls::version::TLS13),
            "TLSv1.2" => Ok(&rustls::version::TLS12),
            other => Err(TlsError::Config(format!(
                "unsupported TLS protocol {other}"
            ))),
        })
        .collect()
}

fn read_store(spec: &StoreSpec, what: &'static str) -> Result<Vec<u8>, TlsError> {
    let Some(path) = &spec.location else {
        return Err(store_err(what)("no location".into()));
    };
    match spec.store_kind().map_err(store_err(what))? {
        StoreKind::Pem => std::fs::read(path)
            .map_err(|e| store_err(what)(format!("cannot read {}: {e}", path.display()))),
    }
}

/// The private key and certificate chain of a PEM key store.
fn load_key_store(
    spec: &StoreSpec,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let what = "ssl.keyStore";
    let pem = read_store(spec, what)?;
    if String::from_utf8_lossy(&pem).contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err(store_err(what)(
            "encrypted PEM private keys are not supported yet: store the key unencrypted \
             (e.g. `openssl pkcs8 -topk8 -nocrypt`) and protect the file"
                .into(),
        ));
    }
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| store_err(what)(format!("bad certificate: {e}")))?;
    if certs.is_empty() {
        return Err(store_err(what)("no certificate in the PEM file".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| store_err(what)(format!("no usable private key: {e}")))?;
    Ok((certs, key))
}

/// The CA certificates of a PEM trust store.
fn load_trust_store(spec: &StoreSpec) -> Result<RootCertStore, TlsError> {
    let what = "ssl.trustStore";
    let pem = read_store(spec, what)?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| store_err(what)(format!("bad certificate: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| store_err(what)(format!("unusable CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(store_err(what)("no certificate in the PEM file".into()));
    }
    Ok(roots)
}
