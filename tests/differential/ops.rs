//! Short constructors for the requests scripts send, so a script reads
//! like the operations it performs.

#![allow(dead_code)]

use bytes::Bytes;
use zk_proto::{
    Acl, AddWatchMode, AddWatchRequest, AuthPacket, CheckVersionRequest, CheckWatchesRequest,
    CreateMode, CreateRequest, CreateTtlRequest, DeleteRequest, ExistsRequest, GetAclRequest,
    GetAllChildrenNumberRequest, GetChildrenRequest, GetDataRequest, GetEphemeralsRequest, Id,
    MultiOp, MultiRequest, Perms, RemoveWatchesRequest, Request, SetAclRequest, SetDataRequest,
    SyncRequest, WatcherType,
};

pub fn data(bytes: &str) -> Option<Bytes> {
    Some(Bytes::copy_from_slice(bytes.as_bytes()))
}

fn create_request(
    path: &str,
    data: Option<Bytes>,
    acl: Vec<Acl>,
    mode: CreateMode,
) -> CreateRequest {
    CreateRequest {
        path: path.into(),
        data,
        acl,
        flags: mode.code(),
    }
}

/// create (1): answers with the path only.
pub fn create(path: &str, value: &str, mode: CreateMode) -> Request {
    Request::Create(create_request(path, data(value), Acl::open_unsafe(), mode))
}

/// create2 (15): answers with path and Stat.
pub fn create2(path: &str, value: &str, mode: CreateMode) -> Request {
    Request::Create2(create_request(path, data(value), Acl::open_unsafe(), mode))
}

/// create (1) with a null data buffer.
pub fn create_null(path: &str) -> Request {
    Request::Create(create_request(
        path,
        None,
        Acl::open_unsafe(),
        CreateMode::Persistent,
    ))
}

pub fn create_with_acl(path: &str, value: &str, acl: Vec<Acl>) -> Request {
    Request::Create2(create_request(
        path,
        data(value),
        acl,
        CreateMode::Persistent,
    ))
}

/// create2 with raw flags, for invalid modes.
pub fn create_flags(path: &str, flags: i32) -> Request {
    Request::Create2(CreateRequest {
        path: path.into(),
        data: data("x"),
        acl: Acl::open_unsafe(),
        flags,
    })
}

pub fn create_container(path: &str, value: &str) -> Request {
    Request::CreateContainer(create_request(
        path,
        data(value),
        Acl::open_unsafe(),
        CreateMode::Container,
    ))
}

pub fn create_ttl(path: &str, value: &str, mode: CreateMode, ttl: i64) -> Request {
    Request::CreateTtl(CreateTtlRequest {
        path: path.into(),
        data: data(value),
        acl: Acl::open_unsafe(),
        flags: mode.code(),
        ttl,
    })
}

pub fn delete(path: &str, version: i32) -> Request {
    Request::Delete(DeleteRequest {
        path: path.into(),
        version,
    })
}

pub fn exists(path: &str, watch: bool) -> Request {
    Request::Exists(ExistsRequest {
        path: path.into(),
        watch,
    })
}

pub fn get_data(path: &str, watch: bool) -> Request {
    Request::GetData(GetDataRequest {
        path: path.into(),
        watch,
    })
}

pub fn set_data(path: &str, value: &str, version: i32) -> Request {
    Request::SetData(SetDataRequest {
        path: path.into(),
        data: data(value),
        version,
    })
}

pub fn get_children(path: &str, watch: bool) -> Request {
    Request::GetChildren(GetChildrenRequest {
        path: path.into(),
        watch,
    })
}

pub fn get_children2(path: &str, watch: bool) -> Request {
    Request::GetChildren2(GetChildrenRequest {
        path: path.into(),
        watch,
    })
}

pub fn get_acl(path: &str) -> Request {
    Request::GetAcl(GetAclRequest { path: path.into() })
}

pub fn set_acl(path: &str, acl: Vec<Acl>, version: i32) -> Request {
    Request::SetAcl(SetAclRequest {
        path: path.into(),
        acl,
        version,
    })
}

pub fn sync(path: &str) -> Request {
    Request::Sync(SyncRequest {
        path: Some(path.into()),
    })
}

pub fn multi(ops: Vec<MultiOp>) -> Request {
    Request::Multi(MultiRequest { ops })
}

pub fn multi_read(ops: Vec<MultiOp>) -> Request {
    Request::MultiRead(MultiRequest { ops })
}

pub fn m_create(path: &str, value: &str, mode: CreateMode) -> MultiOp {
    MultiOp::Create(create_request(path, data(value), Acl::open_unsafe(), mode))
}

pub fn m_create2(path: &str, value: &str, mode: CreateMode) -> MultiOp {
    MultiOp::Create2(create_request(path, data(value), Acl::open_unsafe(), mode))
}

pub fn m_delete(path: &str, version: i32) -> MultiOp {
    MultiOp::Delete(DeleteRequest {
        path: path.into(),
        version,
    })
}

pub fn m_set(path: &str, value: &str, version: i32) -> MultiOp {
    MultiOp::SetData(SetDataRequest {
        path: path.into(),
        data: data(value),
        version,
    })
}

pub fn m_check(path: &str, version: i32) -> MultiOp {
    MultiOp::Check(CheckVersionRequest {
        path: path.into(),
        version,
    })
}

pub fn m_get_data(path: &str) -> MultiOp {
    MultiOp::GetData(GetDataRequest {
        path: path.into(),
        watch: false,
    })
}

pub fn m_get_children(path: &str) -> MultiOp {
    MultiOp::GetChildren(GetChildrenRequest {
        path: path.into(),
        watch: false,
    })
}

pub fn get_ephemerals(prefix: &str) -> Request {
    Request::GetEphemerals(GetEphemeralsRequest {
        prefix_path: prefix.into(),
    })
}

pub fn get_all_children_number(path: &str) -> Request {
    Request::GetAllChildrenNumber(GetAllChildrenNumberRequest { path: path.into() })
}

pub fn add_watch(path: &str, mode: AddWatchMode) -> Request {
    Request::AddWatch(AddWatchRequest {
        path: path.into(),
        mode: mode.code(),
    })
}

pub fn check_watches(path: &str, kind: WatcherType) -> Request {
    Request::CheckWatches(CheckWatchesRequest {
        path: path.into(),
        watcher_type: kind.code(),
    })
}

pub fn remove_watches(path: &str, kind: WatcherType) -> Request {
    Request::RemoveWatches(RemoveWatchesRequest {
        path: path.into(),
        watcher_type: kind.code(),
    })
}

pub fn add_auth(scheme: &str, auth: &str) -> Request {
    Request::Auth(AuthPacket {
        auth_type: 0,
        scheme: scheme.into(),
        auth: Some(Bytes::copy_from_slice(auth.as_bytes())),
    })
}

/// A digest ACL entry for `user` whose password is `password`:
/// the id is `user:base64(sha1("user:password"))`, given precomputed.
pub fn digest_acl(perms: Perms, id: &str) -> Acl {
    Acl::new(perms, Id::new("digest", id))
}

pub fn world_acl(perms: Perms) -> Vec<Acl> {
    vec![Acl::new(perms, Id::anyone())]
}

/// A request body built by hand, for what our encoder never writes: null
/// strings and buffers (length -1), negative counts. Jute's encoding:
/// big-endian ints, a string or buffer as its length and bytes.
#[derive(Debug, Clone, Default)]
pub struct Body(Vec<u8>);

impl Body {
    pub fn new() -> Self {
        Body::default()
    }

    pub fn int(mut self, v: i32) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn long(mut self, v: i64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn boolean(mut self, v: bool) -> Self {
        self.0.push(u8::from(v));
        self
    }

    /// A `ustring`; `None` is the null string.
    pub fn string(self, s: Option<&str>) -> Self {
        self.buffer(s.map(str::as_bytes))
    }

    /// A `buffer`; `None` is the null buffer.
    pub fn buffer(self, b: Option<&[u8]>) -> Self {
        match b {
            None => self.int(-1),
            Some(b) => {
                let mut me = self.int(i32::try_from(b.len()).unwrap_or(i32::MAX));
                me.0.extend_from_slice(b);
                me
            }
        }
    }

    /// One ACL entry, either string possibly null.
    pub fn acl(self, perms: Perms, scheme: Option<&str>, id: Option<&str>) -> Self {
        self.int(perms.0).string(scheme).string(id)
    }

    /// The header before each op of a multi.
    pub fn multi_op(self, op: zk_proto::OpCode) -> Self {
        self.int(op.code()).boolean(false).int(-1)
    }

    /// The header that ends a multi's ops.
    pub fn multi_done(self) -> Self {
        self.int(-1).boolean(true).int(-1)
    }

    pub fn bytes(self) -> Vec<u8> {
        self.0
    }
}

/// The body of a persistent create of `path` (null when `None`) with
/// empty data and the ACL entries `acl` adds to a body holding their count.
pub fn create_body(path: Option<&str>, count: i32, acl: impl FnOnce(Body) -> Body) -> Body {
    acl(Body::new().string(path).buffer(Some(b"")).int(count)).int(0)
}
