//! Notices a client's branch that outlives its client.
//!
//! A removed branch (its bin and the webrtcbin receive bins inside it)
//! should be freed within moments of its removal. Churn runs under Valgrind
//! have left one TransportReceiveBin chain behind (once in a 100-cycle run),
//! whatever `receive_guard` cuts (docs/gstreamer-1.22.md); the `leaks`
//! tracer shows that it happened, not to which client. Weak references
//! taken at removal and checked [`Leftovers::GRACE`] later name the client,
//! how far its connection had come, and count it in `/metrics`, so a
//! leftover seen anywhere (a user's agent included) can be traced.

use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;

use crate::media::PeerId;

struct Watched {
    peer: PeerId,
    /// How far the client had come: its ICE state when it was removed.
    ice: String,
    due: Instant,
    objects: Vec<glib::WeakRef<gst::Element>>,
}

/// Branches removed in the last [`Leftovers::GRACE`], watched.
#[derive(Default)]
pub struct Leftovers {
    watched: Vec<Watched>,
}

impl Leftovers {
    /// Long after any teardown: the churn bench's agent stops in well under
    /// a second, and a branch removal is quicker still, even under Valgrind.
    pub const GRACE: Duration = Duration::from_secs(10);
    /// Bounds the list whatever the rate of leaves (a flood of joins).
    const MAX: usize = 1024;

    /// Watches `bin` and the receive bins inside it, from `now`. Call it
    /// before the branch is stopped (the receive bins are found in it).
    pub fn watch(&mut self, peer: PeerId, ice: String, bin: &gst::Bin, now: Instant) {
        if self.watched.len() >= Self::MAX {
            self.watched.remove(0);
        }
        let mut objects = vec![bin.upcast_ref::<gst::Element>().downgrade()];
        objects.extend(
            crate::media::receive_guard::elements(bin, "TransportReceiveBin")
                .iter()
                .map(|e| e.downgrade()),
        );
        self.watched.push(Watched {
            peer,
            ice,
            due: now + Self::GRACE,
            objects,
        });
    }

    /// When [`Self::poll`] has something to check.
    pub fn deadline(&self) -> Option<Instant> {
        self.watched.iter().map(|w| w.due).min()
    }

    /// Checks the branches whose grace is over: logs each that is still
    /// alive and returns how many were.
    pub fn poll(&mut self, now: Instant) -> u64 {
        let mut outlived = 0;
        self.watched.retain(|w| {
            if w.due > now {
                return true;
            }
            let alive: Vec<String> = w
                .objects
                .iter()
                .filter_map(|o| o.upgrade())
                .map(|e| format!("{} ({})", e.name(), e.type_().name()))
                .collect();
            if !alive.is_empty() {
                outlived += 1;
                tracing::warn!(
                    peer = w.peer,
                    ice = %w.ice,
                    alive = %alive.join(", "),
                    "a client's media branch outlived it by {} s",
                    Self::GRACE.as_secs()
                );
            }
            false
        });
        outlived
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_branch_still_held_after_the_grace_is_reported_once() {
        gst::init().unwrap();
        let mut l = Leftovers::default();
        let t0 = Instant::now();
        let kept = gst::Bin::with_name("kept");
        l.watch(1, "closed".into(), &kept, t0);
        let freed = gst::Bin::with_name("freed");
        l.watch(2, "connected".into(), &freed, t0);
        drop(freed);
        assert_eq!(l.deadline(), Some(t0 + Leftovers::GRACE));
        assert_eq!(l.poll(t0 + Duration::from_secs(1)), 0, "within the grace");
        assert_eq!(l.poll(t0 + Leftovers::GRACE), 1, "only the one still held");
        assert_eq!(l.poll(t0 + Leftovers::GRACE * 2), 0, "reported once");
        assert_eq!(l.deadline(), None);
        drop(kept);
    }

    #[test]
    fn the_list_is_bounded() {
        gst::init().unwrap();
        let mut l = Leftovers::default();
        let t0 = Instant::now();
        let bin = gst::Bin::new();
        for i in 0..(Leftovers::MAX as u64 + 10) {
            l.watch(i, String::new(), &bin, t0);
        }
        assert_eq!(l.watched.len(), Leftovers::MAX);
    }
}
