//! Session churn: `sessions` loops, each opening a session and closing it
//! again, as fast as the server allows. Series: `connect` (TCP connect to
//! session established), `close` (closeSession acknowledged), `session`
//! (the two together; its rate is sessions per second). Both the session
//! creation and the close are txns, so both go through the log.

use std::time::{Duration, Instant};

use crate::session::connect_one;
use crate::stats::Recorder;
use crate::timing::Window;

/// Runs `loops` connect / close loops until the window ends.
pub async fn run(
    connect: &str,
    loops: usize,
    session_timeout: Duration,
    window: Window,
) -> Recorder {
    let tasks: Vec<_> = (0..loops)
        .map(|_| tokio::spawn(churn_loop(connect.to_string(), session_timeout, window)))
        .collect();
    let mut merged = Recorder::new();
    for task in tasks {
        match task.await {
            Ok(recorder) => merged.merge(recorder),
            Err(e) => merged.error(format!("worker task failed: {e}")),
        }
    }
    merged
}

async fn churn_loop(connect: String, session_timeout: Duration, window: Window) -> Recorder {
    let mut recorder = Recorder::new();
    while !window.is_over() {
        let started = Instant::now();
        let client = match connect_one(&connect, session_timeout).await {
            Ok(client) => client,
            Err(e) => {
                if window.counts(started) {
                    recorder.error(e.to_string());
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let connected = Instant::now();
        // close() reports no failure: it waits (briefly) for the server's
        // reply and ends the client either way.
        let _ = client.close().await;
        if window.counts(started) {
            recorder.record("connect", connected - started);
            recorder.record("close", connected.elapsed());
            recorder.record("session", started.elapsed());
        }
    }
    recorder
}
