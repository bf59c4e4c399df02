//! Over-use detection from delay: packet groups, the trend of their delay variation, a threshold.

use std::collections::VecDeque;

/// What the queue on the path is doing, as the delay says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// The queue is steady: the link carries what we send.
    Normal,
    /// The queue grows: we send more than the link carries.
    Over,
    /// The queue drains: it was built by an earlier over-use.
    Under,
}

/// Packets sent within this of a group's first are one group (a frame's
/// burst): their spacing says more about the pacer than about the path.
const BURST_MS: f64 = 5.0;
/// Packets let go together for longer than this are a queue draining, not
/// one burst.
const MAX_BURST_MS: f64 = 100.0;
/// A group-to-group delay change this large is a clock jump or a long
/// pause, not a queue: start the trend again.
const MAX_VARIATION_MS: f64 = 1000.0;
/// The trendline's window, in groups, and its smoothing of the accumulated delay.
const TREND_WINDOW: usize = 20;
const TREND_SMOOTHING: f64 = 0.9;
/// A slope is tiny; the detector compares it, scaled by this and by how
/// many deltas it has seen (at most [`MAX_DELTAS`]), with a threshold in ms
/// (libwebrtc's trendline values).
const TREND_GAIN: f64 = 4.0;
const MAX_DELTAS: u32 = 60;
/// Adaptive threshold (draft-ietf-rmcat-gcc-02 section 5.4, with libwebrtc's
/// trendline gains): it follows the trend, up slowly and down fast, so
/// steady jitter (wifi, cross traffic) stops looking like over-use.
const THRESHOLD_START_MS: f64 = 12.5;
const THRESHOLD_MIN_MS: f64 = 6.0;
const THRESHOLD_MAX_MS: f64 = 600.0;
const THRESHOLD_K_UP: f64 = 0.0087;
const THRESHOLD_K_DOWN: f64 = 0.039;
/// A trend this far past the threshold is a spike: the threshold ignores it.
const THRESHOLD_SPIKE_MS: f64 = 15.0;
/// Over-use must last this long (in send time) before it counts.
const OVERUSE_TIME_MS: f64 = 10.0;

/// A burst of packets sent together; times in ms (send: local clock,
/// arrival: the receiver's clock, whatever its offset).
#[derive(Debug, Clone, Copy)]
struct Group {
    first_sent: f64,
    last_sent: f64,
    first_arrival: f64,
    last_arrival: f64,
}

/// Feeds received packets, in send order, and says what the queue does.
#[derive(Debug)]
pub struct DelayDetector {
    current: Option<Group>,
    previous: Option<Group>,
    trend: Trendline,
    overuse: OveruseDetector,
}

impl DelayDetector {
    pub fn new() -> Self {
        Self {
            current: None,
            previous: None,
            trend: Trendline::default(),
            overuse: OveruseDetector::new(),
        }
    }

    pub fn usage(&self) -> Usage {
        self.overuse.usage
    }

    /// One received packet (times in ms); packets must come in send order.
    pub fn on_packet(&mut self, sent: f64, arrival: f64) {
        let Some(group) = self.current.as_mut() else {
            self.current = Some(Group::of(sent, arrival));
            return;
        };
        if sent < group.first_sent {
            if group.first_sent - sent > MAX_VARIATION_MS {
                self.restart(); // our clock went back
                self.current = Some(Group::of(sent, arrival));
            }
            return; // else sent before the group we are filling: too late to place
        }
        if group.takes(sent, arrival) {
            group.last_sent = group.last_sent.max(sent);
            group.last_arrival = group.last_arrival.max(arrival);
            return;
        }
        let done = std::mem::replace(group, Group::of(sent, arrival));
        self.on_group(done);
    }

    /// Forgets the delay history (not the threshold).
    fn restart(&mut self) {
        self.previous = None;
        self.trend = Trendline::default();
        self.overuse.restart();
    }

    /// A complete group against the one before: the inter-group delay variation.
    fn on_group(&mut self, group: Group) {
        let Some(prev) = self.previous else {
            self.previous = Some(group);
            return;
        };
        let send_delta = group.last_sent - prev.last_sent;
        let arrival_delta = group.last_arrival - prev.last_arrival;
        let variation = arrival_delta - send_delta;
        if variation.abs() > MAX_VARIATION_MS {
            // A clock jumped: what came before says nothing now.
            self.restart();
            self.previous = Some(group);
            return;
        }
        if arrival_delta < 0.0 {
            return; // reordered on the way: keep comparing with the newer one
        }
        self.previous = Some(group);
        if let Some(trend) = self.trend.update(variation, group.last_arrival) {
            self.overuse.update(trend, send_delta, group.last_arrival);
        }
    }
}

impl Group {
    fn of(sent: f64, arrival: f64) -> Self {
        Self {
            first_sent: sent,
            last_sent: sent,
            first_arrival: arrival,
            last_arrival: arrival,
        }
    }

    /// Whether a packet belongs to this group: sent in the same burst, or
    /// arriving right behind it, sooner than it was sent after it (a link
    /// that held both and let them go together, like wifi aggregation).
    fn takes(&self, sent: f64, arrival: f64) -> bool {
        let arrival_delta = arrival - self.last_arrival;
        let released_together = (0.0..=BURST_MS).contains(&arrival_delta)
            && arrival_delta < sent - self.last_sent
            && arrival - self.first_arrival < MAX_BURST_MS;
        sent - self.first_sent <= BURST_MS || released_together
    }
}

/// The slope of the accumulated (and smoothed) delay variation over
/// arrival time: positive while a queue builds. A line through the last
/// groups says more than any one of them, so single late packets do not
/// count as congestion.
#[derive(Debug, Default)]
struct Trendline {
    accumulated: f64,
    smoothed: f64,
    /// (arrival ms since the first group, smoothed delay ms)
    samples: VecDeque<(f64, f64)>,
    first_arrival: Option<f64>,
    deltas: u32,
}

impl Trendline {
    /// Adds one group's delay variation; the scaled trend once the window is full.
    fn update(&mut self, variation: f64, arrival: f64) -> Option<f64> {
        self.deltas = self.deltas.saturating_add(1);
        self.accumulated += variation;
        self.smoothed =
            TREND_SMOOTHING * self.smoothed + (1.0 - TREND_SMOOTHING) * self.accumulated;
        let first = *self.first_arrival.get_or_insert(arrival);
        self.samples.push_back((arrival - first, self.smoothed));
        if self.samples.len() > TREND_WINDOW {
            self.samples.pop_front();
        }
        if self.samples.len() < TREND_WINDOW {
            return None;
        }
        let slope = slope(&self.samples)?;
        Some(f64::from(self.deltas.min(MAX_DELTAS)) * slope * TREND_GAIN)
    }
}

/// Least-squares slope of y over x; `None` when all x are the same.
fn slope(samples: &VecDeque<(f64, f64)>) -> Option<f64> {
    let n = samples.len() as f64;
    let mean_x = samples.iter().map(|s| s.0).sum::<f64>() / n;
    let mean_y = samples.iter().map(|s| s.1).sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for (x, y) in samples {
        num += (x - mean_x) * (y - mean_y);
        den += (x - mean_x) * (x - mean_x);
    }
    let slope = num / den;
    (den > 0.0 && slope.is_finite()).then_some(slope)
}

/// Compares the trend with an adaptive threshold (draft section 5.4).
#[derive(Debug)]
struct OveruseDetector {
    threshold: f64,
    last_threshold_update: Option<f64>,
    /// Send time spent above the threshold so far, and how many groups.
    time_over: f64,
    groups_over: u32,
    previous_trend: f64,
    usage: Usage,
}

impl OveruseDetector {
    fn new() -> Self {
        Self {
            threshold: THRESHOLD_START_MS,
            last_threshold_update: None,
            time_over: 0.0,
            groups_over: 0,
            previous_trend: 0.0,
            usage: Usage::Normal,
        }
    }

    /// After a discontinuity: what was measured says nothing now; the
    /// threshold (what jitter this path has) still holds.
    fn restart(&mut self) {
        *self = Self {
            threshold: self.threshold,
            ..Self::new()
        };
    }

    /// `trend` and the threshold in ms; `send_delta` is the group's send
    /// spacing, `now` its arrival (the threshold adapts in receiver time).
    fn update(&mut self, trend: f64, send_delta: f64, now: f64) {
        if trend > self.threshold {
            // Over for long enough, on more than one group, and not
            // already turning down: then it is a queue, not a blip.
            self.time_over += send_delta.max(0.0);
            self.groups_over += 1;
            if self.time_over > OVERUSE_TIME_MS
                && self.groups_over > 1
                && trend >= self.previous_trend
            {
                self.usage = Usage::Over;
                self.time_over = 0.0;
                self.groups_over = 0;
            }
        } else {
            self.time_over = 0.0;
            self.groups_over = 0;
            self.usage = if trend < -self.threshold {
                Usage::Under
            } else {
                Usage::Normal
            };
        }
        self.previous_trend = trend;
        self.adapt_threshold(trend.abs(), now);
    }

    fn adapt_threshold(&mut self, trend: f64, now: f64) {
        let last = self.last_threshold_update.replace(now).unwrap_or(now);
        if trend > self.threshold + THRESHOLD_SPIKE_MS {
            return;
        }
        let k = if trend < self.threshold {
            THRESHOLD_K_DOWN
        } else {
            THRESHOLD_K_UP
        };
        let elapsed = (now - last).clamp(0.0, 100.0);
        self.threshold += k * (trend - self.threshold) * elapsed;
        self.threshold = self.threshold.clamp(THRESHOLD_MIN_MS, THRESHOLD_MAX_MS);
    }
}
