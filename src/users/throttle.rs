//! Failed console logins, slowed per user name and per address: a few mistakes are free, then
//! each further try must wait twice as long as the last (up to 15 minutes) until a quiet
//! period passes. Memory is bounded; no I/O.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed before waits begin.
pub const FREE_FAILURES: u32 = 5;
/// The longest wait.
pub const MAX_WAIT: Duration = Duration::from_secs(15 * 60);
/// Failures older than this are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(30 * 60);
/// Names and addresses remembered at most (the oldest are dropped).
const CAP: usize = 50_000;

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last: Instant,
}

impl Record {
    /// When the next try may come.
    fn not_before(&self) -> Instant {
        if self.failures < FREE_FAILURES {
            return self.last;
        }
        let doublings = (self.failures - FREE_FAILURES).min(16);
        let wait = Duration::from_secs(1u64 << doublings).min(MAX_WAIT);
        self.last + wait
    }
}

/// What the throttle remembers.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    users: Mutex<HashMap<String, Record>>,
    peers: Mutex<HashMap<IpAddr, Record>>,
}

fn wait_in<K: std::hash::Hash + Eq>(
    m: &Mutex<HashMap<K, Record>>,
    k: &K,
    now: Instant,
) -> Duration {
    let map = m.lock().unwrap_or_else(|p| p.into_inner());
    map.get(k)
        .filter(|r| now.duration_since(r.last) < FORGET_AFTER)
        .map(|r| r.not_before().saturating_duration_since(now))
        .unwrap_or_default()
}

fn fail_in<K: std::hash::Hash + Eq + Clone>(m: &Mutex<HashMap<K, Record>>, k: &K, now: Instant) {
    let mut map = m.lock().unwrap_or_else(|p| p.into_inner());
    if map.len() >= CAP {
        map.retain(|_, r| now.duration_since(r.last) < FORGET_AFTER);
        if map.len() >= CAP {
            map.clear();
        }
    }
    let r = map.entry(k.clone()).or_insert(Record {
        failures: 0,
        last: now,
    });
    if now.duration_since(r.last) >= FORGET_AFTER {
        r.failures = 0;
    }
    r.failures += 1;
    r.last = now;
}

impl LoginThrottle {
    /// How long a login for `user` from `peer` must wait before it is even checked.
    pub fn wait(&self, user: &str, peer: IpAddr, now: Instant) -> Duration {
        wait_in(&self.users, &user.to_ascii_lowercase(), now).max(wait_in(&self.peers, &peer, now))
    }

    /// Notes a failed login.
    pub fn failed(&self, user: &str, peer: IpAddr, now: Instant) {
        fail_in(&self.users, &user.to_ascii_lowercase(), now);
        fail_in(&self.peers, &peer, now);
    }

    /// A login succeeded: the name's count starts again (the address's does not, so one
    /// known password does not reset a spray of guesses at other names).
    pub fn succeeded(&self, user: &str) {
        let mut map = self.users.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&user.to_ascii_lowercase());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_mistakes_are_free_then_waits_double() {
        let t = LoginThrottle::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let now = Instant::now();
        for _ in 0..FREE_FAILURES - 1 {
            t.failed("alice", ip, now);
            assert_eq!(t.wait("alice", ip, now), Duration::ZERO);
        }
        t.failed("alice", ip, now);
        assert_eq!(t.wait("Alice", ip, now), Duration::from_secs(1));
        t.failed("alice", ip, now);
        assert_eq!(t.wait("alice", ip, now), Duration::from_secs(2));
        // Per address: another name from the same address waits too.
        assert_eq!(t.wait("bob", ip, now), Duration::from_secs(2));
        // Per user: the same name from another address waits too.
        let other: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(t.wait("alice", other, now), Duration::from_secs(2));
        assert_eq!(t.wait("bob", other, now), Duration::ZERO);
        // Success clears the name, not the address.
        t.succeeded("alice");
        assert_eq!(t.wait("alice", other, now), Duration::ZERO);
        assert_eq!(t.wait("alice", ip, now), Duration::from_secs(2));
        // A quiet period forgets.
        assert_eq!(t.wait("bob", ip, now + FORGET_AFTER), Duration::ZERO);
    }

    #[test]
    fn the_wait_is_capped() {
        let t = LoginThrottle::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let now = Instant::now();
        for _ in 0..60 {
            t.failed("x", ip, now);
        }
        assert_eq!(t.wait("x", ip, now), MAX_WAIT);
    }
}
