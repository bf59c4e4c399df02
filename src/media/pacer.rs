//! When a capture by damage sends a frame: a changed screen at once, but at
//! most `framerate` times a second; after the last change `settle` repeats
//! at the full rate (x264's first frame of a big change is coarse under the
//! bitrate cap, and each repeat refines it); then one repeat every
//! `repeat` (browsers and the capture watchdog want to hear from a still
//! screen now and then). No clock and no I/O inside: the X11 source
//! (`media::x11src`) and the Wayland pacer element (`media::pace`) ask it
//! what to do and tell it what they did, and the tests feed it instants.

use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;

/// Full-rate repeats after the last change (see `media::pacer`).
pub const SETTLE_FRAMES: u32 = 5;

/// `repeat-ms` and `settle-frames`, the pacing properties `orielpace` and
/// `orielx11src` both have.
pub fn pacing_properties() -> [glib::ParamSpec; 2] {
    [
        glib::ParamSpecUInt::builder("repeat-ms")
            .blurb("While nothing changes, send the last frame again this often")
            .minimum(50)
            .maximum(60_000)
            .default_value(1000)
            .build(),
        glib::ParamSpecUInt::builder("settle-frames")
            .blurb("After a change, repeat the frame this many times at the full rate (the encoder refines it)")
            .maximum(120)
            .default_value(SETTLE_FRAMES)
            .build(),
    ]
}

/// What the source should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Send the changed screen (grab it, or take the newest frame).
    Fresh,
    /// Send the last frame again.
    Repeat,
    /// Nothing is due before this instant (a change may come sooner).
    Wait(Instant),
}

#[derive(Debug, Clone)]
pub struct Pacer {
    interval: Duration,
    repeat: Duration,
    settle: u32,
    last_push: Option<Instant>,
    settle_left: u32,
}

impl Pacer {
    pub fn new(framerate: u32, repeat: Duration, settle: u32) -> Self {
        Pacer {
            interval: Self::interval_of(framerate),
            repeat,
            settle,
            last_push: None,
            settle_left: 0,
        }
    }

    /// One frame's time at `framerate` (0 is taken as 1).
    pub fn interval_of(framerate: u32) -> Duration {
        Duration::from_secs(1) / framerate.max(1)
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// What is due at `now`, given whether the screen changed since the
    /// last fresh frame and whether there is a last frame to repeat.
    pub fn next(&self, now: Instant, changed: bool, have_last: bool) -> Next {
        let Some(last) = self.last_push else {
            // Nothing sent yet: the first frame goes as soon as there is one.
            return if changed {
                Next::Fresh
            } else {
                Next::Wait(now + self.repeat)
            };
        };
        if changed {
            let at = last + self.interval;
            return if now >= at {
                Next::Fresh
            } else {
                Next::Wait(at)
            };
        }
        if !have_last {
            // Nothing to repeat (a new format dropped it): wait for a change.
            return Next::Wait(now + self.repeat);
        }
        let due = if self.settle_left > 0 {
            self.interval
        } else {
            self.repeat
        };
        let at = last + due;
        if now >= at {
            Next::Repeat
        } else {
            Next::Wait(at.max(now))
        }
    }

    /// A fresh frame went out at `now`.
    pub fn sent_fresh(&mut self, now: Instant) {
        self.last_push = Some(now);
        self.settle_left = self.settle;
    }

    /// A repeat went out at `now`.
    pub fn sent_repeat(&mut self, now: Instant) {
        self.last_push = Some(now);
        self.settle_left = self.settle_left.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Runs the pacer for `ms` milliseconds, one step a millisecond, with the
    /// screen changing at the given instants; returns (ms, what was sent).
    fn run(p: &mut Pacer, changes: &[u64], ms: u64) -> Vec<(u64, Next)> {
        let t0 = Instant::now();
        let mut changed = false;
        let mut sent = Vec::new();
        for t in 0..ms {
            let now = t0 + MS * t as u32;
            changed |= changes.contains(&t);
            match p.next(now, changed, !sent.is_empty()) {
                Next::Fresh => {
                    p.sent_fresh(now);
                    changed = false;
                    sent.push((t, Next::Fresh));
                }
                Next::Repeat => {
                    p.sent_repeat(now);
                    sent.push((t, Next::Repeat));
                }
                Next::Wait(at) => assert!(at >= now, "a wait into the past at {t} ms"),
            }
        }
        sent
    }

    #[test]
    fn a_change_goes_at_once_then_settles_then_repeats_slowly() {
        let mut p = Pacer::new(50, Duration::from_millis(1000), 3);
        let sent = run(&mut p, &[5], 2200);
        let at: Vec<u64> = sent.iter().map(|s| s.0).collect();
        // At once; three repeats 20 ms apart; then one a second.
        assert_eq!(at, vec![5, 25, 45, 65, 1065, 2065]);
        assert_eq!(sent[0].1, Next::Fresh);
        assert!(sent[1..].iter().all(|s| s.1 == Next::Repeat));
    }

    #[test]
    fn changes_are_held_to_the_rate_and_the_last_one_is_never_lost() {
        let mut p = Pacer::new(50, Duration::from_millis(1000), 0);
        // Changes every 5 ms for 100 ms, then one more at 103 ms.
        let changes: Vec<u64> = (0..100).step_by(5).chain([103]).collect();
        let sent = run(&mut p, &changes, 400);
        let fresh: Vec<u64> = sent
            .iter()
            .filter(|s| s.1 == Next::Fresh)
            .map(|s| s.0)
            .collect();
        assert_eq!(fresh, vec![0, 20, 40, 60, 80, 100, 120]);
    }

    #[test]
    fn a_still_screen_sends_nothing_until_its_first_frame() {
        let mut p = Pacer::new(30, Duration::from_millis(500), 5);
        assert!(run(&mut p, &[], 2000).is_empty());
    }

    #[test]
    fn a_change_during_the_settle_repeats_is_sent_fresh() {
        let mut p = Pacer::new(50, Duration::from_millis(1000), 5);
        let sent = run(&mut p, &[0, 30], 100);
        assert_eq!(
            sent,
            vec![
                (0, Next::Fresh),
                (20, Next::Repeat),
                (40, Next::Fresh),
                (60, Next::Repeat),
                (80, Next::Repeat)
            ]
        );
    }
}
