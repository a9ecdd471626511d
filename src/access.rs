//! Who may fetch: the decisions about repeated misses and bans. No I/O.
//!
//! A MAC is not a secret, so scanners walk MAC ranges. Every miss on a per-MAC file name from an
//! address is counted; past `threshold` misses within `window`, the address is refused for
//! `ban` — with the same answer as any miss, so the ban itself tells a scanner nothing — and a
//! log line a fail2ban or a human can act on is written. An address that a known phone fetched
//! its own file from recently is trusted and never banned: hundreds of phones behind one NAT
//! address in a boot storm keep working.
//!
//! The request path pays one atomic load while no ban is active; misses take a lock.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Limits of the miss counter.
#[derive(Debug, Clone, Copy)]
pub struct GuardConfig {
    pub threshold: u32,
    pub window_ms: i64,
    pub ban_ms: i64,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            threshold: 50,
            window_ms: 10 * 60 * 1000,
            ban_ms: 15 * 60 * 1000,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Tally {
    misses: u32,
    since: i64,
    banned_until: i64,
}

/// The miss counter and ban list.
#[derive(Debug, Default)]
pub struct Guard {
    cfg: GuardConfig,
    tallies: Mutex<HashMap<IpAddr, Tally>>,
    /// How many addresses are banned now (an upper bound; expired bans are swept lazily).
    active: AtomicUsize,
}

/// A ban that just started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ban {
    pub misses: u32,
    pub until: i64,
}

impl Guard {
    pub fn new(cfg: GuardConfig) -> Guard {
        Guard {
            cfg,
            ..Default::default()
        }
    }

    /// Whether `ip` is refused now.
    pub fn banned(&self, ip: IpAddr, now: i64) -> bool {
        if self.active.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let Ok(mut g) = self.tallies.lock() else {
            return false;
        };
        match g.get(&ip) {
            Some(t) if t.banned_until > now => true,
            Some(t) if t.banned_until > 0 => {
                // Expired: forget it.
                g.remove(&ip);
                self.active.fetch_sub(1, Ordering::Relaxed);
                false
            }
            _ => false,
        }
    }

    /// Counts a miss on a per-MAC name from `ip`; `trusted` says whether a known phone fetched
    /// from that address recently. Returns the ban if this miss started one.
    pub fn miss(&self, ip: IpAddr, now: i64, trusted: impl FnOnce() -> bool) -> Option<Ban> {
        let Ok(mut g) = self.tallies.lock() else {
            return None;
        };
        let t = g.entry(ip).or_insert(Tally {
            misses: 0,
            since: now,
            banned_until: 0,
        });
        if t.banned_until > now {
            return None;
        }
        if now - t.since > self.cfg.window_ms {
            *t = Tally {
                misses: 0,
                since: now,
                banned_until: 0,
            };
        }
        t.misses += 1;
        if t.misses < self.cfg.threshold || trusted() {
            return None;
        }
        t.banned_until = now + self.cfg.ban_ms;
        self.active.fetch_add(1, Ordering::Relaxed);
        let ban = Ban {
            misses: t.misses,
            until: t.banned_until,
        };
        if g.len() > 100_000 {
            let window = self.cfg.window_ms;
            g.retain(|_, t| t.banned_until > now || now - t.since <= window);
        }
        Some(ban)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bans_after_the_threshold_and_expires() {
        let g = Guard::new(GuardConfig {
            threshold: 3,
            window_ms: 1000,
            ban_ms: 5000,
        });
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        assert!(!g.banned(ip, 0));
        assert_eq!(g.miss(ip, 0, || false), None);
        assert_eq!(g.miss(ip, 1, || false), None);
        assert_eq!(
            g.miss(ip, 2, || false),
            Some(Ban {
                misses: 3,
                until: 5002
            })
        );
        assert!(g.banned(ip, 3));
        assert!(
            !g.banned("198.51.100.8".parse().unwrap(), 3),
            "only that address"
        );
        assert!(!g.banned(ip, 5003), "expired");
        assert!(!g.banned(ip, 5004));
    }

    #[test]
    fn misses_spread_out_or_from_trusted_addresses_do_not_ban() {
        let g = Guard::new(GuardConfig {
            threshold: 3,
            window_ms: 1000,
            ban_ms: 5000,
        });
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        for i in 0..10 {
            assert_eq!(
                g.miss(ip, i * 600, || false),
                None,
                "a new window every 1000 ms"
            );
        }
        let nat: IpAddr = "203.0.113.1".parse().unwrap();
        for i in 0..1000 {
            assert_eq!(g.miss(nat, i, || true), None);
        }
        assert!(!g.banned(nat, 1000));
    }
}
