//! Reads served from the applied tree, as Apache's `FinalRequestProcessor`
//! (SEMANTICS.md §4.1, §4.4, §4.5, §6.1, §13): ACL checks, watch
//! registration, setWatches re-registration.

use zk_proto::proto::{
    ErrorResponse, GetAclResponse, GetAllChildrenNumberResponse, GetChildren2Response,
    GetChildrenResponse, GetDataResponse, GetEphemeralsResponse, SetWatches2, SyncResponse,
    WhoAmIResponse,
};
use zk_proto::{
    AddWatchMode, ErrorCode, EventType, MultiOp, MultiResponse, MultiResult, Perms, Request,
    Response, WatcherEvent, WatcherType,
};

use super::{acl, watch, ConnId, Database, ReadResult, RequestContext};

impl Database {
    /// Serves a read request (exists, getData, getChildren(2), getACL,
    /// getEphemerals, getAllChildrenNumber, multiRead, whoAmI, addWatch,
    /// checkWatches, removeWatches, setWatches(2), sync); registers
    /// watches. Writes given here are Unimplemented.
    pub fn read(&mut self, ctx: &RequestContext, request: &Request) -> ReadResult {
        self.conn_auth.set(ctx.conn_id, &ctx.auth);
        let mut events = Vec::new();
        let result = match request {
            Request::Exists(r) => self.exists(ctx, &r.path, r.watch),
            Request::GetData(r) => self.get_data(ctx, &r.path, r.watch),
            Request::GetChildren(r) => self
                .get_children(ctx, &r.path, r.watch)
                .map(|children| Response::GetChildren(GetChildrenResponse { children })),
            Request::GetChildren2(r) => {
                self.get_children(ctx, &r.path, r.watch)
                    .and_then(|children| {
                        let stat = self.tree.stat(&r.path).ok_or(ErrorCode::NoNode)?;
                        Ok(Response::GetChildren2(GetChildren2Response {
                            children,
                            stat,
                        }))
                    })
            }
            Request::GetAcl(r) => self.get_acl(ctx, &r.path),
            Request::GetEphemerals(r) => Ok(self.get_ephemerals(ctx, &r.prefix_path)),
            Request::GetAllChildrenNumber(r) => self.get_all_children_number(ctx, &r.path),
            Request::MultiRead(m) => Ok(Response::Multi(self.multi_read(ctx, &m.ops))),
            Request::WhoAmI => Ok(Response::WhoAmI(WhoAmIResponse {
                client_info: acl::client_infos(&ctx.auth),
            })),
            Request::AddWatch(r) => self.add_watch(ctx, &r.path, r.mode),
            Request::CheckWatches(r) => self.check_watches(ctx, &r.path, r.watcher_type, false),
            Request::RemoveWatches(r) => self.check_watches(ctx, &r.path, r.watcher_type, true),
            Request::SetWatches(r) => {
                let all = SetWatches2 {
                    relative_zxid: r.relative_zxid,
                    data_watches: r.data_watches.clone(),
                    exist_watches: r.exist_watches.clone(),
                    child_watches: r.child_watches.clone(),
                    persistent_watches: Vec::new(),
                    persistent_recursive_watches: Vec::new(),
                };
                events = self.set_watches(ctx.conn_id, &all);
                Ok(Response::Empty)
            }
            Request::SetWatches2(r) => {
                events = self.set_watches(ctx.conn_id, r);
                Ok(Response::Empty)
            }
            Request::Sync(r) => Ok(Response::Sync(SyncResponse {
                path: r.path.clone(),
            })),
            Request::Ping => Ok(Response::Empty),
            _ => Err(ErrorCode::Unimplemented),
        };
        (result, events)
    }

    fn check_read(&self, ctx: &RequestContext, node_path: &str) -> Result<(), ErrorCode> {
        let node = self.tree.get(node_path).ok_or(ErrorCode::NoNode)?;
        acl::check(&self.config, &node.acl, Perms::READ, &ctx.auth)
    }

    /// exists: a NUL is BadArguments; READ only matters when the node
    /// exists; a watch is registered even on NoNode.
    fn exists(
        &mut self,
        ctx: &RequestContext,
        p: &str,
        watch: bool,
    ) -> Result<Response, ErrorCode> {
        if p.contains('\0') {
            return Err(ErrorCode::BadArguments);
        }
        if let Some(node) = self.tree.get(p) {
            acl::check(&self.config, &node.acl, Perms::READ, &ctx.auth)?;
        }
        if watch {
            self.watches.add_data_watch(p, ctx.conn_id);
        }
        self.tree
            .stat(p)
            .map(Response::Stat)
            .ok_or(ErrorCode::NoNode)
    }

    fn get_data(
        &mut self,
        ctx: &RequestContext,
        p: &str,
        watch: bool,
    ) -> Result<Response, ErrorCode> {
        self.check_read(ctx, p)?;
        if watch {
            self.watches.add_data_watch(p, ctx.conn_id);
        }
        let node = self.tree.get(p).ok_or(ErrorCode::NoNode)?;
        Ok(Response::GetData(GetDataResponse {
            data: node.data.clone(),
            stat: node.client_stat(self.tree.extended_types()),
        }))
    }

    fn get_children(
        &mut self,
        ctx: &RequestContext,
        p: &str,
        watch: bool,
    ) -> Result<Vec<String>, ErrorCode> {
        self.check_read(ctx, p)?;
        if watch {
            self.watches.add_child_watch(p, ctx.conn_id);
        }
        let node = self.tree.get(p).ok_or(ErrorCode::NoNode)?;
        Ok(node.children.names().map(str::to_owned).collect())
    }

    /// getACL: READ or ADMIN suffices; without ADMIN digest hashes are
    /// masked.
    fn get_acl(&self, ctx: &RequestContext, p: &str) -> Result<Response, ErrorCode> {
        let node = self.tree.get(p).ok_or(ErrorCode::NoNode)?;
        acl::check(
            &self.config,
            &node.acl,
            Perms::READ | Perms::ADMIN,
            &ctx.auth,
        )?;
        let is_admin = acl::check(&self.config, &node.acl, Perms::ADMIN, &ctx.auth).is_ok();
        let list = if is_admin {
            node.acl.to_vec()
        } else {
            acl::mask_digests(&node.acl)
        };
        Ok(Response::GetAcl(GetAclResponse {
            acl: list,
            stat: node.client_stat(self.tree.extended_types()),
        }))
    }

    /// The caller's own ephemerals whose path starts with the prefix (a
    /// plain string prefix; empty or `/` means all).
    fn get_ephemerals(&self, ctx: &RequestContext, prefix: &str) -> Response {
        let prefix = prefix.trim();
        let all = self.tree.ephemerals_in_apache_order(ctx.session_id);
        let ephemerals = if prefix.is_empty() || prefix == "/" {
            all
        } else {
            all.into_iter().filter(|p| p.starts_with(prefix)).collect()
        };
        Response::GetEphemerals(GetEphemeralsResponse { ephemerals })
    }

    fn get_all_children_number(
        &self,
        ctx: &RequestContext,
        p: &str,
    ) -> Result<Response, ErrorCode> {
        self.check_read(ctx, p)?;
        let total = i32::try_from(self.tree.descendant_count(p)).unwrap_or(i32::MAX);
        Ok(Response::GetAllChildrenNumber(
            GetAllChildrenNumberResponse {
                total_number: total,
            },
        ))
    }

    /// multiRead: each op on its own, errors per op, never a watch.
    fn multi_read(&mut self, ctx: &RequestContext, ops: &[MultiOp]) -> MultiResponse {
        let results = ops
            .iter()
            .map(|op| {
                let result = match op {
                    MultiOp::GetData(r) => {
                        self.get_data(ctx, &r.path, false).map(|resp| match resp {
                            Response::GetData(d) => MultiResult::GetData(d),
                            _ => MultiResult::Error(ErrorCode::SystemError.code()),
                        })
                    }
                    MultiOp::GetChildren(r) => self
                        .get_children(ctx, &r.path, false)
                        .map(|children| MultiResult::GetChildren(GetChildrenResponse { children })),
                    _ => Err(ErrorCode::MarshallingError),
                };
                result.unwrap_or_else(|code| MultiResult::Error(code.code()))
            })
            .collect();
        MultiResponse { results }
    }

    /// addWatch: no ACL check, the node need not exist; always answers 0.
    fn add_watch(
        &mut self,
        ctx: &RequestContext,
        p: &str,
        mode: i32,
    ) -> Result<Response, ErrorCode> {
        let mode = AddWatchMode::from_code(mode).ok_or(ErrorCode::MarshallingError)?;
        self.watches
            .add_persistent(p, ctx.conn_id, mode == AddWatchMode::PersistentRecursive);
        Ok(Response::AddWatch(ErrorResponse { err: 0 }))
    }

    /// checkWatches / removeWatches: NoWatcher when nothing matches.
    fn check_watches(
        &mut self,
        ctx: &RequestContext,
        p: &str,
        watcher_type: i32,
        remove: bool,
    ) -> Result<Response, ErrorCode> {
        let kind = WatcherType::from_code(watcher_type).ok_or(ErrorCode::MarshallingError)?;
        let found = if remove {
            self.watches.remove(p, ctx.conn_id, kind)
        } else {
            self.watches.contains(p, ctx.conn_id, kind)
        };
        if found {
            Ok(Response::Empty)
        } else {
            Err(ErrorCode::NoWatcher)
        }
    }

    /// Re-registers a reconnecting client's watches, firing at once those
    /// whose node changed after `relative_zxid` (SEMANTICS.md §4.5). No ACL
    /// checks.
    fn set_watches(&mut self, conn: ConnId, w: &SetWatches2) -> Vec<(ConnId, WatcherEvent)> {
        let mut events = Vec::new();
        let mut fire = |t: EventType, p: &str| events.push((conn, watch::event(t, p)));
        for p in &w.data_watches {
            match self.tree.get(p) {
                None => fire(EventType::NodeDeleted, p),
                Some(n) if n.stat.mzxid > w.relative_zxid => fire(EventType::NodeDataChanged, p),
                Some(_) => self.watches.add_data_watch(p, conn),
            }
        }
        for p in &w.exist_watches {
            if self.tree.contains(p) {
                fire(EventType::NodeCreated, p);
            } else {
                self.watches.add_data_watch(p, conn);
            }
        }
        for p in &w.child_watches {
            match self.tree.get(p) {
                None => fire(EventType::NodeDeleted, p),
                Some(n) if n.stat.pzxid > w.relative_zxid => {
                    fire(EventType::NodeChildrenChanged, p)
                }
                Some(_) => self.watches.add_child_watch(p, conn),
            }
        }
        for p in &w.persistent_watches {
            self.watches.add_persistent(p, conn, false);
        }
        for p in &w.persistent_recursive_watches {
            self.watches.add_persistent(p, conn, true);
        }
        events
    }
}
