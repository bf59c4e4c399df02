//! What the capture by damage did (X11 and Wayland alike), for `/metrics`.
//! Its own module so that the two sources share it without importing each
//! other.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

/// What the source did, for `/metrics` (one set for the process: there is
/// one desktop).
#[derive(Debug, Default)]
pub struct CaptureCounters {
    /// Frames grabbed because something changed.
    pub grabbed: AtomicU64,
    /// Frames pushed again because nothing changed.
    pub repeated: AtomicU64,
    /// Wayland: frames from the compositor replaced by a newer one before
    /// their turn came (more changes a second than the frame rate).
    pub superseded: AtomicU64,
    /// Time spent reading the screen (XShmGetImage and the pointer),
    /// microseconds in total.
    pub grab_us: AtomicU64,
}

impl CaptureCounters {
    /// The counters in the Prometheus text format.
    pub fn render(&self, s: &mut String) {
        use std::fmt::Write;
        let _ = writeln!(
            s,
            "# HELP oriel_capture_frames_total Frames from the capture by damage: `grabbed` when the screen changed (X11: read, Wayland: sent by the compositor), `repeated` while it did not, `superseded` (Wayland) replaced by a newer frame within one frame interval.\n# TYPE oriel_capture_frames_total counter\noriel_capture_frames_total{{how=\"grabbed\"}} {}\noriel_capture_frames_total{{how=\"repeated\"}} {}\noriel_capture_frames_total{{how=\"superseded\"}} {}",
            self.grabbed.load(Ordering::Relaxed),
            self.repeated.load(Ordering::Relaxed),
            self.superseded.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP oriel_capture_grab_seconds_total Time the X11 damage capture spent reading the screen (XShmGetImage, drawing the pointer).\n# TYPE oriel_capture_grab_seconds_total counter\noriel_capture_grab_seconds_total {}",
            self.grab_us.load(Ordering::Relaxed) as f64 / 1e6
        );
    }
}

/// The process's counters.
pub fn counters() -> &'static Arc<CaptureCounters> {
    static C: LazyLock<Arc<CaptureCounters>> = LazyLock::new(Default::default);
    &C
}
