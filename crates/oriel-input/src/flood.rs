//! Flood control for input, applied where data-channel bytes enter (any
//! thread) before they are queued for the input thread: one token bucket
//! per peer, so a flooding client cannot delay anyone else's input, and a
//! bound on what waits in the queue, so memory stays bounded even when the
//! backend stalls. A peer that stays over its rate for [`FloodLimits::cut_after`]
//! is reported once (the agent then ends its session).
//!
//! [`Bucket`] and [`FloodGate`] are pure (the caller passes the time);
//! [`Gates`] shares them between threads.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::protocol::MAX_TEXT_BYTES;
use crate::PeerId;

/// The largest valid input message: a text message (version, type, u16
/// length, then the text). Anything longer is dropped unread.
pub const MAX_INPUT_BYTES: usize = 4 + MAX_TEXT_BYTES;

/// Input messages waiting for the input thread, from all peers together.
/// At most ~4.4 MiB even if every one were a full text message.
pub const MAX_QUEUED: usize = 4096;

/// A token bucket: `rate` tokens a second, at most `burst` saved up.
#[derive(Debug, Clone)]
pub struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn new(rate: f64, burst: f64, now: Instant) -> Self {
        let burst = burst.max(1.0);
        Bucket {
            rate: rate.max(f64::MIN_POSITIVE),
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes `cost` tokens, or says how long until they are there (and
    /// takes nothing).
    pub fn take(&mut self, cost: f64, now: Instant) -> Result<(), Duration> {
        self.ready(cost, now)?;
        self.tokens -= cost;
        Ok(())
    }

    /// Whether `cost` tokens are there now, or how long until they are
    /// (takes nothing).
    pub fn ready(&mut self, cost: f64, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now.max(self.last);
        if self.tokens >= cost {
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (cost.min(self.burst) - self.tokens) / self.rate,
            ))
        }
    }
}

/// How much input a peer may send.
#[derive(Debug, Clone, Copy)]
pub struct FloodLimits {
    /// Messages a second, sustained. A message costs 1, plus 1 per 64 bytes
    /// (a full text message costs 17).
    pub rate: f64,
    /// Messages that may come at once above the rate.
    pub burst: f64,
    /// A peer over its rate this long without a pause is cut off.
    pub cut_after: Duration,
    /// A pause this long without a dropped message ends a flood.
    pub calm: Duration,
}

impl Default for FloodLimits {
    /// 4000 a second: a 1000 Hz mouse plus a gamepad polled at 250 Hz with
    /// six axes moving (2500 a second) fits with room to spare; the web
    /// client sends far less (pointer events per frame, the pad per frame).
    /// Cut after 1 s over it: no person does that, and what a flooder sent
    /// waits in webrtcbin's unbounded queues until its branch is gone
    /// (5 s let a Chromium flood grow the agent by 100 MiB). A flood ends
    /// only after 5 s without a drop: the SCTP budget makes a flood arrive
    /// in bursts with gaps of over a second, and a 1 s calm restarted the
    /// count in each gap (cuts 2-8 s late, once none in 12 s on CI).
    fn default() -> Self {
        FloodLimits {
            rate: 4000.0,
            burst: 4000.0,
            cut_after: Duration::from_secs(1),
            calm: Duration::from_secs(5),
        }
    }
}

/// What to do with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Over the rate: drop it.
    Drop,
    /// Over the rate for too long: drop it and cut the peer off (said once;
    /// everything after is dropped).
    Cut,
}

/// One peer's bucket and flood state.
#[derive(Debug, Clone)]
pub struct FloodGate {
    limits: FloodLimits,
    bucket: Bucket,
    /// (first, latest) drop of the current flood.
    flood: Option<(Instant, Instant)>,
    cut: bool,
}

impl FloodGate {
    pub fn new(limits: FloodLimits, now: Instant) -> Self {
        FloodGate {
            limits,
            bucket: Bucket::new(limits.rate, limits.burst, now),
            flood: None,
            cut: false,
        }
    }

    /// The verdict on a message of `len` bytes arriving at `now`.
    pub fn check(&mut self, len: usize, now: Instant) -> Verdict {
        if self.cut {
            return Verdict::Drop;
        }
        let cost = 1.0 + (len / 64) as f64;
        let calm = self.limits.calm;
        if self.bucket.take(cost, now).is_ok() {
            if self
                .flood
                .is_some_and(|(_, last)| now.saturating_duration_since(last) >= calm)
            {
                self.flood = None;
            }
            return Verdict::Pass;
        }
        let start = match self.flood {
            Some((start, last)) if now.saturating_duration_since(last) < calm => start,
            _ => now,
        };
        self.flood = Some((start, now));
        if now.saturating_duration_since(start) >= self.limits.cut_after {
            self.cut = true;
            Verdict::Cut
        } else {
            Verdict::Drop
        }
    }
}

/// Told (once per peer) that the peer flooded, with a reason for it.
pub type FloodHook = Box<dyn Fn(PeerId, String) + Send + Sync>;

/// Every peer's gate and the queue bound, shared by the threads that
/// deliver data-channel bytes.
#[derive(Default)]
pub struct Gates {
    limits: FloodLimits,
    peers: Mutex<HashMap<PeerId, FloodGate>>,
    queued: AtomicUsize,
    hook: OnceLock<FloodHook>,
}

impl Gates {
    pub fn new(limits: FloodLimits) -> Self {
        Gates {
            limits,
            ..Default::default()
        }
    }

    /// Who hears about floods (set once).
    pub fn on_flood(&self, hook: FloodHook) {
        let _ = self.hook.set(hook);
    }

    pub fn join(&self, peer: PeerId) {
        if let Ok(mut p) = self.peers.lock() {
            p.insert(peer, FloodGate::new(self.limits, Instant::now()));
        }
    }

    pub fn leave(&self, peer: PeerId) {
        if let Ok(mut p) = self.peers.lock() {
            p.remove(&peer);
        }
    }

    /// May a message of `len` bytes from `peer` be queued? On `Err`, the
    /// reason it is dropped. An `Ok` holds a place in the queue until
    /// [`Gates::dequeued`].
    pub fn admit(&self, peer: PeerId, len: usize) -> Result<(), &'static str> {
        if len > MAX_INPUT_BYTES {
            return Err("too_large");
        }
        // A peer without a gate has left (or never joined): its bytes go on
        // to the input thread, which counts them as `unknown_peer`, in
        // order with the leave; the queue bound still holds them.
        let verdict = match self.peers.lock() {
            Ok(mut peers) => peers
                .get_mut(&peer)
                .map_or(Verdict::Pass, |gate| gate.check(len, Instant::now())),
            Err(_) => Verdict::Pass,
        };
        match verdict {
            Verdict::Pass => {}
            Verdict::Drop => return Err("rate_limited"),
            Verdict::Cut => {
                let l = self.limits;
                let why = format!(
                    "input flood: more than {} messages a second for {} s",
                    l.rate,
                    l.cut_after.as_secs()
                );
                tracing::warn!(peer, "{why}: cutting the client off");
                if let Some(hook) = self.hook.get() {
                    hook(peer, why);
                }
                return Err("rate_limited");
            }
        }
        if self.queued.fetch_add(1, Ordering::AcqRel) >= MAX_QUEUED {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err("queue_full");
        }
        Ok(())
    }

    /// The input thread took one admitted message off the queue.
    pub fn dequeued(&self) {
        let _ = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn bucket_allows_the_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(100.0, 10.0, t0);
        for _ in 0..10 {
            assert!(b.take(1.0, t0).is_ok());
        }
        let wait = b.take(1.0, t0).unwrap_err();
        assert!(wait > 9 * MS && wait <= 10 * MS, "{wait:?}");
        assert!(b.take(1.0, t0 + 10 * MS).is_ok());
        // A second refills 100 but never more than the burst.
        let t1 = t0 + Duration::from_secs(5);
        for _ in 0..10 {
            assert!(b.take(1.0, t1).is_ok());
        }
        assert!(b.take(1.0, t1).is_err());
    }

    fn limits() -> FloodLimits {
        FloodLimits {
            rate: 1000.0,
            burst: 100.0,
            cut_after: Duration::from_secs(5),
            calm: Duration::from_secs(1),
        }
    }

    /// Feeds `per_sec` messages a second for `secs`; returns (passed, dropped, cut at).
    fn feed(
        g: &mut FloodGate,
        t0: Instant,
        per_sec: u64,
        secs: u64,
    ) -> (u64, u64, Option<Duration>) {
        let (mut pass, mut drop, mut cut) = (0, 0, None);
        let step = Duration::from_nanos(1_000_000_000 / per_sec);
        for i in 0..per_sec * secs {
            let now = t0 + step * i as u32;
            match g.check(6, now) {
                Verdict::Pass => pass += 1,
                Verdict::Drop => drop += 1,
                Verdict::Cut => {
                    drop += 1;
                    cut.get_or_insert(now - t0);
                }
            }
        }
        (pass, drop, cut)
    }

    #[test]
    fn a_peer_at_its_rate_loses_nothing() {
        let t0 = Instant::now();
        let mut g = FloodGate::new(limits(), t0);
        let (pass, drop, cut) = feed(&mut g, t0, 900, 20);
        assert_eq!((pass, drop, cut), (18_000, 0, None));
    }

    #[test]
    fn a_sustained_flood_is_held_to_the_rate_then_cut() {
        let t0 = Instant::now();
        let mut g = FloodGate::new(limits(), t0);
        let (pass, drop, cut) = feed(&mut g, t0, 10_000, 8);
        let cut = cut.expect("cut off");
        // Over the limit from ~10 ms in; cut 5 s after the first drop.
        assert!(
            cut >= Duration::from_secs(5) && cut < Duration::from_millis(5100),
            "{cut:?}"
        );
        // Until then held to burst + rate; after the cut, nothing passes.
        let until_cut = 100.0 + 1000.0 * cut.as_secs_f64();
        assert!(
            (pass as f64 - until_cut).abs() < 20.0,
            "{pass} vs {until_cut}"
        );
        assert_eq!(pass + drop, 80_000);
        assert_eq!(g.check(6, t0 + Duration::from_secs(60)), Verdict::Drop);
    }

    #[test]
    fn short_bursts_with_pauses_are_never_cut() {
        let t0 = Instant::now();
        let mut g = FloodGate::new(limits(), t0);
        // 0.5 s at 5x the rate, then 1.5 s quiet, ten times over: many
        // drops, never a cut.
        let mut dropped = 0;
        for round in 0..10u32 {
            let start = t0 + Duration::from_secs(2) * round;
            for i in 0..2500u32 {
                match g.check(6, start + Duration::from_micros(200) * i) {
                    Verdict::Cut => panic!("cut in round {round}"),
                    Verdict::Drop => dropped += 1,
                    Verdict::Pass => {}
                }
            }
        }
        assert!(dropped > 10_000, "{dropped}");
    }

    #[test]
    fn text_costs_by_size() {
        let t0 = Instant::now();
        let mut g = FloodGate::new(
            FloodLimits {
                burst: 170.0,
                ..limits()
            },
            t0,
        );
        // A full text message costs 1 + 1028 / 64 = 17.
        for _ in 0..10 {
            assert_eq!(g.check(MAX_INPUT_BYTES, t0), Verdict::Pass);
        }
        assert_eq!(g.check(MAX_INPUT_BYTES, t0), Verdict::Drop);
    }

    #[test]
    fn gates_bound_the_queue() {
        let gates = Gates::new(FloodLimits {
            rate: 1e9,
            burst: 1e9,
            ..limits()
        });
        gates.join(1);
        assert_eq!(gates.admit(1, MAX_INPUT_BYTES + 1), Err("too_large"));
        for _ in 0..MAX_QUEUED {
            assert_eq!(gates.admit(1, 6), Ok(()));
        }
        assert_eq!(gates.admit(1, 6), Err("queue_full"));
        gates.dequeued();
        assert_eq!(gates.admit(1, 6), Ok(()));
        assert_eq!(gates.queued(), MAX_QUEUED);
        // After leaving, bytes still count against the queue bound.
        gates.leave(1);
        assert_eq!(gates.admit(1, 6), Err("queue_full"));
    }

    #[test]
    fn the_hook_hears_of_a_flood_once() {
        let heard = std::sync::Arc::new(Mutex::new(Vec::new()));
        let gates = Gates::new(FloodLimits {
            rate: 10.0,
            burst: 10.0,
            cut_after: Duration::ZERO,
            calm: Duration::from_secs(1),
        });
        let h = heard.clone();
        gates.on_flood(Box::new(move |peer, why| {
            h.lock().unwrap().push((peer, why))
        }));
        gates.join(7);
        for _ in 0..100 {
            let _ = gates.admit(7, 6);
        }
        let heard = heard.lock().unwrap();
        assert_eq!(heard.len(), 1, "{heard:?}");
        assert_eq!(heard[0].0, 7);
        assert!(heard[0].1.starts_with("input flood"), "{}", heard[0].1);
    }
}
