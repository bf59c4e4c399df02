//! A simulated bottleneck link, and a sender that sends at the estimate, for the tests.

use std::collections::VecDeque;
use std::time::Duration;

use super::{Estimator, PacketResult, SeqUnwrapper};

/// 30 frames a second, each paced evenly over its 33 ms.
const FRAME_US: u64 = 33_333;
const PACKET_BYTES: u64 = 1200;
/// The receiver's clock is not ours: the estimator must only use differences.
const REMOTE_OFFSET_US: u64 = 5_000_000_000;
/// Start just below a wrap, so every run crosses it.
const FIRST_SEQ: u16 = 65_000;

/// The path: one bottleneck with a FIFO of `queue` (tail drop), then
/// `propagation` each way, then random loss `loss` on the last hop.
#[derive(Debug, Clone, Copy)]
pub struct Link {
    pub capacity_bps: u64,
    pub queue: Duration,
    pub propagation: Duration,
    pub loss: f64,
}

impl Link {
    /// A clean path: 20 ms each way, a 300 ms buffer (a home router's).
    pub fn new(capacity_bps: u64) -> Self {
        Self {
            capacity_bps,
            queue: Duration::from_millis(300),
            propagation: Duration::from_millis(20),
            loss: 0.0,
        }
    }
}

/// What the test looks at, once a frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub at: Duration,
    pub estimate_bps: u64,
    /// How long a packet sent now would wait at the bottleneck.
    pub queue_delay: Duration,
    pub state: &'static str,
}

/// A sent packet the receiver has not reported yet.
#[derive(Debug)]
struct InFlight {
    seq: u16,
    sent: u64,
    arrival: Option<u64>,
    size: u64,
}

/// Deterministic randomness (splitmix64), so every run sees the same losses.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Sender, link and receiver, all in microseconds of simulated time.
#[derive(Debug)]
pub struct Sim {
    pub link: Link,
    pub estimator: Estimator,
    pub samples: Vec<Sample>,
    rng: Rng,
    /// The start of the next frame.
    now: u64,
    /// The bottleneck is busy sending what it holds until then.
    busy_until: u64,
    seq: u16,
    unwrapper: SeqUnwrapper,
    in_flight: VecDeque<InFlight>,
    /// Receiver time of the next feedback report.
    next_feedback: u64,
    /// Reports on their way back: (reach the sender at, packets).
    reports: VecDeque<(u64, Vec<PacketResult>)>,
}

impl Sim {
    pub fn new(link: Link, estimator: Estimator, seed: u64) -> Self {
        Self {
            link,
            estimator,
            samples: Vec::new(),
            rng: Rng(seed),
            now: 0,
            busy_until: 0,
            seq: FIRST_SEQ,
            unwrapper: SeqUnwrapper::default(),
            in_flight: VecDeque::new(),
            next_feedback: 50_000,
            reports: VecDeque::new(),
        }
    }

    pub fn run_for(&mut self, time: Duration) {
        let end = self.now + time.as_micros() as u64;
        while self.now < end {
            self.frame();
        }
    }

    /// Samples from `from` on (simulated time since the start).
    pub fn since(&self, from: Duration) -> impl Iterator<Item = &Sample> {
        self.samples.iter().filter(move |s| s.at >= from)
    }

    fn frame(&mut self) {
        while self.next_feedback <= self.now {
            let report = self.report(self.next_feedback);
            let back = self.next_feedback + self.link.propagation.as_micros() as u64;
            self.reports.push_back((back, report));
            self.next_feedback += 50_000 + self.rng.next() % 50_001;
        }
        while let Some((at, report)) = self.reports.pop_front_if(|r| r.0 <= self.now) {
            self.estimator
                .on_feedback(Duration::from_micros(at), &report);
        }
        let estimate = self.estimator.estimate_bps();
        self.samples.push(Sample {
            at: Duration::from_micros(self.now),
            estimate_bps: estimate,
            queue_delay: Duration::from_micros(self.busy_until.saturating_sub(self.now)),
            state: self.estimator.state(),
        });
        let bytes = (estimate * FRAME_US / 8_000_000).max(1);
        let packets = bytes.div_ceil(PACKET_BYTES);
        for k in 0..packets {
            self.send(self.now + k * FRAME_US / packets, bytes / packets);
        }
        self.now += FRAME_US;
    }

    fn send(&mut self, sent: u64, size: u64) {
        let link = self.link;
        let waited = self.busy_until.saturating_sub(sent);
        let arrival = if waited > link.queue.as_micros() as u64 {
            None // tail drop: the buffer is full
        } else {
            self.busy_until = self.busy_until.max(sent) + size * 8_000_000 / link.capacity_bps;
            let lost = self.rng.unit() < link.loss;
            (!lost).then_some(self.busy_until + link.propagation.as_micros() as u64)
        };
        self.in_flight.push_back(InFlight {
            seq: self.seq,
            sent,
            arrival,
            size,
        });
        self.seq = self.seq.wrapping_add(1);
    }

    /// What the receiver reports at `at`: every packet up to the newest
    /// that has arrived, the missing ones as lost (TWCC's way).
    fn report(&mut self, at: u64) -> Vec<PacketResult> {
        let Some(last) = self
            .in_flight
            .iter()
            .rposition(|p| p.arrival.is_some_and(|a| a <= at))
        else {
            return Vec::new();
        };
        self.in_flight
            .drain(..=last)
            .map(|p| PacketResult {
                seq: self.unwrapper.extend(p.seq),
                sent: Duration::from_micros(p.sent),
                received: p
                    .arrival
                    .map(|a| Duration::from_micros(a + REMOTE_OFFSET_US)),
                size: p.size as usize,
            })
            .collect()
    }
}
