//! Curator's default node data (RECIPES.md §A5): the local host's IP
//! address as ASCII text, as Java's `InetAddress.getLocalHost()` resolves
//! it (the host name looked up through the system resolver), or empty
//! when that fails.

use std::net::{IpAddr, ToSocketAddrs};
use std::sync::OnceLock;

use bytes::Bytes;

/// The host name the kernel reports (Linux), else `$HOSTNAME`.
fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
}

/// Java prefers IPv4 addresses by default; so do we.
fn pick(addrs: impl Iterator<Item = IpAddr>) -> Option<IpAddr> {
    let all: Vec<IpAddr> = addrs.collect();
    all.iter()
        .find(|ip| ip.is_ipv4())
        .or_else(|| all.first())
        .copied()
}

fn resolve() -> Option<IpAddr> {
    let name = host_name()?;
    let addrs = (name.as_str(), 0).to_socket_addrs().ok()?;
    pick(addrs.map(|a| a.ip()))
}

/// The default payload, computed once per process.
pub fn default_node_data() -> Bytes {
    static DATA: OnceLock<Bytes> = OnceLock::new();
    DATA.get_or_init(|| {
        resolve()
            .map(|ip| Bytes::from(ip.to_string()))
            .unwrap_or_default()
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn ipv4_is_preferred_over_ipv6() {
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        let v4 = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7));
        assert_eq!(pick([v6, v4].into_iter()), Some(v4));
        assert_eq!(pick([v6].into_iter()), Some(v6));
        assert_eq!(pick(std::iter::empty()), None);
    }

    #[test]
    fn default_data_is_empty_or_an_ip_address_text() {
        let data = default_node_data();
        if !data.is_empty() {
            let text = std::str::from_utf8(&data).unwrap();
            assert!(text.parse::<IpAddr>().is_ok(), "{text}");
        }
    }
}
