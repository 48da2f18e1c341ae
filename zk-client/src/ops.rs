//! Operations of a `multi` / `multiRead` and their results.

use std::time::Duration;

use bytes::Bytes;
use zk_proto::{
    Acl, CheckVersionRequest, CreateMode, CreateRequest, CreateTtlRequest, DeleteRequest,
    GetChildrenRequest, GetDataRequest, MultiOp, MultiResult, SetDataRequest, Stat,
};

use crate::error::{Error, Result};
use crate::path::{validate_path, Chroot};

/// One operation of a transaction (`multi`) or of a `multi_read`, with
/// paths as the caller sees them. Built freely; checked when sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    kind: OpKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum OpKind {
    Create {
        path: String,
        data: Bytes,
        acl: Vec<Acl>,
        mode: CreateMode,
        ttl: Option<Duration>,
    },
    Delete {
        path: String,
        version: i32,
    },
    SetData {
        path: String,
        data: Bytes,
        version: i32,
    },
    Check {
        path: String,
        version: i32,
    },
    GetData {
        path: String,
    },
    GetChildren {
        path: String,
    },
}

impl Op {
    /// Create a node (Java `Op.create`): opcode create, or createContainer
    /// for containers. TTL modes need [`Op::create_ttl`].
    pub fn create(path: &str, data: &[u8], acl: &[Acl], mode: CreateMode) -> Op {
        Op {
            kind: OpKind::Create {
                path: path.into(),
                data: Bytes::copy_from_slice(data),
                acl: acl.to_vec(),
                mode,
                ttl: None,
            },
        }
    }

    /// Create a node with a TTL (mode must be one of the TTL modes).
    pub fn create_ttl(path: &str, data: &[u8], acl: &[Acl], mode: CreateMode, ttl: Duration) -> Op {
        Op {
            kind: OpKind::Create {
                path: path.into(),
                data: Bytes::copy_from_slice(data),
                acl: acl.to_vec(),
                mode,
                ttl: Some(ttl),
            },
        }
    }

    /// Delete a node; `version` `None` matches any.
    pub fn delete(path: &str, version: Option<i32>) -> Op {
        Op {
            kind: OpKind::Delete {
                path: path.into(),
                version: version.unwrap_or(-1),
            },
        }
    }

    /// Set a node's data; `version` `None` matches any.
    pub fn set_data(path: &str, data: &[u8], version: Option<i32>) -> Op {
        Op {
            kind: OpKind::SetData {
                path: path.into(),
                data: Bytes::copy_from_slice(data),
                version: version.unwrap_or(-1),
            },
        }
    }

    /// Assert a node's version (only inside `multi`).
    pub fn check(path: &str, version: i32) -> Op {
        Op {
            kind: OpKind::Check {
                path: path.into(),
                version,
            },
        }
    }

    /// Read a node's data (only inside `multi_read`).
    pub fn get_data(path: &str) -> Op {
        Op {
            kind: OpKind::GetData { path: path.into() },
        }
    }

    /// List a node's children (only inside `multi_read`).
    pub fn get_children(path: &str) -> Op {
        Op {
            kind: OpKind::GetChildren { path: path.into() },
        }
    }

    pub(crate) fn is_read(&self) -> bool {
        matches!(
            self.kind,
            OpKind::GetData { .. } | OpKind::GetChildren { .. }
        )
    }

    /// Validates and converts to the wire op with the chroot applied.
    pub(crate) fn to_wire(&self, chroot: &Chroot) -> Result<MultiOp> {
        Ok(match &self.kind {
            OpKind::Create {
                path,
                data,
                acl,
                mode,
                ttl,
            } => {
                validate_create(path, acl, *mode, *ttl)?;
                let path = chroot.prefix(path);
                let (data, acl, flags) = (Some(data.clone()), acl.clone(), mode.code());
                match ttl {
                    Some(ttl) => MultiOp::CreateTtl(CreateTtlRequest {
                        path,
                        data,
                        acl,
                        flags,
                        ttl: ttl_millis(*ttl),
                    }),
                    None if mode.is_container() => MultiOp::CreateContainer(CreateRequest {
                        path,
                        data,
                        acl,
                        flags,
                    }),
                    None => MultiOp::Create(CreateRequest {
                        path,
                        data,
                        acl,
                        flags,
                    }),
                }
            }
            OpKind::Delete { path, version } => {
                validate_path(path, false)?;
                MultiOp::Delete(DeleteRequest {
                    path: chroot.prefix(path),
                    version: *version,
                })
            }
            OpKind::SetData {
                path,
                data,
                version,
            } => {
                validate_path(path, false)?;
                MultiOp::SetData(SetDataRequest {
                    path: chroot.prefix(path),
                    data: Some(data.clone()),
                    version: *version,
                })
            }
            OpKind::Check { path, version } => {
                validate_path(path, false)?;
                MultiOp::Check(CheckVersionRequest {
                    path: chroot.prefix(path),
                    version: *version,
                })
            }
            OpKind::GetData { path } => {
                validate_path(path, false)?;
                MultiOp::GetData(GetDataRequest {
                    path: chroot.prefix(path),
                    watch: false,
                })
            }
            OpKind::GetChildren { path } => {
                validate_path(path, false)?;
                MultiOp::GetChildren(GetChildrenRequest {
                    path: chroot.prefix(path),
                    watch: false,
                })
            }
        })
    }
}

/// Milliseconds for the wire, saturating.
pub(crate) fn ttl_millis(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
}

/// The Java client's checks before a create: valid path (with the sequence
/// suffix), a non-empty ACL, and a TTL exactly when the mode has one.
pub(crate) fn validate_create(
    path: &str,
    acl: &[Acl],
    mode: CreateMode,
    ttl: Option<Duration>,
) -> Result<()> {
    validate_path(path, mode.is_sequential())?;
    if acl.is_empty() {
        return Err(Error::InvalidAcl);
    }
    match (mode.is_ttl(), ttl) {
        (true, None) => Err(Error::bad_arguments(format!("{mode:?} needs a TTL"))),
        (true, Some(ttl)) if ttl.is_zero() => Err(Error::bad_arguments("TTL must be positive")),
        (false, Some(_)) => Err(Error::bad_arguments(format!("{mode:?} takes no TTL"))),
        _ => Ok(()),
    }
}

/// The outcome of one op of a multi / multiRead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    /// `stat` is present for createContainer / createTTL ops.
    Create {
        /// The created path (chroot stripped).
        path: String,
        /// The new node's Stat, when the opcode returns one.
        stat: Option<Stat>,
    },
    /// A delete was applied.
    Delete,
    /// A setData was applied.
    SetData {
        /// The node's new Stat.
        stat: Stat,
    },
    /// A check passed.
    Check,
    /// A getData of a `multi_read`.
    GetData {
        /// The node's data.
        data: Bytes,
        /// The node's Stat.
        stat: Stat,
    },
    /// A getChildren of a `multi_read`.
    GetChildren {
        /// The child names.
        children: Vec<String>,
    },
    /// In a failed transaction: this op was fine but was not applied.
    NotApplied,
    /// This op failed (in a transaction, the ops after the failing one
    /// report `RuntimeInconsistency`).
    Error(Error),
}

impl OpResult {
    pub(crate) fn from_wire(result: MultiResult, chroot: &Chroot) -> OpResult {
        match result {
            MultiResult::Create(r) => OpResult::Create {
                path: chroot.strip(&r.path),
                stat: None,
            },
            MultiResult::Create2(r) => OpResult::Create {
                path: chroot.strip(&r.path),
                stat: Some(r.stat),
            },
            MultiResult::Delete => OpResult::Delete,
            MultiResult::SetData(r) => OpResult::SetData { stat: r.stat },
            MultiResult::Check => OpResult::Check,
            MultiResult::GetData(r) => OpResult::GetData {
                data: r.data.unwrap_or_default(),
                stat: r.stat,
            },
            MultiResult::GetChildren(r) => OpResult::GetChildren {
                children: r.children,
            },
            MultiResult::Error(0) => OpResult::NotApplied,
            MultiResult::Error(code) => OpResult::Error(Error::from_code(code)),
        }
    }

    /// The error of a failed op, if this is one.
    pub fn error(&self) -> Option<&Error> {
        match self {
            OpResult::Error(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zk_proto::{Create2Response, CreateResponse};

    #[test]
    fn ops_carry_the_chroot_on_the_wire() {
        let op = Op::delete("/a", None)
            .to_wire(&Chroot::new(Some("/r")))
            .unwrap();
        assert_eq!(
            op,
            MultiOp::Delete(DeleteRequest {
                path: "/r/a".into(),
                version: -1
            })
        );
    }

    #[test]
    fn create_picks_the_opcode_from_the_mode() {
        let acl = Acl::open_unsafe();
        let root = Chroot::default();
        assert!(matches!(
            Op::create("/c", b"", &acl, CreateMode::Container).to_wire(&root),
            Ok(MultiOp::CreateContainer(_))
        ));
        assert!(matches!(
            Op::create("/p", b"", &acl, CreateMode::Persistent).to_wire(&root),
            Ok(MultiOp::Create(_))
        ));
        assert!(matches!(
            Op::create_ttl("/t", b"", &acl, CreateMode::PersistentWithTtl, Duration::from_secs(1))
                .to_wire(&root),
            Ok(MultiOp::CreateTtl(r)) if r.ttl == 1000
        ));
    }

    #[test]
    fn bad_creates_are_refused_before_sending() {
        let acl = Acl::open_unsafe();
        let root = Chroot::default();
        assert!(matches!(
            Op::create("/t", b"", &acl, CreateMode::PersistentWithTtl).to_wire(&root),
            Err(Error::BadArguments(_))
        ));
        assert_eq!(
            Op::create("/x", b"", &[], CreateMode::Persistent).to_wire(&root),
            Err(Error::InvalidAcl)
        );
        assert!(matches!(
            Op::create("x", b"", &acl, CreateMode::Persistent).to_wire(&root),
            Err(Error::BadArguments(_))
        ));
    }

    #[test]
    fn results_strip_the_chroot_and_name_rolled_back_ops() {
        let root = Chroot::new(Some("/r"));
        assert_eq!(
            OpResult::from_wire(
                MultiResult::Create(CreateResponse {
                    path: "/r/a".into()
                }),
                &root
            ),
            OpResult::Create {
                path: "/a".into(),
                stat: None
            }
        );
        assert!(matches!(
            OpResult::from_wire(
                MultiResult::Create2(Create2Response {
                    path: "/r".into(),
                    stat: Stat::default()
                }),
                &root
            ),
            OpResult::Create { path, stat: Some(_) } if path == "/"
        ));
        assert_eq!(
            OpResult::from_wire(MultiResult::Error(0), &root),
            OpResult::NotApplied
        );
        assert_eq!(
            OpResult::from_wire(MultiResult::Error(-110), &root),
            OpResult::Error(Error::NodeExists)
        );
    }
}
