//! Recording as `/api/control` (the controller's page, `oriel record`)
//! drives it: through the media thread.

use std::path::{Path, PathBuf};

use crate::media::service::MediaHandle;
use crate::signalling::control::RecordControl;

/// Recording as `/api/control` drives it: through the media thread.
pub struct MediaRecording {
    pub media: MediaHandle,
    /// Where run-time recordings go (a file name or a directory).
    pub path: PathBuf,
}

impl RecordControl for MediaRecording {
    fn start(&self, by: &str) -> Result<(), String> {
        // `<state-dir>/recordings` may not exist yet; a `--record` path was
        // checked at startup.
        if self.path.extension().is_none() {
            let _ = std::fs::create_dir_all(&self.path);
        }
        self.media
            .start_recording(self.path.clone(), by.to_string())
            .blocking_recv()
            .map_err(|_| "the media service stopped".to_string())?
            .map(|_| ())
    }

    fn stop(&self, by: &str) -> Result<(), String> {
        tracing::info!(by, "recording stop asked");
        self.media
            .stop_recording()
            .blocking_recv()
            .map_err(|_| "the media service stopped".to_string())?
            .map(|_| ())
    }

    fn status(&self) -> serde_json::Value {
        use std::sync::atomic::Ordering;
        let r = &self.media.stats.recording;
        let active = r.active.load(Ordering::Relaxed);
        let path = r.path.lock().ok().and_then(|p| p.clone());
        // The last recording that ended on its own (a full disk), until
        // the next one starts.
        let error = r.last_failure.lock().ok().and_then(|f| f.clone()).map(|f| {
            serde_json::json!({
                "reason": f.kind.as_str(),
                "message": f.message,
                "path": f.path.display().to_string(),
                "at": f.at,
                "frames": f.frames,
                "durationS": f.duration.as_secs_f64(),
            })
        });
        serde_json::json!({
            "active": active,
            "path": path.map(|p| p.display().to_string()),
            "frames": r.frames.load(Ordering::Relaxed),
            "bytes": r.bytes.load(Ordering::Relaxed),
            "into": self.path.display().to_string(),
            "error": error,
        })
    }
}

/// Where recordings started at run time go: the `--record` path, else
/// `~/Videos` when it exists, else `<state-dir>/recordings`.
pub fn recording_path(record: Option<&Path>, state: &Path) -> PathBuf {
    if let Some(p) = record {
        return p.to_path_buf();
    }
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join("Videos"))
        .filter(|v| v.is_dir())
        .unwrap_or_else(|| state.join("recordings"))
}
