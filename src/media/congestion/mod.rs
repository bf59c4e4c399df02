//! Send-side bandwidth estimation from TWCC feedback, after GCC: one [`Estimator`] per client.

mod delay;
mod delivered;
mod loss;
mod rate;

use std::time::Duration;

use delay::DelayDetector;
use delivered::Delivered;
use loss::LossController;
use rate::RateController;

/// One packet's fate, from TWCC feedback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketResult {
    /// Transport-wide sequence number, unwrapped ([`SeqUnwrapper`]).
    pub seq: u64,
    /// Local send time (the clock `now` comes from).
    pub sent: Duration,
    /// Remote arrival time (the receiver's clock, any offset), or `None` if lost.
    pub received: Option<Duration>,
    /// Bytes on the wire.
    pub size: usize,
}

/// Turns 16-bit TWCC sequence numbers into a count that never wraps.
#[derive(Debug, Default, Clone)]
pub struct SeqUnwrapper {
    newest: Option<u64>,
}

impl SeqUnwrapper {
    /// The nearest count to the newest so far that ends in `seq`: half the
    /// range either way, so late reports land before it, not a lap ahead.
    pub fn extend(&mut self, seq: u16) -> u64 {
        let value = match self.newest {
            // One lap up, so a late packet from before the first still fits.
            None => (1 << 16) + u64::from(seq),
            Some(newest) => {
                let delta = seq.wrapping_sub(newest as u16) as i16;
                newest.saturating_add_signed(i64::from(delta))
            }
        };
        self.newest = Some(self.newest.map_or(value, |n| n.max(value)));
        value
    }
}

/// A sequence number this far below the newest is a restarted sequence,
/// not a late packet.
const SEQ_RESTART_GAP: u64 = 1 << 15;
/// Round trips beyond this are a clock jump, not a path.
const MAX_RTT: Duration = Duration::from_secs(1);

/// One client's link: feed it feedback, read the rate to send at.
///
/// Two controllers each propose a rate and the lower wins: delay-based
/// (packet groups' delay variation, its trend against an adaptive
/// threshold, and an AIMD rate that never grows far past what was
/// delivered), which sees a queue build before anything is lost; and
/// loss-based, a bound cut only under heavy loss, for links that drop
/// without queueing.
#[derive(Debug)]
pub struct Estimator {
    min: f64,
    max: f64,
    estimate: f64,
    newest_seq: Option<u64>,
    rtt: Option<Duration>,
    delay: DelayDetector,
    delivered: Delivered,
    rate: RateController,
    loss: LossController,
}

impl Estimator {
    /// Rates in bit/s; `start` is clamped to `[min, max]`.
    pub fn new(start_bps: u64, min_bps: u64, max_bps: u64) -> Self {
        let (min, max) = (min_bps as f64, max_bps.max(min_bps) as f64);
        let start = (start_bps as f64).clamp(min, max);
        Self {
            min,
            max,
            estimate: start,
            newest_seq: None,
            rtt: None,
            delay: DelayDetector::new(),
            delivered: Delivered::default(),
            rate: RateController::new(start, min, max),
            loss: LossController::new(min, max),
        }
    }

    /// One feedback report (packets in sequence order; some may be lost).
    /// `now` is the local time. Duplicates and packets already reported
    /// are ignored.
    pub fn on_feedback(&mut self, now: Duration, packets: &[PacketResult]) {
        let mut fresh: Vec<PacketResult> = packets.to_vec();
        // Received before lost, so of a duplicate the better report stays.
        fresh.sort_by_key(|p| (p.seq, p.received.is_none()));
        fresh.dedup_by_key(|p| p.seq);
        fresh.retain(|p| self.is_new(p.seq));
        if fresh.is_empty() {
            return;
        }
        let mut newest_sent = None;
        for p in &fresh {
            self.loss.on_packet(p.sent, p.received.is_none());
            if let Some(arrival) = p.received {
                self.delivered.on_packet(arrival, p.size);
                self.delay.on_packet(ms(p.sent), ms(arrival));
                newest_sent = newest_sent.max(Some(p.sent));
            }
        }
        if let Some(sample) = newest_sent.and_then(|sent| now.checked_sub(sent)) {
            let sample = sample.min(MAX_RTT);
            self.rtt = Some(self.rtt.map_or(sample, |rtt| (rtt * 7 + sample) / 8));
        }
        let delivered = self.delivered.bps();
        let rtt = self.rtt.unwrap_or(Duration::from_millis(100));
        self.rate.update(now, self.delay.usage(), delivered, rtt);
        self.loss.update(now);
        self.estimate = self
            .rate
            .rate()
            .min(self.loss.bound())
            .clamp(self.min, self.max);
    }

    /// Whether `seq` has not been seen; remembers it.
    fn is_new(&mut self, seq: u64) -> bool {
        let seen = self
            .newest_seq
            .is_some_and(|newest| seq <= newest && newest - seq < SEQ_RESTART_GAP);
        if !seen {
            self.newest_seq = Some(seq);
        }
        !seen
    }

    /// The rate to send at, bit/s, within `[min, max]`.
    pub fn estimate_bps(&self) -> u64 {
        self.estimate as u64
    }

    /// The share of packets lost lately (about the last 200 packets), 0 to 1.
    pub fn loss_fraction(&self) -> f64 {
        self.loss.fraction()
    }

    /// What the receiver acknowledged over the last half second, bit/s.
    pub fn delivered_bps(&self) -> Option<u64> {
        self.delivered.bps().map(|bps| bps as u64)
    }

    /// What the controller that sets the estimate did last: "increase",
    /// "hold" or "decrease", for metrics and logs.
    pub fn state(&self) -> &'static str {
        if self.loss.bound() < self.rate.rate() {
            self.loss.last_action().as_str()
        } else {
            self.rate.last_action().as_str()
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;
