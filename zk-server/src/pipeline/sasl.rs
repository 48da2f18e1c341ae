//! SASL packets (opcode 102) as Apache's `ZooKeeperServer.processSasl`
//! answers them: each token goes to the connection's DIGEST-MD5 exchange
//! (auth/digest_md5.rs) and the next token comes back in a
//! SetSASLResponse; success adds `sasl:<user>` to the connection's
//! identities; failure is AuthFailed and the connection closes.

use base64::Engine as _;
use zk_proto::{ErrorCode, Response, SetSaslResponse};

use super::Pipeline;
use crate::auth::digest_md5::{DigestMd5Server, Step};
use crate::db::ConnId;

impl Pipeline {
    /// The reply to a SASL token, and whether to close the connection.
    pub(super) fn sasl_step(
        &mut self,
        conn_id: ConnId,
        token: &[u8],
    ) -> (Result<Response, ErrorCode>, bool) {
        let Some(login) = self.shared.config.security.sasl_login.as_ref() else {
            // No JAAS Server section: Apache answers every token with OK
            // and a null token (ZooKeeperServer.processSasl without a SASL
            // server), and so do we.
            return (Ok(Response::Sasl(SetSaslResponse { token: None })), false);
        };
        let Some(conn) = self.conns.get_mut(&conn_id) else {
            return (Err(ErrorCode::ConnectionLoss), true);
        };
        let exchange = conn.sasl.get_or_insert_with(|| {
            let nonce: [u8; 24] = rand::random();
            DigestMd5Server::new(base64::engine::general_purpose::STANDARD.encode(nonce))
        });
        match exchange.step(token, &login.users) {
            Ok(Step::Challenge(challenge)) => (
                Ok(Response::Sasl(SetSaslResponse {
                    token: Some(challenge.into()),
                })),
                false,
            ),
            Ok(Step::Complete {
                token,
                authorization_id,
            }) => {
                tracing::info!(remote = %conn.remote, "SASL DIGEST-MD5 authenticated {authorization_id}");
                let id = zk_proto::Id::new("sasl", authorization_id);
                if !conn.auth.contains(&id) {
                    conn.auth.push(id);
                }
                let auth = conn.auth.clone();
                self.db.set_connection_auth(conn_id, &auth);
                (
                    Ok(Response::Sasl(SetSaslResponse {
                        token: Some(token.into()),
                    })),
                    false,
                )
            }
            Err(e) => {
                tracing::warn!(remote = %conn.remote, "client failed to SASL authenticate: {e}");
                self.stats.auth_failed += 1;
                (Err(ErrorCode::AuthFailed), true)
            }
        }
    }
}
