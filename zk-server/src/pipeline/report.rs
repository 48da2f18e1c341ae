//! What the four-letter words report, gathered from the pipeline's state
//! (the formatting itself is in `admin`, pure).
//!
//! The words whose output grows with the state do not stall the writer
//! (issue 10): `wchc` and `wchp` copy the watch table a page
//! ([`LISTING_PAGE`] paths) per writer turn, between other work; `dump`
//! copies its facts at once (sessions and ephemerals). Sorting, regrouping
//! and formatting run on a blocking thread.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;

use tokio::sync::oneshot;

use super::{dir_size, Pipeline};
use crate::admin::{self, FourLetterWord, Latency};
use crate::db::{ConnId, SessionId};

/// Listings rendered off the writer at once; each holds a copy of its
/// facts, so this bounds their memory.
static RENDERING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// Watch paths copied per writer turn for a `wchc` / `wchp` listing.
const LISTING_PAGE: usize = 4096;

/// A four-letter word's answer: ready, to be rendered off the writer, or
/// a listing to copy a page at a time.
pub(super) enum Answer {
    Now(String),
    Render(Box<dyn FnOnce() -> String + Send>),
    Paged,
}

/// `wchc` / `wchp` listings being copied, oldest first; only the first
/// holds a (partial) copy, so queued ones cost nothing.
#[derive(Default)]
pub(super) struct Listings {
    queue: VecDeque<Listing>,
}

impl Listings {
    /// True when no listing waits for a writer turn.
    pub(super) fn is_idle(&self) -> bool {
        self.queue.is_empty()
    }
}

impl std::fmt::Debug for Listings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Listings({})", self.queue.len())
    }
}

struct Listing {
    word: FourLetterWord,
    reply: oneshot::Sender<String>,
    /// The connections to copy, sorted; `None` until the first turn.
    conns: Option<Vec<ConnId>>,
    next: usize,
    /// The last path copied of `conns[next]`.
    after: Option<String>,
    by_conn: BTreeMap<ConnId, Vec<String>>,
}

impl Pipeline {
    /// `asker` is the four-letter-word connection itself, which Apache
    /// counts and lists like any other (without a session).
    pub(super) fn summary(&self) -> admin::ServerSummary {
        admin::ServerSummary {
            latency: self.stats.latency,
            packets_received: self.stats.received,
            packets_sent: self.stats.sent,
            connections: self.conns.len() + 1,
            outstanding: self.outstanding(),
            zxid: self.db.last_processed_zxid(),
            mode: self.mode(),
            node_count: self.db.stats().node_count,
        }
    }

    fn outstanding(&self) -> u64 {
        self.queues.values().map(|q| q.len() as u64).sum()
    }

    pub(super) fn connection_infos(&self, asker: SocketAddr) -> Vec<admin::ConnectionInfo> {
        let mut ids: Vec<&ConnId> = self.conns.keys().collect();
        ids.sort();
        let asking = admin::ConnectionInfo {
            secure: false,
            remote: asker,
            interest_ops: 0,
            queued: 0,
            packets_received: 1,
            packets_sent: 0,
            session: None,
        };
        let listed = ids
            .into_iter()
            .filter_map(|id| self.conns.get(id))
            .map(|c| admin::ConnectionInfo {
                secure: c.secure,
                remote: c.remote,
                interest_ops: 1,
                queued: c
                    .session
                    .and_then(|s| self.queues.get(&s))
                    .map_or(0, |q| q.len() as u64),
                packets_received: c.received,
                packets_sent: c.sent,
                session: c.session.map(|s| admin::SessionConnInfo {
                    session_id: s,
                    last_op: c.last_op,
                    established_ms: c.established_wall_ms,
                    timeout_ms: c.timeout,
                    last_cxid: c.last_cxid,
                    last_zxid: c.last_zxid,
                    last_response_ms: c.last_response_ms,
                    last_latency: c.last_latency,
                    latency: c.latency,
                }),
            });
        std::iter::once(asking).chain(listed).collect()
    }

    /// Answers a four-letter word on `reply`; the big listings are rendered
    /// on a blocking thread from facts copied here.
    pub(super) fn answer_four_letter(
        &mut self,
        word: FourLetterWord,
        asker: SocketAddr,
        reply: oneshot::Sender<String>,
    ) {
        match self.four_letter_answer(word, asker) {
            Answer::Now(text) => {
                let _ = reply.send(text);
            }
            Answer::Render(render) => render_off_writer(render, reply),
            Answer::Paged => self.listings.queue.push_back(Listing {
                word,
                reply,
                conns: None,
                next: 0,
                after: None,
                by_conn: BTreeMap::new(),
            }),
        }
    }

    /// One writer turn of the oldest listing: copies up to
    /// [`LISTING_PAGE`] watched paths; when the table is copied, the
    /// listing is rendered off the writer. The copy is fuzzy (watches set
    /// or fired between turns may or may not appear), which a listing of
    /// live watches can afford.
    pub(super) fn listing_step(&mut self) {
        let Some(listing) = self.listings.queue.front_mut() else {
            return;
        };
        let watches = self.db.watches();
        let conns = listing.conns.get_or_insert_with(|| {
            let mut conns = watches.data_watch_connections();
            conns.sort_unstable();
            conns
        });
        let mut budget = LISTING_PAGE;
        while budget > 0 && listing.next < conns.len() {
            let conn = conns[listing.next];
            let page = watches.data_watches_page(conn, listing.after.as_deref(), budget);
            budget -= page.len();
            if budget > 0 {
                // Fewer than asked: this connection is done.
                listing.next += 1;
                listing.after = None;
            } else {
                listing.after = page.last().cloned();
            }
            listing.by_conn.entry(conn).or_default().extend(page);
        }
        if listing.next < conns.len() {
            return;
        }
        let Some(done) = self.listings.queue.pop_front() else {
            return;
        };
        let facts = WatchFacts {
            by_conn: done.by_conn,
            sessions: self.conn_sessions(),
        };
        let render: Box<dyn FnOnce() -> String + Send> = match done.word {
            FourLetterWord::Wchc => {
                Box::new(move || admin::format_wchc(&watches_by_session(facts)))
            }
            _ => Box::new(move || admin::format_wchp(&watches_by_path(facts))),
        };
        render_off_writer(render, done.reply);
    }

    fn conn_sessions(&self) -> HashMap<ConnId, SessionId> {
        self.conns
            .iter()
            .filter_map(|(&id, c)| Some((id, c.session?)))
            .collect()
    }

    fn four_letter_answer(&mut self, word: FourLetterWord, asker: SocketAddr) -> Answer {
        let listing = matches!(
            word,
            FourLetterWord::Wchc | FourLetterWord::Wchp | FourLetterWord::Dump
        );
        let serving = match &self.quorum {
            Some(q) => q.serving,
            None => true,
        };
        if listing && serving {
            return match word {
                FourLetterWord::Wchc | FourLetterWord::Wchp => Answer::Paged,
                _ => {
                    let info = self.dump_info(asker);
                    Answer::Render(Box::new(move || admin::format_dump(&info)))
                }
            };
        }
        Answer::Now(self.four_letter_text(word, asker))
    }

    pub(super) fn four_letter_text(&mut self, word: FourLetterWord, asker: SocketAddr) -> String {
        if self.quorum.as_ref().is_some_and(|q| !q.serving) {
            // OPS.md §1.1: a member in election or resync answers only the
            // words that do not need the data tree.
            match word {
                FourLetterWord::Ruok | FourLetterWord::Envi => {}
                FourLetterWord::Isro => return admin::ISRO_NOT_SERVING.to_string(),
                _ => return admin::NOT_SERVING.to_string(),
            }
        }
        match word {
            FourLetterWord::Ruok => admin::RUOK.to_string(),
            FourLetterWord::Isro => admin::ISRO_READ_WRITE.to_string(),
            FourLetterWord::Srvr => admin::format_srvr(&self.summary()),
            FourLetterWord::Stat => {
                admin::format_stat(&self.summary(), &self.connection_infos(asker))
            }
            FourLetterWord::Cons => admin::format_cons(&self.connection_infos(asker)),
            FourLetterWord::Conf => admin::format_conf(&self.conf_info()),
            FourLetterWord::Envi => admin::format_envi(&admin::environment()),
            FourLetterWord::Mntr => {
                let extra = self.mntr_extra();
                let mut metrics = admin::standalone_metrics(&self.summary(), &extra);
                metrics.extend(self.quorum_metrics());
                let registry = self.shared.metrics.mntr_entries();
                metrics.extend(registry.iter().map(|(k, v)| (k.as_str(), v.clone())));
                admin::format_mntr(&metrics)
            }
            FourLetterWord::Wchs => {
                let w = self.db.watches().summary();
                admin::format_wchs(w.connections, w.paths, w.watches)
            }
            FourLetterWord::Wchc => admin::format_wchc(&watches_by_session(self.watch_facts())),
            FourLetterWord::Wchp => admin::format_wchp(&watches_by_path(self.watch_facts())),
            FourLetterWord::Dump => admin::format_dump(&self.dump_info(asker)),
            FourLetterWord::Crst => {
                for c in self.conns.values_mut() {
                    c.received = 0;
                    c.sent = 0;
                    c.latency = Latency::default();
                    c.last_zxid = -1;
                    c.last_latency = 0;
                }
                admin::CRST.to_string()
            }
            FourLetterWord::Dirs => {
                let c = &self.shared.config;
                admin::format_dirs(
                    dir_size(&c.snap_version_dir()),
                    dir_size(&c.log_version_dir()),
                )
            }
            FourLetterWord::Hash => admin::format_hash(&[(
                self.db.last_processed_zxid(),
                crate::tree_digest::tree_digest(self.db.tree()),
            )]),
            // Answered by the connection itself (admin::answer_trace_mask).
            FourLetterWord::Gtmk | FourLetterWord::Stmk => {
                admin::answer_trace_mask(word, None).unwrap_or_default()
            }
            FourLetterWord::Srst => {
                self.stats.latency = Latency::default();
                self.stats.received = 0;
                self.stats.sent = 0;
                self.shared.metrics.reset();
                admin::SRST.to_string()
            }
        }
    }

    pub(super) fn conf_info(&self) -> admin::ConfInfo {
        let c = &self.shared.config;
        let snap_dir = c.snap_version_dir();
        let log_dir = c.log_version_dir();
        admin::ConfInfo {
            client_port: self.shared.local_addr.port(),
            secure_client_port: self.shared.secure_addr.map_or(-1, |a| i32::from(a.port())),
            data_dir_size: dir_size(&snap_dir),
            data_dir: snap_dir.display().to_string(),
            data_log_size: dir_size(&log_dir),
            data_log_dir: log_dir.display().to_string(),
            tick_time: c.tick_time_ms,
            max_client_cnxns: c.max_client_cnxns,
            min_session_timeout: c.min_session_timeout(),
            max_session_timeout: c.max_session_timeout(),
            server_id: 0,
        }
    }

    pub(super) fn mntr_extra(&self) -> admin::MntrExtra {
        let size = |v: Option<usize>| v.map_or(-1, |n| n as i64);
        let db = self.db.stats();
        admin::MntrExtra {
            uptime_ms: self.shared.started.elapsed().as_millis() as u64,
            watch_count: db.watch_count,
            ephemerals_count: db.ephemerals_count,
            approximate_data_size: db.approximate_data_size.max(0) as u64,
            global_sessions: self.session_timeouts.len(),
            auth_failed_count: self.stats.auth_failed,
            last_client_response_size: size(self.stats.last_response_size),
            max_client_response_size: size(self.stats.max_response_size),
            min_client_response_size: size(self.stats.min_response_size),
            snap_count: self.stats.snapshots,
            commit_count: self.stats.commits,
            connection_rejected: self
                .shared
                .connections_rejected
                .load(std::sync::atomic::Ordering::Relaxed),
            file_descriptors: admin::file_descriptor_counts(),
        }
    }

    /// The copy `wchc` and `wchp` are rendered from: each connection's
    /// data watches, and each connection's session.
    pub(super) fn watch_facts(&self) -> WatchFacts {
        WatchFacts {
            by_conn: self.db.watches().by_connection(),
            sessions: self.conn_sessions(),
        }
    }

    pub(super) fn dump_info(&self, asker: SocketAddr) -> admin::DumpInfo {
        let tick = u64::from(self.shared.config.tick_time_ms).max(1);
        let round_up = |t: u64| (t / tick + 1) * tick;
        let mut buckets: BTreeMap<u64, Vec<i64>> = Default::default();
        for (&session, &touched) in &self.last_touch {
            let timeout = self.session_timeouts.get(&session).copied().unwrap_or(0);
            let at = round_up(touched + timeout.max(0) as u64);
            buckets
                .entry(self.clock.wall_of(at))
                .or_default()
                .push(session);
        }
        let session_buckets = buckets.into_iter().collect();
        let mut ephemerals: Vec<(i64, Vec<String>)> = self
            .session_timeouts
            .keys()
            .map(|&id| (id, self.db.ephemerals_of(id)))
            .filter(|(_, paths)| !paths.is_empty())
            .collect();
        ephemerals.sort();
        let now = self.clock.mono_ms();
        let mut connection_buckets: BTreeMap<u64, Vec<(SocketAddr, i64)>> = Default::default();
        for c in self.conns.values() {
            if let Some(s) = c.session {
                // Connections expire with their session's timeout.
                let at = round_up(now + c.timeout.max(0) as u64);
                connection_buckets
                    .entry(self.clock.wall_of(at))
                    .or_default()
                    .push((c.remote, s));
            }
        }
        // The asking connection has no session; Apache lists it as 0x0,
        // due when a sessionless connection times out.
        connection_buckets
            .entry(self.clock.wall_of(round_up(now + 10_000)))
            .or_default()
            .push((asker, 0));
        admin::DumpInfo {
            session_buckets,
            ephemerals,
            connection_buckets: connection_buckets.into_iter().collect(),
        }
    }
}

/// Watches per connection and the connections' sessions, copied off the
/// pipeline's state.
pub(super) struct WatchFacts {
    by_conn: BTreeMap<ConnId, Vec<String>>,
    sessions: HashMap<ConnId, SessionId>,
}

/// Data watches per session (wchc), sorted by session.
pub(super) fn watches_by_session(facts: WatchFacts) -> Vec<(i64, Vec<String>)> {
    let WatchFacts { by_conn, sessions } = facts;
    let mut out: Vec<(i64, Vec<String>)> = by_conn
        .into_iter()
        .filter_map(|(conn, paths)| Some((*sessions.get(&conn)?, paths)))
        .collect();
    out.sort();
    out
}

/// Data watches per path (wchp), sorted by path.
pub(super) fn watches_by_path(facts: WatchFacts) -> Vec<(String, Vec<i64>)> {
    let mut by_path: BTreeMap<String, Vec<i64>> = Default::default();
    for (session, paths) in watches_by_session(facts) {
        for p in paths {
            by_path.entry(p).or_default().push(session);
        }
    }
    by_path.into_iter().collect()
}

/// Renders on a blocking thread when one of the [`RENDERING`] slots is
/// free; otherwise here, so that no more copies of the facts live at once
/// than there are slots (plus this one).
fn render_off_writer(render: Box<dyn FnOnce() -> String + Send>, reply: oneshot::Sender<String>) {
    match RENDERING.try_acquire() {
        Ok(permit) => {
            tokio::task::spawn_blocking(move || {
                let text = render();
                drop(permit);
                let _ = reply.send(text);
            });
        }
        Err(_) => {
            let _ = reply.send(render());
        }
    }
}
