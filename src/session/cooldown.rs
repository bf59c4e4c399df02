//! A link cut off for flooding its input may not join again from the same
//! address for a while. Without it a flooder rejoins at once, and every
//! rejoin costs the agent a new branch, a DTLS handshake and a keyframe for
//! every viewer (the bad-client bench's flooder rejoined 5 times in 30 s).
//! Keyed by address *and* link: the other people on a shared view-only
//! link, or on the same address with another link, are not held back.
//!
//! Pure: the caller passes the time, so tests need no clock.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The first wait, doubled for each cut within [`CoolDown::memory`] of the
/// last, up to `max`.
pub struct CoolDown {
    first: Duration,
    max: Duration,
    /// A cut this long after the last one starts from `first` again.
    memory: Duration,
    max_entries: usize,
    /// (address, link token) → (blocked until, cuts in a row, last cut).
    entries: HashMap<(IpAddr, String), Entry>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    until: Instant,
    strikes: u32,
    last: Instant,
}

impl Default for CoolDown {
    /// 10 s, then 20, 40 … up to 5 min; forgotten after 10 min without a
    /// cut. No person's page floods, so only a misbehaving client waits.
    fn default() -> Self {
        CoolDown::new(
            Duration::from_secs(10),
            Duration::from_secs(300),
            Duration::from_secs(600),
            4096,
        )
    }
}

impl CoolDown {
    pub fn new(first: Duration, max: Duration, memory: Duration, max_entries: usize) -> Self {
        CoolDown {
            first,
            max: max.max(first),
            memory,
            max_entries: max_entries.max(1),
            entries: HashMap::new(),
        }
    }

    /// Records a cut of `token`'s session from `addr`; returns how long it
    /// is kept out.
    pub fn cut(&mut self, addr: IpAddr, token: &str, now: Instant) -> Duration {
        let key = (addr, token.to_string());
        let strikes = match self.entries.get(&key) {
            Some(e) if now.saturating_duration_since(e.last) < self.memory => e.strikes + 1,
            _ => 1,
        };
        let wait = self
            .first
            .saturating_mul(1u32 << (strikes - 1).min(16))
            .min(self.max);
        if !self.entries.contains_key(&key) && self.entries.len() >= self.max_entries {
            self.forget_old(now);
            if self.entries.len() >= self.max_entries {
                let oldest = self
                    .entries
                    .iter()
                    .min_by_key(|(_, e)| e.last)
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    self.entries.remove(&k);
                }
            }
        }
        self.entries.insert(
            key,
            Entry {
                until: now + wait,
                strikes,
                last: now,
            },
        );
        wait
    }

    /// `Some(wait)` while `token` from `addr` is kept out.
    pub fn blocked(&self, addr: IpAddr, token: &str, now: Instant) -> Option<Duration> {
        let e = self.entries.get(&(addr, token.to_string()))?;
        let left = e.until.saturating_duration_since(now);
        (!left.is_zero()).then_some(left)
    }

    /// Entries currently kept (for the bound).
    pub fn tracked(&self) -> usize {
        self.entries.len()
    }

    fn forget_old(&mut self, now: Instant) {
        let memory = self.memory;
        self.entries
            .retain(|_, e| now.saturating_duration_since(e.last) < memory || e.until > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn a_cut_link_waits_and_repeat_cuts_wait_longer() {
        let t0 = Instant::now();
        let mut c = CoolDown::default();
        assert_eq!(c.blocked(ip(1), "a", t0), None);
        assert_eq!(c.cut(ip(1), "a", t0), s(10));
        assert_eq!(c.blocked(ip(1), "a", t0 + s(4)), Some(s(6)));
        // Another link from the same address, and the same link from
        // elsewhere, are not held back.
        assert_eq!(c.blocked(ip(1), "b", t0 + s(4)), None);
        assert_eq!(c.blocked(ip(2), "a", t0 + s(4)), None);
        assert_eq!(c.blocked(ip(1), "a", t0 + s(10)), None);
        // It comes back and floods again: twice as long, then capped.
        assert_eq!(c.cut(ip(1), "a", t0 + s(12)), s(20));
        assert_eq!(c.cut(ip(1), "a", t0 + s(40)), s(40));
        let mut t = t0 + s(40);
        for _ in 0..20 {
            t += s(60);
            c.cut(ip(1), "a", t);
        }
        assert_eq!(c.blocked(ip(1), "a", t), Some(s(300)));
        // Ten quiet minutes later it starts from the first wait again.
        assert_eq!(c.cut(ip(1), "a", t + s(900)), s(10));
    }

    #[test]
    fn memory_is_bounded() {
        let t0 = Instant::now();
        let mut c = CoolDown::new(s(10), s(300), s(600), 8);
        for i in 0..100u8 {
            c.cut(ip(i), "t", t0 + Duration::from_millis(i as u64));
        }
        assert!(c.tracked() <= 8);
        // The newest cuts are the ones kept.
        assert!(c.blocked(ip(99), "t", t0 + s(1)).is_some());
        assert_eq!(c.blocked(ip(0), "t", t0 + s(1)), None);
    }
}
