//! Watch fan-out: one writer, N watching sessions on one node.
//!
//! Each round: every watcher arms a one-shot data watch (getData with
//! watch), the writer sets the node, and the round ends when the last
//! watcher has its NodeDataChanged event. Series:
//! - `fanout`: from the write being sent to the last watcher's event (what
//!   a watcher population waits for a change to reach all of it);
//! - `setData`: the write's own ack;
//! - `ack_to_last_event`: from the ack to the last event, clamped at zero
//!   (servers usually queue the events before the ack, so it is often 0).

use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use zk_client::{Client, EventType};

use crate::error::BenchError;
use crate::stats::Recorder;
use crate::timing::Window;

/// How long one round may wait on the watchers before the run is called
/// stalled (a server that drops events would otherwise hang us).
const ROUND_LIMIT: Duration = Duration::from_secs(10);

/// What a watcher tells the writer.
#[derive(Debug)]
enum Signal {
    Armed,
    Fired(Instant),
}

/// Runs rounds until the window ends.
pub async fn run(
    writer: &Client,
    watchers: &[Client],
    path: &str,
    value: &[u8],
    window: Window,
) -> Result<Recorder, BenchError> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let tasks: Vec<JoinHandle<()>> = watchers
        .iter()
        .map(|w| tokio::spawn(watch_loop(w.clone(), path.to_string(), tx.clone())))
        .collect();
    drop(tx);
    let result = rounds(writer, watchers.len(), path, value, window, &mut rx).await;
    // Watchers end when their sessions close (the pending watch resolves
    // with Closed); abort any that do not, so nothing outlives the run.
    for task in tasks {
        task.abort();
    }
    result
}

async fn rounds(
    writer: &Client,
    n: usize,
    path: &str,
    value: &[u8],
    window: Window,
    rx: &mut mpsc::UnboundedReceiver<Signal>,
) -> Result<Recorder, BenchError> {
    let mut recorder = Recorder::new();
    // Watchers arm once before the first round.
    wait_for(rx, n, |s| matches!(s, Signal::Armed), "arming watches").await?;
    while !window.is_over() {
        let started = Instant::now();
        let ack = writer.set_data(path, value, None).await;
        let acked = Instant::now();
        if let Err(e) = ack {
            recorder.error(e.to_string());
            if crate::session::is_terminal(&e) {
                break;
            }
            continue;
        }
        // Each watcher sends Fired, then Armed once it has re-armed.
        let mut last_event = started;
        let mut fired = 0;
        let mut armed = 0;
        while fired < n || armed < n {
            match tokio::time::timeout(ROUND_LIMIT, rx.recv()).await {
                Ok(Some(Signal::Fired(at))) => {
                    fired += 1;
                    last_event = last_event.max(at);
                }
                Ok(Some(Signal::Armed)) => armed += 1,
                Ok(None) | Err(_) => {
                    return Err(BenchError::Stalled {
                        what: "delivering a round of watch events",
                        limit: ROUND_LIMIT,
                    })
                }
            }
        }
        if window.counts(started) {
            recorder.record("fanout", last_event - started);
            recorder.record("setData", acked - started);
            recorder.record(
                "ack_to_last_event",
                last_event.saturating_duration_since(acked),
            );
        }
    }
    Ok(recorder)
}

/// Waits for `n` signals accepted by `pred`, within [`ROUND_LIMIT`].
async fn wait_for(
    rx: &mut mpsc::UnboundedReceiver<Signal>,
    n: usize,
    pred: impl Fn(&Signal) -> bool,
    what: &'static str,
) -> Result<(), BenchError> {
    let mut seen = 0;
    while seen < n {
        match tokio::time::timeout(ROUND_LIMIT, rx.recv()).await {
            Ok(Some(s)) if pred(&s) => seen += 1,
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => {
                return Err(BenchError::Stalled {
                    what,
                    limit: ROUND_LIMIT,
                })
            }
        }
    }
    Ok(())
}

/// Arms a watch, reports it, waits for the event, reports its arrival
/// time; again, until the session ends.
async fn watch_loop(client: Client, path: String, tx: mpsc::UnboundedSender<Signal>) {
    loop {
        let watch = match client.get_data_and_watch(&path).await {
            Ok((_, _, watch)) => watch,
            Err(_) => return,
        };
        if tx.send(Signal::Armed).is_err() {
            return;
        }
        let event = watch.await;
        let at = Instant::now();
        if event.event_type != EventType::NodeDataChanged {
            return;
        }
        if tx.send(Signal::Fired(at)).is_err() {
            return;
        }
    }
}
