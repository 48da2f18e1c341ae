//! Client-side path rules: validation as the Java client does it before
//! sending (WIRE.md §13), and chroot prefixing / stripping (WIRE.md §15).

use crate::error::{Error, Result};

/// Checks `path` with Java's `PathUtils.validatePath` rules. Sequential
/// creates validate `path + "1"`, so a prefix ending in `/` is allowed.
pub fn validate_path(path: &str, sequential: bool) -> Result<()> {
    if sequential {
        validate(&format!("{path}1"))
    } else {
        validate(path)
    }
}

fn validate(path: &str) -> Result<()> {
    if path.is_empty() {
        return Err(Error::bad_arguments("Path length must be > 0"));
    }
    if !path.starts_with('/') {
        return Err(Error::bad_arguments("Path must start with / character"));
    }
    if path == "/" {
        return Ok(());
    }
    if path.ends_with('/') {
        return Err(Error::bad_arguments("Path must not end with / character"));
    }
    for component in path[1..].split('/') {
        let reason = if component.is_empty() {
            Some("empty node name specified")
        } else if component == "." || component == ".." {
            Some("relative paths not allowed")
        } else {
            component.chars().find_map(invalid_char_reason)
        };
        if let Some(reason) = reason {
            return Err(Error::bad_arguments(format!(
                "Invalid path string \"{path}\" caused by {reason}"
            )));
        }
    }
    Ok(())
}

/// Characters Java refuses. Java checks UTF-16 code units, so any
/// character outside the BMP (a surrogate pair there) is refused too.
fn invalid_char_reason(c: char) -> Option<&'static str> {
    match c {
        '\u{0}' => Some("null character"),
        '\u{1}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => Some("invalid character"),
        '\u{e000}'..='\u{f8ff}' | '\u{fff0}'..='\u{ffff}' => Some("invalid character"),
        c if u32::from(c) > 0xffff => Some("invalid character"),
        _ => None,
    }
}

/// The chroot of a connect string: every client path lives below it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chroot(Option<String>);

impl Chroot {
    /// `None` or `"/"` mean no chroot.
    pub fn new(root: Option<&str>) -> Chroot {
        match root {
            None | Some("/") | Some("") => Chroot(None),
            Some(root) => Chroot(Some(root.to_string())),
        }
    }

    /// The chroot (`/app`), or `None` at the root.
    pub fn as_str(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// The server path for a client path: `chroot + path`, and `"/"` is the
    /// chroot itself.
    pub fn prefix(&self, client_path: &str) -> String {
        match &self.0 {
            None => client_path.to_string(),
            Some(root) if client_path == "/" => root.clone(),
            Some(root) => format!("{root}{client_path}"),
        }
    }

    /// The client path for a server path. Paths outside the chroot (such as
    /// `/zookeeper/...`) are passed through unchanged.
    pub fn strip(&self, server_path: &str) -> String {
        let Some(root) = &self.0 else {
            return server_path.to_string();
        };
        if server_path == root {
            return "/".to_string();
        }
        match server_path.strip_prefix(root.as_str()) {
            Some(rest) if rest.starts_with('/') => rest.to_string(),
            _ => server_path.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(path: &str) -> String {
        match validate_path(path, false) {
            Err(Error::BadArguments(r)) => r,
            other => panic!("{path:?} should be invalid, got {other:?}"),
        }
    }

    #[test]
    fn root_and_ordinary_paths_are_valid() {
        for p in [
            "/",
            "/a",
            "/a/b",
            "/a..b",
            "/.x",
            "/zookeeper/quota",
            "/ü/日本",
        ] {
            assert!(validate_path(p, false).is_ok(), "{p}");
        }
    }

    #[test]
    fn paths_must_be_absolute_and_not_end_with_a_slash() {
        assert_eq!(reason(""), "Path length must be > 0");
        assert_eq!(reason("a"), "Path must start with / character");
        assert_eq!(reason("/a/"), "Path must not end with / character");
    }

    #[test]
    fn empty_and_relative_components_are_refused() {
        assert!(reason("/a//b").contains("empty node name"));
        assert!(reason("/a/./b").contains("relative paths"));
        assert!(reason("/a/..").contains("relative paths"));
    }

    #[test]
    fn control_private_use_and_non_bmp_characters_are_refused() {
        for p in [
            "/a\u{0}",
            "/a\u{1}",
            "/\u{7f}",
            "/\u{9f}",
            "/\u{e000}",
            "/\u{fff0}",
            "/😀",
        ] {
            assert!(validate_path(p, false).is_err(), "{p:?}");
        }
    }

    #[test]
    fn sequential_prefix_may_end_with_a_slash() {
        assert!(validate_path("/dir/", true).is_ok());
        assert!(validate_path("/dir/", false).is_err());
    }

    #[test]
    fn chroot_prefixes_client_paths() {
        let c = Chroot::new(Some("/app"));
        assert_eq!(c.prefix("/"), "/app");
        assert_eq!(c.prefix("/x/y"), "/app/x/y");
        assert_eq!(Chroot::new(None).prefix("/x"), "/x");
        assert_eq!(Chroot::new(Some("/")).prefix("/x"), "/x");
    }

    #[test]
    fn chroot_strips_server_paths_and_passes_others_through() {
        let c = Chroot::new(Some("/app"));
        assert_eq!(c.strip("/app"), "/");
        assert_eq!(c.strip("/app/x"), "/x");
        assert_eq!(c.strip("/apple"), "/apple");
        assert_eq!(c.strip("/zookeeper/config"), "/zookeeper/config");
    }
}
