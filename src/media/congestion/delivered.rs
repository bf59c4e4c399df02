//! The delivered rate: what the receiver acknowledged over the last half second, by its clock.

use std::collections::VecDeque;
use std::time::Duration;

/// Long enough to cover many frames, short enough to follow a link that
/// just got slower.
const WINDOW: Duration = Duration::from_millis(500);
/// Below this span a frame's burst would pass for the link's rate.
const MIN_SPAN: Duration = Duration::from_millis(100);
/// Bounds memory whatever the input (a day of packets with one timestamp).
const MAX_PACKETS: usize = 10_000;

#[derive(Debug, Default)]
pub struct Delivered {
    /// (arrival, bytes), oldest first.
    packets: VecDeque<(Duration, usize)>,
}

impl Delivered {
    /// One received packet, by its remote arrival time.
    pub fn on_packet(&mut self, arrival: Duration, size: usize) {
        let newest = self.packets.back().map(|p| p.0);
        let arrival = match newest {
            // Far before the newest: the remote clock went back; start over.
            Some(newest) if arrival.saturating_add(WINDOW) < newest => {
                self.packets.clear();
                arrival
            }
            // A little before: reordered on the way; its bytes still count.
            Some(newest) => arrival.max(newest),
            None => arrival,
        };
        self.packets.push_back((arrival, size));
        while self.packets.len() > MAX_PACKETS
            || self
                .packets
                .front()
                .is_some_and(|p| p.0.saturating_add(WINDOW) < arrival)
        {
            self.packets.pop_front();
        }
    }

    /// Bit/s over the window, once it spans [`MIN_SPAN`].
    pub fn bps(&self) -> Option<f64> {
        let (first, last) = (self.packets.front()?, self.packets.back()?);
        let span = last.0.checked_sub(first.0)?;
        if span < MIN_SPAN {
            return None;
        }
        // The first packet's bytes arrived before the span began.
        let bytes: f64 = self.packets.iter().skip(1).map(|p| p.1 as f64).sum();
        Some(bytes * 8.0 / span.as_secs_f64())
    }
}
