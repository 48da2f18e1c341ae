//! The pipeline's side of back-pressure (net/flow.rs): replies that cannot
//! be sent, and requests that will never be answered.

use std::time::Duration;

use zk_proto::{ErrorCode, Response};

use super::Pipeline;
use crate::db::{ConnId, SessionId};
use crate::log_limit::RateLimit;
use crate::net::frames::{self, OutFrame};
use crate::warn_limited;

/// One warning per interval for oversized replies, however many clients ask.
static OVERSIZED: RateLimit = RateLimit::new(Duration::from_secs(10));

impl Pipeline {
    /// The session a request of `conn_id` belongs to. A connection without
    /// one (its session just closed) gets no answer, as in Apache; the
    /// request stops counting against the outstanding limits.
    pub(super) fn session_of_request(&self, conn_id: ConnId) -> Option<SessionId> {
        let conn = self.conns.get(&conn_id)?;
        if conn.session.is_none() {
            conn.out.dropped_request();
        }
        conn.session
    }

    /// The reply frame, or, when it would be larger than a client may
    /// accept (`jute.maxbuffer` plus its extra size, net/frames.rs), a
    /// MarshallingError in its place: Apache 3.8 would build and send it,
    /// and the client would refuse the frame and drop the connection
    /// (docs/PERFORMANCE.md "Back-pressure"). Nothing large is built first.
    pub(super) fn bounded_reply(
        &self,
        conn_id: ConnId,
        xid: i32,
        zxid: i64,
        result: &Result<Response, ErrorCode>,
    ) -> OutFrame {
        let max = frames::max_reply_len(self.shared.config.jute_max_buffer);
        match frames::bounded_reply(xid, zxid, result, max) {
            Ok(frame) => frame,
            Err(oversized) => {
                let remote = self.conns.get(&conn_id).map(|c| c.remote);
                warn_limited!(
                    OVERSIZED,
                    ?remote,
                    xid,
                    "refusing a reply of {} bytes (limit {max}): MarshallingError",
                    oversized.len
                );
                frames::reply(xid, zxid, &Err(ErrorCode::MarshallingError)).into()
            }
        }
    }
}
