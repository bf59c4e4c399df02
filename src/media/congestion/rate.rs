//! The delay-based rate: AIMD driven by the over-use signal, never far above what was delivered.

use std::time::Duration;

use super::delay::Usage;

/// What a controller did on its last update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Increase,
    Hold,
    Decrease,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Increase => "increase",
            Action::Hold => "hold",
            Action::Decrease => "decrease",
        }
    }
}

/// On over-use the rate drops to this share of what was delivered: below
/// the link's capacity, so the queue drains (draft section 5.5).
const BETA: f64 = 0.85;
/// Far from any known capacity the rate grows by this factor a second.
/// The draft says 8 %; libwebrtc gets its speed from probing, which we do
/// not do, so without more a 1 to 4 Mbit/s ramp would take 17 s.
const MULTIPLICATIVE_PER_SECOND: f64 = 1.25;
/// Never grow past this multiple of the delivered rate (plus a little, so
/// a very low rate can still grow): a sender that does not fill its
/// estimate (a still desktop) must not run the estimate up unseen.
const DELIVERED_HEADROOM: f64 = 1.5;
const DELIVERED_HEADROOM_BPS: f64 = 10_000.0;
const PACKET_BITS: f64 = 1200.0 * 8.0;
const FRAMES_PER_SECOND: f64 = 30.0;

/// The AIMD rate controller (draft-ietf-rmcat-gcc-02 section 5.5).
#[derive(Debug)]
pub struct RateController {
    rate: f64,
    min: f64,
    max: f64,
    /// The draft's state: what the next update will do unless the signal changes it.
    state: Action,
    last_action: Action,
    last_update: Option<Duration>,
    last_decrease: Option<Duration>,
    capacity: LinkCapacity,
}

impl RateController {
    pub fn new(start: f64, min: f64, max: f64) -> Self {
        Self {
            rate: start.clamp(min, max),
            min,
            max,
            state: Action::Increase,
            last_action: Action::Hold,
            last_update: None,
            last_decrease: None,
            capacity: LinkCapacity::default(),
        }
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    pub fn last_action(&self) -> Action {
        self.last_action
    }

    /// One step, once per feedback report: `delivered` is the acknowledged
    /// receive rate (bit/s), `rtt` the smoothed round trip.
    pub fn update(&mut self, now: Duration, usage: Usage, delivered: Option<f64>, rtt: Duration) {
        let elapsed = self
            .last_update
            .and_then(|last| now.checked_sub(last))
            .unwrap_or_default()
            .min(Duration::from_secs(1));
        self.last_update = Some(now);
        // The draft's state table: over-use always decreases; a draining
        // queue holds (it will show how much room there is); normal
        // increases, one step after a decrease.
        self.state = match (usage, self.state) {
            (Usage::Over, _) => Action::Decrease,
            (Usage::Under, _) => Action::Hold,
            (Usage::Normal, Action::Decrease) => Action::Hold,
            (Usage::Normal, _) => Action::Increase,
        };
        let before = self.rate;
        match self.state {
            Action::Increase => self.increase(elapsed.as_secs_f64(), delivered, rtt),
            Action::Decrease => self.decrease(now, delivered, rtt),
            Action::Hold => {}
        }
        self.rate = self.rate.clamp(self.min, self.max);
        self.last_action = if self.rate > before {
            Action::Increase
        } else if self.rate < before {
            Action::Decrease
        } else {
            Action::Hold
        };
    }

    fn increase(&mut self, elapsed: f64, delivered: Option<f64>, rtt: Duration) {
        // Nothing delivered lately: no evidence the link carries more.
        let Some(delivered) = delivered else { return };
        if delivered > self.capacity.upper() {
            self.capacity.forget(); // the link got better than we knew it
        }
        let increased = if self.capacity.known() {
            // Near the capacity: about a packet a response time, to find
            // the edge again without building a queue.
            let response = 0.1 + rtt.as_secs_f64();
            let packet = PACKET_BITS.min(self.rate / FRAMES_PER_SECOND);
            self.rate + (packet / response).max(4000.0) * elapsed
        } else {
            self.rate * MULTIPLICATIVE_PER_SECOND.powf(elapsed)
        };
        let limit = DELIVERED_HEADROOM * delivered + DELIVERED_HEADROOM_BPS;
        if self.rate < limit {
            self.rate = increased.min(limit);
        }
    }

    fn decrease(&mut self, now: Duration, delivered: Option<f64>, rtt: Duration) {
        // A decrease shows in the feedback a round trip later; until then
        // the over-use we see is the one already acted on.
        let wait = rtt.clamp(Duration::from_millis(10), Duration::from_millis(200));
        let too_soon = self
            .last_decrease
            .and_then(|last| now.checked_sub(last))
            .is_some_and(|since| since < wait);
        if too_soon {
            return;
        }
        self.last_decrease = Some(now);
        let target = match delivered {
            Some(delivered) => {
                self.capacity.on_overuse(delivered);
                BETA * delivered
            }
            None => BETA * self.rate,
        };
        self.rate = self.rate.min(target);
    }
}

/// Where the link's capacity seems to be: the delivered rate at the last
/// over-uses, averaged, with its spread. Near it the rate creeps; away
/// from it (or before any over-use) it grows fast.
#[derive(Debug, Default)]
struct LinkCapacity {
    average: Option<f64>,
    /// Variance relative to the average (squared fraction).
    variance: f64,
}

/// How fast the average follows new over-use points.
const CAPACITY_SMOOTHING: f64 = 0.1;
/// "Near" is within three deviations, and the deviation is at least this
/// share of the average: delivered rates jitter even on a steady link.
const CAPACITY_MIN_DEVIATION: f64 = 0.03;

impl LinkCapacity {
    fn known(&self) -> bool {
        self.average.is_some()
    }

    fn forget(&mut self) {
        *self = Self::default();
    }

    fn deviation(&self, average: f64) -> f64 {
        average * self.variance.sqrt().max(CAPACITY_MIN_DEVIATION)
    }

    fn upper(&self) -> f64 {
        self.average
            .map_or(f64::INFINITY, |a| a + 3.0 * self.deviation(a))
    }

    fn on_overuse(&mut self, delivered: f64) {
        let Some(average) = self.average else {
            self.average = Some(delivered);
            return;
        };
        if delivered < average - 3.0 * self.deviation(average) {
            // The link got worse: the old capacity says nothing now.
            self.forget();
            self.average = Some(delivered);
            return;
        }
        let error = (delivered - average) / average.max(1.0);
        self.variance =
            (1.0 - CAPACITY_SMOOTHING) * self.variance + CAPACITY_SMOOTHING * error * error;
        self.average = Some(average + CAPACITY_SMOOTHING * (delivered - average));
    }
}
