//! Who may fetch: the decisions about repeated misses and bans. No I/O.
//!
//! A MAC is not a secret, so scanners walk MAC ranges. Every miss on a per-MAC file name from an
//! address is counted; past `threshold` misses within `window`, the address is refused for
//! `ban` — with the same answer as any miss, so the ban itself tells a scanner nothing — and a
//! log line a fail2ban or a human can act on is written.
//!
//! Trust is bounded. An address that known phones fetched their own files from recently, or
//! one inside a site's allowed networks, may miss more before it is banned — an allowance of
//! [`MISSES_PER_PHONE`] per phone seen there (or per phone of those sites) — but not without
//! limit: hundreds of phones behind one NAT address in a boot storm keep working, and a
//! password guesser behind the same address is still stopped.
//!
//! The request path pays one atomic load while no ban is active; misses take a lock.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Misses a trusted address is allowed per phone it stands for, on top of the threshold, per
/// window: a booting phone asks for a handful of files that do not exist (`-local.cfg`,
/// directories, language files) and may retry each; twenty is several boots' worth.
pub const MISSES_PER_PHONE: u32 = 20;

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
    /// Phones the address stood for: they are refused too until the ban ends.
    pub phones: u32,
}

impl Guard {
    pub fn new(cfg: GuardConfig) -> Guard {
        Guard {
            cfg,
            ..Default::default()
        }
    }

    /// How many addresses are banned now (an upper bound: expired bans go when next asked).
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
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
                let left = self
                    .active
                    .fetch_sub(1, Ordering::Relaxed)
                    .saturating_sub(1);
                crate::telemetry::bans_active(left);
                false
            }
            _ => false,
        }
    }

    /// Counts a miss on a per-MAC name from `ip`; `phones` says how many phones the address
    /// stands for (0 for a stranger), asked only once the threshold is reached. Returns the ban
    /// if this miss started one.
    pub fn miss(&self, ip: IpAddr, now: i64, phones: impl FnOnce() -> u32) -> Option<Ban> {
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
        t.misses = t.misses.saturating_add(1);
        if t.misses < self.cfg.threshold {
            return None;
        }
        let phones = phones();
        let allowance = phones.saturating_mul(MISSES_PER_PHONE);
        if t.misses < self.cfg.threshold.saturating_add(allowance) {
            return None;
        }
        t.banned_until = now + self.cfg.ban_ms;
        self.active.fetch_add(1, Ordering::Relaxed);
        let ban = Ban {
            misses: t.misses,
            until: t.banned_until,
            phones,
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

    fn guard() -> Guard {
        Guard::new(GuardConfig {
            threshold: 3,
            window_ms: 1000,
            ban_ms: 5000,
        })
    }

    #[test]
    fn bans_after_the_threshold_and_expires() {
        let g = guard();
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        assert!(!g.banned(ip, 0));
        assert_eq!(g.miss(ip, 0, || 0), None);
        assert_eq!(g.miss(ip, 1, || 0), None);
        assert_eq!(
            g.miss(ip, 2, || 0),
            Some(Ban {
                misses: 3,
                until: 5002,
                phones: 0,
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
    fn misses_spread_out_do_not_ban() {
        let g = guard();
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        for i in 0..10 {
            assert_eq!(
                g.miss(ip, i * 600, || 0),
                None,
                "a new window every 1000 ms"
            );
        }
    }

    #[test]
    fn trusted_addresses_get_an_allowance_per_phone_not_a_pass() {
        let g = guard();
        let nat: IpAddr = "203.0.113.1".parse().unwrap();
        // Two phones behind it: 3 + 2 x 20 misses in the window, then a ban.
        let allowed = 3 + 2 * MISSES_PER_PHONE;
        for i in 1..allowed {
            assert_eq!(g.miss(nat, i as i64, || 2), None, "miss {i}");
        }
        let ban = g
            .miss(nat, allowed as i64, || 2)
            .expect("the allowance is spent");
        assert_eq!((ban.misses, ban.phones), (allowed, 2));
        assert!(g.banned(nat, allowed as i64 + 1));
        // The allowance is asked for only from the threshold on (it costs a look-up).
        let other: IpAddr = "203.0.113.2".parse().unwrap();
        let asked = std::cell::Cell::new(0);
        for i in 0..3 {
            g.miss(other, i, || {
                asked.set(asked.get() + 1);
                1000
            });
        }
        assert_eq!(asked.get(), 1);
    }
}
