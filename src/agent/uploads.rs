//! Uploads from the controller's page (`media::files_channel`), saved by
//! `desktop::uploads` into `--upload-dir` (by default the user's
//! Downloads directory), said once at start.

use std::sync::Arc;

use crate::config::ServeArgs;
use crate::desktop::uploads::{UploadDir, UploadStats};
use crate::media::files_channel::FilesHub;

pub fn start(args: &ServeArgs) -> Option<Arc<FilesHub>> {
    if !args.files {
        tracing::info!("files: off (--files off)");
        return None;
    }
    let Some(dir) = args.upload_dir.clone().or_else(UploadDir::default_dir) else {
        tracing::warn!("uploads: off: no --upload-dir and no $HOME to find Downloads in");
        return None;
    };
    tracing::info!(
        "uploads: the controller's files go to {} (up to {} bytes each)",
        dir.display(),
        args.upload_max_bytes
    );
    Some(Arc::new(FilesHub {
        dir: Arc::new(UploadDir {
            dir,
            max_bytes: args.upload_max_bytes,
        }),
        stats: Arc::new(UploadStats::default()),
        outbox: Arc::default(),
    }))
}
