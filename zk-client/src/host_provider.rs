//! Which server to try next: the host list is shuffled once, then walked
//! round robin, with a pause after every full unsuccessful pass. A new
//! server list is adopted with Apache's probabilistic rebalancing
//! (`StaticHostProvider.updateServerList`), which moves just enough clients
//! to new servers to even out the load.

use std::time::Duration;

use rand::seq::SliceRandom;
use rand::Rng;

use crate::connect_string::HostAddr;

/// The pause after trying every host once without success.
pub const FULL_PASS_BACKOFF: Duration = Duration::from_millis(1000);

/// What a server-list update asks of a client.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rebalance {
    /// Stay connected where it is.
    Stay,
    /// Drop the connection and pick a server again: a new one with
    /// probability `p_new`, else an old one with probability `p_old`.
    Move {
        /// Probability of moving to a server new in the list.
        p_new: f32,
        /// Probability of moving to a server of the old list.
        p_old: f32,
    },
}

/// Apache's rebalancing decision, as a pure function.
///
/// `old_len`: size of the old list; `num_old` / `num_new`: servers of the
/// new list that were / were not in the old list; `mine_kept`: whether the
/// current server is in the new list; `coin`: a uniform sample in [0, 1).
pub fn rebalance(
    old_len: usize,
    num_old: usize,
    num_new: usize,
    mine_kept: bool,
    coin: f32,
) -> Rebalance {
    let new_len = num_old + num_new;
    if new_len > old_len {
        // The ensemble grew: each client moves to a new server with the
        // probability that keeps the load even (1 - old/new).
        if !mine_kept || coin <= 1.0 - old_len as f32 / new_len as f32 {
            Rebalance::Move {
                p_new: 1.0,
                p_old: 0.0,
            }
        } else {
            Rebalance::Stay
        }
    } else if mine_kept {
        // Same size or smaller and my server stays: my server's load can
        // only rise, so stay.
        Rebalance::Stay
    } else {
        // My server left: spread its clients over old and new servers in
        // proportion to the load each side must absorb.
        // (When every old server was kept, mine was not one of them and
        // the old ones take everybody.)
        let p_old = if old_len == num_old {
            1.0
        } else {
            (num_old * (old_len - new_len)) as f32 / (new_len * (old_len - num_old)) as f32
        };
        Rebalance::Move {
            p_new: 1.0 - p_old,
            p_old,
        }
    }
}

/// Rebalancing in progress: the servers to try, split by age.
#[derive(Debug, Clone)]
struct Reconfig {
    p_new: f32,
    old: Vec<HostAddr>,
    new: Vec<HostAddr>,
    next_old: usize,
    next_new: usize,
}

impl Reconfig {
    /// The next host to try while rebalancing; `None` once all were tried.
    fn next(&mut self, coin: f32) -> Option<HostAddr> {
        let take_new = coin <= self.p_new;
        let new_left = self.next_new < self.new.len();
        let old_left = self.next_old < self.old.len();
        if new_left && (take_new || !old_left) {
            self.next_new += 1;
            return Some(self.new[self.next_new - 1].clone());
        }
        if old_left {
            self.next_old += 1;
            return Some(self.old[self.next_old - 1].clone());
        }
        None
    }
}

/// Picks the server for each connection attempt.
#[derive(Debug, Clone)]
pub struct HostProvider {
    hosts: Vec<HostAddr>,
    /// Index of the host last handed out; `None` before the first.
    current: Option<usize>,
    /// Index of the host we last connected to (or the first one tried);
    /// coming back to it means a full pass failed.
    last: Option<usize>,
    reconfig: Option<Reconfig>,
}

impl HostProvider {
    /// Shuffles `hosts` once with `rng`.
    pub fn new(mut hosts: Vec<HostAddr>, rng: &mut impl Rng) -> HostProvider {
        hosts.shuffle(rng);
        HostProvider {
            hosts,
            current: None,
            last: None,
            reconfig: None,
        }
    }

    /// Every server, in the shuffled order.
    pub fn hosts(&self) -> &[HostAddr] {
        &self.hosts
    }

    /// How many servers.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// True with no server at all.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// The next host to try and how long to wait before trying it: nothing
    /// within a pass, [`FULL_PASS_BACKOFF`] when a full pass has failed.
    pub fn next(&mut self, rng: &mut impl Rng) -> (HostAddr, Duration) {
        let mut wait = Duration::ZERO;
        if let Some(reconfig) = &mut self.reconfig {
            if let Some(host) = reconfig.next(rng.gen()) {
                self.current = self.hosts.iter().position(|h| *h == host);
                return (host, Duration::ZERO);
            }
            // Every candidate failed: back to plain round robin.
            self.reconfig = None;
            wait = FULL_PASS_BACKOFF;
        }
        let index = self.current.map_or(0, |i| (i + 1) % self.hosts.len());
        self.current = Some(index);
        if self.last == Some(index) {
            wait = FULL_PASS_BACKOFF;
        }
        if self.last.is_none() {
            self.last = Some(index);
        }
        (self.hosts[index].clone(), wait)
    }

    /// Makes `host` the one handed out last, as if [`next`](Self::next)
    /// had picked it (used when a probe found a read/write server), so the
    /// round robin resumes after it. False when `host` is not in the list.
    pub fn jump_to(&mut self, host: &HostAddr) -> bool {
        match self.hosts.iter().position(|h| h == host) {
            Some(index) => {
                self.current = Some(index);
                self.reconfig = None;
                true
            }
            None => false,
        }
    }

    /// Records that the last host handed out accepted the session.
    pub fn on_connected(&mut self) {
        self.last = self.current;
        self.reconfig = None;
    }

    /// Adopts a new server list. `connected` is the server the client is on
    /// (if any). Returns true when the client should drop its connection
    /// and move (the next [`next`](Self::next) calls pick the new server).
    pub fn update(
        &mut self,
        new_hosts: Vec<HostAddr>,
        connected: Option<&HostAddr>,
        rng: &mut impl Rng,
    ) -> bool {
        let mut shuffled = new_hosts;
        shuffled.dedup();
        shuffled.shuffle(rng);
        if shuffled.is_empty() {
            return false;
        }
        let mine = connected
            .cloned()
            .or_else(|| self.last.map(|i| self.hosts[i].clone()))
            .unwrap_or_else(|| self.hosts[0].clone());
        let mine_kept = shuffled.contains(&mine);
        let (old, new): (Vec<_>, Vec<_>) = shuffled
            .iter()
            .cloned()
            .partition(|h| self.hosts.contains(h));
        let decision = rebalance(self.hosts.len(), old.len(), new.len(), mine_kept, rng.gen());
        self.reconfig = match decision {
            Rebalance::Stay => None,
            Rebalance::Move { p_new, .. } => Some(Reconfig {
                p_new,
                old,
                new,
                next_old: 0,
                next_new: 0,
            }),
        };
        self.current = if self.reconfig.is_none() {
            shuffled.iter().position(|h| *h == mine)
        } else {
            None
        };
        self.last = self.current;
        self.hosts = shuffled;
        self.reconfig.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn hosts(names: &[&str]) -> Vec<HostAddr> {
        names.iter().map(|n| HostAddr::new(*n, 2181)).collect()
    }

    #[test]
    fn jumping_to_a_host_resumes_the_round_robin_after_it() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut hp = HostProvider::new(hosts(&["a", "b", "c"]), &mut rng);
        let order: Vec<_> = hp.hosts().to_vec();
        assert!(hp.jump_to(&order[1]));
        assert_eq!(hp.next(&mut rng).0, order[2]);
        assert!(!hp.jump_to(&HostAddr::new("elsewhere", 1)));
    }

    #[test]
    fn round_robin_visits_every_host_once_per_pass() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut hp = HostProvider::new(hosts(&["a", "b", "c"]), &mut rng);
        let pass: Vec<_> = (0..3).map(|_| hp.next(&mut rng)).collect();
        let mut names: Vec<_> = pass.iter().map(|(h, _)| h.host.clone()).collect();
        names.sort();
        assert_eq!(names, ["a", "b", "c"]);
        assert!(pass.iter().all(|(_, wait)| wait.is_zero()));
    }

    #[test]
    fn a_failed_full_pass_backs_off() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut hp = HostProvider::new(hosts(&["a", "b"]), &mut rng);
        let (first, _) = hp.next(&mut rng);
        hp.next(&mut rng);
        let (again, wait) = hp.next(&mut rng);
        assert_eq!(again, first);
        assert_eq!(wait, FULL_PASS_BACKOFF);
    }

    #[test]
    fn after_connecting_a_pass_starts_from_that_host() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut hp = HostProvider::new(hosts(&["a", "b", "c"]), &mut rng);
        hp.next(&mut rng);
        let (second, _) = hp.next(&mut rng);
        hp.on_connected();
        hp.next(&mut rng);
        hp.next(&mut rng);
        let (back, wait) = hp.next(&mut rng);
        assert_eq!(back, second);
        assert_eq!(wait, FULL_PASS_BACKOFF);
    }

    #[test]
    fn growing_ensemble_moves_clients_with_probability_one_minus_old_over_new() {
        // 3 -> 5 servers, mine kept: move iff coin <= 1 - 3/5 = 0.4.
        assert!(
            matches!(rebalance(3, 3, 2, true, 0.39), Rebalance::Move { p_new, .. } if p_new == 1.0)
        );
        assert_eq!(rebalance(3, 3, 2, true, 0.41), Rebalance::Stay);
        // Mine removed while growing: always move to a new server.
        assert_eq!(
            rebalance(3, 2, 2, false, 0.99),
            Rebalance::Move {
                p_new: 1.0,
                p_old: 0.0
            }
        );
    }

    #[test]
    fn shrinking_ensemble_keeps_clients_whose_server_stays() {
        assert_eq!(rebalance(5, 3, 0, true, 0.0), Rebalance::Stay);
        assert_eq!(rebalance(3, 3, 0, true, 0.0), Rebalance::Stay);
    }

    #[test]
    fn removed_server_clients_split_between_old_and_new() {
        // 5 servers -> 3 old + 1 new, mine removed:
        // p_old = 3 * (5 - 4) / (4 * (5 - 3)) = 3/8.
        match rebalance(5, 3, 1, false, 0.5) {
            Rebalance::Move { p_new, p_old } => {
                assert!((p_old - 0.375).abs() < 1e-6);
                assert!((p_new - 0.625).abs() < 1e-6);
            }
            other => panic!("expected a move, got {other:?}"),
        }
        // Shrink without new servers: all go to old ones.
        assert_eq!(
            rebalance(3, 2, 0, false, 0.5),
            Rebalance::Move {
                p_new: 0.0,
                p_old: 1.0
            }
        );
    }

    #[test]
    fn update_that_moves_tries_new_servers_first_when_p_new_is_one() {
        let mut rng = StdRng::seed_from_u64(11);
        let mut hp = HostProvider::new(hosts(&["a", "b"]), &mut rng);
        let (current, _) = hp.next(&mut rng);
        hp.on_connected();
        // Replace both servers: mine is gone, everything is new.
        let moved = hp.update(hosts(&["x", "y"]), Some(&current), &mut rng);
        assert!(moved);
        let (next, wait) = hp.next(&mut rng);
        assert!(["x", "y"].contains(&next.host.as_str()));
        assert!(wait.is_zero());
    }

    #[test]
    fn update_that_stays_keeps_the_current_server() {
        let mut rng = StdRng::seed_from_u64(5);
        let mut hp = HostProvider::new(hosts(&["a", "b", "c"]), &mut rng);
        let (current, _) = hp.next(&mut rng);
        hp.on_connected();
        let moved = hp.update(hosts(&["a", "b", "c"]), Some(&current), &mut rng);
        assert!(!moved);
        assert_eq!(hp.len(), 3);
    }
}
