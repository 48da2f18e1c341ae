//! Pure helpers for znode names: joining paths, Curator's protection
//! prefix (RECIPES.md §A4), random v4 UUIDs and the sequence-suffix sort
//! key every lock-family recipe orders its contenders by (§B1).

use rand::Rng;

/// `_c_` + 36-char UUID + `-`.
pub const PROTECTED_PREFIX_LEN: usize = 40;
const PROTECTED_MARK: &str = "_c_";

/// `parent/child`, without doubling the slash under the root.
pub fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// The parent of an absolute path; `None` for the root.
pub fn parent(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    match path.rfind('/') {
        Some(0) => Some("/"),
        Some(i) => Some(&path[..i]),
        None => None,
    }
}

/// The last segment of a path.
pub fn node_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// A random version 4 UUID in canonical lowercase form.
pub fn uuid_v4(rng: &mut impl Rng) -> String {
    let mut bytes: [u8; 16] = rng.gen();
    // Version 4 in the high nibble of byte 6, RFC 4122 variant in byte 8.
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The protection prefix for `uuid`: `_c_<uuid>-`.
pub fn protected_prefix(uuid: &str) -> String {
    format!("{PROTECTED_MARK}{uuid}-")
}

fn is_uuid(text: &str) -> bool {
    text.len() == 36
        && text.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Curator's test: longer than the prefix, starts with `_c_`, `-` at 39 and
/// a UUID in between.
pub fn is_protected(name: &str) -> bool {
    name.len() > PROTECTED_PREFIX_LEN
        && name.starts_with(PROTECTED_MARK)
        && name.as_bytes()[PROTECTED_PREFIX_LEN - 1] == b'-'
        && name.get(3..39).is_some_and(is_uuid)
}

/// A protected name without its prefix; other names unchanged.
pub fn strip_protection(name: &str) -> &str {
    if is_protected(name) {
        &name[PROTECTED_PREFIX_LEN..]
    } else {
        name
    }
}

/// Curator's `standardFixForSorting`: the text after the last occurrence of
/// any of `lock_names`, or the whole name when none occurs. Foreign names
/// are kept and sort by their full name, exactly as Curator does, so that
/// every client agrees on the order.
pub fn sort_key<'a>(name: &'a str, lock_names: &[&str]) -> &'a str {
    lock_names
        .iter()
        .filter_map(|lock| name.rfind(lock).map(|i| i + lock.len()))
        .max()
        .map_or(name, |start| &name[start..])
}

/// Children sorted by [`sort_key`] (stable for equal keys).
pub fn sorted_by_sequence(mut children: Vec<String>, lock_names: &[&str]) -> Vec<String> {
    children.sort_by(|a, b| sort_key(a, lock_names).cmp(sort_key(b, lock_names)));
    children
}

/// The server-appended sequence number at the end of `name` (10 digits,
/// possibly negative after wrapping).
pub fn sequence_of(name: &str) -> Option<i32> {
    let start = name.len().checked_sub(10)?;
    let tail: i64 = name.get(start..)?.parse().ok()?;
    match i32::try_from(tail) {
        Ok(seq) => Some(seq),
        // Eleven characters: only i32::MIN prints that wide ("-2147483648").
        Err(_) if name[..start].ends_with('-') => i32::try_from(-tail).ok(),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn uuids_are_canonical_version_4() {
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..50 {
            let id = uuid_v4(&mut rng);
            assert!(is_uuid(&id), "{id}");
            assert_eq!(&id[14..15], "4");
            assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
            assert_eq!(id, id.to_lowercase());
        }
    }

    #[test]
    fn protected_names_are_recognised_and_stripped() {
        let name = "_c_0f4a5d32-8c5b-4e42-9d7e-2b1c6b9e0a11-lock-0000000007";
        assert!(is_protected(name));
        assert_eq!(strip_protection(name), "lock-0000000007");
        assert!(!is_protected("lock-0000000007"));
        assert!(!is_protected("_c_0f4a5d32-8c5b-4e42-9d7e-2b1c6b9e0a11-"));
        assert!(!is_protected(
            "_c_0f4a5d32x8c5b-4e42-9d7e-2b1c6b9e0a11-lock"
        ));
        assert_eq!(protected_prefix("u").len(), 5);
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(
            protected_prefix(&uuid_v4(&mut rng)).len(),
            PROTECTED_PREFIX_LEN
        );
    }

    #[test]
    fn sort_key_is_the_text_after_the_last_lock_name() {
        assert_eq!(sort_key("_c_x-lock-0000000003", &["lock-"]), "0000000003");
        assert_eq!(sort_key("lock-lock-0000000003", &["lock-"]), "0000000003");
        assert_eq!(sort_key("foreign", &["lock-"]), "foreign");
        assert_eq!(
            sort_key("_c_x-__READ__0000000009", &["__READ__", "__WRIT__"]),
            "0000000009"
        );
    }

    #[test]
    fn contenders_sort_by_sequence_not_by_uuid() {
        let sorted = sorted_by_sequence(
            vec![
                "_c_ffff-lock-0000000002".into(),
                "_c_0000-lock-0000000005".into(),
                "_c_aaaa-lock-0000000001".into(),
            ],
            &["lock-"],
        );
        assert_eq!(
            sorted,
            [
                "_c_aaaa-lock-0000000001",
                "_c_ffff-lock-0000000002",
                "_c_0000-lock-0000000005"
            ]
        );
    }

    #[test]
    fn paths_join_and_split() {
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
        assert_eq!(parent("/a/b"), Some("/a"));
        assert_eq!(parent("/a"), Some("/"));
        assert_eq!(parent("/"), None);
        assert_eq!(node_name("/a/b"), "b");
    }

    #[test]
    fn sequence_suffixes_parse_including_wrapped_negatives() {
        assert_eq!(sequence_of("lock-0000000042"), Some(42));
        assert_eq!(sequence_of("queue--2147483648"), Some(i32::MIN));
        assert_eq!(sequence_of("lock--000000042"), Some(-42));
        assert_eq!(sequence_of("short"), None);
    }
}
