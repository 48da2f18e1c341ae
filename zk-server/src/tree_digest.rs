//! Apache's tree digest (`zookeeper.digest.enabled`, on by default in 3.8),
//! which the `hash` four-letter word and the AdminServer's `hash` command
//! report: the wrapping sum over the nodes of a CRC32 of the node's path,
//! data and persisted stat. Nodes under `/zookeeper/` count as 0 and the
//! root's path is taken as the empty string, as Apache's
//! `DigestCalculator` (digest version 2) does.

use crate::db::tree::DataTree;
use zk_proto::StatPersisted;

/// The digest version Apache reports beside each digest.
pub const DIGEST_VERSION: i32 = 2;

/// One node's digest.
pub fn node_digest(path: &str, data: Option<&[u8]>, stat: &StatPersisted) -> u64 {
    if path.starts_with("/zookeeper/") {
        return 0;
    }
    let path = if path == "/" { "" } else { path };
    let mut crc = crc32fast::Hasher::new();
    crc.update(path.as_bytes());
    if let Some(data) = data {
        crc.update(data);
    }
    let mut fields = [0u8; 60];
    let longs = [stat.czxid, stat.mzxid, stat.pzxid, stat.ctime, stat.mtime];
    for (i, v) in longs.iter().enumerate() {
        fields[i * 8..i * 8 + 8].copy_from_slice(&v.to_be_bytes());
    }
    for (i, v) in [stat.version, stat.cversion, stat.aversion]
        .iter()
        .enumerate()
    {
        fields[40 + i * 4..44 + i * 4].copy_from_slice(&v.to_be_bytes());
    }
    fields[52..60].copy_from_slice(&stat.ephemeral_owner.to_be_bytes());
    crc.update(&fields);
    u64::from(crc.finalize())
}

/// The whole tree's digest (Apache's `DataTree.getTreeDigest`). It walks
/// every node: callers run it where a full walk is acceptable (a 4lw).
pub fn tree_digest(tree: &DataTree) -> u64 {
    let mut sum = 0u64;
    tree.for_each_preorder(|path, node| {
        sum = sum.wrapping_add(node_digest(path, node.data.as_deref(), &node.stat));
    });
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_under_the_zookeeper_subtree_count_as_zero() {
        let stat = StatPersisted::default();
        assert_eq!(node_digest("/zookeeper/quota", Some(b"x"), &stat), 0);
        assert_ne!(node_digest("/zookeeper", None, &stat), 0);
    }

    #[test]
    fn the_root_is_digested_under_the_empty_path() {
        let stat = StatPersisted::default();
        let mut crc = crc32fast::Hasher::new();
        crc.update(&[0u8; 60]);
        assert_eq!(node_digest("/", None, &stat), u64::from(crc.finalize()));
    }
}
