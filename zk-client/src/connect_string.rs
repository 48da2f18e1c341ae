//! Parsing `host1:port1,host2:port2/chroot` (WIRE.md §15).

use std::fmt;

use crate::error::{Error, Result};
use crate::path::{validate_path, Chroot};

/// ZooKeeper's default client port.
pub const DEFAULT_PORT: u16 = 2181;

/// One server of a connect string. The host is kept unresolved (a name or
/// an IP literal, IPv6 without brackets) and resolved on every connection
/// attempt, so DNS changes are picked up.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostAddr {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl HostAddr {
    /// A host and port.
    pub fn new(host: impl Into<String>, port: u16) -> HostAddr {
        HostAddr {
            host: host.into(),
            port,
        }
    }
}

impl fmt::Display for HostAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A parsed connect string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectString {
    /// The servers, in the order given.
    pub hosts: Vec<HostAddr>,
    /// The chroot suffix (`/app` in `h:1/app`), if any.
    pub chroot: Chroot,
}

impl ConnectString {
    /// Parses a connect string. Everything from the first `/` is the chroot
    /// (a bare `/` means none); hosts are comma separated, `host`,
    /// `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 literal; the port
    /// defaults to 2181.
    pub fn parse(s: &str) -> Result<ConnectString> {
        let (hosts_part, chroot) = match s.find('/') {
            Some(i) => (&s[..i], Some(&s[i..])),
            None => (s, None),
        };
        if let Some(root) = chroot {
            validate_path(root, false)?;
        }
        let hosts = parse_hosts(hosts_part)?;
        Ok(ConnectString {
            hosts,
            chroot: Chroot::new(chroot),
        })
    }
}

/// Parses the comma-separated host list (no chroot).
pub fn parse_hosts(list: &str) -> Result<Vec<HostAddr>> {
    let hosts = list
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(parse_host)
        .collect::<Result<Vec<_>>>()?;
    if hosts.is_empty() {
        return Err(Error::bad_arguments("A HostProvider may not be empty!"));
    }
    Ok(hosts)
}

fn parse_host(spec: &str) -> Result<HostAddr> {
    let bad = || Error::bad_arguments(format!("invalid host in connect string: {spec:?}"));
    if let Some(rest) = spec.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        let port = match after {
            "" => DEFAULT_PORT,
            p => p
                .strip_prefix(':')
                .and_then(|p| p.parse().ok())
                .ok_or_else(bad)?,
        };
        if host.is_empty() {
            return Err(bad());
        }
        return Ok(HostAddr::new(host, port));
    }
    match spec.matches(':').count() {
        0 => Ok(HostAddr::new(spec, DEFAULT_PORT)),
        1 => {
            let (host, port) = spec.split_once(':').ok_or_else(bad)?;
            let port = port.parse().map_err(|_| bad())?;
            if host.is_empty() {
                return Err(bad());
            }
            Ok(HostAddr::new(host, port))
        }
        // Several colons without brackets: a bare IPv6 literal, no port.
        _ => Ok(HostAddr::new(spec, DEFAULT_PORT)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_with_and_without_ports() {
        let cs = ConnectString::parse("a:1,b, c:3").unwrap();
        assert_eq!(
            cs.hosts,
            vec![
                HostAddr::new("a", 1),
                HostAddr::new("b", DEFAULT_PORT),
                HostAddr::new("c", 3)
            ]
        );
        assert_eq!(cs.chroot, Chroot::new(None));
    }

    #[test]
    fn chroot_starts_at_the_first_slash() {
        let cs = ConnectString::parse("a:1,b:2/app/x").unwrap();
        assert_eq!(cs.hosts.len(), 2);
        assert_eq!(cs.chroot.as_str(), Some("/app/x"));
    }

    #[test]
    fn a_bare_slash_is_no_chroot() {
        assert_eq!(ConnectString::parse("a/").unwrap().chroot.as_str(), None);
    }

    #[test]
    fn an_invalid_chroot_is_bad_arguments() {
        assert!(matches!(
            ConnectString::parse("a:1/app/"),
            Err(Error::BadArguments(_))
        ));
    }

    #[test]
    fn ipv6_literals_in_brackets_and_bare() {
        let cs = ConnectString::parse("[::1]:2182,[fe80::1],2001:db8::7/r").unwrap();
        assert_eq!(
            cs.hosts,
            vec![
                HostAddr::new("::1", 2182),
                HostAddr::new("fe80::1", DEFAULT_PORT),
                HostAddr::new("2001:db8::7", DEFAULT_PORT)
            ]
        );
        assert_eq!(cs.chroot.as_str(), Some("/r"));
        assert_eq!(cs.hosts[0].to_string(), "[::1]:2182");
    }

    #[test]
    fn empty_lists_and_bad_ports_are_refused() {
        assert!(ConnectString::parse("").is_err());
        assert!(ConnectString::parse(",/x").is_err());
        assert!(ConnectString::parse("a:notaport").is_err());
        assert!(ConnectString::parse("a:70000").is_err());
        assert!(ConnectString::parse("[::1:2181").is_err());
    }
}
