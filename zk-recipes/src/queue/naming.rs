//! Item node names of the queue family (RECIPES.md §B12), as Curator
//! writes them, and the order consumers take them in. All pure.
//!
//! | queue     | name (before the server's 10-digit sequence) | order             |
//! |-----------|-----------------------------------------------|-------------------|
//! | plain     | `queue-`                                      | name              |
//! | priority  | `queue-<1 if p >= 0 else 0><p as u32, %08X>`  | name              |
//! | delay     | `queue-\|<due epoch ms, %08X>\|`              | due time, then seq|
//! | id        | `queue-\|<id, '/' and '\|' as '_'>\|`         | sequence          |

use std::cmp::Ordering;

use crate::paths::sequence_of;

/// Curator's prefix of item nodes.
pub const QUEUE_PREFIX: &str = "queue-";

/// Width of the server-appended sequence suffix.
const SEQUENCE_LEN: usize = 10;

/// How a queue names and orders its items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueKind {
    /// Arrival order.
    Plain,
    /// By priority, then arrival.
    Priority,
    /// By due time, then arrival.
    Delay,
    /// Arrival order, with an id in the name.
    Id,
}

/// `queue-` + the priority tag: lexicographic order of the tags is numeric
/// order of the priorities, negatives first.
pub fn priority_prefix(priority: i32) -> String {
    let sign = if priority >= 0 { '1' } else { '0' };
    // The two's-complement bits: -1 is FFFFFFFF, above every other negative.
    format!("{QUEUE_PREFIX}{sign}{:08X}", priority as u32)
}

/// `queue-|<due epoch millis in uppercase hex>|`.
pub fn delay_prefix(due_epoch_ms: u64) -> String {
    format!("{QUEUE_PREFIX}|{due_epoch_ms:08X}|")
}

/// `queue-|<id>|` with the separators `/` and `|` in the id made `_`.
pub fn id_prefix(id: &str) -> String {
    let clean: String = id
        .chars()
        .map(|c| if c == '/' || c == '|' { '_' } else { c })
        .collect();
    format!("{QUEUE_PREFIX}|{clean}|")
}

/// The due time of a delay-queue item: the hex between the last two `|`.
pub fn due_epoch_ms(name: &str) -> Option<u64> {
    let (head, _) = name.rsplit_once('|')?;
    let (_, hex) = head.rsplit_once('|')?;
    u64::from_str_radix(hex, 16).ok()
}

/// The id of an id-queue item (sanitised as it was written).
pub fn item_id(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(QUEUE_PREFIX)?.strip_prefix('|')?;
    let (id, _) = rest.rsplit_once('|')?;
    Some(id)
}

/// The name without its sequence suffix: what a requeued item is created
/// with, so it keeps its priority, due time or id.
pub fn requeue_prefix(name: &str) -> &str {
    match name.len().checked_sub(SEQUENCE_LEN) {
        Some(end) if sequence_of(name).is_some() && name.is_char_boundary(end) => &name[..end],
        _ => QUEUE_PREFIX,
    }
}

fn by_sequence(a: &str, b: &str) -> Ordering {
    sequence_of(a).cmp(&sequence_of(b)).then_with(|| a.cmp(b))
}

/// The queue's items in consumption order; foreign children (not
/// `queue-…`) are dropped, as Curator skips them.
pub fn ordered(kind: QueueKind, mut names: Vec<String>) -> Vec<String> {
    names.retain(|n| n.starts_with(QUEUE_PREFIX));
    match kind {
        QueueKind::Plain | QueueKind::Priority => names.sort(),
        QueueKind::Id => names.sort_by(|a, b| by_sequence(a, b)),
        QueueKind::Delay => names.sort_by(|a, b| {
            due_epoch_ms(a)
                .cmp(&due_epoch_ms(b))
                .then_with(|| by_sequence(a, b))
        }),
    }
    names
}

/// True when the item may be consumed at `now_ms` (delay items only once
/// due; unparsable delay names count as due so they cannot block the
/// queue forever).
pub fn is_due(kind: QueueKind, name: &str, now_ms: u64) -> bool {
    kind != QueueKind::Delay || !matches!(due_epoch_ms(name), Some(due) if due > now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn priority_tags_match_curators_format() {
        assert_eq!(priority_prefix(0), "queue-100000000");
        assert_eq!(priority_prefix(10), "queue-10000000A");
        assert_eq!(priority_prefix(-1), "queue-0FFFFFFFF");
        assert_eq!(priority_prefix(i32::MIN), "queue-080000000");
    }

    #[test]
    fn priority_items_sort_lowest_first_negatives_before_positives() {
        let seq = "0000000001";
        let list = [5, -1, 0, -7, 3]
            .iter()
            .map(|p| format!("{}{seq}", priority_prefix(*p)))
            .collect();
        let order: Vec<String> = ordered(QueueKind::Priority, list);
        let expected: Vec<String> = [-7, -1, 0, 3, 5]
            .iter()
            .map(|p| format!("{}{seq}", priority_prefix(*p)))
            .collect();
        assert_eq!(order, expected);
    }

    #[test]
    fn delay_names_carry_the_due_time_in_hex() {
        assert_eq!(delay_prefix(0x1234), "queue-|00001234|");
        assert_eq!(delay_prefix(1_700_000_000_000), "queue-|18BCFE56800|");
        assert_eq!(
            due_epoch_ms("queue-|18BCFE56800|0000000003"),
            Some(1_700_000_000_000)
        );
        assert_eq!(due_epoch_ms("queue-0000000003"), None);
    }

    #[test]
    fn delay_items_sort_by_due_time_then_sequence() {
        let order = ordered(
            QueueKind::Delay,
            names(&[
                "queue-|000000FF|0000000001",
                "queue-|0000000A|0000000003",
                "queue-|0000000A|0000000002",
            ]),
        );
        assert_eq!(
            order,
            names(&[
                "queue-|0000000A|0000000002",
                "queue-|0000000A|0000000003",
                "queue-|000000FF|0000000001",
            ])
        );
        assert!(is_due(QueueKind::Delay, &order[0], 10));
        assert!(!is_due(QueueKind::Delay, &order[2], 10));
        assert!(is_due(QueueKind::Plain, "queue-0000000001", 0));
    }

    #[test]
    fn ids_are_sanitised_and_ignored_for_ordering() {
        assert_eq!(id_prefix("a/b|c"), "queue-|a_b_c|");
        let order = ordered(
            QueueKind::Id,
            names(&["queue-|zz|0000000001", "queue-|aa|0000000002", "other"]),
        );
        assert_eq!(
            order,
            names(&["queue-|zz|0000000001", "queue-|aa|0000000002"])
        );
        assert_eq!(item_id("queue-|a_b|0000000002"), Some("a_b"));
        assert_eq!(item_id("queue-0000000002"), None);
    }

    #[test]
    fn requeued_items_keep_everything_but_the_sequence() {
        assert_eq!(requeue_prefix("queue-|aa|0000000002"), "queue-|aa|");
        assert_eq!(
            requeue_prefix("queue-1000000050000000012"),
            "queue-100000005"
        );
        assert_eq!(requeue_prefix("junk"), "queue-");
    }
}
