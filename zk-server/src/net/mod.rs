//! The network side: the acceptor (with Apache's per-IP connection limit)
//! and one task per connection (four-letter-word sniffing, handshake,
//! framed requests in, batched replies out).

mod conn;
pub(crate) mod flow;
pub mod frames;
mod limits;
mod stream;
pub(crate) mod tls_accept;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::log_limit::RateLimit;
use crate::pipeline::{Inbound, Shared};
use crate::warn_limited;
use flow::Admission;
use limits::{ConnLimiter, Slot};

/// What every connection task shares.
#[derive(Debug)]
pub(crate) struct NetContext {
    pub shared: Arc<Shared>,
    pub pipeline: mpsc::UnboundedSender<Inbound>,
    /// Cancelled when the server stops: every connection ends.
    pub cancel: CancellationToken,
    /// Requests in flight server-wide (`globalOutstandingLimit`).
    pub admission: Arc<Admission>,
    next_conn_id: AtomicU64,
}

impl NetContext {
    pub fn new(
        shared: Arc<Shared>,
        pipeline: mpsc::UnboundedSender<Inbound>,
        cancel: CancellationToken,
    ) -> Self {
        NetContext {
            admission: Arc::new(Admission::new(shared.config.global_outstanding_limit)),
            shared,
            pipeline,
            cancel,
            next_conn_id: AtomicU64::new(1),
        }
    }

    fn next_conn_id(&self) -> u64 {
        self.next_conn_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// Refused connections and failed accepts come in loops: one line per
/// interval, with the count of those held back.
static REFUSED: RateLimit = RateLimit::new(std::time::Duration::from_secs(10));
static ACCEPT_FAILED: RateLimit = RateLimit::new(std::time::Duration::from_secs(10));

/// The next connection of a client port that is within `maxClientCnxns`
/// for its IP (the others are closed at once, as Apache does, counted and
/// logged); `None` once the server is cancelled. Both client ports, plain
/// and TLS, accept through this.
pub(crate) async fn next_admitted(
    listener: &TcpListener,
    ctx: &NetContext,
    limiter: &ConnLimiter,
) -> Option<(TcpStream, SocketAddr, Slot)> {
    loop {
        let accepted = tokio::select! {
            _ = ctx.cancel.cancelled() => return None,
            accepted = listener.accept() => accepted,
        };
        let (stream, remote) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                warn_limited!(ACCEPT_FAILED, "accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(slot) = limiter.try_acquire(remote.ip()) else {
            warn_limited!(
                REFUSED,
                "too many connections from {} - max is {}",
                remote.ip(),
                ctx.shared.config.max_client_cnxns
            );
            ctx.shared
                .connections_rejected
                .fetch_add(1, Ordering::Relaxed);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        return Some((stream, remote, slot));
    }
}

/// Accepts plain client connections until cancelled.
pub(crate) async fn accept_loop(listener: TcpListener, ctx: Arc<NetContext>) {
    let limiter = ConnLimiter::new(ctx.shared.config.max_client_cnxns);
    while let Some((stream, remote, slot)) = next_admitted(&listener, &ctx, &limiter).await {
        let ctx = Arc::clone(&ctx);
        tokio::spawn(async move {
            conn::serve(stream::ClientStream::plain(stream), remote, ctx).await;
            drop(slot);
        });
    }
}
