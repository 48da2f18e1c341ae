//! Operation scripts and running them against one server.
//!
//! A script is a list of steps over numbered session slots. Running it
//! yields a transcript: every connect, every reply (with the notifications
//! that arrived before it), and, after each step, whatever every live
//! session had been sent meanwhile (found by a ping round trip, which the
//! server answers only after the notifications it already queued).

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use zk_proto::{OpCode, ReplyFrame, Request, WatcherEvent};

use super::client::{RawClient, RawError};

/// One thing a script does.
#[derive(Debug, Clone)]
pub enum Step {
    /// Opens a new session in `slot` (replacing nothing: the slot must be free).
    Connect(usize),
    /// Sends a request on the session in `slot` and waits for its reply.
    Op(usize, Request),
    /// Sends closeSession and drops the connection.
    Close(usize),
    /// Sends a request with a hand-made body (and the given xid, or the
    /// next one) on the session in `slot` and waits for its reply.
    Raw {
        slot: usize,
        op: OpCode,
        xid: Option<i32>,
        body: Vec<u8>,
    },
}

/// A named list of steps.
#[derive(Debug, Clone, Default)]
pub struct Script {
    pub name: String,
    pub steps: Vec<Step>,
}

impl Script {
    pub fn new(name: impl Into<String>) -> Self {
        Script {
            name: name.into(),
            steps: Vec::new(),
        }
    }

    pub fn connect(mut self, slot: usize) -> Self {
        self.steps.push(Step::Connect(slot));
        self
    }

    pub fn op(mut self, slot: usize, request: Request) -> Self {
        self.steps.push(Step::Op(slot, request));
        self
    }

    /// A request with a hand-made body, e.g. with a null string.
    pub fn raw(mut self, slot: usize, op: OpCode, body: Vec<u8>) -> Self {
        self.steps.push(Step::Raw {
            slot,
            op,
            xid: None,
            body,
        });
        self
    }

    /// As [`Script::raw`], with a fixed xid (auth travels with -4).
    pub fn raw_with_xid(mut self, slot: usize, op: OpCode, xid: i32, body: Vec<u8>) -> Self {
        self.steps.push(Step::Raw {
            slot,
            op,
            xid: Some(xid),
            body,
        });
        self
    }

    pub fn close(mut self, slot: usize) -> Self {
        self.steps.push(Step::Close(slot));
        self
    }

    /// The slots that would still hold a session after the last step.
    fn open_slots(&self) -> Vec<usize> {
        let mut open = Vec::new();
        for step in &self.steps {
            match step {
                Step::Connect(s) => open.push(*s),
                Step::Close(s) => open.retain(|o| o != s),
                Step::Op(..) | Step::Raw { .. } => {}
            }
        }
        open
    }

    /// The script with closes appended for every session still open, so no
    /// session outlives it (an expiring session would write a closeSession
    /// txn in the middle of the next script).
    pub fn closing_all(mut self) -> Self {
        for slot in self.open_slots() {
            self.steps.push(Step::Close(slot));
        }
        self
    }
}

/// What one step produced, as recorded.
#[derive(Debug, Clone)]
pub enum Entry {
    /// A session opened: its ordinal (0, 1, 2 ... in script order), its
    /// server-assigned id and the negotiated timeout.
    Connected {
        step: usize,
        slot: usize,
        ordinal: usize,
        session_id: i64,
        timeout: i32,
    },
    /// A notification, in arrival order on its session.
    Event {
        step: usize,
        slot: usize,
        zxid: i64,
        event: WatcherEvent,
    },
    /// The reply to the step's request.
    Reply {
        step: usize,
        slot: usize,
        reply: ReplyFrame,
    },
    /// The session could not go on (timeout, closed connection...).
    Failed {
        step: usize,
        slot: usize,
        what: String,
    },
}

/// A run's transcript plus the wall-clock window it ran in (every ctime and
/// mtime it reports must fall inside, or be 0 for the built-in nodes).
#[derive(Debug, Clone)]
pub struct Transcript {
    pub entries: Vec<Entry>,
    pub started_ms: i64,
    pub finished_ms: i64,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Runs `script` against the server at `addr`.
pub async fn run(addr: SocketAddr, script: &Script) -> Transcript {
    let started_ms = now_ms();
    let mut slots: Vec<Option<RawClient>> = Vec::new();
    let mut entries = Vec::new();
    let mut ordinal = 0;
    for (step, action) in script.steps.iter().enumerate() {
        match action {
            Step::Connect(slot) => {
                ensure_slot(&mut slots, *slot);
                match RawClient::connect(addr).await {
                    Ok(client) => {
                        entries.push(Entry::Connected {
                            step,
                            slot: *slot,
                            ordinal,
                            session_id: client.session_id,
                            timeout: client.negotiated_timeout,
                        });
                        slots[*slot] = Some(client);
                    }
                    Err(e) => entries.push(Entry::Failed {
                        step,
                        slot: *slot,
                        what: format!("connect: {e}"),
                    }),
                }
                ordinal += 1;
            }
            Step::Op(slot, request) => {
                let closes = matches!(request, Request::CloseSession);
                call(&mut slots, &mut entries, step, *slot, request.clone()).await;
                if closes {
                    ensure_slot(&mut slots, *slot);
                    slots[*slot] = None;
                }
            }
            Step::Raw {
                slot,
                op,
                xid,
                body,
            } => call_raw(&mut slots, &mut entries, step, *slot, (*op, *xid), body).await,
            Step::Close(slot) => {
                call(&mut slots, &mut entries, step, *slot, Request::CloseSession).await;
                ensure_slot(&mut slots, *slot);
                slots[*slot] = None;
            }
        }
        drain_all(&mut slots, &mut entries, step).await;
    }
    Transcript {
        entries,
        started_ms,
        finished_ms: now_ms(),
    }
}

fn ensure_slot(slots: &mut Vec<Option<RawClient>>, slot: usize) {
    if slots.len() <= slot {
        slots.resize_with(slot + 1, || None);
    }
}

async fn call(
    slots: &mut Vec<Option<RawClient>>,
    entries: &mut Vec<Entry>,
    step: usize,
    slot: usize,
    request: Request,
) {
    ensure_slot(slots, slot);
    let Some(client) = slots[slot].as_mut() else {
        entries.push(Entry::Failed {
            step,
            slot,
            what: "no session in this slot".into(),
        });
        return;
    };
    match client.call(request).await {
        Ok(exchange) => {
            push_events(entries, step, slot, exchange.notifications);
            entries.push(Entry::Reply {
                step,
                slot,
                reply: exchange.reply,
            });
        }
        Err(e) => fail(slots, entries, step, slot, e),
    }
}

async fn call_raw(
    slots: &mut Vec<Option<RawClient>>,
    entries: &mut Vec<Entry>,
    step: usize,
    slot: usize,
    (op, xid): (OpCode, Option<i32>),
    body: &[u8],
) {
    ensure_slot(slots, slot);
    let Some(client) = slots[slot].as_mut() else {
        entries.push(Entry::Failed {
            step,
            slot,
            what: "no session in this slot".into(),
        });
        return;
    };
    match client.call_raw(op, xid, body).await {
        Ok(exchange) => {
            push_events(entries, step, slot, exchange.notifications);
            entries.push(Entry::Reply {
                step,
                slot,
                reply: exchange.reply,
            });
        }
        Err(e) => fail(slots, entries, step, slot, e),
    }
}

/// Pings every live session so that notifications caused by this step are
/// recorded against it.
async fn drain_all(slots: &mut [Option<RawClient>], entries: &mut Vec<Entry>, step: usize) {
    for slot in 0..slots.len() {
        let Some(client) = slots[slot].as_mut() else {
            continue;
        };
        match client.drain().await {
            Ok(events) => push_events(entries, step, slot, events),
            Err(e) => fail(slots, entries, step, slot, e),
        }
    }
}

fn push_events(
    entries: &mut Vec<Entry>,
    step: usize,
    slot: usize,
    events: Vec<(i64, WatcherEvent)>,
) {
    for (zxid, event) in events {
        entries.push(Entry::Event {
            step,
            slot,
            zxid,
            event,
        });
    }
}

/// Records why a session stopped and forgets it: a server that closed the
/// connection (as Apache does after a failed auth) must do so on both sides.
fn fail(
    slots: &mut [Option<RawClient>],
    entries: &mut Vec<Entry>,
    step: usize,
    slot: usize,
    error: RawError,
) {
    let what = match error {
        RawError::Closed => "connection closed by server".to_string(),
        RawError::Timeout(_) => "no reply".to_string(),
        other => other.to_string(),
    };
    entries.push(Entry::Failed { step, slot, what });
    slots[slot] = None;
}
