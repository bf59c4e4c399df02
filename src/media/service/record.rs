//! The media service's side of recording ([`crate::media::recording`]).
//!
//! A recording is a consumer like a peer: it starts the producer when
//! nothing runs, and the idle stop waits for it. It outlives producers: a
//! capture loss ends the current file cleanly (EOS, so it keeps its
//! duration) and, once the rebuilt producer delivers frames, the recording
//! goes on in a new file next to it (`NAME-2.mkv`, then `NAME-3.mkv`; a
//! directory gets a new time-stamped name). An error inside the recording
//! (a full disk) ends it for good, with one error line in the log, a count
//! in `/metrics` and the reason in the control status (the controller's
//! page shows it); no client notices.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use super::handle::{Command, ReplyTx};
use super::state::{Finishing, Service, Wanted};
use crate::media::recording::{
    self, FailureKind, RecordingBranch, RecordingFailure, RecordingSummary,
};

/// How long a file may take to finish (EOS through the muxer) before it is
/// cut off like after a crash. It takes milliseconds normally.
const FINISH_TIMEOUT: Duration = Duration::from_secs(3);

/// How a file ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// EOS reached the file: it has its duration and index.
    Finished,
    /// The muxer did not finish in time: cut off like after a crash.
    TimedOut,
    /// An error inside the branch (a full disk): cut off where it failed.
    Failed,
}

impl End {
    fn finished(ok: bool) -> End {
        if ok {
            End::Finished
        } else {
            End::TimedOut
        }
    }
}

impl Service {
    /// A recording keeps the producer running.
    pub(super) fn recording_wanted(&self) -> bool {
        self.recorder.wanted.is_some()
    }

    pub(super) fn recording_deadline(&self) -> Option<Instant> {
        self.recorder.finishing.as_ref().map(|f| f.deadline)
    }

    pub(super) fn start_recording(
        &mut self,
        path: PathBuf,
        started_by: String,
        reply: ReplyTx<PathBuf>,
    ) {
        if let Some(w) = &self.recorder.wanted {
            let what = w
                .branch
                .as_ref()
                .map(|b| format!("already recording to {}", b.path().display()))
                .unwrap_or_else(|| "a recording is already waiting for the capture".into());
            let _ = reply.send(Err(what));
            return;
        }
        if let Err(e) = recording::check_path(&path) {
            let _ = reply.send(Err(format!("{e:#}")));
            return;
        }
        self.recorder.wanted = Some(Wanted {
            requested: path,
            started_by,
            branch: None,
            reply: Some(reply),
            files: 0,
        });
        self.idle_since = None;
        if self.ready && self.producer.is_some() {
            self.attach_recording();
        } else if self.producer.is_none() && self.opening.is_none() && self.recovery.is_none() {
            if let Err(e) = self.start_producer() {
                // Recovered like any failure: the recording waits for it.
                self.fail_producer(format!("could not start the capture pipeline: {e:#}"));
            }
        }
    }

    /// The producer is ready: the wanted recording gets a (new) file.
    pub(super) fn attach_recording(&mut self) {
        let (Some(w), Some(producer)) = (self.recorder.wanted.as_mut(), self.producer.as_ref())
        else {
            return;
        };
        if w.branch.is_some() {
            return;
        }
        let now = SystemTime::now();
        let attached = recording::create_file(&w.requested, now).and_then(|path| {
            RecordingBranch::attach(producer, &path, self.stats.recording.clone()).inspect_err(
                |_| {
                    // Nothing was written to the empty file just made.
                    let _ = std::fs::remove_file(&path);
                },
            )
        });
        match attached {
            Ok(branch) => {
                w.files += 1;
                if let Ok(mut last) = self.stats.recording.last_failure.lock() {
                    *last = None;
                }
                tracing::info!(
                    path = %branch.path().display(),
                    started_by = %w.started_by,
                    at = %recording::rfc3339_utc(now),
                    file = w.files,
                    "recording started"
                );
                if let Some(reply) = w.reply.take() {
                    let _ = reply.send(Ok(branch.path().to_owned()));
                }
                w.branch = Some(branch);
                // The file starts at the next keyframe: make it come now.
                self.request_keyframe();
            }
            Err(e) => {
                let why = format!("{e:#}");
                tracing::error!("recording not started: {why}");
                if let Some(reply) = w.reply.take() {
                    let _ = reply.send(Err(why));
                }
                self.recorder.wanted = None;
                self.idle_if_unused();
            }
        }
    }

    /// Stops the recording; the reply comes once the file is complete.
    pub(super) fn stop_recording(&mut self, reply: ReplyTx<RecordingSummary>) {
        let Some(mut w) = self.recorder.wanted.take() else {
            let _ = reply.send(Err("not recording".into()));
            return;
        };
        self.idle_if_unused();
        let Some(branch) = w.branch.take() else {
            let why = "stopped before the capture was ready: nothing was written".to_string();
            tracing::info!(started_by = %w.started_by, "recording cancelled: {why}");
            if let Some(r) = w.reply.take() {
                let _ = r.send(Err(why.clone()));
            }
            let _ = reply.send(Err(why));
            return;
        };
        // One finishing file at a time (a quick stop, start, stop).
        self.complete_finishing(true);
        let tx = self.tx.clone();
        let done = branch.finish(move || {
            let _ = tx.send(Command::RecordingFinished);
        });
        self.recorder.finishing = Some(Finishing {
            branch,
            done,
            deadline: Instant::now() + FINISH_TIMEOUT,
            reply: Some(reply),
        });
    }

    /// The finishing file's EOS arrived, or its time is up.
    pub(super) fn poll_recording(&mut self, now: Instant) {
        let ready = self.recorder.finishing.as_ref().is_some_and(|f| {
            now >= f.deadline || !matches!(f.done.try_recv(), Err(mpsc::TryRecvError::Empty))
        });
        if ready {
            self.complete_finishing(false);
        }
    }

    /// Removes the finishing branch, after waiting for its EOS if `wait`.
    fn complete_finishing(&mut self, wait: bool) {
        let Some(f) = self.recorder.finishing.take() else {
            return;
        };
        let finished = if wait {
            let left = f.deadline.saturating_duration_since(Instant::now());
            f.done.recv_timeout(left).is_ok()
        } else {
            f.done.try_recv().is_ok()
        };
        let summary = self.remove_branch(f.branch, End::finished(finished));
        if let Some(reply) = f.reply {
            let _ = reply.send(Ok(summary));
        }
    }

    fn remove_branch(&self, branch: RecordingBranch, end: End) -> RecordingSummary {
        let dropped = branch.dropped_packets();
        let summary = match self.producer.as_ref() {
            Some(p) => branch.remove(p),
            None => unreachable_summary(branch),
        };
        if end == End::TimedOut {
            tracing::warn!(
                path = %summary.path.display(),
                "recording: the muxer did not finish within {} s; the file plays but has no duration or index",
                FINISH_TIMEOUT.as_secs()
            );
        }
        tracing::info!(
            path = %summary.path.display(),
            duration_s = format!("{:.1}", summary.duration.as_secs_f64()),
            bytes = summary.bytes,
            frames = summary.frames,
            dropped_packets = dropped,
            "recording stopped"
        );
        summary
    }

    /// Ends the recording for good now, e.g. at shutdown: the file is
    /// finished (EOS) before the pipeline stops.
    pub(super) fn end_recording(&mut self, why: &str) {
        self.complete_finishing(true);
        if let Some(w) = self.recorder.wanted.take() {
            tracing::info!(started_by = %w.started_by, "recording ends: {why}");
            if let Some(r) = w.reply {
                let _ = r.send(Err(why.to_string()));
            }
            if let Some(branch) = w.branch {
                let done = branch.finish(|| {});
                let finished = done.recv_timeout(FINISH_TIMEOUT).is_ok();
                self.remove_branch(branch, End::finished(finished));
            }
        }
    }

    /// The producer is about to stop (capture lost, shutdown): files in
    /// progress are finished first. A wanted recording stays wanted and
    /// continues in a new file on the next producer.
    pub(super) fn close_recording_files(&mut self) {
        self.complete_finishing(true);
        let Some(branch) = self.recorder.wanted.as_mut().and_then(|w| w.branch.take()) else {
            return;
        };
        tracing::warn!(
            path = %branch.path().display(),
            "recording: the capture pipeline stops; this file ends here and the recording \
             continues in a new file once the capture is back"
        );
        let done = branch.finish(|| {});
        let finished = done.recv_timeout(FINISH_TIMEOUT).is_ok();
        self.remove_branch(branch, End::finished(finished));
    }

    /// A bus error from recording bin `bin`: that recording ends (the
    /// file plays up to there), everything else goes on. It is logged
    /// once, counted by kind and kept for the control status.
    pub(super) fn on_recording_error(&mut self, bin: &str, kind: FailureKind, text: &str) {
        if self
            .recorder
            .finishing
            .as_ref()
            .is_some_and(|f| f.branch.name() == bin)
        {
            if let Some(f) = self.recorder.finishing.take() {
                let summary = self.remove_branch(f.branch, End::Failed);
                let failure = self.recording_failed(kind, text, &summary, "while finishing");
                if let Some(reply) = f.reply {
                    let _ = reply.send(Err(failure));
                }
            }
            return;
        }
        let ours = self
            .recorder
            .wanted
            .as_ref()
            .and_then(|w| w.branch.as_ref())
            .is_some_and(|b| b.name() == bin);
        if !ours {
            tracing::debug!(bin, "late error from a removed recording: {text}");
            return;
        }
        if let Some(mut w) = self.recorder.wanted.take() {
            if let Some(branch) = w.branch.take() {
                let summary = self.remove_branch(branch, End::Failed);
                let by = format!("started by {}", w.started_by);
                self.recording_failed(kind, text, &summary, &by);
            }
        }
        self.idle_if_unused();
    }

    /// The one log line, the counter and the status of a failed recording;
    /// returns its message.
    fn recording_failed(
        &self,
        kind: FailureKind,
        text: &str,
        summary: &RecordingSummary,
        context: &str,
    ) -> String {
        let path = summary.path.display().to_string();
        let what = match kind {
            // GStreamer's own text adds only its source line here.
            FailureKind::DiskFull => "the disk is full (no space left on device)".to_string(),
            FailureKind::Write => format!("writing the file failed ({text})"),
            FailureKind::Other => text.to_string(),
        };
        let message = format!(
            "recording stopped: {what}; {path} plays up to there ({:.1} s, {} frames)",
            summary.duration.as_secs_f64(),
            summary.frames
        );
        // Counted before it is logged: whoever reads the line may look at
        // /metrics at once (an e2e run saw the line with the counter at 0).
        self.stats.recording.failed(RecordingFailure {
            kind,
            message: message.clone(),
            path: summary.path.clone(),
            at: recording::rfc3339_utc(SystemTime::now()),
            frames: summary.frames,
            duration: summary.duration,
        });
        tracing::error!(
            path,
            reason = kind.as_str(),
            "{message}; the stream goes on for every client ({context})"
        );
        tracing::debug!(path, "recording error: {text}");
        message
    }

    /// Nobody left to produce for: the usual idle stop.
    fn idle_if_unused(&mut self) {
        if self.peers.is_empty()
            && self.waiting.is_empty()
            && self.recorder.wanted.is_none()
            && (self.producer.is_some() || self.opening.is_some())
        {
            self.idle_since = Some(Instant::now());
        }
    }
}

/// A branch exists only while its producer does; should that ever not
/// hold, the branch went with the pipeline and only the file is left.
fn unreachable_summary(branch: RecordingBranch) -> RecordingSummary {
    let path = branch.path().to_owned();
    RecordingSummary {
        bytes: std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
        frames: 0,
        duration: Duration::ZERO,
        path,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::media::service::{spawn, MediaConfig};

    fn config() -> MediaConfig {
        crate::media::service::test_pattern()
    }

    /// The whole lifecycle through the handle, with nobody watching: the
    /// recording starts the capture, keeps it past the idle stop, replies
    /// once the file is complete, and the capture stops after it.
    #[test]
    fn start_and_stop_through_the_handle() {
        gst::init().unwrap();
        let dir = std::env::temp_dir().join(format!("oriel-rec-svc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let media = spawn(config(), |_| {}).unwrap();
        let stats = media.stats.clone();

        let bad = media.start_recording(dir.join("x.avi"), "test".into());
        assert!(bad.blocking_recv().unwrap().is_err());
        assert!(media.stop_recording().blocking_recv().unwrap().is_err());

        let path = media
            .start_recording(dir.join("r.mkv"), "test".into())
            .blocking_recv()
            .unwrap()
            .unwrap();
        assert_eq!(path, dir.join("r.mkv"));
        let again = media.start_recording(dir.join("s.mkv"), "test".into());
        assert!(again.blocking_recv().unwrap().is_err(), "one at a time");
        // Well past the idle stop: still running, still recording.
        std::thread::sleep(Duration::from_secs(2));
        assert!(stats.pipeline_running.load(Ordering::Relaxed));
        assert!(stats.recording.active.load(Ordering::Relaxed));
        let summary = media.stop_recording().blocking_recv().unwrap().unwrap();
        assert_eq!(summary.path, path);
        assert!(summary.frames > 30, "{summary:?}");
        assert_eq!(summary.bytes, std::fs::metadata(&path).unwrap().len());
        assert!(!stats.recording.active.load(Ordering::Relaxed));
        // Nobody left: the idle stop follows.
        std::thread::sleep(Duration::from_secs(1));
        assert!(!stats.pipeline_running.load(Ordering::Relaxed));
        media.shutdown(Duration::from_secs(5));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
