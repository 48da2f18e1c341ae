//! The iteration orders of Java's hash collections, where Apache ZooKeeper
//! lets one reach a client.
//!
//! Apache keeps some sets in `java.util` hash collections and hands them
//! to clients in the collection's iteration order: a connection's
//! identities (whoAmI, the `auth` ACL scheme; a `ConcurrentHashMap`, see
//! [`crate::db::acl::java_set_order`]) and a session's ephemeral paths (a
//! `HashSet<String>`: closeSession deletes them, and fires their watches,
//! in that order; getEphemerals lists them in it). A client can see those
//! orders, so we reproduce them (zk-server/DESIGN.md, "Orders clients
//! can observe").
//!
//! The rules, from the JDK 17 sources that Apache 3.8 runs on:
//! - a key's bucket is `(h ^ (h >>> 16)) & (table_len - 1)`, `h` its
//!   `hashCode`; iteration walks buckets in index order and, within one,
//!   the entries in the order they were inserted (a resize splits buckets
//!   without reordering them);
//! - a `HashMap`/`HashSet` allocates 16 slots at its first insertion and
//!   doubles when its size passes three quarters of the table; it never
//!   shrinks;
//! - `HashSet.clone()` and `new HashSet<>(c)` presize a fresh table for
//!   the current size (`tableSizeFor(size / 0.75 + 1)`) and insert in the
//!   source's iteration order.
//!
//! Not modelled: tree bins (8 keys in one bucket of a table of 64 or more
//! slots; below 64 such a bucket doubles the table, which is modelled).

use std::collections::HashMap;
use std::hash::Hash;

/// Java's `String.hashCode`: over UTF-16 code units.
pub fn string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// The slot a key with `hash` lands in within a table of `table_len`
/// slots (a power of two), after the spreading both `HashMap.hash` and
/// `ConcurrentHashMap.spread` apply (they differ only in the sign bit,
/// which no table index reaches).
pub fn bucket(hash: i32, table_len: usize) -> usize {
    let spread = (hash ^ ((hash as u32) >> 16) as i32) & 0x7fff_ffff;
    spread as usize & (table_len - 1)
}

/// First table of a `HashMap`.
const INITIAL_TABLE: usize = 16;
/// A bucket this long in a table smaller than [`MIN_TREEIFY_TABLE`]
/// doubles the table (`HashMap.treeifyBin`).
const TREEIFY_THRESHOLD: usize = 8;
const MIN_TREEIFY_TABLE: usize = 64;

/// The table length of a copy of a set of `len` entries
/// (`HashMap.putMapEntries` on an empty map, JDK 17).
fn presized_table_len(len: usize) -> usize {
    let wanted = (len as f32 / 0.75 + 1.0) as usize;
    wanted.max(1).next_power_of_two()
}

/// A set that remembers what a `java.util.HashSet<String>` would need to
/// iterate in the same order: each element's insertion stamp and the
/// table length, which only grows.
#[derive(Debug, Clone)]
pub struct JavaHashSet<T> {
    stamps: HashMap<T, u64>,
    next_stamp: u64,
    /// 0 until the first insertion allocates the table.
    table_len: usize,
}

impl<T> Default for JavaHashSet<T> {
    fn default() -> Self {
        JavaHashSet {
            stamps: HashMap::new(),
            next_stamp: 0,
            table_len: 0,
        }
    }
}

impl<T: Hash + Eq + AsRef<str> + std::borrow::Borrow<str>> JavaHashSet<T> {
    /// Adds `value` (false if present: Java keeps the first insertion's
    /// place).
    pub fn insert(&mut self, value: T) -> bool {
        if self.stamps.contains_key(value.as_ref()) {
            return false;
        }
        if self.table_len == 0 {
            self.table_len = INITIAL_TABLE;
        }
        let hash = string_hash(value.as_ref());
        self.stamps.insert(value, self.next_stamp);
        self.next_stamp += 1;
        if self.table_len < MIN_TREEIFY_TABLE && self.bucket_len(hash) > TREEIFY_THRESHOLD {
            self.table_len *= 2;
        }
        if self.stamps.len() > self.table_len / 4 * 3 {
            self.table_len *= 2;
        }
        true
    }

    pub fn remove(&mut self, value: &str) -> bool {
        self.stamps.remove(value).is_some()
    }

    pub fn len(&self) -> usize {
        self.stamps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.stamps.is_empty()
    }

    /// Elements in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.stamps.keys()
    }

    fn bucket_len(&self, hash: i32) -> usize {
        let b = bucket(hash, self.table_len);
        self.stamps
            .keys()
            .filter(|k| bucket(string_hash(k.as_ref()), self.table_len) == b)
            .count()
    }

    /// The set's own iteration order.
    pub fn iteration_order(&self) -> Vec<&T> {
        let mut keyed: Vec<(usize, u64, &T)> = self
            .stamps
            .iter()
            .map(|(k, &stamp)| (bucket(string_hash(k.as_ref()), self.table_len), stamp, k))
            .collect();
        keyed.sort_unstable_by_key(|&(b, stamp, _)| (b, stamp));
        keyed.into_iter().map(|(_, _, k)| k).collect()
    }

    /// A copy as `clone()` or `new HashSet<>(set)` makes it: a fresh
    /// table presized for the current size, filled in this set's order.
    pub fn copy(&self) -> JavaHashSet<T>
    where
        T: Clone,
    {
        let mut copy = JavaHashSet {
            stamps: HashMap::with_capacity(self.len()),
            next_stamp: 0,
            table_len: presized_table_len(self.len()),
        };
        for value in self.iteration_order() {
            copy.stamps.insert(value.clone(), copy.next_stamp);
            copy.next_stamp += 1;
        }
        copy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_of(items: &[&'static str]) -> JavaHashSet<&'static str> {
        let mut set = JavaHashSet::default();
        for item in items {
            set.insert(*item);
        }
        set
    }

    #[test]
    fn string_hash_is_javas() {
        // "abc".hashCode() == 96354, "".hashCode() == 0, and the UTF-16 rule.
        assert_eq!(string_hash("abc"), 96354);
        assert_eq!(string_hash(""), 0);
        assert_eq!(string_hash("polygenelubricants"), i32::MIN);
    }

    #[test]
    fn a_set_iterates_by_bucket_then_insertion() {
        // Single letters hash to their code: 'b' = 98 -> slot 2, 'a' = 97
        // -> slot 1, 'q' = 113 -> slot 1 (113 & 15), after 'a'.
        let set = set_of(&["b", "q", "a"]);
        assert_eq!(set.iteration_order(), [&"q", &"a", &"b"]);
    }

    #[test]
    fn the_table_grows_past_three_quarters_and_never_shrinks() {
        let mut set = JavaHashSet::default();
        for i in 0..13 {
            set.insert(format!("/n{i}"));
        }
        assert_eq!(set.table_len, 32);
        for i in 0..13 {
            set.remove(&format!("/n{i}"));
        }
        assert_eq!(set.table_len, 32);
    }

    #[test]
    fn a_copy_is_presized_for_its_size() {
        assert_eq!(presized_table_len(1), 2);
        assert_eq!(presized_table_len(2), 4);
        assert_eq!(presized_table_len(3), 8);
        assert_eq!(presized_table_len(6), 16);
        assert_eq!(presized_table_len(12), 32);
    }

    #[test]
    fn a_copy_of_a_small_set_reorders_by_its_smaller_table() {
        // 'a' = 97 and 'q' = 113 share slot 1 of 16 ('q' first); a copy
        // of 3 entries has 8 slots: 'a' -> 1, 'q' -> 1, 'b' -> 2, in the
        // source's order within the slot.
        let set = set_of(&["b", "q", "a"]);
        assert_eq!(set.copy().iteration_order(), [&"q", &"a", &"b"]);
        // "i" = 105 -> slot 9 of 16 but slot 1 of 8: after 'a' and 'q'
        // (the source lists it last) and before 'b'.
        let set = set_of(&["i", "b", "q", "a"]);
        assert_eq!(set.iteration_order(), [&"q", &"a", &"b", &"i"]);
        assert_eq!(set.copy().iteration_order(), [&"q", &"a", &"i", &"b"]);
    }

    #[test]
    fn an_insertion_into_a_copy_lands_in_its_bucket() {
        // The copy of {b, q, a} has 8 slots; 'i' (slot 1) joins the end
        // of slot 1, before 'b' (slot 2).
        let mut copy = set_of(&["b", "q", "a"]).copy();
        copy.insert("i");
        assert_eq!(copy.iteration_order(), [&"q", &"a", &"i", &"b"]);
    }
}
