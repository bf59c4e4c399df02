//! What a recording counts: the `/metrics` totals, one file's summary, and
//! the pad probes that count them.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gst::prelude::*;

/// Recording counters for `/metrics`, over every recording since start.
#[derive(Debug, Default)]
pub struct RecordingStats {
    /// A file is being written right now.
    pub active: AtomicBool,
    /// The file being written, while `active`.
    pub path: Mutex<Option<PathBuf>>,
    /// Encoded frames handed to the muxer.
    pub frames: AtomicU64,
    /// Bytes handed to the file (the muxer's final rewrite of its header
    /// and index included).
    pub bytes: AtomicU64,
    /// RTP packets the recording's queue threw away (a stalled disk).
    pub dropped_packets: AtomicU64,
    /// Recordings that ended on an error, by [`FailureKind`].
    pub failures: [AtomicU64; FailureKind::ALL.len()],
    /// The last recording that failed, until the next one starts.
    pub last_failure: Mutex<Option<RecordingFailure>>,
}

impl RecordingStats {
    /// Counts a failed recording and keeps it for the status.
    pub fn failed(&self, failure: RecordingFailure) {
        self.failures[failure.kind as usize].fetch_add(1, Ordering::Relaxed);
        if let Ok(mut last) = self.last_failure.lock() {
            *last = Some(failure);
        }
    }
}

/// Why a recording ended on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The filesystem is full (ENOSPC).
    DiskFull,
    /// Another write error: a file size limit, a quota, an I/O error.
    Write,
    /// Anything else inside the recording branch (e.g. the muxer).
    Other,
}

impl FailureKind {
    pub const ALL: [FailureKind; 3] = [
        FailureKind::DiskFull,
        FailureKind::Write,
        FailureKind::Other,
    ];

    /// The `/metrics` label and the status's `reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::DiskFull => "disk_full",
            FailureKind::Write => "write_error",
            FailureKind::Other => "error",
        }
    }
}

impl FailureKind {
    /// What a bus error from inside the recording was.
    pub fn of(error: &gst::glib::Error) -> FailureKind {
        if error.matches(gst::ResourceError::NoSpaceLeft) {
            FailureKind::DiskFull
        } else if error.matches(gst::ResourceError::Write) {
            FailureKind::Write
        } else {
            FailureKind::Other
        }
    }
}

/// A recording that ended on an error, as the control status shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingFailure {
    pub kind: FailureKind,
    /// What a user reads: "the disk is full (No space left on device)".
    pub message: String,
    pub path: PathBuf,
    /// When (RFC 3339, UTC).
    pub at: String,
    /// What the file holds: it plays up to there.
    pub frames: u64,
    pub duration: Duration,
}

/// One finished file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingSummary {
    pub path: PathBuf,
    pub frames: u64,
    /// The file's size on disk.
    pub bytes: u64,
    /// First to last frame written.
    pub duration: Duration,
}

/// What this file's probes counted.
#[derive(Debug, Default)]
pub(super) struct FileCounters {
    pub(super) frames: AtomicU64,
    /// First and last frame timestamp (ns); `u64::MAX` before the first.
    pub(super) first_pts: AtomicU64,
    pub(super) last_pts: AtomicU64,
    pub(super) dropped: AtomicU64,
}

pub(super) fn count_frames(pad: &gst::Pad, file: &Arc<FileCounters>, stats: &Arc<RecordingStats>) {
    let (file, stats) = (file.clone(), stats.clone());
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(gst::PadProbeData::Buffer(b)) = &info.data {
            file.frames.fetch_add(1, Ordering::Relaxed);
            stats.frames.fetch_add(1, Ordering::Relaxed);
            if let Some(pts) = b.pts() {
                let ns = pts.nseconds();
                let _ = file.first_pts.compare_exchange(
                    u64::MAX,
                    ns,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
                file.last_pts.fetch_max(ns, Ordering::Relaxed);
            }
        }
        gst::PadProbeReturn::Ok
    });
}

pub(super) fn count_bytes(pad: &gst::Pad, stats: &Arc<RecordingStats>) {
    let stats = stats.clone();
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |_, info| {
            let bytes = match &info.data {
                Some(gst::PadProbeData::Buffer(b)) => b.size() as u64,
                Some(gst::PadProbeData::BufferList(l)) => l.iter().map(|b| b.size() as u64).sum(),
                _ => 0,
            };
            stats.bytes.fetch_add(bytes, Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        },
    );
}

/// A leaky queue says `overrun` each time it is full, then drops its
/// oldest packet.
pub(super) fn count_drops(
    queue: &gst::Element,
    file: &Arc<FileCounters>,
    stats: &Arc<RecordingStats>,
    path: &Path,
) {
    let (file, stats) = (file.clone(), stats.clone());
    let path = path.display().to_string();
    queue.connect("overrun", false, move |_| {
        if file.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
            tracing::warn!(
                path,
                "recording: the disk does not keep up, packets are being dropped \
                 (the file has gaps until the next keyframe)"
            );
        }
        stats.dropped_packets.fetch_add(1, Ordering::Relaxed);
        None
    });
}
