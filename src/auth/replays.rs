//! The record of Digest answers already accepted, so that none is accepted twice: a keyed
//! 64-bit fingerprint of each (nonce, count), kept until the nonce can no longer be used.
//!
//! A storm of phones with a login leaves one entry per file each fetched (a challenge per
//! connection, so a nonce per file) for a nonce's lifetime: 8 bytes and a control byte each,
//! in two generations — the entries of the current [`NONCE_TTL_MS`], and of the one before it,
//! dropped whole when a third begins, by when every nonce they answered has expired. Before,
//! each was a map entry of two strings and a set (about 300 bytes, `scripts/bench-scale`'s
//! storm of 10,000 phones with a login held 12 MiB in it), pruned by a scan of the whole map
//! on every answer once it held 10,000.

use std::hash::BuildHasher;

use foldhash::HashSet;

use super::NONCE_TTL_MS;

/// Most answers remembered per generation (a generation holding them all is about 9 MiB).
/// Only valid answers are recorded, so reaching it takes that many phones' fetches with the
/// right password inside one nonce lifetime; past it, answers are refused until the
/// generation turns (fail closed: accepting them unrecorded would let them be replayed).
pub const MAX_PER_GENERATION: usize = 1 << 19;

/// Whether an answer may be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// The first use of this nonce and count: recorded.
    First,
    /// Seen before.
    Replayed,
    /// Not seen, but the record is full: refused. `first` on the generation's first such
    /// refusal (the one worth a warning; the rest would flood the log).
    Full { first: bool },
}

#[derive(Debug, Default)]
pub struct Replays {
    /// Keyed per process (foldhash, as the audit's event keys): the fingerprint of an answer
    /// cannot be foreseen from outside, so none can be made to pass for another.
    keys: foldhash::quality::RandomState,
    current: HashSet<u64>,
    previous: HashSet<u64>,
    /// When `current` began (ms), 0 before the first answer.
    since: i64,
    /// Whether `current` has refused an answer for being full.
    refused: bool,
}

impl Replays {
    /// Records the use of `nonce` with count `nc` (empty without `qop`, so such a nonce
    /// answers once) at `now` (ms).
    pub fn record(&mut self, nonce: &str, nc: &str, now: i64) -> Use {
        if now - self.since >= NONCE_TTL_MS {
            // A gap of two lifetimes leaves nothing worth keeping.
            self.previous = if now - self.since >= 2 * NONCE_TTL_MS {
                HashSet::default()
            } else {
                std::mem::take(&mut self.current)
            };
            self.current = HashSet::default();
            self.since = now;
            self.refused = false;
        }
        let print = self.keys.hash_one((nonce, nc));
        if self.previous.contains(&print) || self.current.contains(&print) {
            return Use::Replayed;
        }
        if self.current.len() >= MAX_PER_GENERATION {
            let first = !std::mem::replace(&mut self.refused, true);
            return Use::Full { first };
        }
        self.current.insert(print);
        Use::First
    }

    /// Answers remembered.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_000_000_000;

    #[test]
    fn an_answer_is_accepted_once_per_count() {
        let mut r = Replays::default();
        assert_eq!(r.record("n1", "00000001", T0), Use::First);
        assert_eq!(r.record("n1", "00000001", T0 + 1), Use::Replayed);
        assert_eq!(r.record("n1", "00000002", T0 + 2), Use::First);
        assert_eq!(r.record("n2", "00000001", T0 + 3), Use::First);
        // Without qop there is no count: the nonce answers once.
        assert_eq!(r.record("n3", "", T0 + 4), Use::First);
        assert_eq!(r.record("n3", "", T0 + 5), Use::Replayed);
        assert_eq!(r.len(), 4);
    }

    #[test]
    fn an_answer_is_remembered_for_as_long_as_its_nonce_lives() {
        let mut r = Replays::default();
        assert_eq!(r.record("old", "00000001", T0), Use::First);
        // Just before the record turns, and across one turn: still a replay.
        let late = T0 + NONCE_TTL_MS - 1;
        assert_eq!(r.record("old", "00000001", late), Use::Replayed);
        // An answer recorded at the very end of a generation is kept a whole lifetime more.
        assert_eq!(r.record("late", "00000001", late), Use::First);
        assert_eq!(r.record("new", "00000001", T0 + NONCE_TTL_MS), Use::First);
        assert_eq!(
            r.record("late", "00000001", late + NONCE_TTL_MS - 1),
            Use::Replayed
        );
        // Two turns later the first generation is gone (its nonces have all expired, so the
        // check of the nonce refuses them before this record is asked).
        assert_eq!(r.record("x", "00000001", T0 + 2 * NONCE_TTL_MS), Use::First);
        assert_eq!(
            r.record("old", "00000001", T0 + 2 * NONCE_TTL_MS),
            Use::First
        );
        // After a long quiet both generations go.
        r.record("y", "00000001", T0 + 10 * NONCE_TTL_MS);
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn a_full_record_refuses_rather_than_forgets() {
        let mut r = Replays::default();
        for i in 0..MAX_PER_GENERATION {
            assert_eq!(r.record(&format!("n{i}"), "00000001", T0), Use::First);
        }
        assert_eq!(
            r.record("one-more", "00000001", T0),
            Use::Full { first: true }
        );
        assert_eq!(
            r.record("two-more", "00000001", T0 + 1),
            Use::Full { first: false },
            "one warning per generation, not one per refusal"
        );
        assert_eq!(r.record("n0", "00000001", T0), Use::Replayed);
        // The next generation has room; what the full one holds is still refused.
        assert_eq!(
            r.record("one-more", "00000001", T0 + NONCE_TTL_MS),
            Use::First
        );
        assert_eq!(r.record("n7", "00000001", T0 + NONCE_TTL_MS), Use::Replayed);
        // Full again in a later generation: its first refusal is reported again.
        for i in 0..MAX_PER_GENERATION - 1 {
            r.record(&format!("m{i}"), "00000001", T0 + NONCE_TTL_MS);
        }
        assert_eq!(
            r.record("three-more", "00000001", T0 + NONCE_TTL_MS),
            Use::Full { first: true }
        );
    }
}
