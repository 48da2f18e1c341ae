//! Which ACL recipe nodes are created with (Curator's `ACLProvider`): the
//! framework asks its provider for every node a recipe creates, parents
//! and containers included.

use zk_client::Acl;

/// Chooses the ACL of each node the framework creates.
pub trait AclProvider: Send + Sync {
    /// The ACL for a node at `path` (relative to the namespace).
    fn acl_for(&self, path: &str) -> Vec<Acl>;
}

/// Everyone may do everything (`world:anyone`, all permissions): the
/// default, as Curator's `DefaultACLProvider`.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenAclProvider;

impl AclProvider for OpenAclProvider {
    fn acl_for(&self, _path: &str) -> Vec<Acl> {
        zk_client::OPEN_ACL_UNSAFE.clone()
    }
}

/// The same ACL for every node (e.g. `CREATOR_ALL_ACL` with digest auth).
#[derive(Debug, Clone)]
pub struct FixedAclProvider {
    acl: Vec<Acl>,
}

impl FixedAclProvider {
    /// A provider giving every node `acl`.
    pub fn new(acl: impl Into<Vec<Acl>>) -> Self {
        FixedAclProvider { acl: acl.into() }
    }
}

impl AclProvider for FixedAclProvider {
    fn acl_for(&self, _path: &str) -> Vec<Acl> {
        self.acl.clone()
    }
}

/// Any `Fn(&str) -> Vec<Acl>` chooses per path.
impl<F> AclProvider for F
where
    F: Fn(&str) -> Vec<Acl> + Send + Sync,
{
    fn acl_for(&self, path: &str) -> Vec<Acl> {
        self(path)
    }
}

/// A shared provider, printable (closures are not `Debug`).
#[derive(Clone)]
pub(crate) struct SharedAclProvider(pub(crate) std::sync::Arc<dyn AclProvider>);

impl std::fmt::Debug for SharedAclProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AclProvider")
    }
}

impl SharedAclProvider {
    pub(crate) fn acl_for(&self, path: &str) -> Vec<Acl> {
        self.0.acl_for(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zk_client::{Id, Perms};

    #[test]
    fn the_default_provider_gives_the_open_acl() {
        assert_eq!(OpenAclProvider.acl_for("/a"), Acl::open_unsafe());
    }

    #[test]
    fn a_closure_chooses_per_path() {
        let provider = |path: &str| {
            if path.starts_with("/secret") {
                Acl::creator_all()
            } else {
                vec![Acl::new(Perms::READ, Id::anyone())]
            }
        };
        assert_eq!(provider.acl_for("/secret/x"), Acl::creator_all());
        assert_eq!(provider.acl_for("/x"), Acl::read_unsafe());
    }
}
