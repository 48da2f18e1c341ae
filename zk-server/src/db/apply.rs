//! Txn → tree change + reply + watch events, as Apache's
//! `DataTree.processTxn` and `FinalRequestProcessor` (ZAB.md §9.3,
//! SEMANTICS.md §1.2, §4.2, §7).
//!
//! Applying is also log replay after a fuzzy snapshot, so NoNode and
//! NodeExists are not fatal: they only turn into the op's error result.

use std::collections::BTreeSet;

use bytes::Bytes;
use zk_proto::proto::{Create2Response, CreateResponse, GetDataResponse, SetDataResponse};
use zk_proto::txn::CreateTxn;
use zk_proto::{
    Acl, ErrorCode, EventType, MultiResponse, MultiResult, OpCode, Perms, Response, Txn, TxnEntry,
    TxnHeader,
};

use super::tree::{self, CONTAINER_OWNER};
use super::{acl, path, watch, AclList, Applied, ConnId, Database, SessionId};

/// What one create txn asks for, whatever its flavour.
struct CreateSpec<'t> {
    path: &'t str,
    data: &'t Option<Bytes>,
    acl: &'t [Acl],
    owner: i64,
    parent_cversion: i32,
}

impl Database {
    /// Applies a durable txn. Returns the reply for the request that made
    /// it and the notifications to deliver, in order.
    pub fn apply(&mut self, entry: &TxnEntry) -> Applied {
        let header = &entry.header;
        let mut events = Vec::new();
        let mut applied = Applied {
            zxid: header.zxid,
            reply: None,
            notifications: Vec::new(),
            session_created: None,
            session_closed: None,
        };
        let result = match &entry.txn {
            Txn::CreateSession(t) => {
                self.sessions.insert(header.client_id, t.timeout);
                self.outstanding.session_created(header.client_id);
                applied.session_created = Some((header.client_id, t.timeout));
                Ok(Response::Empty)
            }
            Txn::CloseSession(t) => {
                let listed = t.as_ref().map(|t| t.paths_to_delete.as_slice());
                self.kill_session(header.client_id, header.zxid, listed, &mut events);
                self.sessions.remove(&header.client_id);
                self.outstanding.session_closed(header.client_id);
                applied.session_closed = Some(header.client_id);
                Ok(Response::Empty)
            }
            Txn::Multi(txns) => Ok(Response::Multi(self.apply_multi(header, txns, &mut events))),
            txn => self.apply_single(header, txn, &mut events),
        };
        if header.zxid > self.last_processed_zxid {
            self.last_processed_zxid = header.zxid;
        }
        self.outstanding.applied(header.zxid);
        let internal = header.client_id == 0 || header.txn_type == OpCode::CreateSession.code();
        if !internal {
            applied.reply = Some((header.client_id, header.cxid, result));
        }
        applied.notifications = events;
        applied
    }

    /// A multi: if any sub-txn is an error, nothing is applied and every
    /// result is an error (0 before the failure, its code, then
    /// RuntimeInconsistency); otherwise every op applies at this zxid.
    fn apply_multi(
        &mut self,
        header: &TxnHeader,
        txns: &[Txn],
        events: &mut Vec<(ConnId, zk_proto::WatcherEvent)>,
    ) -> MultiResponse {
        let failed = txns.iter().any(|t| matches!(t, Txn::Error(_)));
        let mut past_failure = false;
        let mut results = Vec::with_capacity(txns.len());
        for txn in txns {
            if failed {
                let code = match txn {
                    Txn::Error(e) => {
                        past_failure = true;
                        e.err
                    }
                    _ if past_failure => ErrorCode::RuntimeInconsistency.code(),
                    _ => ErrorCode::Ok.code(),
                };
                results.push(MultiResult::Error(code));
                continue;
            }
            let result = match txn {
                Txn::Multi(_) | Txn::CreateSession(_) | Txn::CloseSession(_) => {
                    Err(ErrorCode::MarshallingError)
                }
                sub => self.apply_single(header, sub, events),
            };
            results.push(match result {
                Ok(response) => multi_result(txn, response),
                Err(code) => MultiResult::Error(code.code()),
            });
        }
        MultiResponse { results }
    }

    /// One txn that is neither a session txn nor a multi.
    fn apply_single(
        &mut self,
        header: &TxnHeader,
        txn: &Txn,
        events: &mut Vec<(ConnId, zk_proto::WatcherEvent)>,
    ) -> Result<Response, ErrorCode> {
        let (zxid, time) = (header.zxid, header.time);
        match txn {
            Txn::Create(t) | Txn::Create2(t) => {
                let spec = create_spec(t, header.client_id);
                let stat = self.apply_create(&spec, zxid, time, events)?;
                Ok(if matches!(txn, Txn::Create(_)) {
                    Response::Create(CreateResponse {
                        path: t.path.clone(),
                    })
                } else {
                    Response::Create2(Create2Response {
                        path: t.path.clone(),
                        stat,
                    })
                })
            }
            Txn::CreateContainer(t) => {
                let spec = CreateSpec {
                    path: &t.path,
                    data: &t.data,
                    acl: &t.acl,
                    owner: CONTAINER_OWNER,
                    parent_cversion: t.parent_cversion,
                };
                let stat = self.apply_create(&spec, zxid, time, events)?;
                Ok(Response::Create2(Create2Response {
                    path: t.path.clone(),
                    stat,
                }))
            }
            Txn::CreateTtl(t) => {
                let spec = CreateSpec {
                    path: &t.path,
                    data: &t.data,
                    acl: &t.acl,
                    owner: tree::ttl_owner(t.ttl),
                    parent_cversion: t.parent_cversion,
                };
                let stat = self.apply_create(&spec, zxid, time, events)?;
                Ok(Response::Create2(Create2Response {
                    path: t.path.clone(),
                    stat,
                }))
            }
            Txn::Delete(t) | Txn::DeleteContainer(t) => {
                self.apply_delete(&t.path, zxid, events)?;
                Ok(Response::Empty)
            }
            Txn::SetData(t) => {
                let stat =
                    self.apply_set_data(&t.path, t.data.clone(), t.version, zxid, time, events)?;
                Ok(Response::Stat(stat))
            }
            Txn::Reconfig(t) => {
                // The config node's version is always -1 after a reconfig.
                let stat =
                    self.apply_set_data(tree::CONFIG, t.data.clone(), -1, zxid, time, events)?;
                Ok(Response::GetData(GetDataResponse {
                    data: t.data.clone(),
                    stat,
                }))
            }
            Txn::SetAcl(t) => {
                let stat = self.tree.set_acl(&t.path, &t.acl, t.version)?;
                Ok(Response::Stat(stat))
            }
            Txn::Check(_) => Ok(Response::Empty),
            Txn::Error(e) => Err(ErrorCode::from_code(e.err).unwrap_or(ErrorCode::SystemError)),
            Txn::CreateSession(_) | Txn::CloseSession(_) | Txn::Multi(_) => {
                Err(ErrorCode::MarshallingError)
            }
        }
    }

    fn apply_create(
        &mut self,
        spec: &CreateSpec<'_>,
        zxid: i64,
        time: i64,
        events: &mut Vec<(ConnId, zk_proto::WatcherEvent)>,
    ) -> Result<zk_proto::Stat, ErrorCode> {
        let stat = self.tree.create(
            spec.path,
            spec.data.clone(),
            spec.acl,
            spec.owner,
            spec.parent_cversion,
            zxid,
            time,
        )?;
        let parent = path::parent(spec.path);
        let fired = self.watches.trigger_data(spec.path);
        self.deliver(
            &fired,
            None,
            EventType::NodeCreated,
            spec.path,
            spec.acl,
            events,
        );
        let parent_acl = self.acl_of(parent);
        let fired = self.watches.trigger_child(parent);
        self.deliver(
            &fired,
            None,
            EventType::NodeChildrenChanged,
            parent,
            &parent_acl,
            events,
        );
        Ok(stat)
    }

    fn apply_delete(
        &mut self,
        target: &str,
        zxid: i64,
        events: &mut Vec<(ConnId, zk_proto::WatcherEvent)>,
    ) -> Result<(), ErrorCode> {
        let removed = self.tree.delete(target, zxid)?;
        let data_fired = self.watches.trigger_data(target);
        self.deliver(
            &data_fired,
            None,
            EventType::NodeDeleted,
            target,
            &removed.acl,
            events,
        );
        // A connection told through its data watch is not told twice.
        let child_fired = self.watches.trigger_child(target);
        self.deliver(
            &child_fired,
            Some(&data_fired),
            EventType::NodeDeleted,
            target,
            &removed.acl,
            events,
        );
        let parent = path::parent(target);
        let parent_acl = self.acl_of(parent);
        let fired = self.watches.trigger_child(parent);
        self.deliver(
            &fired,
            None,
            EventType::NodeChildrenChanged,
            parent,
            &parent_acl,
            events,
        );
        Ok(())
    }

    fn apply_set_data(
        &mut self,
        target: &str,
        data: Option<Bytes>,
        version: i32,
        zxid: i64,
        time: i64,
        events: &mut Vec<(ConnId, zk_proto::WatcherEvent)>,
    ) -> Result<zk_proto::Stat, ErrorCode> {
        let stat = self.tree.set_data(target, data, version, zxid, time)?;
        let node_acl = self.acl_of(target);
        let fired = self.watches.trigger_data(target);
        self.deliver(
            &fired,
            None,
            EventType::NodeDataChanged,
            target,
            &node_acl,
            events,
        );
        Ok(stat)
    }

    /// Deletes a closing session's ephemerals: the ones the txn lists, then
    /// any others the tree still holds for it (old logs list none).
    fn kill_session(
        &mut self,
        session: SessionId,
        zxid: i64,
        listed: Option<&[String]>,
        events: &mut Vec<(ConnId, zk_proto::WatcherEvent)>,
    ) {
        let listed = listed.unwrap_or_default();
        for p in listed {
            // Already gone is fine: replay after a fuzzy snapshot.
            let _ = self.apply_delete(p, zxid, events);
        }
        let rest: Vec<String> = self
            .tree
            .ephemerals_of(session)
            .into_iter()
            .filter(|p| !listed.contains(p))
            .collect();
        for p in rest {
            let _ = self.apply_delete(&p, zxid, events);
        }
        self.tree.forget_session_ephemerals(session);
    }

    fn acl_of(&self, node: &str) -> AclList {
        self.tree
            .get(node)
            .map(|n| n.acl.clone())
            .unwrap_or_default()
    }

    /// Queues one event per reached connection, skipping `skip` and any
    /// connection without READ on `node_acl` (CVE-2024-23944: the watch is
    /// consumed all the same).
    fn deliver(
        &self,
        conns: &BTreeSet<ConnId>,
        skip: Option<&BTreeSet<ConnId>>,
        event_type: EventType,
        event_path: &str,
        node_acl: &[Acl],
        events: &mut Vec<(ConnId, zk_proto::WatcherEvent)>,
    ) {
        for &conn in conns {
            if skip.is_some_and(|s| s.contains(&conn)) {
                continue;
            }
            let auth = self.conn_auth.get(conn);
            if acl::check(&self.config, node_acl, Perms::READ, auth).is_err() {
                continue;
            }
            events.push((conn, watch::event(event_type, event_path)));
        }
    }
}

fn create_spec(t: &CreateTxn, session: SessionId) -> CreateSpec<'_> {
    CreateSpec {
        path: &t.path,
        data: &t.data,
        acl: &t.acl,
        owner: if t.ephemeral { session } else { 0 },
        parent_cversion: t.parent_cversion,
    }
}

/// The result entry of a successful sub-op (WIRE.md §8): create2-typed for
/// create2, createTTL and createContainer.
fn multi_result(txn: &Txn, response: Response) -> MultiResult {
    match (txn, response) {
        (_, Response::Create(r)) => MultiResult::Create(r),
        (_, Response::Create2(r)) => MultiResult::Create2(r),
        (_, Response::Stat(stat)) => MultiResult::SetData(SetDataResponse { stat }),
        (Txn::Check(_), _) => MultiResult::Check,
        (Txn::Delete(_) | Txn::DeleteContainer(_), _) => MultiResult::Delete,
        _ => MultiResult::Error(ErrorCode::MarshallingError.code()),
    }
}
