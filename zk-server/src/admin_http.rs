//! The HTTP side of operating the server: Apache's AdminServer
//! (`admin.enableServer`, `admin.serverAddress`, `admin.serverPort`,
//! `admin.commandURL`: JSON answers at `/commands/<name>`) and the
//! Prometheus endpoint of `PrometheusMetricsProvider`
//! (`metricsProvider.httpHost`/`httpPort`: `/metrics`). Both are small
//! HTTP/1.1 servers on hyper; the answers come from the writer task
//! (`pipeline/admin_cmd.rs`) and the metrics registry (`metrics/`).
//!
//! Bounded like the client port: at most [`MAX_CONNECTIONS`] HTTP
//! connections at once (more are closed at accept), a header deadline,
//! and a deadline on the writer task's answer.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::admin_commands;
use crate::metrics::{prometheus, Counter};
use crate::pipeline::{Inbound, Shared};

/// HTTP connections served at once, per endpoint.
pub const MAX_CONNECTIONS: usize = 64;
/// How long a client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the writer task may take to answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

type Body = Full<Bytes>;

/// The two endpoints' listeners, bound at start so a busy port is known
/// at once.
#[derive(Debug, Default)]
pub struct HttpEndpoints {
    pub admin: Option<SocketAddr>,
    pub metrics: Option<SocketAddr>,
}

/// Binds and starts what the configuration asks for. The AdminServer's
/// port being taken is a warning (the server serves without it, as an
/// Apache quorum member does); the metrics endpoint's is an error, as in
/// Apache (`Cannot boot MetricsProvider`).
pub(crate) async fn start(
    shared: &Arc<Shared>,
    pipeline: mpsc::UnboundedSender<Inbound>,
    cancel: CancellationToken,
) -> Result<HttpEndpoints, (SocketAddr, std::io::Error)> {
    let mut endpoints = HttpEndpoints::default();
    let ops = &shared.config.ops;
    if ops.admin.enabled {
        let addr = SocketAddr::new(ops.admin.address, ops.admin.port);
        match TcpListener::bind(addr).await {
            Ok(listener) => {
                endpoints.admin = listener.local_addr().ok();
                tracing::info!(
                    "AdminServer on {}, command URL {}",
                    endpoints.admin.unwrap_or(addr),
                    ops.admin.command_url
                );
                let handler = AdminHandler {
                    shared: Arc::clone(shared),
                    pipeline: pipeline.clone(),
                };
                tokio::spawn(serve(listener, cancel.clone(), move |req| {
                    let handler = handler.clone();
                    async move { handler.handle(req).await }
                }));
            }
            Err(e) => tracing::warn!(
                "AdminServer not started: cannot listen on {addr}: {e} \
                 (set admin.serverPort, or admin.enableServer=false)"
            ),
        }
    }
    if let Some(p) = &ops.prometheus {
        let addr = SocketAddr::new(p.host, p.port);
        let listener = TcpListener::bind(addr).await.map_err(|e| (addr, e))?;
        endpoints.metrics = listener.local_addr().ok();
        tracing::info!(
            "Prometheus metrics on http://{}/metrics",
            endpoints.metrics.unwrap_or(addr)
        );
        let handler = MetricsHandler {
            shared: Arc::clone(shared),
            pipeline,
            start_secs: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        };
        tokio::spawn(serve(listener, cancel, move |req| {
            let handler = handler.clone();
            async move { handler.handle(req).await }
        }));
    }
    Ok(endpoints)
}

/// Accepts until cancelled; each connection is served by hyper.
async fn serve<F, Fut>(listener: TcpListener, cancel: CancellationToken, handler: F)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Body>> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::debug!("HTTP accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            // Over the limit: closing is the back-pressure.
            drop(stream);
            continue;
        };
        let handler = handler.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(handler(req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                _ = cancel.cancelled() => {}
            }
            drop(permit);
        });
    }
}

fn response(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

fn not_found() -> Response<Body> {
    response(StatusCode::NOT_FOUND, "text/plain", "Not Found\n")
}

#[derive(Clone)]
struct AdminHandler {
    shared: Arc<Shared>,
    pipeline: mpsc::UnboundedSender<Inbound>,
}

impl AdminHandler {
    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return response(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "GET only\n");
        }
        let url = &self.shared.config.ops.admin.command_url;
        let path = req.uri().path();
        let Some(rest) = path.strip_prefix(url.trim_end_matches('/')) else {
            return not_found();
        };
        let name = rest.trim_start_matches('/');
        if !rest.is_empty() && !rest.starts_with('/') {
            return not_found();
        }
        if name.is_empty() {
            return response(
                StatusCode::OK,
                "text/html;charset=utf-8",
                admin_commands::links_page(url),
            );
        }
        self.shared.metrics.add(Counter::InsecureAdmin, 1);
        let kwargs = parse_query(req.uri().query().unwrap_or(""));
        let answer = self.ask(name, kwargs).await;
        let body = serde_json::to_string_pretty(&answer).unwrap_or_default();
        // Apache answers 200 whatever the command says; errors are in the
        // JSON's `error` field.
        response(StatusCode::OK, "application/json", body)
    }

    async fn ask(&self, name: &str, kwargs: Vec<(String, String)>) -> serde_json::Value {
        let (reply, answer) = oneshot::channel();
        let sent = self.pipeline.send(Inbound::Admin {
            command: name.to_string(),
            kwargs,
            reply,
        });
        match (sent, tokio::time::timeout(ANSWER_TIMEOUT, answer).await) {
            (Ok(()), Ok(Ok(value))) => value,
            _ => serde_json::json!({
                "command": admin_commands::lookup(name).map_or(name, |c| c.primary),
                "error": admin_commands::NOT_SERVING,
            }),
        }
    }
}

#[derive(Clone)]
struct MetricsHandler {
    shared: Arc<Shared>,
    pipeline: mpsc::UnboundedSender<Inbound>,
    start_secs: f64,
}

impl MetricsHandler {
    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        if req.uri().path() != "/metrics" {
            return not_found();
        }
        let (reply, answer) = oneshot::channel();
        let sent = self.pipeline.send(Inbound::Gauges { reply });
        let gauges = match (sent, tokio::time::timeout(ANSWER_TIMEOUT, answer).await) {
            (Ok(()), Ok(Ok(gauges))) => gauges,
            _ => {
                return response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    "the server is not answering\n",
                )
            }
        };
        let gauges: Vec<(&str, f64)> = gauges.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        let process = prometheus::process_facts(self.start_secs);
        let text = prometheus::render(&gauges, &self.shared.metrics, &process);
        response(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            text,
        )
    }
}

/// `a=1&b=x%20y` as pairs, percent-decoded (`+` is a space).
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(b) => {
                    out.push(b);
                    i += 2;
                }
                Err(_) => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_are_split_and_decoded() {
        assert_eq!(
            parse_query("traceMask=511&x=a%20b+c&flag"),
            vec![
                ("traceMask".into(), "511".into()),
                ("x".into(), "a b c".into()),
                ("flag".into(), String::new())
            ]
        );
        assert_eq!(parse_query(""), vec![]);
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
