//! Keyframe coalescing. Every keyframe of the shared encoder goes to every
//! client, so requests (joins, PLIs, FIRs) are merged: at most one forced
//! keyframe per interval; a request inside the interval is deferred to its
//! end, never lost.

use std::time::{Duration, Instant};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct KeyframeCounters {
    /// Requests received from all clients.
    pub requested: u64,
    /// Keyframes actually forced on the encoder.
    pub forced: u64,
    /// Requests merged into an earlier or later forced keyframe.
    pub coalesced: u64,
}

#[derive(Debug)]
pub struct KeyframeGate {
    interval: Duration,
    last_forced: Option<Instant>,
    pending: bool,
    pub counters: KeyframeCounters,
}

impl KeyframeGate {
    pub fn new(interval: Duration) -> Self {
        KeyframeGate {
            interval,
            last_forced: None,
            pending: false,
            counters: KeyframeCounters::default(),
        }
    }

    /// A client asked for a keyframe. Returns true when one must be forced now.
    pub fn request(&mut self, now: Instant) -> bool {
        self.counters.requested += 1;
        let due = match self.last_forced {
            None => true,
            Some(t) => now.duration_since(t) >= self.interval,
        };
        if due && !self.pending {
            self.fire(now);
            true
        } else {
            // Merged into the deferred one (or the one just sent).
            self.counters.coalesced += 1;
            self.pending = true;
            false
        }
    }

    /// When a deferred keyframe becomes due, if one is pending.
    pub fn deadline(&self) -> Option<Instant> {
        if !self.pending {
            return None;
        }
        Some(
            self.last_forced
                .map_or_else(Instant::now, |t| t + self.interval),
        )
    }

    /// Call when the deadline passed. Returns true when one must be forced now.
    pub fn poll(&mut self, now: Instant) -> bool {
        match self.deadline() {
            Some(d) if now >= d => {
                self.pending = false;
                self.fire(now);
                true
            }
            _ => false,
        }
    }

    fn fire(&mut self, now: Instant) {
        self.last_forced = Some(now);
        self.counters.forced += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_request_fires_at_once() {
        let mut g = KeyframeGate::new(Duration::from_millis(500));
        assert!(g.request(Instant::now()));
        assert_eq!(g.counters.forced, 1);
    }

    #[test]
    fn burst_is_coalesced_into_one_deferred() {
        let t0 = Instant::now();
        let mut g = KeyframeGate::new(Duration::from_millis(500));
        assert!(g.request(t0));
        for i in 1..=10 {
            assert!(!g.request(t0 + Duration::from_millis(i * 10)));
        }
        assert_eq!(g.deadline(), Some(t0 + Duration::from_millis(500)));
        assert!(!g.poll(t0 + Duration::from_millis(499)));
        assert!(g.poll(t0 + Duration::from_millis(500)));
        assert!(g.deadline().is_none());
        assert_eq!(
            g.counters,
            KeyframeCounters {
                requested: 11,
                forced: 2,
                coalesced: 10
            }
        );
    }

    #[test]
    fn spaced_requests_each_fire() {
        let t0 = Instant::now();
        let mut g = KeyframeGate::new(Duration::from_millis(100));
        assert!(g.request(t0));
        assert!(g.request(t0 + Duration::from_millis(150)));
        assert!(g.request(t0 + Duration::from_millis(300)));
        assert_eq!(g.counters.coalesced, 0);
    }

    #[test]
    fn zero_interval_never_defers() {
        let t0 = Instant::now();
        let mut g = KeyframeGate::new(Duration::ZERO);
        assert!(g.request(t0));
        assert!(g.request(t0));
        assert_eq!(g.counters.forced, 2);
    }
}
