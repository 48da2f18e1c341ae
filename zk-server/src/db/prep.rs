//! Request → txn, as Apache's `PrepRequestProcessor` (SEMANTICS.md §2, §3,
//! §7; WIRE.md §13, §14). Checks run in Apache's order so the first
//! failure gives the same error code; a failure still becomes a txn (an
//! error txn, or a multi of error sub-txns) that takes a zxid.
//!
//! Validation sees the applied tree *plus* the change records of every
//! prepared-but-unapplied txn ([`Outstanding`]), so txns prepared back to
//! back see each other, as Apache's `outstandingChanges`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use zk_proto::proto::{CheckVersionRequest, DeleteRequest, SetAclRequest, SetDataRequest};
use zk_proto::txn::{
    CheckVersionTxn, CloseSessionTxn, CreateContainerTxn, CreateSessionTxn, CreateTtlTxn,
    CreateTxn, DeleteTxn, ErrorTxn, SetAclTxn, SetDataTxn,
};
use zk_proto::{
    Acl, CreateMode, ErrorCode, MultiOp, OpCode, Perms, Request, StatPersisted, Txn, TxnEntry,
    TxnHeader,
};

use super::tree::{self, NodeKind, CONTAINER_OWNER, MAX_TTL};
use super::{acl, path, quota, AclList, Database, RequestContext, SessionId};

/// A node as prepared-but-unapplied txns leave it (`ChangeRecord`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct ChangeRecord {
    zxid: i64,
    path: String,
    /// `None`: the node is deleted.
    stat: Option<StatPersisted>,
    child_count: i64,
    acl: AclList,
    data_len: i64,
}

impl ChangeRecord {
    fn stat(&self) -> StatPersisted {
        self.stat.clone().unwrap_or_default()
    }
}

/// The change records of prepared-but-unapplied txns, in zxid order, plus
/// the session lifecycle they imply.
#[derive(Debug, Clone, Default)]
pub struct Outstanding {
    queue: VecDeque<ChangeRecord>,
    /// The newest record per path (always the last one for it in `queue`).
    latest: HashMap<String, ChangeRecord>,
    /// Sessions whose createSession is prepared but not applied.
    created: HashSet<SessionId>,
    /// Sessions with a prepared closeSession: their requests now fail.
    closing: HashSet<SessionId>,
}

impl Outstanding {
    /// Outstanding change records.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    fn add(&mut self, record: ChangeRecord) {
        self.latest.insert(record.path.clone(), record.clone());
        self.queue.push_back(record);
    }

    /// The txn `zxid` is applied: its records (and older) are now in the
    /// tree itself.
    pub(crate) fn applied(&mut self, zxid: i64) {
        while self.queue.front().is_some_and(|r| r.zxid <= zxid) {
            let Some(record) = self.queue.pop_front() else {
                break;
            };
            if self
                .latest
                .get(&record.path)
                .is_some_and(|l| l.zxid == record.zxid)
            {
                self.latest.remove(&record.path);
            }
        }
    }

    /// Forgets the records added after the first `len` (a failed multi).
    fn rollback_to(&mut self, len: usize) {
        let dropped: Vec<ChangeRecord> = self.queue.drain(len..).collect();
        for record in dropped {
            self.latest.remove(&record.path);
            if let Some(previous) = self.queue.iter().rev().find(|r| r.path == record.path) {
                self.latest.insert(record.path.clone(), previous.clone());
            }
        }
    }

    pub(crate) fn session_created(&mut self, id: SessionId) {
        self.created.remove(&id);
    }

    pub(crate) fn session_closed(&mut self, id: SessionId) {
        self.created.remove(&id);
        self.closing.remove(&id);
    }
}

/// The arguments every create flavour shares.
struct CreateArgs<'r> {
    op: OpCode,
    path: &'r str,
    data: &'r Option<Bytes>,
    acl: &'r [Acl],
    flags: i32,
    /// -1 for create / create2 / createContainer, which carry none.
    ttl: i64,
}

/// One write op, from a request or from inside a multi.
enum WriteOp<'r> {
    Create(CreateArgs<'r>),
    Delete(&'r DeleteRequest),
    DeleteContainer(&'r str),
    SetData(&'r SetDataRequest),
    SetAcl(&'r SetAclRequest),
    Check(&'r CheckVersionRequest),
}

impl<'r> WriteOp<'r> {
    fn from_multi_op(op: &'r MultiOp) -> Option<Self> {
        Some(match op {
            MultiOp::Create(r) => WriteOp::Create(create_args(OpCode::Create, r)),
            MultiOp::Create2(r) => WriteOp::Create(create_args(OpCode::Create2, r)),
            MultiOp::CreateContainer(r) => WriteOp::Create(create_args(OpCode::CreateContainer, r)),
            MultiOp::CreateTtl(r) => WriteOp::Create(CreateArgs {
                op: OpCode::CreateTtl,
                path: &r.path,
                data: &r.data,
                acl: &r.acl,
                flags: r.flags,
                ttl: r.ttl,
            }),
            MultiOp::Delete(r) => WriteOp::Delete(r),
            MultiOp::SetData(r) => WriteOp::SetData(r),
            MultiOp::Check(r) => WriteOp::Check(r),
            MultiOp::GetData(_) | MultiOp::GetChildren(_) => return None,
        })
    }
}

fn create_args(op: OpCode, r: &zk_proto::proto::CreateRequest) -> CreateArgs<'_> {
    CreateArgs {
        op,
        path: &r.path,
        data: &r.data,
        acl: &r.acl,
        flags: r.flags,
        ttl: -1,
    }
}

/// `%010d` of the parent's persisted cversion (WIRE.md §14); negative
/// values keep the sign inside the width, as Java prints them.
pub fn sequential_suffix(parent_cversion: i32) -> String {
    format!("{parent_cversion:010}")
}

/// The parent of a path a create or delete names: the text before the
/// last `/`. A path without `/`, or with a NUL, is BadArguments.
fn parent_for_write(path: &str) -> Result<&str, ErrorCode> {
    if path.contains('\0') {
        return Err(ErrorCode::BadArguments);
    }
    match path.rfind('/') {
        None => Err(ErrorCode::BadArguments),
        Some(_) => Ok(path::parent(path)),
    }
}

fn validate_full(path: &str) -> Result<(), ErrorCode> {
    path::validate_path(path).map_err(|_| ErrorCode::BadArguments)
}

/// The nodes nobody may delete (SEMANTICS.md §10).
fn is_special_path(path: &str) -> bool {
    matches!(
        path,
        tree::ROOT | tree::ZOOKEEPER | quota::QUOTA_ROOT | tree::CONFIG
    )
}

/// `checkAndIncVersion`: -1 matches any version; the result is the next one.
fn check_version(current: i32, expected: i32) -> Result<i32, ErrorCode> {
    if expected != -1 && expected != current {
        Err(ErrorCode::BadVersion)
    } else {
        Ok(current.wrapping_add(1))
    }
}

/// `EphemeralType.validateTTL`: TTL modes need `0 < ttl ≤ 2^40 − 1`, and
/// other modes must not carry one. createTTL with a non-TTL mode is always
/// BadArguments [observed].
fn validate_ttl(op: OpCode, mode: CreateMode, ttl: i64) -> Result<(), ErrorCode> {
    let ok = if mode.is_ttl() {
        ttl > 0 && ttl <= MAX_TTL
    } else {
        ttl < 0 && op != OpCode::CreateTtl
    };
    if ok {
        Ok(())
    } else {
        Err(ErrorCode::BadArguments)
    }
}

fn header(ctx_session: SessionId, xid: i32, zxid: i64, time: i64, op: OpCode) -> TxnHeader {
    TxnHeader {
        client_id: ctx_session,
        cxid: xid,
        zxid,
        time,
        txn_type: op.code(),
    }
}

fn error_txn(code: ErrorCode) -> Txn {
    Txn::Error(ErrorTxn { err: code.code() })
}

impl Database {
    /// Prepares a write request (every `OpCode::is_write()` op; closeSession
    /// included) into the txn to log. Failures become an error txn, or for
    /// multi a multi of error sub-txns, exactly as Apache logs them.
    /// Callers should not pass reads or a top-level `check` (3.8.5+ answers
    /// that Unimplemented without a txn); they become Unimplemented error
    /// txns here.
    pub fn prepare(
        &mut self,
        ctx: &RequestContext,
        request: &Request,
        zxid: i64,
        now_ms: i64,
    ) -> TxnEntry {
        self.conn_auth.set(ctx.conn_id, &ctx.auth);
        let op = request.op_code();
        let result = match request {
            Request::Multi(multi) => self.prep_multi(ctx, &multi.ops, zxid, now_ms),
            Request::CloseSession => Ok(self.prep_close_session(ctx.session_id, zxid)),
            Request::Reconfig(_) => Err(if self.config.reconfig_enabled {
                // Standalone servers cannot reconfigure (SEMANTICS.md §13).
                ErrorCode::Unimplemented
            } else {
                ErrorCode::ReconfigDisabled
            }),
            other => match single_write_op(other) {
                Some(write) => self.prep_op(ctx, &write, zxid, now_ms),
                None => Err(ErrorCode::Unimplemented),
            },
        };
        match result {
            Ok(txn) => TxnEntry {
                header: header(ctx.session_id, ctx.xid, zxid, now_ms, op),
                txn,
                digest: None,
            },
            Err(code) => self.error_txn(ctx, code, zxid, now_ms),
        }
    }

    /// The error txn of a write that failed before prep could look at it,
    /// e.g. a body that did not parse (MarshallingError).
    pub fn error_txn(
        &self,
        ctx: &RequestContext,
        code: ErrorCode,
        zxid: i64,
        now_ms: i64,
    ) -> TxnEntry {
        TxnEntry {
            header: header(ctx.session_id, ctx.xid, zxid, now_ms, OpCode::Error),
            txn: error_txn(code),
            digest: None,
        }
    }

    /// A new session's createSession txn (cxid 0, as Apache's).
    pub fn prepare_create_session(
        &mut self,
        session_id: SessionId,
        timeout_ms: i32,
        zxid: i64,
        now_ms: i64,
    ) -> TxnEntry {
        self.outstanding.created.insert(session_id);
        TxnEntry {
            header: header(session_id, 0, zxid, now_ms, OpCode::CreateSession),
            txn: Txn::CreateSession(CreateSessionTxn {
                timeout: timeout_ms,
            }),
            digest: None,
        }
    }

    /// The closeSession txn of an expired session (cxid 0).
    pub fn prepare_close_session(
        &mut self,
        session_id: SessionId,
        zxid: i64,
        now_ms: i64,
    ) -> TxnEntry {
        let txn = self.prep_close_session(session_id, zxid);
        TxnEntry {
            header: header(session_id, 0, zxid, now_ms, OpCode::CloseSession),
            txn,
            digest: None,
        }
    }

    /// Lists the session's ephemerals as they will be once every prepared
    /// txn is applied, records their deletion, and marks the session
    /// closing so its later requests fail with SessionExpired.
    fn prep_close_session(&mut self, session: SessionId, zxid: i64) -> Txn {
        // Apache edits a copy of the session's ephemeral set and lists it
        // in the txn in the copy's order, which is the order the
        // ephemerals are deleted and their watches fire in
        // (db/java_order.rs).
        let mut set = self.tree.ephemeral_set_copy(session);
        for record in &self.outstanding.queue {
            match &record.stat {
                None => {
                    set.remove(&record.path);
                }
                Some(stat) if stat.ephemeral_owner == session => {
                    set.insert(Arc::from(record.path.as_str()));
                }
                Some(_) => {}
            }
        }
        let paths: Vec<String> = set
            .iteration_order()
            .into_iter()
            .map(|p| p.to_string())
            .collect();
        for path in &paths {
            self.outstanding.add(ChangeRecord {
                zxid,
                path: path.clone(),
                stat: None,
                child_count: 0,
                acl: AclList::default(),
                data_len: 0,
            });
        }
        self.outstanding.closing.insert(session);
        Txn::CloseSession(Some(CloseSessionTxn {
            paths_to_delete: paths.into_iter().collect(),
        }))
    }

    /// multi: ops in order against the pending state; the first failure
    /// rolls back this multi's records, and it and every later op become
    /// error sub-txns (the failure's code, then RuntimeInconsistency).
    /// An op that meets a null Apache dereferences
    /// ([`acl::NULL_DEREFERENCE`]) fails the whole multi instead: Apache's
    /// multi loop only catches KeeperExceptions, so its
    /// `NullPointerException` turns the request into one error txn.
    fn prep_multi(
        &mut self,
        ctx: &RequestContext,
        ops: &[MultiOp],
        zxid: i64,
        now_ms: i64,
    ) -> Result<Txn, ErrorCode> {
        let checkpoint = self.outstanding.len();
        let mut txns = Vec::with_capacity(ops.len());
        let mut failed = false;
        for op in ops {
            if failed {
                txns.push(error_txn(ErrorCode::RuntimeInconsistency));
                continue;
            }
            let result = match WriteOp::from_multi_op(op) {
                Some(write) => self.prep_op(ctx, &write, zxid, now_ms),
                None => Err(ErrorCode::MarshallingError),
            };
            match result {
                Ok(txn) => txns.push(txn),
                Err(acl::NULL_DEREFERENCE) => {
                    self.outstanding.rollback_to(checkpoint);
                    return Err(acl::NULL_DEREFERENCE);
                }
                Err(code) => {
                    failed = true;
                    txns.push(error_txn(code));
                    self.outstanding.rollback_to(checkpoint);
                }
            }
        }
        Ok(Txn::Multi(txns))
    }

    /// The current or pending state of a node (`getRecordForPath`).
    fn record_for(&self, path: &str) -> Result<ChangeRecord, ErrorCode> {
        if let Some(record) = self.outstanding.latest.get(path) {
            return match record.stat {
                Some(_) => Ok(record.clone()),
                None => Err(ErrorCode::NoNode),
            };
        }
        let node = self.tree.get(path).ok_or(ErrorCode::NoNode)?;
        Ok(ChangeRecord {
            zxid: -1,
            path: path.to_owned(),
            stat: Some(node.stat.clone()),
            child_count: node.children.len() as i64,
            acl: node.acl.clone(),
            data_len: node.data_len() as i64,
        })
    }

    /// `checkSession`: the session must exist (applied or being created)
    /// and not be closing.
    fn check_session(&self, session: SessionId) -> Result<(), ErrorCode> {
        let known =
            self.sessions.contains_key(&session) || self.outstanding.created.contains(&session);
        if known && !self.outstanding.closing.contains(&session) {
            Ok(())
        } else {
            Err(ErrorCode::SessionExpired)
        }
    }

    fn check_acl(&self, acl: &[Acl], perm: Perms, ctx: &RequestContext) -> Result<(), ErrorCode> {
        acl::check(&self.config, acl, perm, &ctx.auth)
    }

    fn prep_op(
        &mut self,
        ctx: &RequestContext,
        op: &WriteOp<'_>,
        zxid: i64,
        now_ms: i64,
    ) -> Result<Txn, ErrorCode> {
        match op {
            WriteOp::Create(args) => self.prep_create(ctx, args, zxid, now_ms),
            WriteOp::Delete(r) => self.prep_delete(ctx, r, zxid),
            WriteOp::DeleteContainer(p) => self.prep_delete_container(p, zxid),
            WriteOp::SetData(r) => self.prep_set_data(ctx, r, zxid, now_ms),
            WriteOp::SetAcl(r) => self.prep_set_acl(ctx, r, zxid),
            WriteOp::Check(r) => self.prep_check(ctx, r),
        }
    }

    /// SEMANTICS.md §2, checks 1–13 in order.
    fn prep_create(
        &mut self,
        ctx: &RequestContext,
        args: &CreateArgs<'_>,
        zxid: i64,
        now_ms: i64,
    ) -> Result<Txn, ErrorCode> {
        let mode = CreateMode::from_code(args.flags).ok_or(ErrorCode::BadArguments)?;
        if mode.is_ttl() && !self.config.extended_types_enabled {
            return Err(ErrorCode::Unimplemented);
        }
        validate_ttl(args.op, mode, args.ttl)?;
        self.check_session(ctx.session_id)?;
        let parent_path = parent_for_write(args.path)?;
        let acl = acl::fixup(&self.config, &ctx.auth, args.acl)?;
        let parent = self.record_for(parent_path)?;
        self.check_acl(&parent.acl, Perms::CREATE, ctx)?;
        let parent_stat = parent.stat();
        let path = if mode.is_sequential() {
            format!("{}{}", args.path, sequential_suffix(parent_stat.cversion))
        } else {
            args.path.to_owned()
        };
        validate_full(&path)?;
        if self.record_for(&path).is_ok() {
            return Err(ErrorCode::NodeExists);
        }
        let parent_kind = NodeKind::of(
            parent_stat.ephemeral_owner,
            self.config.extended_types_enabled,
        );
        if matches!(parent_kind, NodeKind::Ephemeral(_)) {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        let new_cversion = parent_stat.cversion.wrapping_add(1);
        let data_len = args.data.as_ref().map_or(0, Bytes::len) as i64;
        if self.config.enforce_quota {
            self.tree.check_quota(&path, 1, data_len)?;
        }
        let txn = match args.op {
            OpCode::CreateContainer => Txn::CreateContainer(CreateContainerTxn {
                path: path.clone(),
                data: args.data.clone(),
                acl: acl.clone(),
                parent_cversion: new_cversion,
            }),
            OpCode::CreateTtl => Txn::CreateTtl(CreateTtlTxn {
                path: path.clone(),
                data: args.data.clone(),
                acl: acl.clone(),
                parent_cversion: new_cversion,
                ttl: args.ttl,
            }),
            op => {
                let create = CreateTxn {
                    path: path.clone(),
                    data: args.data.clone(),
                    acl: acl.clone(),
                    ephemeral: mode.is_ephemeral(),
                    parent_cversion: new_cversion,
                };
                if op == OpCode::Create {
                    Txn::Create(create)
                } else {
                    Txn::Create2(create)
                }
            }
        };
        // As Apache, the pending owner follows the mode (flags), while the
        // txn follows the opcode.
        let owner = if mode.is_container() {
            CONTAINER_OWNER
        } else if mode.is_ttl() {
            tree::ttl_owner(args.ttl)
        } else if mode.is_ephemeral() {
            ctx.session_id
        } else {
            0
        };
        let mut parent = parent;
        parent.zxid = zxid;
        parent.child_count += 1;
        if let Some(stat) = parent.stat.as_mut() {
            stat.cversion = new_cversion;
            stat.pzxid = zxid;
        }
        self.outstanding.add(parent);
        self.outstanding.add(ChangeRecord {
            zxid,
            path,
            stat: Some(tree::new_stat(zxid, now_ms, owner)),
            child_count: 0,
            acl: AclList::new(acl),
            data_len,
        });
        Ok(txn)
    }

    /// SEMANTICS.md §3: note DELETE on the parent is checked before the
    /// node's existence.
    fn prep_delete(
        &mut self,
        ctx: &RequestContext,
        r: &DeleteRequest,
        zxid: i64,
    ) -> Result<Txn, ErrorCode> {
        self.check_session(ctx.session_id)?;
        let parent_path = parent_for_write(&r.path)?;
        if is_special_path(&r.path) {
            return Err(ErrorCode::BadArguments);
        }
        let parent = self.record_for(parent_path)?;
        self.check_acl(&parent.acl, Perms::DELETE, ctx)?;
        let node = self.record_for(&r.path)?;
        check_version(node.stat().version, r.version)?;
        if node.child_count > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        self.record_delete(parent, &r.path, zxid);
        Ok(Txn::Delete(DeleteTxn {
            path: r.path.clone(),
        }))
    }

    /// deleteContainer (the container manager's, session 0): no session or
    /// ACL check; NotEmpty if a child appeared, BadVersion for an ordinary
    /// ephemeral.
    fn prep_delete_container(&mut self, path: &str, zxid: i64) -> Result<Txn, ErrorCode> {
        let parent_path = parent_for_write(path)?;
        if is_special_path(path) {
            return Err(ErrorCode::BadArguments);
        }
        let node = self.record_for(path)?;
        if node.child_count > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        let kind = NodeKind::of(
            node.stat().ephemeral_owner,
            self.config.extended_types_enabled,
        );
        if matches!(kind, NodeKind::Ephemeral(_)) {
            return Err(ErrorCode::BadVersion);
        }
        let parent = self.record_for(parent_path)?;
        self.record_delete(parent, path, zxid);
        Ok(Txn::DeleteContainer(DeleteTxn {
            path: path.to_owned(),
        }))
    }

    fn record_delete(&mut self, mut parent: ChangeRecord, path: &str, zxid: i64) {
        parent.zxid = zxid;
        parent.child_count -= 1;
        if let Some(stat) = parent.stat.as_mut() {
            stat.pzxid = zxid;
        }
        self.outstanding.add(parent);
        self.outstanding.add(ChangeRecord {
            zxid,
            path: path.to_owned(),
            stat: None,
            child_count: -1,
            acl: AclList::default(),
            data_len: 0,
        });
    }

    fn prep_set_data(
        &mut self,
        ctx: &RequestContext,
        r: &SetDataRequest,
        zxid: i64,
        now_ms: i64,
    ) -> Result<Txn, ErrorCode> {
        self.check_session(ctx.session_id)?;
        validate_full(&r.path)?;
        let mut node = self.record_for(&r.path)?;
        self.check_acl(&node.acl, Perms::WRITE, ctx)?;
        let new_len = r.data.as_ref().map_or(0, Bytes::len) as i64;
        if self.config.enforce_quota {
            self.tree.check_quota(&r.path, 0, new_len - node.data_len)?;
        }
        let version = check_version(node.stat().version, r.version)?;
        node.zxid = zxid;
        node.data_len = new_len;
        if let Some(stat) = node.stat.as_mut() {
            stat.version = version;
            stat.mtime = now_ms;
            stat.mzxid = zxid;
        }
        self.outstanding.add(node);
        Ok(Txn::SetData(SetDataTxn {
            path: r.path.clone(),
            data: r.data.clone(),
            version,
        }))
    }

    fn prep_set_acl(
        &mut self,
        ctx: &RequestContext,
        r: &SetAclRequest,
        zxid: i64,
    ) -> Result<Txn, ErrorCode> {
        self.check_session(ctx.session_id)?;
        validate_full(&r.path)?;
        let acl = acl::fixup(&self.config, &ctx.auth, &r.acl)?;
        let mut node = self.record_for(&r.path)?;
        self.check_acl(&node.acl, Perms::ADMIN, ctx)?;
        let version = check_version(node.stat().aversion, r.version)?;
        node.zxid = zxid;
        node.acl = AclList::new(acl.clone());
        if let Some(stat) = node.stat.as_mut() {
            stat.aversion = version;
        }
        self.outstanding.add(node);
        Ok(Txn::SetAcl(SetAclTxn {
            path: r.path.clone(),
            acl,
            version,
        }))
    }

    fn prep_check(
        &mut self,
        ctx: &RequestContext,
        r: &CheckVersionRequest,
    ) -> Result<Txn, ErrorCode> {
        self.check_session(ctx.session_id)?;
        validate_full(&r.path)?;
        let node = self.record_for(&r.path)?;
        self.check_acl(&node.acl, Perms::READ, ctx)?;
        let version = check_version(node.stat().version, r.version)?;
        Ok(Txn::Check(CheckVersionTxn {
            path: r.path.clone(),
            version,
        }))
    }
}

/// The single-op writes a top-level request can be.
fn single_write_op(request: &Request) -> Option<WriteOp<'_>> {
    Some(match request {
        Request::Create(r) => WriteOp::Create(create_args(OpCode::Create, r)),
        Request::Create2(r) => WriteOp::Create(create_args(OpCode::Create2, r)),
        Request::CreateContainer(r) => WriteOp::Create(create_args(OpCode::CreateContainer, r)),
        Request::CreateTtl(r) => WriteOp::Create(CreateArgs {
            op: OpCode::CreateTtl,
            path: &r.path,
            data: &r.data,
            acl: &r.acl,
            flags: r.flags,
            ttl: r.ttl,
        }),
        Request::Delete(r) => WriteOp::Delete(r),
        Request::DeleteContainer(r) => WriteOp::DeleteContainer(&r.path),
        Request::SetData(r) => WriteOp::SetData(r),
        Request::SetAcl(r) => WriteOp::SetAcl(r),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_suffix_is_ten_digits_with_the_sign_inside() {
        assert_eq!(sequential_suffix(0), "0000000000");
        assert_eq!(sequential_suffix(7), "0000000007");
        assert_eq!(sequential_suffix(-5), "-000000005");
        assert_eq!(sequential_suffix(i32::MIN), "-2147483648");
    }

    #[test]
    fn version_minus_one_matches_anything_and_versions_wrap() {
        assert_eq!(check_version(4, -1), Ok(5));
        assert_eq!(check_version(4, 4), Ok(5));
        assert_eq!(check_version(4, 3), Err(ErrorCode::BadVersion));
        assert_eq!(check_version(i32::MAX, -1), Ok(i32::MIN));
    }

    #[test]
    fn ttl_rules_follow_the_mode_and_opcode() {
        let ttl_mode = CreateMode::PersistentWithTtl;
        assert_eq!(validate_ttl(OpCode::CreateTtl, ttl_mode, 1), Ok(()));
        assert_eq!(validate_ttl(OpCode::CreateTtl, ttl_mode, MAX_TTL), Ok(()));
        assert!(validate_ttl(OpCode::CreateTtl, ttl_mode, 0).is_err());
        assert!(validate_ttl(OpCode::CreateTtl, ttl_mode, MAX_TTL + 1).is_err());
        assert!(validate_ttl(OpCode::Create2, ttl_mode, -1).is_err());
        assert!(validate_ttl(OpCode::CreateTtl, CreateMode::Persistent, 10).is_err());
        assert!(validate_ttl(OpCode::CreateTtl, CreateMode::Persistent, -1).is_err());
        assert_eq!(
            validate_ttl(OpCode::Create, CreateMode::Persistent, -1),
            Ok(())
        );
    }

    #[test]
    fn writes_need_a_slash_and_no_nul() {
        assert_eq!(parent_for_write("abc"), Err(ErrorCode::BadArguments));
        assert_eq!(parent_for_write("/a\0"), Err(ErrorCode::BadArguments));
        assert_eq!(parent_for_write("/a"), Ok("/"));
        assert_eq!(parent_for_write("a/b"), Ok("a"));
    }

    fn record(zxid: i64, path: &str) -> ChangeRecord {
        ChangeRecord {
            zxid,
            path: path.into(),
            stat: Some(StatPersisted::default()),
            child_count: 0,
            acl: AclList::default(),
            data_len: 0,
        }
    }

    #[test]
    fn applying_a_zxid_retires_its_records_but_not_newer_ones() {
        let mut o = Outstanding::default();
        o.add(record(1, "/a"));
        o.add(record(2, "/a"));
        o.add(record(2, "/b"));
        o.applied(1);
        assert_eq!(o.latest["/a"].zxid, 2);
        o.applied(2);
        assert!(o.is_empty());
        assert!(o.latest.is_empty());
    }

    #[test]
    fn rollback_restores_the_previous_record_of_each_path() {
        let mut o = Outstanding::default();
        o.add(record(1, "/a"));
        let mark = o.len();
        o.add(record(2, "/a"));
        o.add(record(2, "/b"));
        o.rollback_to(mark);
        assert_eq!(o.len(), 1);
        assert_eq!(o.latest["/a"].zxid, 1);
        assert!(!o.latest.contains_key("/b"));
    }
}
