//! The loss-based bound: lowered under heavy loss, raised when there is almost none.

use std::time::Duration;

use super::rate::Action;

/// Above this loss the bound drops by `1 - loss / 2`; below
/// [`INCREASE_LOSS`] it grows by [`INCREASE_FACTOR`]; between, it holds
/// (draft-ietf-rmcat-gcc-02 section 6): a few per cent is what a lossy
/// link does at any rate, and retransmission repairs it.
const DECREASE_LOSS: f64 = 0.10;
const INCREASE_LOSS: f64 = 0.02;
const INCREASE_FACTOR: f64 = 1.05;
/// At most one change per interval, and only on this many packets of
/// evidence: 5 % random loss over 20 packets looks like 10 % too often.
const UPDATE_INTERVAL: Duration = Duration::from_millis(200);
const MIN_PACKETS: f64 = 50.0;
/// The loss average forgets with this horizon, in packets.
const HORIZON_PACKETS: f64 = 200.0;

/// An exponentially forgetting share of lost packets.
#[derive(Debug, Default, Clone, Copy)]
struct LossAverage {
    lost: f64,
    total: f64,
}

impl LossAverage {
    fn add(&mut self, lost: bool) {
        let keep = 1.0 - 1.0 / HORIZON_PACKETS;
        self.lost = self.lost * keep + if lost { 1.0 } else { 0.0 };
        self.total = self.total * keep + 1.0;
    }

    fn fraction(&self) -> f64 {
        if self.total > 0.0 {
            self.lost / self.total
        } else {
            0.0
        }
    }
}

/// An upper bound on the rate from loss alone. It starts at the maximum:
/// loss holds nothing back until it has been heavy.
#[derive(Debug)]
pub struct LossController {
    bound: f64,
    min: f64,
    max: f64,
    /// Every packet, for what we report.
    recent: LossAverage,
    /// Only packets sent since the last decrease: the loss before it has
    /// been acted on, so it must not cut the rate twice.
    evidence: LossAverage,
    last_change: Option<Duration>,
    last_decrease: Option<Duration>,
    last_action: Action,
}

impl LossController {
    pub fn new(min: f64, max: f64) -> Self {
        Self {
            bound: max,
            min,
            max,
            recent: LossAverage::default(),
            evidence: LossAverage::default(),
            last_change: None,
            last_decrease: None,
            last_action: Action::Hold,
        }
    }

    pub fn bound(&self) -> f64 {
        self.bound
    }

    pub fn fraction(&self) -> f64 {
        self.recent.fraction()
    }

    pub fn last_action(&self) -> Action {
        self.last_action
    }

    /// One packet's fate; `sent` is its local send time.
    pub fn on_packet(&mut self, sent: Duration, lost: bool) {
        self.recent.add(lost);
        if self.last_decrease.is_none_or(|at| sent >= at) {
            self.evidence.add(lost);
        }
    }

    /// One step, once per feedback report.
    pub fn update(&mut self, now: Duration) {
        self.last_action = Action::Hold;
        if self.last_decrease.is_some_and(|at| now < at) {
            // The clock went back: when things happened says nothing now.
            (self.last_decrease, self.last_change) = (None, None);
        }
        let too_soon = self
            .last_change
            .and_then(|last| now.checked_sub(last))
            .is_some_and(|since| since < UPDATE_INTERVAL);
        if too_soon || self.evidence.total < MIN_PACKETS {
            return;
        }
        let loss = self.evidence.fraction();
        if loss > DECREASE_LOSS {
            self.bound *= 1.0 - 0.5 * loss;
            self.last_action = Action::Decrease;
            self.last_decrease = Some(now);
            self.evidence = LossAverage::default();
        } else if loss < INCREASE_LOSS && self.bound < self.max {
            self.bound *= INCREASE_FACTOR;
            self.last_action = Action::Increase;
        } else {
            return;
        }
        self.bound = self.bound.clamp(self.min, self.max);
        self.last_change = Some(now);
    }
}
