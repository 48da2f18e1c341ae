//! Leader failover: `sessions` writers, each setting a key of its own one
//! write at a time, keep an ensemble busy while something outside the
//! load generator (bench/ensemble.py) kills the leader.
//!
//! Every write's start, end and outcome is kept. Afterwards the writes are
//! laid on one timeline (ordered by completion) and cut into outages: an
//! outage opens with the first failed write and closes with the first
//! successful write that was *issued after* that failure. A write issued
//! before the failure that still succeeds during it (a straggler the old
//! leader committed, say) does not close it: it proves nothing about the
//! new leader. Times are Unix microseconds so the script that killed the
//! leader can line them up with its own clock.
//!
//! The run stops at the end of `--duration`, or [`AFTER_RECOVERY`] after
//! the first outage that opened inside the measured window has closed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::mpsc;
use zk_client::Client;

use crate::session::{connect_one, is_terminal};
use crate::stats::Recorder;
use crate::timing::Window;

/// How long writes go on after an outage closed, so the report shows the
/// ensemble serving again rather than one lucky write.
pub const AFTER_RECOVERY: Duration = Duration::from_secs(1);

/// A write that has neither succeeded nor failed by then counts as failed
/// (a request to a member that hangs rather than closing the connection).
const WRITE_LIMIT: Duration = Duration::from_secs(5);

/// Pause after a failed write, so a writer does not spin while its client
/// reconnects.
const ERROR_PAUSE: Duration = Duration::from_millis(5);

/// One write: when it was issued, when it finished, whether it succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteEvent {
    pub started_us: u64,
    pub ended_us: u64,
    pub ok: bool,
}

/// A stretch in which writes failed and no write issued since the first
/// failure had yet succeeded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outage {
    /// Completion of the last successful write before the first failure;
    /// `None` when nothing had succeeded yet.
    pub last_ack_unix_us: Option<u64>,
    /// Completion of the first failed write.
    pub first_error_unix_us: u64,
    /// Completion of the first successful write issued after the first
    /// failure; `None` when writes never resumed.
    pub first_ack_unix_us: Option<u64>,
    /// Failed writes inside the outage.
    pub errors: u64,
    /// Writes issued before the outage that succeeded during it.
    pub stragglers: u64,
}

impl Outage {
    /// Last ack before to first ack after: how long writers saw no
    /// progress.
    pub fn gap_us(&self) -> Option<u64> {
        Some(
            self.first_ack_unix_us?
                .saturating_sub(self.last_ack_unix_us?),
        )
    }
}

/// Cuts a timeline into outages, fed one write at a time in completion
/// order (see the module comment for the rules).
#[derive(Debug, Default)]
pub struct OutageTracker {
    last_ack_us: Option<u64>,
    open: Option<Outage>,
    closed: Vec<Outage>,
}

impl OutageTracker {
    pub fn new() -> OutageTracker {
        OutageTracker::default()
    }

    pub fn observe(&mut self, event: WriteEvent) {
        match (&mut self.open, event.ok) {
            (None, true) => self.last_ack_us = Some(event.ended_us),
            (None, false) => {
                self.open = Some(Outage {
                    last_ack_unix_us: self.last_ack_us,
                    first_error_unix_us: event.ended_us,
                    first_ack_unix_us: None,
                    errors: 1,
                    stragglers: 0,
                })
            }
            (Some(outage), false) => outage.errors += 1,
            (Some(outage), true) if event.started_us < outage.first_error_unix_us => {
                outage.stragglers += 1
            }
            (Some(_), true) => {
                if let Some(mut outage) = self.open.take() {
                    outage.first_ack_unix_us = Some(event.ended_us);
                    self.closed.push(outage);
                }
                self.last_ack_us = Some(event.ended_us);
            }
        }
    }

    /// Outages closed so far.
    pub fn closed(&self) -> &[Outage] {
        &self.closed
    }

    /// Every outage, the one still open (never recovered) last.
    pub fn finish(self) -> Vec<Outage> {
        let mut all = self.closed;
        all.extend(self.open);
        all
    }
}

/// The outages of a whole run: `events` in any order.
pub fn find_outages(mut events: Vec<WriteEvent>) -> Vec<Outage> {
    events.sort_by_key(|e| (e.ended_us, e.started_us));
    let mut tracker = OutageTracker::new();
    for event in events {
        tracker.observe(event);
    }
    tracker.finish()
}

/// Whether the run may stop at `now_us`: an outage that opened at or after
/// `measure_from_us` closed at least `after` ago.
pub fn recovered_long_enough(
    closed: &[Outage],
    measure_from_us: u64,
    now_us: u64,
    after: Duration,
) -> bool {
    let after_us = u64::try_from(after.as_micros()).unwrap_or(u64::MAX);
    closed.iter().any(|o| {
        o.first_error_unix_us >= measure_from_us
            && o.first_ack_unix_us
                .is_some_and(|ack| now_us.saturating_sub(ack) >= after_us)
    })
}

/// Maps the monotonic clock to Unix time, anchored once so that every
/// timestamp of a run shares one offset.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    anchor: Instant,
    anchor_unix_us: u64,
}

impl Clock {
    pub fn new() -> Clock {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Clock {
            anchor: Instant::now(),
            anchor_unix_us: u64::try_from(since_epoch.as_micros()).unwrap_or(0),
        }
    }

    pub fn unix_us(&self, at: Instant) -> u64 {
        let offset = at.saturating_duration_since(self.anchor).as_micros();
        self.anchor_unix_us + u64::try_from(offset).unwrap_or(0)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// What a failover run produced.
#[derive(Debug)]
pub struct FailoverOutcome {
    pub recorder: Recorder,
    pub outages: Vec<Outage>,
    /// When the run actually stopped (early after recovery, or at the
    /// window's end).
    pub stopped: Instant,
}

/// Where each writer gets its session and which key it writes.
#[derive(Debug, Clone)]
pub struct Writers {
    pub connect: String,
    pub session_timeout: Duration,
    pub keys: Vec<String>,
    pub value: Vec<u8>,
}

/// Runs one writer per client until the window ends or the ensemble has
/// recovered from an outage, and reports the outages.
pub async fn run(clients: Vec<Client>, writers: Writers, window: Window) -> FailoverOutcome {
    let clock = Clock::new();
    let stop = Arc::new(AtomicBool::new(false));
    let (events_tx, mut events_rx) = mpsc::unbounded_channel();
    let writers = Arc::new(writers);
    let mut tasks = Vec::new();
    for (i, client) in clients.into_iter().enumerate() {
        let ctx = WriterCtx {
            writers: writers.clone(),
            key: i,
            window,
            clock,
            stop: stop.clone(),
            events: events_tx.clone(),
        };
        tasks.push(tokio::spawn(write_loop(client, ctx)));
    }
    drop(events_tx);

    // Watch the timeline as it arrives (nearly in completion order) only
    // to decide when to stop; the report sorts it properly afterwards.
    let measure_from_us = clock.unix_us(window.measure_from);
    let mut live = OutageTracker::new();
    let mut events = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tokio::select! {
            event = events_rx.recv() => match event {
                Some(event) => {
                    live.observe(event);
                    events.push(event);
                }
                None => break,
            },
            _ = tick.tick() => {
                let now_us = clock.unix_us(Instant::now());
                if window.is_over()
                    || recovered_long_enough(live.closed(), measure_from_us, now_us, AFTER_RECOVERY)
                {
                    stop.store(true, Ordering::Relaxed);
                }
            }
        }
    }
    let stopped = Instant::now();
    let mut recorder = Recorder::new();
    for task in tasks {
        match task.await {
            Ok(r) => recorder.merge(r),
            Err(e) => recorder.error(format!("writer task failed: {e}")),
        }
    }
    FailoverOutcome {
        recorder,
        outages: find_outages(events),
        stopped,
    }
}

struct WriterCtx {
    writers: Arc<Writers>,
    key: usize,
    window: Window,
    clock: Clock,
    stop: Arc<AtomicBool>,
    events: mpsc::UnboundedSender<WriteEvent>,
}

async fn write_loop(mut client: Client, ctx: WriterCtx) -> Recorder {
    let mut recorder = Recorder::new();
    let key = &ctx.writers.keys[ctx.key % ctx.writers.keys.len()];
    while !ctx.stop.load(Ordering::Relaxed) && !ctx.window.is_over() {
        let started = Instant::now();
        let result =
            tokio::time::timeout(WRITE_LIMIT, client.set_data(key, &ctx.writers.value, None)).await;
        let ended = Instant::now();
        let ok = matches!(result, Ok(Ok(_)));
        let _ = ctx.events.send(WriteEvent {
            started_us: ctx.clock.unix_us(started),
            ended_us: ctx.clock.unix_us(ended),
            ok,
        });
        let counts = ctx.window.counts(started);
        match result {
            Ok(Ok(_)) => {
                if counts {
                    recorder.record("setData", ended - started);
                }
            }
            Ok(Err(e)) => {
                if counts {
                    recorder.error(e.to_string());
                }
                if is_terminal(&e) {
                    // The session is gone (expired, say): carry on with a
                    // new one, as an application would.
                    if let Ok(fresh) =
                        connect_one(&ctx.writers.connect, ctx.writers.session_timeout).await
                    {
                        let _ = std::mem::replace(&mut client, fresh).close().await;
                    }
                }
                tokio::time::sleep(ERROR_PAUSE).await;
            }
            Err(_) => {
                if counts {
                    recorder.error(format!("no reply within {WRITE_LIMIT:?}"));
                }
            }
        }
    }
    let _ = client.close().await;
    recorder
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(started_us: u64, ended_us: u64) -> WriteEvent {
        WriteEvent {
            started_us,
            ended_us,
            ok: true,
        }
    }

    fn failed(started_us: u64, ended_us: u64) -> WriteEvent {
        WriteEvent {
            started_us,
            ended_us,
            ok: false,
        }
    }

    #[test]
    fn a_timeline_without_errors_has_no_outage() {
        assert!(find_outages(vec![ok(0, 5), ok(5, 9), ok(3, 12)]).is_empty());
    }

    #[test]
    fn an_error_streak_runs_from_the_last_ack_before_to_the_first_ack_after() {
        let outages = find_outages(vec![
            ok(0, 10),
            ok(10, 20),
            failed(20, 30),
            failed(31, 40),
            ok(41, 500),
            ok(500, 510),
        ]);
        assert_eq!(
            outages,
            vec![Outage {
                last_ack_unix_us: Some(20),
                first_error_unix_us: 30,
                first_ack_unix_us: Some(500),
                errors: 2,
                stragglers: 0,
            }]
        );
        assert_eq!(outages[0].gap_us(), Some(480));
    }

    #[test]
    fn a_write_issued_before_the_first_error_does_not_end_the_outage() {
        let outages = find_outages(vec![
            ok(0, 10),
            failed(12, 30),
            ok(5, 35), // a straggler: issued before the failure
            ok(40, 90),
        ]);
        assert_eq!(outages.len(), 1);
        assert_eq!(outages[0].last_ack_unix_us, Some(10));
        assert_eq!(outages[0].first_ack_unix_us, Some(90));
        assert_eq!(outages[0].stragglers, 1);
    }

    #[test]
    fn events_are_ordered_by_completion_whatever_order_they_come_in() {
        let in_order = find_outages(vec![ok(0, 10), failed(10, 20), ok(21, 30)]);
        let shuffled = find_outages(vec![ok(21, 30), ok(0, 10), failed(10, 20)]);
        assert_eq!(in_order, shuffled);
    }

    #[test]
    fn writes_that_never_resume_leave_an_open_outage_last() {
        let outages = find_outages(vec![
            ok(0, 10),
            failed(10, 20),
            ok(21, 30),
            failed(30, 40),
            failed(41, 50),
        ]);
        assert_eq!(outages.len(), 2);
        assert_eq!(outages[0].first_ack_unix_us, Some(30));
        assert_eq!(outages[1].last_ack_unix_us, Some(30));
        assert_eq!(outages[1].first_ack_unix_us, None);
        assert_eq!(outages[1].gap_us(), None);
    }

    #[test]
    fn an_outage_before_any_ack_has_no_last_ack() {
        let outages = find_outages(vec![failed(0, 10), ok(11, 20)]);
        assert_eq!(outages[0].last_ack_unix_us, None);
        assert_eq!(outages[0].gap_us(), None);
    }

    #[test]
    fn the_run_stops_only_after_a_measured_outage_has_been_closed_long_enough() {
        let closed = vec![Outage {
            last_ack_unix_us: Some(100),
            first_error_unix_us: 200,
            first_ack_unix_us: Some(1_000),
            errors: 3,
            stragglers: 0,
        }];
        let second = Duration::from_micros(500);
        assert!(!recovered_long_enough(&closed, 0, 1_400, second));
        assert!(recovered_long_enough(&closed, 0, 1_500, second));
        // An outage during the warm-up (before measuring began) does not
        // count: it was not the one being measured.
        assert!(!recovered_long_enough(&closed, 201, 9_999, second));
    }

    #[test]
    fn the_clock_maps_later_instants_to_later_unix_times() {
        let clock = Clock::new();
        let later = Instant::now() + Duration::from_millis(3);
        assert_eq!(
            clock.unix_us(later) - clock.unix_us(clock.anchor),
            u64::try_from(later.duration_since(clock.anchor).as_micros()).unwrap_or(0)
        );
    }
}
