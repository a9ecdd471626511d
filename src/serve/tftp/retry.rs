//! When to resend, and when to give up: the retransmission rules of one transfer.
//!
//! Two signals make the server resend the packet a client is waiting for:
//! - **Silence**: nothing useful came before the deadline. The wait doubles from the agreed
//!   timeout up to 8 times it, and `retries` silences in a row end the transfer.
//! - **The client's own resend**: a duplicate ACK of the block before the one in flight means
//!   the client timed out waiting for it (what tftp-hpa, U-Boot and phone bootloaders do). It
//!   is answered at once, but only when at least half the current wait has passed since the
//!   last send, so a duplicate caused by our own delayed packet is never answered (no
//!   sorcerer's apprentice), and it never pushes the deadline back: a client resending every
//!   second must not keep a server with a one-second timer waiting for ever.
//!
//! A client that keeps asking is alive, so its resends do not spend the silence budget; they
//! have a budget of their own (`4 × retries` per block) so even a client that never gets a
//! packet through ends.

use std::time::Duration;

use tokio::time::Instant;

/// Retransmission state for the packet (or window) in flight.
#[derive(Debug)]
pub struct Retry {
    base: Duration,
    wait: Duration,
    retries: u32,
    silences_left: u32,
    asked_left: u32,
    sent_at: Instant,
}

/// What to do about a duplicate ACK.
#[derive(Debug, PartialEq, Eq)]
pub enum Duplicate {
    /// Resend now.
    Resend,
    /// Ignore it; keep waiting for the same deadline.
    Ignore,
    /// The client asked too many times without progress: give up.
    GiveUp,
}

impl Retry {
    pub fn new(base: Duration, retries: u32) -> Retry {
        Retry {
            base,
            wait: base,
            retries,
            silences_left: retries,
            asked_left: retries.saturating_mul(4).max(4),
            sent_at: Instant::now(),
        }
    }

    /// Call after each (re)send: the deadline runs from here.
    pub fn sent(&mut self) {
        self.sent_at = Instant::now();
    }

    /// When to stop waiting for an answer to the last send.
    pub fn deadline(&self) -> Instant {
        self.sent_at + self.wait
    }

    /// The current wait.
    #[cfg(test)]
    pub fn wait(&self) -> Duration {
        self.wait
    }

    /// After the deadline passed in silence: false when the retries are spent.
    pub fn silence(&mut self) -> bool {
        if self.silences_left == 0 {
            return false;
        }
        self.silences_left -= 1;
        self.wait = (self.wait * 2).min(self.base * 8);
        true
    }

    /// After a duplicate ACK of the block before the one in flight.
    pub fn duplicate(&mut self) -> Duplicate {
        if self.sent_at.elapsed() < self.wait / 2 {
            return Duplicate::Ignore;
        }
        if self.asked_left == 0 {
            return Duplicate::GiveUp;
        }
        self.asked_left -= 1;
        // The client is there and listening: back to the base wait, silences forgiven.
        self.wait = self.base;
        self.silences_left = self.retries;
        Duplicate::Resend
    }

    /// After progress: a fresh budget for the next packet.
    pub fn progress(&mut self) {
        *self = Retry::new(self.base, self.retries);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_doubles_and_is_bounded() {
        let s = Duration::from_secs;
        let mut b = Retry::new(s(1), 4);
        assert_eq!(b.wait(), s(1));
        let waits: Vec<Duration> = std::iter::from_fn(|| b.silence().then(|| b.wait())).collect();
        assert_eq!(
            waits,
            [s(2), s(4), s(8), s(8)],
            "four retries, capped at 8x"
        );
        assert!(!b.silence());
        b.progress();
        assert_eq!(b.wait(), s(1));
        assert!(b.silence());
    }

    #[tokio::test(start_paused = true)]
    async fn duplicates_are_answered_only_after_half_the_wait_and_never_extend_it() {
        let s = Duration::from_millis;
        let mut r = Retry::new(s(1000), 5);
        r.sent();
        let deadline = r.deadline();
        tokio::time::advance(s(100)).await;
        assert_eq!(
            r.duplicate(),
            Duplicate::Ignore,
            "right after a send: ours, delayed"
        );
        assert_eq!(
            r.deadline(),
            deadline,
            "an ignored duplicate keeps the deadline"
        );
        tokio::time::advance(s(500)).await;
        assert_eq!(
            r.duplicate(),
            Duplicate::Resend,
            "the client timed out: answer it"
        );
        r.sent();
        assert_eq!(
            r.duplicate(),
            Duplicate::Ignore,
            "once per half-wait, never a storm"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_keeps_asking_forgives_silences_but_ends() {
        let s = Duration::from_millis;
        let mut r = Retry::new(s(1000), 2);
        assert!(r.silence() && r.silence());
        assert!(!r.silence(), "two silences spent");
        let mut resends = 0;
        loop {
            tokio::time::advance(r.wait() / 2 + s(1)).await;
            match r.duplicate() {
                Duplicate::Resend => {
                    resends += 1;
                    r.sent();
                }
                Duplicate::Ignore => unreachable!("past half the wait"),
                Duplicate::GiveUp => break,
            }
            assert_eq!(
                r.wait(),
                s(1000),
                "a live client brings the wait back to base"
            );
        }
        assert_eq!(resends, 8, "4 x retries");
        assert!(r.silence(), "its resends restored the silence budget");
    }
}
