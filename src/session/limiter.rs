//! Failed-token rate limiting per source address. Tokens are 128-bit
//! HMACs, so guessing is hopeless anyway; the limiter keeps a scanner from
//! costing us CPU and log lines, and makes a flood visible in the metrics.
//!
//! Pure: the caller passes the time, so tests need no clock.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// At most `max_failures` refused tokens per address within `window`;
/// beyond that, hellos from the address are refused unchecked until the
/// oldest failure leaves the window.
pub struct FailureLimiter {
    max_failures: usize,
    window: Duration,
    /// Addresses tracked at once; past this, the stalest is forgotten.
    max_addresses: usize,
    failures: HashMap<IpAddr, VecDeque<Instant>>,
}

impl Default for FailureLimiter {
    /// 10 failures a minute: far above a person mistyping a link, far below
    /// a scanner.
    fn default() -> Self {
        FailureLimiter::new(10, Duration::from_secs(60), 4096)
    }
}

impl FailureLimiter {
    pub fn new(max_failures: usize, window: Duration, max_addresses: usize) -> Self {
        FailureLimiter {
            max_failures: max_failures.max(1),
            window,
            max_addresses: max_addresses.max(1),
            failures: HashMap::new(),
        }
    }

    /// `Some(wait)` when `addr` is blocked at `now`, for that long.
    pub fn blocked(&mut self, addr: IpAddr, now: Instant) -> Option<Duration> {
        let list = self.failures.get_mut(&addr)?;
        expire(list, now, self.window);
        if list.is_empty() {
            self.failures.remove(&addr);
            return None;
        }
        if list.len() < self.max_failures {
            return None;
        }
        let oldest = *list.front()?;
        Some(
            self.window
                .saturating_sub(now.saturating_duration_since(oldest)),
        )
    }

    /// Records a refused token from `addr`.
    pub fn failed(&mut self, addr: IpAddr, now: Instant) {
        if !self.failures.contains_key(&addr) && self.failures.len() >= self.max_addresses {
            let window = self.window;
            self.failures.retain(|_, l| {
                expire(l, now, window);
                !l.is_empty()
            });
            if self.failures.len() >= self.max_addresses {
                // Forget the address whose last failure is oldest.
                let stalest = self
                    .failures
                    .iter()
                    .min_by_key(|(_, l)| l.back().copied())
                    .map(|(a, _)| *a);
                if let Some(a) = stalest {
                    self.failures.remove(&a);
                }
            }
        }
        let list = self.failures.entry(addr).or_default();
        expire(list, now, self.window);
        list.push_back(now);
        // Only the newest `max_failures` matter for the decision.
        while list.len() > self.max_failures {
            list.pop_front();
        }
    }

    /// Addresses currently tracked.
    pub fn tracked(&self) -> usize {
        self.failures.len()
    }
}

fn expire(list: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while list
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) >= window)
    {
        list.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn blocks_after_the_limit_until_the_oldest_failure_ages_out() {
        let t0 = Instant::now();
        let mut l = FailureLimiter::new(3, Duration::from_secs(60), 10);
        for i in 0..3 {
            assert_eq!(l.blocked(ip(1), t0), None, "failure {i}");
            l.failed(ip(1), t0 + Duration::from_secs(i * 10));
        }
        let now = t0 + Duration::from_secs(25);
        assert_eq!(l.blocked(ip(1), now), Some(Duration::from_secs(35)));
        // Another address is not affected.
        assert_eq!(l.blocked(ip(2), now), None);
        // The first failure leaves the window at t0+60: one slot frees.
        assert_eq!(l.blocked(ip(1), t0 + Duration::from_secs(60)), None);
        l.failed(ip(1), t0 + Duration::from_secs(61));
        assert!(l.blocked(ip(1), t0 + Duration::from_secs(61)).is_some());
        // All gone after a quiet window.
        assert_eq!(l.blocked(ip(1), t0 + Duration::from_secs(200)), None);
        assert_eq!(l.tracked(), 0);
    }

    #[test]
    fn memory_is_bounded_by_the_address_cap() {
        let t0 = Instant::now();
        let mut l = FailureLimiter::new(2, Duration::from_secs(60), 4);
        for i in 0..100u8 {
            l.failed(ip(i), t0 + Duration::from_millis(i as u64));
            l.failed(ip(i), t0 + Duration::from_millis(i as u64));
        }
        assert!(l.tracked() <= 4);
        // The newest addresses are the ones kept.
        assert!(l.blocked(ip(99), t0 + Duration::from_secs(1)).is_some());
        assert_eq!(l.blocked(ip(0), t0 + Duration::from_secs(1)), None);
    }
}
