//! The counters the media service shares with `/metrics` and `/healthz`.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;

/// Counters shared with the metrics endpoint.
#[derive(Debug, Default)]
pub struct MediaStats {
    pub peers: AtomicU64,
    pub pipeline_running: AtomicBool,
    /// The capture is lost and being retried (peers wait for it).
    pub recovering: AtomicBool,
    pub pipeline_starts: AtomicU64,
    pub pipeline_failures: AtomicU64,
    /// Rebuilds after a failure that delivered frames again.
    pub pipeline_restarts: AtomicU64,
    /// Sound captures that failed while the picture went on.
    pub audio_failures: AtomicU64,
    /// Answers that would have sent audio from a client that may not.
    pub audio_refused: AtomicU64,
    pub keyframes_requested: AtomicU64,
    pub keyframes_forced: AtomicU64,
    pub keyframes_coalesced: AtomicU64,
    /// Clients cut off for opening a data channel of their own.
    pub foreign_channels: AtomicU64,
    /// Removed branches still alive 10 s later (`media::leftover`).
    pub branches_outlived: AtomicU64,
    /// The shared encoder's current target bitrate, kbit/s.
    pub encoder_bitrate_kbps: AtomicU64,
    /// Extra encodes running for slow viewers (0 or 1), and its bitrate.
    pub rungs: AtomicU64,
    pub rung_bitrate_kbps: AtomicU64,
    /// Video encoders in the producer's pipeline, counted from it.
    pub encoders: AtomicU64,
    /// Frames through the encoder.
    pub frames: Arc<crate::media::traffic::FrameCounters>,
    /// Each live branch's packet and byte counters.
    pub traffic: crate::media::traffic::PeerTrafficMap,
    /// Whether and where a recording is written, and what it got.
    pub recording: Arc<crate::media::recording::RecordingStats>,
}
