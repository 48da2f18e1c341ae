//! Quota bookkeeping under `/zookeeper/quota` (SEMANTICS.md §9): the
//! `StatsTrack` text format and the node layout.

use std::collections::BTreeMap;

/// Where quota definitions live.
pub const QUOTA_ROOT: &str = "/zookeeper/quota";
/// The node holding a quota's limits.
pub const LIMIT_NODE: &str = "zookeeper_limits";
/// The node holding a quota's current usage.
pub const STAT_NODE: &str = "zookeeper_stats";

const COUNT: &str = "count";
const BYTES: &str = "bytes";
const COUNT_HARD_LIMIT: &str = "countHardLimit";
const BYTE_HARD_LIMIT: &str = "byteHardLimit";

/// `/zookeeper/quota<path>/zookeeper_limits`.
pub fn limit_path(path: &str) -> String {
    format!("{QUOTA_ROOT}{path}/{LIMIT_NODE}")
}

/// `/zookeeper/quota<path>/zookeeper_stats`.
pub fn stat_path(path: &str) -> String {
    format!("{QUOTA_ROOT}{path}/{STAT_NODE}")
}

/// The quota'd path a node under `/zookeeper/quota` describes:
/// `/zookeeper/quota/a/b` → `/a/b`.
pub fn trim_quota_path(quota_node_parent: &str) -> &str {
    quota_node_parent
        .strip_prefix(QUOTA_ROOT)
        .filter(|rest| !rest.is_empty())
        .unwrap_or("/")
}

/// `StatsTrack`: `key=value` pairs separated by `,` or `;`. Missing keys
/// read as -1 (unlimited / unknown).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatsTrack {
    values: BTreeMap<String, i64>,
}

impl StatsTrack {
    /// Parses the text of a limits or stats node. Pairs that do not parse
    /// are skipped: a client wrote this data, it must not stop the server.
    pub fn parse(data: Option<&[u8]>) -> Self {
        let mut values = BTreeMap::new();
        let text = data.map(String::from_utf8_lossy).unwrap_or_default();
        for pair in text.split([',', ';']).filter(|p| !p.is_empty()) {
            let mut kv = pair.split('=');
            let (Some(key), Some(value)) = (kv.next(), kv.next()) else {
                continue;
            };
            if let Ok(v) = value.trim().parse::<i64>() {
                values.insert(key.to_owned(), v);
            }
        }
        StatsTrack { values }
    }

    /// A usage record with just a count and a byte total.
    pub fn usage(count: i64, bytes: i64) -> Self {
        let mut values = BTreeMap::new();
        values.insert(COUNT.to_owned(), count);
        values.insert(BYTES.to_owned(), bytes);
        StatsTrack { values }
    }

    fn get(&self, key: &str) -> i64 {
        self.values.get(key).copied().unwrap_or(-1)
    }

    pub fn count(&self) -> i64 {
        self.get(COUNT)
    }

    pub fn bytes(&self) -> i64 {
        self.get(BYTES)
    }

    pub fn count_hard_limit(&self) -> i64 {
        self.get(COUNT_HARD_LIMIT)
    }

    pub fn byte_hard_limit(&self) -> i64 {
        self.get(BYTE_HARD_LIMIT)
    }

    /// Adds to the count and byte total (in place, as the stats node is
    /// updated without a txn).
    pub fn add(&mut self, count_diff: i64, bytes_diff: i64) {
        let count = self.count().wrapping_add(count_diff);
        let bytes = self.bytes().wrapping_add(bytes_diff);
        self.values.insert(COUNT.to_owned(), count);
        self.values.insert(BYTES.to_owned(), bytes);
    }

    /// Apache's canonical text: `count=c,bytes=b`, then, when other keys
    /// exist, `=` and `;key=value` for each of them in key order.
    pub fn to_text(&self) -> String {
        let mut text = format!("{COUNT}={},{BYTES}={}", self.count(), self.bytes());
        let mut others = self
            .values
            .iter()
            .filter(|(k, _)| k.as_str() != COUNT && k.as_str() != BYTES)
            .peekable();
        if others.peek().is_some() {
            text.push('=');
            for (key, value) in others {
                text.push_str(&format!(";{key}={value}"));
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_keys_read_as_unlimited() {
        let s = StatsTrack::parse(Some(b"count=5"));
        assert_eq!((s.count(), s.bytes(), s.count_hard_limit()), (5, -1, -1));
        assert_eq!(StatsTrack::parse(None).count(), -1);
    }

    #[test]
    fn the_canonical_text_lists_extra_keys_sorted_after_an_equals() {
        let s = StatsTrack::parse(Some(
            b"count=-1,bytes=-1=;countHardLimit=2;byteHardLimit=-1",
        ));
        assert_eq!(s.count_hard_limit(), 2);
        assert_eq!(
            s.to_text(),
            "count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=2"
        );
        assert_eq!(StatsTrack::usage(3, 10).to_text(), "count=3,bytes=10");
    }

    #[test]
    fn garbage_is_skipped_not_fatal() {
        let s = StatsTrack::parse(Some(b"count=x,,bytes=7,junk"));
        assert_eq!((s.count(), s.bytes()), (-1, 7));
    }

    #[test]
    fn quota_paths_follow_the_layout() {
        assert_eq!(limit_path("/a"), "/zookeeper/quota/a/zookeeper_limits");
        assert_eq!(stat_path("/a/b"), "/zookeeper/quota/a/b/zookeeper_stats");
        assert_eq!(trim_quota_path("/zookeeper/quota/a/b"), "/a/b");
    }
}
