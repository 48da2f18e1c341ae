//! Turning a transcript into lines that two correct servers agree on.
//!
//! What legitimately differs between two servers running the same script:
//! - zxids: both count from their own start, and sessions' createSession
//!   txns interleave the same way, so each distinct zxid is replaced by its
//!   rank among all zxids of the transcript (0 and -1 are kept: they mean
//!   "built in" and "none");
//! - times: each server reads its own millisecond clock, and whether two
//!   writes land in the same millisecond is luck, so ranking times would be
//!   flaky. A time is checked instead (0, or inside the run's wall-clock
//!   window) and printed as `0`, `T` or `BAD(..)`;
//! - session ids: replaced by the session's ordinal in the script
//!   (`session#N`), wherever they appear (ephemeralOwner, whoAmI);
//! - the order of children lists: Apache keeps children in a hash set,
//!   so clients may not rely on any order; they are sorted. Ephemerals
//!   lists and the events of a session close are compared as they come:
//!   ours follow Apache's per-session hash-set order
//!   (zk-server/src/db/java_order.rs);
//! - one version difference: inside a multi, 3.8.0 runs a create2 op as a
//!   create and answers with the path only; 3.8.2+ and 3.9 (and ours)
//!   answer create2 with path and Stat (WIRE.md §8). Multi create results
//!   are compared by path only.

use std::collections::{BTreeSet, HashMap};

use zk_proto::proto::{Create2Response, CreateResponse};
use zk_proto::{ErrorCode, EventType, MultiResult, ReplyFrame, Response, Stat};

use super::script::{Entry, Transcript};

/// The transcript as comparable lines, one per entry, in arrival order.
pub fn render(transcript: &Transcript) -> Vec<String> {
    let norm = Normalizer::new(transcript);
    transcript
        .entries
        .iter()
        .map(|entry| norm.line(entry))
        .collect()
}

struct Normalizer {
    zxid_rank: HashMap<i64, usize>,
    sessions: HashMap<i64, usize>,
    window: (i64, i64),
}

/// Slack around the run's window: the server's clock is read a little
/// before or after ours.
const CLOCK_SLACK_MS: i64 = 2_000;

impl Normalizer {
    fn new(t: &Transcript) -> Self {
        let mut zxids = BTreeSet::new();
        let mut sessions = HashMap::new();
        for entry in &t.entries {
            match entry {
                Entry::Connected {
                    ordinal,
                    session_id,
                    ..
                } => {
                    sessions.insert(*session_id, *ordinal);
                }
                Entry::Event { zxid, .. } => {
                    zxids.insert(*zxid);
                }
                Entry::Reply { reply, .. } => {
                    zxids.insert(reply.header.zxid);
                    for_each_stat(&reply.response, &mut |s: &Stat| {
                        zxids.extend([s.czxid, s.mzxid, s.pzxid]);
                    });
                }
                Entry::Failed { .. } => {}
            }
        }
        let zxid_rank = zxids
            .into_iter()
            .filter(|z| *z > 0)
            .enumerate()
            .map(|(rank, z)| (z, rank + 1))
            .collect();
        Normalizer {
            zxid_rank,
            sessions,
            window: (
                t.started_ms - CLOCK_SLACK_MS,
                t.finished_ms + CLOCK_SLACK_MS,
            ),
        }
    }

    fn zxid(&self, z: i64) -> String {
        match self.zxid_rank.get(&z) {
            Some(rank) => format!("z{rank}"),
            None => z.to_string(),
        }
    }

    fn time(&self, t: i64) -> String {
        if t == 0 {
            "0".into()
        } else if t >= self.window.0 && t <= self.window.1 {
            "T".into()
        } else {
            format!("BAD({t})")
        }
    }

    fn session(&self, id: i64) -> String {
        match self.sessions.get(&id) {
            Some(n) => format!("session#{n}"),
            None if id == 0 => "0".into(),
            None => format!("{id:#x}"),
        }
    }

    fn stat(&self, s: &Stat) -> String {
        format!(
            "Stat{{czxid={} mzxid={} pzxid={} ctime={} mtime={} version={} cversion={} \
             aversion={} owner={} dataLength={} numChildren={}}}",
            self.zxid(s.czxid),
            self.zxid(s.mzxid),
            self.zxid(s.pzxid),
            self.time(s.ctime),
            self.time(s.mtime),
            s.version,
            s.cversion,
            s.aversion,
            self.session(s.ephemeral_owner),
            s.data_length,
            s.num_children
        )
    }

    fn line(&self, entry: &Entry) -> String {
        match entry {
            Entry::Connected {
                step,
                slot,
                ordinal,
                timeout,
                ..
            } => format!("[{step}] s{slot} connected as session#{ordinal}, timeout {timeout}"),
            Entry::Event {
                step,
                slot,
                zxid,
                event,
            } => format!(
                "[{step}] s{slot} event {} state {} path {:?} zxid {}",
                event_name(event.event_type),
                event.state,
                event.path,
                self.zxid(*zxid)
            ),
            Entry::Reply { step, slot, reply } => {
                format!("[{step}] s{slot} reply {}", self.reply(reply))
            }
            Entry::Failed { step, slot, what } => format!("[{step}] s{slot} FAILED {what}"),
        }
    }

    fn reply(&self, reply: &ReplyFrame) -> String {
        let h = &reply.header;
        format!(
            "xid {} zxid {} err {} {}",
            h.xid,
            self.zxid(h.zxid),
            error_name(h.err),
            self.response(&reply.response)
        )
    }

    fn response(&self, response: &Response) -> String {
        match response {
            Response::Empty => "-".into(),
            Response::Create(r) => format!("Create {:?}", r.path),
            Response::Create2(r) => format!("Create2 {:?} {}", r.path, self.stat(&r.stat)),
            Response::Stat(s) => format!("Stat {}", self.stat(s)),
            Response::GetData(r) => format!("GetData {:?} {}", r.data, self.stat(&r.stat)),
            Response::GetAcl(r) => format!("GetAcl {:?} {}", r.acl, self.stat(&r.stat)),
            Response::GetChildren(r) => format!("GetChildren {:?}", sorted(&r.children)),
            Response::GetChildren2(r) => format!(
                "GetChildren2 {:?} {}",
                sorted(&r.children),
                self.stat(&r.stat)
            ),
            Response::Sync(r) => match &r.path {
                Some(path) => format!("Sync {path:?}"),
                None => "Sync null".to_string(),
            },
            Response::Multi(m) => {
                let results: Vec<String> = m.results.iter().map(|r| self.multi_result(r)).collect();
                format!("Multi [{}]", results.join(", "))
            }
            Response::Sasl(r) => format!("Sasl {:?}", r.token),
            Response::GetEphemerals(r) => format!("GetEphemerals {:?}", r.ephemerals),
            Response::GetAllChildrenNumber(r) => format!("GetAllChildrenNumber {}", r.total_number),
            Response::AddWatch(r) => format!("AddWatch err {}", r.err),
            Response::WhoAmI(r) => format!("WhoAmI {:?}", r.client_info),
        }
    }

    fn multi_result(&self, result: &MultiResult) -> String {
        match result {
            MultiResult::Create(CreateResponse { path })
            | MultiResult::Create2(Create2Response { path, .. }) => format!("Create {path:?}"),
            MultiResult::Delete => "Delete".into(),
            MultiResult::SetData(r) => format!("SetData {}", self.stat(&r.stat)),
            MultiResult::Check => "Check".into(),
            MultiResult::GetData(r) => format!("GetData {:?} {}", r.data, self.stat(&r.stat)),
            MultiResult::GetChildren(r) => format!("GetChildren {:?}", sorted(&r.children)),
            MultiResult::Error(code) => format!("Error {}", error_name(*code)),
        }
    }
}

fn sorted(list: &[String]) -> Vec<String> {
    let mut list = list.to_vec();
    list.sort();
    list
}

fn error_name(code: i32) -> String {
    match ErrorCode::from_code(code) {
        Some(ErrorCode::Ok) => "0".into(),
        Some(e) => format!("{e:?}"),
        None => format!("unknown({code})"),
    }
}

fn event_name(code: i32) -> String {
    match EventType::from_code(code) {
        Some(e) => format!("{e:?}"),
        None => format!("unknown({code})"),
    }
}

/// Calls `f` on every Stat a response carries.
fn for_each_stat(response: &Response, f: &mut impl FnMut(&Stat)) {
    match response {
        Response::Create2(r) => f(&r.stat),
        Response::Stat(s) => f(s),
        Response::GetData(r) => f(&r.stat),
        Response::GetAcl(r) => f(&r.stat),
        Response::GetChildren2(r) => f(&r.stat),
        Response::Multi(m) => {
            for result in &m.results {
                match result {
                    MultiResult::Create2(r) => f(&r.stat),
                    MultiResult::SetData(r) => f(&r.stat),
                    MultiResult::GetData(r) => f(&r.stat),
                    _ => {}
                }
            }
        }
        _ => {}
    }
}
