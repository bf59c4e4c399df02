//! The `files` data channel: the controller's page uploads files to the
//! desktop (only the controller's offer carries it; docs/protocol.md,
//! "Files"). One file at a time: the page offers it, the agent accepts
//! (or refuses: too large, no space), then the bytes come as binary
//! messages. The agent acknowledges what it has written; the page keeps
//! at most [`WINDOW`] bytes unacknowledged, so whatever the link and the
//! disk, the agent holds at most that much of an upload. A page that
//! ignores the window meets the bound on webrtcbin's delivery queue
//! (`media::sctp_budget`): its packets are dropped until the queue drains.
//! More bytes than offered, or bytes with no upload under way, are refused
//! and counted.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use gst::glib;
use gst::prelude::*;
use serde::Deserialize;

use crate::desktop::uploads::{Refusal, Upload, UploadDir, UploadStats};
use crate::media::PeerId;

pub const LABEL: &str = "files";
/// Bytes the page may send beyond what the agent acknowledged.
pub const WINDOW: u64 = 4 << 20;
/// The agent acknowledges every this many bytes written (and the last).
pub const ACK_EVERY: u64 = 512 << 10;

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
enum FromPage {
    /// A file to upload: `name` is only a hint (made safe, never over an
    /// existing file).
    Offer { id: u64, name: String, size: u64 },
    /// Stop the upload `id`; its part file is removed.
    Cancel { id: u64 },
    /// Stop the download `id` (`oriel send`): the agent sends no more of it.
    Stop { id: u64 },
}

/// An upload under way.
struct Current {
    id: u64,
    upload: Upload,
    acked: u64,
}

/// One page's uploads, message by message; what to send back. No
/// GStreamer in here, so it is tested by feeding it messages.
pub struct Receiver {
    dir: Arc<UploadDir>,
    stats: Arc<UploadStats>,
    current: Option<Current>,
    /// Where a download the page stops is told.
    outbox: Option<Arc<crate::media::files_send::Outbox>>,
}

impl Receiver {
    pub fn new(dir: Arc<UploadDir>, stats: Arc<UploadStats>) -> Self {
        Receiver {
            dir,
            stats,
            current: None,
            outbox: None,
        }
    }

    /// Stops of downloads go to `outbox`.
    pub fn with_outbox(mut self, outbox: Arc<crate::media::files_send::Outbox>) -> Self {
        self.outbox = Some(outbox);
        self
    }

    /// A text message; the replies.
    pub fn text(&mut self, text: &str) -> Vec<String> {
        match serde_json::from_str::<FromPage>(text) {
            Ok(FromPage::Offer { id, name, size }) => self.offer(id, &name, size),
            Ok(FromPage::Stop { id }) => {
                if let Some(o) = &self.outbox {
                    o.stop(id);
                }
                Vec::new()
            }
            Ok(FromPage::Cancel { id }) => match self.current.take() {
                Some(c) if c.id == id => {
                    self.stats.cancelled.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(id, name = c.upload.name(), "upload cancelled by the page");
                    vec![reply("cancelled", id, serde_json::json!({}))]
                }
                other => {
                    self.current = other;
                    Vec::new()
                }
            },
            Err(_) => {
                self.stats.refused(Refusal::Malformed);
                Vec::new()
            }
        }
    }

    fn offer(&mut self, id: u64, name: &str, size: u64) -> Vec<String> {
        if self.current.is_some() {
            return vec![self.refuse(id, Refusal::Busy)];
        }
        let upload = match self.dir.begin(name, size) {
            Ok(u) => u,
            Err(why) => return vec![self.refuse(id, why)],
        };
        let accept = reply(
            "accept",
            id,
            serde_json::json!({ "name": upload.name(), "window": WINDOW }),
        );
        self.current = Some(Current {
            id,
            upload,
            acked: 0,
        });
        let mut out = vec![accept];
        // An empty file is complete at once.
        out.extend(self.maybe_finish());
        out
    }

    /// A binary message: the next bytes of the upload under way.
    pub fn data(&mut self, bytes: &[u8]) -> Vec<String> {
        let Some(c) = self.current.as_mut() else {
            self.stats.refused(Refusal::Unexpected);
            return Vec::new();
        };
        let id = c.id;
        if let Err(why) = c.upload.write(bytes) {
            // Dropping it removes the part file.
            self.current = None;
            return vec![self.refuse(id, why)];
        }
        if c.upload.written - c.acked >= ACK_EVERY && !c.upload.complete() {
            c.acked = c.upload.written;
            return vec![reply(
                "ack",
                id,
                serde_json::json!({ "received": c.upload.written }),
            )];
        }
        self.maybe_finish()
    }

    fn maybe_finish(&mut self) -> Vec<String> {
        if !self.current.as_ref().is_some_and(|c| c.upload.complete()) {
            return Vec::new();
        }
        let Some(c) = self.current.take() else {
            return Vec::new();
        };
        let (id, size) = (c.id, c.upload.size);
        match c.upload.finish() {
            Ok(path) => {
                self.stats.saved.fetch_add(1, Ordering::Relaxed);
                self.stats.bytes.fetch_add(size, Ordering::Relaxed);
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                tracing::info!(id, size, path = %path.display(), "upload saved");
                vec![reply(
                    "done",
                    id,
                    serde_json::json!({ "name": name, "size": size, "path": path.display().to_string() }),
                )]
            }
            Err(why) => vec![self.refuse(id, why)],
        }
    }

    fn refuse(&self, id: u64, why: Refusal) -> String {
        self.stats.refused(why);
        tracing::warn!(id, reason = why.label(), "upload refused");
        let message = match why {
            Refusal::TooLarge => format!(
                "larger than this desktop takes ({} bytes)",
                self.dir.max_bytes
            ),
            Refusal::NoSpace => "not enough free space on the desktop".into(),
            Refusal::Busy => "another upload is under way".into(),
            Refusal::Unexpected => "more bytes than offered, or than the window allows".into(),
            Refusal::Malformed => "not a files message".into(),
            Refusal::Io => "the desktop could not write the file".into(),
        };
        reply(
            "refused",
            id,
            serde_json::json!({ "reason": why.label(), "message": message }),
        )
    }

    /// The page or its connection went away mid-upload.
    pub fn abandon(&mut self) {
        if let Some(c) = self.current.take() {
            self.stats.cancelled.fetch_add(1, Ordering::Relaxed);
            tracing::info!(id = c.id, "upload abandoned: the page went away");
        }
    }
}

fn reply(kind: &str, id: u64, mut extra: serde_json::Value) -> String {
    extra["type"] = kind.into();
    extra["id"] = id.into();
    extra.to_string()
}

/// Where the controllers' uploads go.
pub struct FilesHub {
    pub dir: Arc<UploadDir>,
    pub stats: Arc<UploadStats>,
    /// Files the desktop sends the other way (`oriel send`).
    pub outbox: Arc<crate::media::files_send::Outbox>,
}

impl FilesHub {
    /// Opens the channel on a READY webrtcbin (before the offer), for `id`;
    /// held as long as the branch lives (dropping it ends an upload that is
    /// under way, removing its part file).
    pub fn open(
        &self,
        webrtcbin: &gst::Element,
        id: PeerId,
        traffic: &Arc<crate::media::traffic::PeerTraffic>,
    ) -> Option<Opened> {
        let channel = crate::media::data_channel::create(webrtcbin, LABEL, true, traffic)?;
        tracing::debug!(
            peer = id,
            "uploads: the files channel is open to this controller"
        );
        let receiver = Arc::new(Mutex::new(
            Receiver::new(self.dir.clone(), self.stats.clone()).with_outbox(self.outbox.clone()),
        ));
        let r = receiver.clone();
        channel.connect("on-message-string", false, move |values| {
            let text = values
                .get(1)
                .and_then(|v| v.get::<Option<String>>().ok())
                .flatten();
            let channel = values
                .first()
                .and_then(|v| v.get::<gst_webrtc::WebRTCDataChannel>().ok());
            let replies = r
                .lock()
                .map(|mut r| r.text(text.as_deref().unwrap_or("")))
                .unwrap_or_default();
            send_all(channel.as_ref(), &replies);
            None
        });
        let r = receiver.clone();
        channel.connect("on-message-data", false, move |values| {
            let data = values
                .get(1)
                .and_then(|v| v.get::<Option<glib::Bytes>>().ok())
                .flatten();
            let channel = values
                .first()
                .and_then(|v| v.get::<gst_webrtc::WebRTCDataChannel>().ok());
            let replies = r
                .lock()
                .map(|mut r| r.data(data.as_deref().unwrap_or(&[])))
                .unwrap_or_default();
            send_all(channel.as_ref(), &replies);
            None
        });
        let r = receiver.clone();
        channel.connect_on_close(move |_| {
            if let Ok(mut r) = r.lock() {
                r.abandon();
            }
        });
        self.outbox.join(id, &channel);
        Some(Opened {
            receiver,
            outbox: self.outbox.clone(),
            peer: id,
            _channel: channel,
        })
    }
}

fn send_all(channel: Option<&gst_webrtc::WebRTCDataChannel>, replies: &[String]) {
    let Some(c) = channel else { return };
    for r in replies {
        if let Err(e) = c.send_string_full(Some(r)) {
            tracing::debug!("files reply to the page: {e}");
        }
    }
}

/// A controller's files channel, held by its branch.
pub struct Opened {
    receiver: Arc<Mutex<Receiver>>,
    outbox: Arc<crate::media::files_send::Outbox>,
    peer: PeerId,
    _channel: gst_webrtc::WebRTCDataChannel,
}

impl Drop for Opened {
    fn drop(&mut self) {
        self.outbox.leave(self.peer);
        if let Ok(mut r) = self.receiver.lock() {
            r.abandon();
        }
    }
}

#[cfg(test)]
mod tests;
