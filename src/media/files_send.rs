//! Files from the desktop to the controller's page (`oriel send`), on the
//! same `files` channel as uploads (docs/protocol.md, "Files"): a header
//! `{"type":"send","id":N,"name":..,"size":..}`, the bytes in binary
//! messages, then `{"type":"sent","id":N}` (or `unsent` with a reason).
//! The sender waits while the channel's buffer is over [`HIGH`] (woken by
//! `on-buffered-amount-low`), so a file is read from disk no faster than
//! the link takes it and the agent holds at most about HIGH of it.
//! Blocking: runs on the caller's thread, never on the runtime.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use gst::glib;
use gst::prelude::*;

use crate::media::PeerId;

/// Piece size: what browsers take in one message with room to spare.
const CHUNK: usize = 64 << 10;
/// The channel's buffer is kept under this...
const HIGH: u64 = 1 << 20;
/// ...and refilled once it is down to this.
const LOW: u64 = 256 << 10;
/// A page that takes nothing for this long is given up on.
const STALL: Duration = Duration::from_secs(30);

/// One controller channel a file can go to.
struct Target {
    channel: gst_webrtc::WebRTCDataChannel,
    /// Rung by `on-buffered-amount-low`.
    drained: Arc<(Mutex<u64>, Condvar)>,
}

/// The controllers' channels files are sent on, and what was sent.
#[derive(Default)]
pub struct Outbox {
    targets: Mutex<HashMap<PeerId, Target>>,
    /// Downloads the page asked to stop (`{"type":"stop","id":N}`).
    stopped: Mutex<std::collections::HashSet<u64>>,
    next_id: AtomicU64,
    pub sent: AtomicU64,
    pub sent_bytes: AtomicU64,
    pub failed: AtomicU64,
}

/// How a sent file went, for `oriel send`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub peer: PeerId,
    pub bytes: u64,
    pub took: Duration,
}

impl Outbox {
    /// A controller's channel joins (until `leave`).
    pub fn join(&self, peer: PeerId, channel: &gst_webrtc::WebRTCDataChannel) {
        channel.set_property("buffered-amount-low-threshold", LOW);
        let drained: Arc<(Mutex<u64>, Condvar)> = Arc::default();
        let d = drained.clone();
        channel.connect_on_buffered_amount_low(move |_| {
            let (n, cv) = &*d;
            if let Ok(mut n) = n.lock() {
                *n += 1;
            }
            cv.notify_all();
        });
        if let Ok(mut t) = self.targets.lock() {
            t.insert(
                peer,
                Target {
                    channel: channel.clone(),
                    drained,
                },
            );
        }
    }

    pub fn leave(&self, peer: PeerId) {
        if let Ok(mut t) = self.targets.lock() {
            if let Some(t) = t.remove(&peer) {
                // A sender waiting on it looks again and finds it gone.
                t.drained.1.notify_all();
            }
        }
    }

    /// The page does not want download `id` any more.
    pub fn stop(&self, id: u64) {
        if let Ok(mut s) = self.stopped.lock() {
            // Bounded: ids of downloads long gone are dropped.
            if s.len() > 1024 {
                s.clear();
            }
            s.insert(id);
        }
    }

    fn is_stopped(&self, id: u64) -> bool {
        self.stopped.lock().is_ok_and(|s| s.contains(&id))
    }

    /// Sends `path` to a controller's page (the first whose channel is
    /// open); returns once the last byte is handed to the channel.
    pub fn send(&self, path: &Path) -> Result<Sent> {
        let started = Instant::now();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| anyhow!("{} names no file", path.display()))?;
        let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            bail!("{} is not a regular file", path.display());
        }
        let size = meta.len();
        let (peer, channel, drained) = self
            .targets
            .lock()
            .ok()
            .and_then(|t| {
                t.iter()
                    .find(|(_, t)| {
                        t.channel.ready_state() == gst_webrtc::WebRTCDataChannelState::Open
                    })
                    .map(|(p, t)| (*p, t.channel.clone(), t.drained.clone()))
            })
            .ok_or_else(|| anyhow!("no controller is connected to send it to"))?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let header = serde_json::json!({ "type": "send", "id": id, "name": name, "size": size });
        channel.send_string_full(Some(&header.to_string()))?;
        let result = self.pump(&mut file, size, &channel, &drained, (peer, id));
        match &result {
            Ok(()) => {
                let end = serde_json::json!({ "type": "sent", "id": id });
                let _ = channel.send_string_full(Some(&end.to_string()));
                self.sent.fetch_add(1, Ordering::Relaxed);
                self.sent_bytes.fetch_add(size, Ordering::Relaxed);
                tracing::info!(peer, id, size, file = %path.display(), "sent to the controller's page");
            }
            Err(e) => {
                let end =
                    serde_json::json!({ "type": "unsent", "id": id, "reason": format!("{e:#}") });
                let _ = channel.send_string_full(Some(&end.to_string()));
                self.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(peer, id, file = %path.display(), "not sent: {e:#}");
            }
        }
        result.map(|()| Sent {
            peer,
            bytes: size,
            took: started.elapsed(),
        })
    }

    fn pump(
        &self,
        file: &mut File,
        size: u64,
        channel: &gst_webrtc::WebRTCDataChannel,
        drained: &(Mutex<u64>, Condvar),
        (peer, id): (PeerId, u64),
    ) -> Result<()> {
        let mut buf = vec![0u8; CHUNK];
        let mut left = size;
        while left > 0 {
            if self.is_stopped(id) {
                bail!("the page stopped it");
            }
            let mut waited = Duration::ZERO;
            while channel.buffered_amount() > HIGH {
                let still_here = self.targets.lock().is_ok_and(|t| t.contains_key(&peer));
                if !still_here || channel.ready_state() != gst_webrtc::WebRTCDataChannelState::Open
                {
                    bail!("the page went away");
                }
                if waited >= STALL {
                    bail!("the page took nothing for {} s", STALL.as_secs());
                }
                // The low signal may have fired before we waited: look
                // again every 100 ms at most.
                let (n, cv) = drained;
                let guard = n.lock().map_err(|_| anyhow!("poisoned"))?;
                let _ = cv.wait_timeout(guard, Duration::from_millis(100));
                waited += Duration::from_millis(100);
            }
            let want = (left as usize).min(CHUNK);
            file.read_exact(&mut buf[..want])
                .context("reading the file (did it shrink?)")?;
            channel
                .send_data_full(Some(&glib::Bytes::from(&buf[..want])))
                .map_err(|e| anyhow!("the channel took no more: {e}"))?;
            left -= want as u64;
        }
        Ok(())
    }
}
