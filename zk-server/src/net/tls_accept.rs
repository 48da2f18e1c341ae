//! The secure client port (`secureClientPort`): the same per-IP limit as
//! the plain port, a TLS handshake under Apache's deadline
//! (`ssl.handshakeDetectionTimeoutMillis`), then the same connection task.
//! A failed handshake closes the socket and is logged (rate-limited: a
//! port scanner must not flood the log).

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::limits::ConnLimiter;
use super::stream::ClientStream;
use super::{conn, next_admitted, NetContext};

/// Failed handshakes are logged at most once per interval (a scanner or a
/// plain-text client on the TLS port would flood the log).
static HANDSHAKE_FAILED: crate::log_limit::RateLimit =
    crate::log_limit::RateLimit::new(std::time::Duration::from_secs(10));

pub(crate) async fn accept_loop(
    listener: TcpListener,
    ctx: Arc<NetContext>,
    tls: Arc<rustls::ServerConfig>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let limiter = ConnLimiter::new(ctx.shared.config.max_client_cnxns);
    let handshake = Duration::from_millis(
        ctx.shared
            .config
            .security
            .tls
            .handshake_timeout_ms
            .unwrap_or(crate::tls::DEFAULT_HANDSHAKE_TIMEOUT_MS),
    );
    while let Some((stream, remote, slot)) = next_admitted(&listener, &ctx, &limiter).await {
        let ctx = Arc::clone(&ctx);
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let cancel = ctx.cancel.clone();
            let handshaken = tokio::select! {
                _ = cancel.cancelled() => return,
                r = tokio::time::timeout(handshake, acceptor.accept(stream)) => r,
            };
            match handshaken {
                Ok(Ok(tls)) => conn::serve(ClientStream::tls(tls), remote, ctx).await,
                Ok(Err(e)) => {
                    crate::warn_limited!(HANDSHAKE_FAILED, %remote, "TLS handshake failed: {e}")
                }
                Err(_) => {
                    crate::warn_limited!(HANDSHAKE_FAILED, %remote, "TLS handshake timed out")
                }
            }
            drop(slot);
        });
    }
}
