//! Shared ACL lists. Almost every znode carries one of a handful of ACLs
//! (OPEN_ACL_UNSAFE above all), so the tree keeps each distinct list once
//! and nodes hold a pointer to it, as Apache's reference-counted
//! `ReferenceCountedACLCache` does. A node then pays 8 bytes for its ACL
//! instead of a vector of entries with two heap strings each.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

use zk_proto::Acl;

/// An immutable, cheaply cloned ACL list (the default is empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AclList(Arc<Vec<Acl>>);

impl AclList {
    /// A list of its own, not shared with the tree's (for transient uses
    /// such as pending changes).
    pub fn new(acl: Vec<Acl>) -> Self {
        AclList(Arc::new(acl))
    }

    /// True when both handles point at the same stored list.
    pub fn ptr_eq(&self, other: &AclList) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// An address identifying the stored list (snapshot ACL numbering).
    pub(crate) fn id(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }

    /// Handles alive, the interner's own included.
    fn holders(&self) -> usize {
        Arc::strong_count(&self.0)
    }
}

impl Deref for AclList {
    type Target = [Acl];

    fn deref(&self) -> &[Acl] {
        &self.0
    }
}

impl PartialEq<Vec<Acl>> for AclList {
    fn eq(&self, other: &Vec<Acl>) -> bool {
        self.0.as_slice() == other.as_slice()
    }
}

impl PartialEq<[Acl]> for AclList {
    fn eq(&self, other: &[Acl]) -> bool {
        self.0.as_slice() == other
    }
}

/// Hands out one shared [`AclList`] per distinct list.
///
/// Lists no node uses any more are dropped by a sweep that runs whenever
/// the interner has doubled since the last one, so its size stays within
/// twice the live lists (plus a small floor) at amortised O(1) cost.
#[derive(Debug, Clone, Default)]
pub struct AclInterner {
    /// By content hash; a bucket holds the (rare) lists sharing a hash.
    lists: HashMap<u64, Vec<AclList>>,
    len: usize,
    sweep_at: usize,
}

/// Below this many lists the interner never sweeps.
const SWEEP_FLOOR: usize = 64;

impl AclInterner {
    /// The shared list equal to `acl`, stored now if it is new.
    pub fn intern(&mut self, acl: &[Acl]) -> AclList {
        let hash = content_hash(acl);
        if let Some(found) = self
            .lists
            .get(&hash)
            .and_then(|bucket| bucket.iter().find(|l| **l == *acl))
        {
            return found.clone();
        }
        if self.len >= self.sweep_at.max(SWEEP_FLOOR) {
            self.sweep();
        }
        let list = AclList::new(acl.to_vec());
        self.lists.entry(hash).or_default().push(list.clone());
        self.len += 1;
        list
    }

    /// Every list stored (swept ones aside).
    pub fn lists(&self) -> impl Iterator<Item = &AclList> {
        self.lists.values().flatten()
    }

    /// Distinct lists currently stored.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Drops the lists only the interner still holds.
    fn sweep(&mut self) {
        self.lists.retain(|_, bucket| {
            bucket.retain(|list| list.holders() > 1);
            !bucket.is_empty()
        });
        self.len = self.lists.values().map(Vec::len).sum();
        self.sweep_at = self.len * 2;
    }
}

/// A hash of the list's content (`Acl` itself is not `Hash`).
fn content_hash(acl: &[Acl]) -> u64 {
    let mut h = DefaultHasher::new();
    acl.len().hash(&mut h);
    for entry in acl {
        entry.perms.hash(&mut h);
        entry.id.scheme.hash(&mut h);
        entry.id.id.hash(&mut h);
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use zk_proto::{Id, Perms};

    fn ip_acl(i: usize) -> Vec<Acl> {
        vec![Acl::new(Perms::READ, Id::new("ip", format!("10.0.0.{i}")))]
    }

    #[test]
    fn equal_lists_share_one_allocation() {
        let mut interner = AclInterner::default();
        let a = interner.intern(&Acl::open_unsafe());
        let b = interner.intern(&Acl::open_unsafe());
        assert!(a.ptr_eq(&b));
        assert_eq!(a, Acl::open_unsafe());
        assert_eq!(interner.len(), 1);
    }

    #[test]
    fn different_lists_stay_apart() {
        let mut interner = AclInterner::default();
        let open = interner.intern(&Acl::open_unsafe());
        let read = interner.intern(&Acl::read_unsafe());
        assert!(!open.ptr_eq(&read));
        assert_eq!(read, Acl::read_unsafe());
        assert_eq!(interner.len(), 2);
    }

    #[test]
    fn lists_nobody_holds_are_swept_as_the_interner_grows() {
        let mut interner = AclInterner::default();
        let kept = interner.intern(&ip_acl(0));
        for i in 1..=1000 {
            drop(interner.intern(&ip_acl(i)));
        }
        assert!(
            interner.len() <= 2 * SWEEP_FLOOR + 1,
            "dropped lists are forgotten: {}",
            interner.len()
        );
        assert!(interner.intern(&ip_acl(0)).ptr_eq(&kept), "held lists stay");
    }
}
