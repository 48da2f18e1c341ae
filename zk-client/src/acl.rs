//! The well-known ACLs as `'static` values (Java's `ZooDefs.Ids`).
//!
//! `zk_proto::Acl::open_unsafe()` builds a fresh `Vec`, so a closure that
//! borrows it (`|| c.create(p, d, &Acl::open_unsafe(), m)`) returns a
//! reference to a temporary. These live for the whole program:
//! `&OPEN_ACL_UNSAFE` coerces to `&'static [Acl]`.

use std::sync::LazyLock;

use zk_proto::Acl;

/// `OPEN_ACL_UNSAFE`: everyone may do everything.
pub static OPEN_ACL_UNSAFE: LazyLock<Vec<Acl>> = LazyLock::new(Acl::open_unsafe);

/// `CREATOR_ALL_ACL`: only the creator's authenticated identities.
pub static CREATOR_ALL_ACL: LazyLock<Vec<Acl>> = LazyLock::new(Acl::creator_all);

/// `READ_ACL_UNSAFE`: everyone may read.
pub static READ_ACL_UNSAFE: LazyLock<Vec<Acl>> = LazyLock::new(Acl::read_unsafe);

#[cfg(test)]
mod tests {
    use super::*;

    fn borrows_for_static(acl: &'static [Acl]) -> usize {
        acl.len()
    }

    #[test]
    fn the_constants_are_static_slices_equal_to_the_builders() {
        assert_eq!(borrows_for_static(&OPEN_ACL_UNSAFE), 1);
        assert_eq!(*OPEN_ACL_UNSAFE, Acl::open_unsafe());
        assert_eq!(*CREATOR_ALL_ACL, Acl::creator_all());
        assert_eq!(*READ_ACL_UNSAFE, Acl::read_unsafe());
    }
}
