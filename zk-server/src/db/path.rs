//! Znode paths: Apache's `PathUtils.validatePath` (WIRE.md §13) and the
//! parent / name helpers the tree, prep and watches share.
//!
//! Validation works on UTF-16 code units, as Java's `char`s: a character
//! outside the BMP is two surrogate units, and surrogates are rejected, so
//! such characters can never appear in a valid path.

/// Why a path is not a valid znode path. The texts follow Apache's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPath {
    #[error("Path length must be > 0")]
    Empty,
    #[error("Path must start with / character")]
    NoLeadingSlash,
    #[error("Path must not end with / character")]
    TrailingSlash,
    #[error("null character not allowed @{0}")]
    NullCharacter(usize),
    #[error("empty node name specified @{0}")]
    EmptyName(usize),
    #[error("relative paths not allowed @{0}")]
    Relative(usize),
    #[error("invalid character @{0}")]
    InvalidCharacter(usize),
}

const SLASH: u16 = b'/' as u16;
const DOT: u16 = b'.' as u16;

/// Characters Apache refuses anywhere in a path after the leading `/`:
/// controls, C1 controls, surrogates and the private use area, specials.
fn is_forbidden_unit(c: u16) -> bool {
    matches!(c, 0x0001..=0x001f | 0x007f..=0x009f | 0xd800..=0xf8ff | 0xfff0..=0xffff)
}

/// `PathUtils.validatePath`: the full check servers apply to setData,
/// setACL, check and the final path of a create.
pub fn validate_path(path: &str) -> Result<(), InvalidPath> {
    let units: Vec<u16> = path.encode_utf16().collect();
    if units.is_empty() {
        return Err(InvalidPath::Empty);
    }
    if units[0] != SLASH {
        return Err(InvalidPath::NoLeadingSlash);
    }
    if units.len() == 1 {
        return Ok(());
    }
    if units[units.len() - 1] == SLASH {
        return Err(InvalidPath::TrailingSlash);
    }
    // A `.` or `..` component: the dots are preceded by `/` and followed by
    // `/` or the end of the path.
    let ends_component = |i: usize| i + 1 == units.len() || units[i + 1] == SLASH;
    let mut last = SLASH;
    for (i, &c) in units.iter().enumerate().skip(1) {
        if c == 0 {
            return Err(InvalidPath::NullCharacter(i));
        } else if c == SLASH && last == SLASH {
            return Err(InvalidPath::EmptyName(i));
        } else if c == DOT && last == DOT {
            if units[i - 2] == SLASH && ends_component(i) {
                return Err(InvalidPath::Relative(i));
            }
        } else if c == DOT {
            if units[i - 1] == SLASH && ends_component(i) {
                return Err(InvalidPath::Relative(i));
            }
        } else if is_forbidden_unit(c) {
            return Err(InvalidPath::InvalidCharacter(i));
        }
        last = c;
    }
    Ok(())
}

/// True when `path` passes [`validate_path`].
pub fn is_valid(path: &str) -> bool {
    validate_path(path).is_ok()
}

/// The parent of a path as the tree names it: `/` for top-level nodes and
/// for `/` itself. Works on any string with a `/` (validity aside).
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// The last component: `b` for `/a/b`, empty for `/`.
pub fn name(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// `parent` + `/` + `name`, without doubling the root's slash.
pub fn join(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// The proper ancestors of `path`, nearest first, ending with `/`.
/// `/` has none.
pub fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut current = if path == "/" { None } else { Some(path) };
    std::iter::from_fn(move || {
        let up = parent(current?);
        current = if up == "/" { None } else { Some(up) };
        Some(up)
    })
}

/// True when `path` is `ancestor` or lies below it.
pub fn is_in_subtree(path: &str, ancestor: &str) -> bool {
    if ancestor == "/" {
        return true;
    }
    path == ancestor
        || (path.len() > ancestor.len()
            && path.starts_with(ancestor)
            && path.as_bytes()[ancestor.len()] == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_ordinary_paths_are_valid() {
        for p in [
            "/",
            "/a",
            "/a/b",
            "/a..b",
            "/.x",
            "/x.",
            "/a/...",
            "/zookeeper/quota",
        ] {
            assert_eq!(validate_path(p), Ok(()), "{p}");
        }
    }

    #[test]
    fn missing_leading_slash_and_trailing_slash_are_rejected() {
        assert_eq!(validate_path(""), Err(InvalidPath::Empty));
        assert_eq!(validate_path("a"), Err(InvalidPath::NoLeadingSlash));
        assert_eq!(validate_path("/a/"), Err(InvalidPath::TrailingSlash));
    }

    #[test]
    fn empty_components_are_rejected() {
        assert_eq!(validate_path("//a"), Err(InvalidPath::EmptyName(1)));
        assert_eq!(validate_path("/inv//x"), Err(InvalidPath::EmptyName(5)));
    }

    #[test]
    fn dot_and_dot_dot_components_are_rejected() {
        assert_eq!(validate_path("/."), Err(InvalidPath::Relative(1)));
        assert_eq!(validate_path("/a/./b"), Err(InvalidPath::Relative(3)));
        assert_eq!(validate_path("/.."), Err(InvalidPath::Relative(2)));
        assert_eq!(validate_path("/a/../b"), Err(InvalidPath::Relative(4)));
    }

    #[test]
    fn nul_and_control_characters_are_rejected() {
        assert_eq!(validate_path("/a\0"), Err(InvalidPath::NullCharacter(2)));
        assert_eq!(
            validate_path("/a\u{1}"),
            Err(InvalidPath::InvalidCharacter(2))
        );
        assert_eq!(
            validate_path("/\u{7f}"),
            Err(InvalidPath::InvalidCharacter(1))
        );
        assert_eq!(
            validate_path("/\u{9f}"),
            Err(InvalidPath::InvalidCharacter(1))
        );
    }

    #[test]
    fn private_use_specials_and_non_bmp_characters_are_rejected() {
        assert_eq!(
            validate_path("/\u{e000}"),
            Err(InvalidPath::InvalidCharacter(1))
        );
        assert_eq!(
            validate_path("/\u{fff0}"),
            Err(InvalidPath::InvalidCharacter(1))
        );
        // U+1F600 is a surrogate pair in UTF-16: the high surrogate fails.
        assert_eq!(
            validate_path("/x\u{1f600}"),
            Err(InvalidPath::InvalidCharacter(2))
        );
        assert_eq!(validate_path("/\u{f900}ok\u{e9}"), Ok(()));
    }

    #[test]
    fn positions_count_utf16_units_not_bytes() {
        // "é" is two UTF-8 bytes but one UTF-16 unit.
        assert_eq!(validate_path("/é//x"), Err(InvalidPath::EmptyName(3)));
    }

    #[test]
    fn parent_name_and_join_agree() {
        assert_eq!(parent("/a"), "/");
        assert_eq!(parent("/a/b"), "/a");
        assert_eq!(parent("/"), "/");
        assert_eq!(name("/a/b"), "b");
        assert_eq!(name("/"), "");
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
    }

    #[test]
    fn ancestors_walk_up_to_the_root() {
        assert_eq!(ancestors("/a/b/c").collect::<Vec<_>>(), ["/a/b", "/a", "/"]);
        assert_eq!(ancestors("/a").collect::<Vec<_>>(), ["/"]);
        assert_eq!(ancestors("/").count(), 0);
    }

    #[test]
    fn subtree_membership_respects_component_boundaries() {
        assert!(is_in_subtree("/a/b", "/a"));
        assert!(is_in_subtree("/a", "/a"));
        assert!(!is_in_subtree("/ab", "/a"));
        assert!(is_in_subtree("/x", "/"));
    }
}
