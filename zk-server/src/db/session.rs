//! Sessions: expiry tracking on tick boundaries (Apache's `ExpiryQueue`,
//! SEMANTICS.md §5.2), session id generation and the session password
//! (WIRE.md §4.4). Pure: the caller passes the time in.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::SessionId;

/// Tracks when each session expires. A touch moves the session to the
/// bucket of the next tick boundary after `now + timeout`, so a session
/// expires between `timeout` and `timeout + tick` after its last touch.
#[derive(Debug, Clone)]
pub struct SessionTracker {
    tick_ms: u64,
    expiry_of: HashMap<SessionId, u64>,
    buckets: BTreeMap<u64, BTreeSet<SessionId>>,
}

impl SessionTracker {
    /// `tick_ms` is tickTime; zero is treated as 1 ms.
    pub fn new(tick_ms: u64) -> Self {
        SessionTracker {
            tick_ms: tick_ms.max(1),
            expiry_of: HashMap::new(),
            buckets: BTreeMap::new(),
        }
    }

    /// `(floor(time / tick) + 1) * tick`.
    fn round_up(&self, time: u64) -> u64 {
        (time / self.tick_ms + 1).saturating_mul(self.tick_ms)
    }

    fn place(&mut self, id: SessionId, expiry: u64) {
        if let Some(old) = self.expiry_of.insert(id, expiry) {
            if old == expiry {
                return;
            }
            if let Some(bucket) = self.buckets.get_mut(&old) {
                bucket.remove(&id);
                if bucket.is_empty() {
                    self.buckets.remove(&old);
                }
            }
        }
        self.buckets.entry(expiry).or_default().insert(id);
    }

    /// Starts tracking a session (or refreshes it when already tracked).
    pub fn add(&mut self, id: SessionId, timeout_ms: i32, now: u64) {
        let expiry = self.round_up(now.saturating_add(timeout_ms.max(0) as u64));
        self.place(id, expiry);
    }

    /// Refreshes a tracked session; false when it is not tracked (expired
    /// or never added).
    pub fn touch(&mut self, id: SessionId, timeout_ms: i32, now: u64) -> bool {
        if !self.expiry_of.contains_key(&id) {
            return false;
        }
        self.add(id, timeout_ms, now);
        true
    }

    pub fn remove(&mut self, id: SessionId) {
        if let Some(old) = self.expiry_of.remove(&id) {
            if let Some(bucket) = self.buckets.get_mut(&old) {
                bucket.remove(&id);
                if bucket.is_empty() {
                    self.buckets.remove(&old);
                }
            }
        }
    }

    pub fn contains(&self, id: SessionId) -> bool {
        self.expiry_of.contains_key(&id)
    }

    /// Every session whose bucket time has come; they stop being tracked.
    pub fn expired(&mut self, now: u64) -> Vec<SessionId> {
        let due: Vec<u64> = self.buckets.range(..=now).map(|(&t, _)| t).collect();
        let mut expired = Vec::new();
        for time in due {
            if let Some(bucket) = self.buckets.remove(&time) {
                for id in bucket {
                    self.expiry_of.remove(&id);
                    expired.push(id);
                }
            }
        }
        expired
    }

    /// When the next bucket falls due.
    pub fn next_expiry(&self) -> Option<u64> {
        self.buckets.keys().next().copied()
    }
}

/// Hands out session ids as Apache's `SessionTrackerImpl`: the first is
/// `(now_ms << 24) >>> 8 | server_id << 56`, then one more each time.
#[derive(Debug, Clone)]
pub struct SessionIdGenerator {
    next: i64,
}

/// The first session id a server with `server_id` hands out at `now_ms`.
pub fn initial_session_id(server_id: i64, now_ms: i64) -> SessionId {
    let id = (((now_ms << 24) as u64) >> 8) as i64 | (server_id << 56);
    // Long.MIN_VALUE marks containers; never hand it out.
    if id == i64::MIN {
        id + 1
    } else {
        id
    }
}

impl SessionIdGenerator {
    pub fn new(server_id: i64, now_ms: i64) -> Self {
        SessionIdGenerator {
            next: initial_session_id(server_id, now_ms),
        }
    }

    pub fn next_id(&mut self) -> SessionId {
        let id = self.next;
        self.next = self.next.wrapping_add(1);
        id
    }
}

/// java.util.Random's 48-bit linear congruential generator.
struct JavaRandom {
    state: u64,
}

impl JavaRandom {
    const MULTIPLIER: u64 = 0x5_DEEC_E66D;
    const MASK: u64 = (1 << 48) - 1;

    fn new(seed: i64) -> Self {
        JavaRandom {
            state: (seed as u64 ^ Self::MULTIPLIER) & Self::MASK,
        }
    }

    fn next_u32(&mut self) -> u32 {
        self.state = (self.state.wrapping_mul(Self::MULTIPLIER).wrapping_add(0xB)) & Self::MASK;
        (self.state >> 16) as u32
    }

    /// `nextBytes`: each 32-bit draw fills up to 4 bytes, low byte first.
    fn fill_bytes(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(4) {
            let r = self.next_u32().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
    }
}

/// The seed Apache XORs with the session id (`ZooKeeperServer.superSecret`).
const SUPER_SECRET: i64 = 0xB341_5C00;

/// The 16-byte password of a session, bit-exact with Apache so sessions
/// survive across our server and Java servers.
pub fn password(session_id: SessionId) -> [u8; 16] {
    let mut out = [0u8; 16];
    JavaRandom::new(session_id ^ SUPER_SECRET).fill_bytes(&mut out);
    out
}

/// Password check: a real session id and the password it must have.
pub fn password_matches(session_id: SessionId, passwd: &[u8]) -> bool {
    session_id != 0 && passwd == password(session_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn passwords_match_the_wire_test_vectors() {
        assert_eq!(hex(&password(0x1)), "054cc74a37327db215e702e20c73f005");
        assert_eq!(
            hex(&password(0x1000000000000)),
            "f22acd4a97e69d6d20a49bb638eadb38"
        );
        assert_eq!(
            hex(&password(0x100012345670000)),
            "4be494d27cc739baa123244a251a7415"
        );
        assert_eq!(
            hex(&password(0x100000ce718000e)),
            "1902c8b11f1329cc5ce8169c04281578"
        );
    }

    #[test]
    fn password_check_rejects_session_zero_and_wrong_bytes() {
        assert!(password_matches(7, &password(7)));
        assert!(!password_matches(7, &password(8)));
        assert!(!password_matches(0, &password(0)));
    }

    #[test]
    fn session_ids_carry_the_server_id_and_clock() {
        let id = initial_session_id(1, 0x12_3456_789a);
        assert_eq!(id, 0x0112_3456_789a_0000);
        let mut gen = SessionIdGenerator::new(1, 0x12_3456_789a);
        assert_eq!(gen.next_id(), id);
        assert_eq!(gen.next_id(), id + 1);
    }

    #[test]
    fn clock_bits_above_forty_are_dropped() {
        assert_eq!(
            initial_session_id(2, 0xff_0000_0000_0001),
            0x0200_0000_0001_0000
        );
    }

    #[test]
    fn expiry_rounds_up_to_the_next_tick_boundary() {
        let mut t = SessionTracker::new(2000);
        t.add(1, 10_000, 1_500); // 11 500 -> bucket 12 000
        assert_eq!(t.next_expiry(), Some(12_000));
        assert!(t.expired(11_999).is_empty());
        assert_eq!(t.expired(12_000), [1]);
        assert!(!t.contains(1));
    }

    #[test]
    fn exact_boundaries_still_move_to_the_next_tick() {
        let mut t = SessionTracker::new(2000);
        t.add(1, 4000, 0);
        assert_eq!(t.next_expiry(), Some(6000));
    }

    #[test]
    fn touch_postpones_expiry_and_fails_for_unknown_sessions() {
        let mut t = SessionTracker::new(1000);
        t.add(1, 3000, 0);
        assert!(t.touch(1, 3000, 2500));
        assert_eq!(t.next_expiry(), Some(6000));
        assert!(t.expired(4000).is_empty());
        assert!(!t.touch(2, 3000, 0));
    }

    #[test]
    fn removed_sessions_never_expire() {
        let mut t = SessionTracker::new(1000);
        t.add(1, 1000, 0);
        t.add(2, 1000, 0);
        t.remove(1);
        assert_eq!(t.expired(10_000), [2]);
        assert_eq!(t.next_expiry(), None);
    }
}
