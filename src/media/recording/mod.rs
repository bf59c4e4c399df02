//! Recording: one more branch off the producer's tee that writes the shared
//! encoded stream to a Matroska file, without re-encoding.
//!
//! ```text
//! tee ─ [record: queue ─ rtph264depay ─ h264parse ─ (keyframe gate) ─ matroskamux ─ filesink]
//! ```
//!
//! - **Crash-safe.** matroskamux (not streamable) writes clusters as they
//!   come and, on EOS, goes back to fill in the duration and the index. A
//!   killed agent leaves a file without them, which still plays (a 4 s
//!   30 fps stream `kill -9`ed here: 118 frames decoded with
//!   `buffer-mode=unbuffered`, 102 with filesink's default 64 KiB buffer,
//!   119 after a clean stop).
//! - **Never in the way.** The queue is big (64 MiB, ~2 min at 4 Mbit/s)
//!   and leaky: a disk that stalls that long costs the recording packets
//!   (counted, warned) rather than freezing every viewer. The bin's sink
//!   pad swallows every flow error, so a failing file (a full disk) never
//!   travels back up the tee into the encoder.
//! - **A full disk ends the recording, nothing else.** filesink's write
//!   error (ENOSPC, a file size limit) reaches the bus from inside the
//!   bin; the service removes the branch, logs it once, counts it
//!   (`oriel_recording_failures_total{reason}`) and keeps it for the
//!   control status. The file plays up to the last cluster written (no
//!   duration or index: those need the space that is missing).
//! - **Starts at a keyframe, at 0.** Delta frames are dropped until the
//!   first keyframe (the service asks the encoder for one), and
//!   `offset-to-zero` makes the file start at 0 whatever the pipeline's
//!   running time.
//! - **Clean end** ([`RecordingBranch::finish`]): unlink from the tee once
//!   its pad is idle, EOS into the branch only, wait for it at the
//!   filesink (the muxer has then written everything), then
//!   [`RecordingBranch::remove`]. The bin does not count as a sink, so that
//!   EOS never makes the pipeline believe its stream ended.

mod bin;
mod counters;
mod path;
#[cfg(test)]
mod tests;

pub use bin::{recording_bin, RecordingBranch, BIN_PREFIX};
pub use counters::{FailureKind, RecordingFailure, RecordingStats, RecordingSummary};
pub use path::{check_path, create_file, rfc3339_utc};
