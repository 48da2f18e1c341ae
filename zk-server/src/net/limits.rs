//! `maxClientCnxns`: concurrent connections per client IP.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Counts open connections per IP; a slot is released when dropped.
#[derive(Debug, Clone)]
pub(crate) struct ConnLimiter {
    max: u32,
    open: Arc<Mutex<HashMap<IpAddr, u32>>>,
}

/// One open connection's place in the count.
#[derive(Debug)]
pub(crate) struct Slot {
    ip: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, u32>>>,
}

impl ConnLimiter {
    /// `max == 0` means unlimited.
    pub fn new(max: u32) -> Self {
        ConnLimiter {
            max,
            open: Arc::default(),
        }
    }

    /// A slot for one more connection from `ip`, or `None` at the limit.
    pub fn try_acquire(&self, ip: IpAddr) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(ip).or_insert(0);
        if self.max != 0 && *count >= self.max {
            return None;
        }
        *count += 1;
        Some(Slot {
            ip,
            open: Arc::clone(&self.open),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn refuses_beyond_the_limit_and_frees_on_drop() {
        let limiter = ConnLimiter::new(2);
        let a = limiter.try_acquire(LOCAL).unwrap();
        let _b = limiter.try_acquire(LOCAL).unwrap();
        assert!(limiter.try_acquire(LOCAL).is_none());
        drop(a);
        assert!(limiter.try_acquire(LOCAL).is_some());
    }

    #[test]
    fn limits_are_per_ip() {
        let limiter = ConnLimiter::new(1);
        let _a = limiter.try_acquire(LOCAL).unwrap();
        assert!(limiter.try_acquire("10.0.0.1".parse().unwrap()).is_some());
    }

    #[test]
    fn zero_means_unlimited() {
        let limiter = ConnLimiter::new(0);
        let slots: Vec<_> = (0..100)
            .filter_map(|_| limiter.try_acquire(LOCAL))
            .collect();
        assert_eq!(slots.len(), 100);
    }
}
