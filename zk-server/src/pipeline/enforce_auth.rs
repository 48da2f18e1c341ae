//! `enforce.auth.enabled` (config/security.rs), as Apache 3.8's
//! `AuthenticationHelper.enforceAuthentication`: every packet other than
//! addAuth and SASL from a connection holding no identity of an enforced
//! scheme is answered with a bare reply header (its xid, zxid 0, error
//! SessionClosedRequireSaslAuth) and the connection is closed. The session
//! itself is not closed: it expires unless the client comes back
//! authenticated, as with Apache.

use zk_proto::{ErrorCode, Request};

use super::Pipeline;
use crate::db::ConnId;
use crate::net::frames;

impl Pipeline {
    /// True when the request was refused (and the connection closed).
    pub(super) fn refuse_unauthenticated(
        &mut self,
        conn_id: ConnId,
        xid: i32,
        request: &Request,
    ) -> bool {
        let security = &self.shared.config.security;
        if !security.enforce_auth_enabled || matches!(request, Request::Auth(_) | Request::Sasl(_))
        {
            return false;
        }
        let Some(conn) = self.conns.get_mut(&conn_id) else {
            return false;
        };
        if security.admits(conn.auth.iter().map(|id| id.scheme.as_str())) {
            return false;
        }
        tracing::warn!(
            remote = %conn.remote,
            "client authentication scheme(s) {:?} match none of the enforced {:?}: closing the connection",
            conn.auth.iter().map(|id| id.scheme.as_str()).collect::<Vec<_>>(),
            security.enforce_auth_schemes
        );
        conn.send(frames::reply(
            xid,
            0,
            &Err(ErrorCode::SessionClosedRequireSaslAuth),
        ));
        conn.close();
        self.stats.sent += 1;
        true
    }
}
