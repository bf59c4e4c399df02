//! The recording bin off the producer's tee: attach, clean finish, removal,
//! and which bin a bus message came from.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use gst::prelude::*;

use super::counters::{
    count_bytes, count_drops, count_frames, FileCounters, RecordingStats, RecordingSummary,
};
use crate::media::producer::Producer;

/// Prefix of a recording bin's name (`record-1`, ...), also used to
/// attribute bus errors. Numbered: a finishing file and a new one may
/// share the pipeline for a moment.
pub const BIN_PREFIX: &str = "record-";

/// The queue in front of the file: generous, so that only a disk stalled
/// for minutes loses anything.
const QUEUE_BYTES: u32 = 64 * 1024 * 1024;

/// A recording branch attached to a producer.
pub struct RecordingBranch {
    bin: gst::Bin,
    tee_pad: gst::Pad,
    ghost: gst::GhostPad,
    sink_pad: gst::Pad,
    path: PathBuf,
    file: Arc<FileCounters>,
    stats: Arc<RecordingStats>,
}

impl RecordingBranch {
    /// Adds the branch to the running producer, writing to `path` (which
    /// [`create_file`](super::create_file) made). Frames reach the file
    /// from the next keyframe on: ask the encoder for one.
    pub fn attach(producer: &Producer, path: &Path, stats: Arc<RecordingStats>) -> Result<Self> {
        let location = path
            .to_str()
            .ok_or_else(|| anyhow!("the recording path {} is not UTF-8", path.display()))?;
        static SERIAL: AtomicU64 = AtomicU64::new(1);
        let bin = gst::Bin::with_name(&format!(
            "{BIN_PREFIX}{}",
            SERIAL.fetch_add(1, Ordering::Relaxed)
        ));
        let queue = gst::ElementFactory::make("queue")
            .property("max-size-buffers", 0u32)
            .property("max-size-bytes", QUEUE_BYTES)
            .property("max-size-time", 0u64)
            .property_from_str("leaky", "downstream")
            .build()?;
        let depay = gst::ElementFactory::make("rtph264depay").build()?;
        let parse = gst::ElementFactory::make("h264parse").build()?;
        let mux = gst::ElementFactory::make("matroskamux")
            .property("offset-to-zero", true)
            .build()?;
        let sink = gst::ElementFactory::make("filesink")
            .property("location", location)
            // Every write reaches the kernel at once, so a killed agent
            // loses nothing the muxer produced.
            .property_from_str("buffer-mode", "unbuffered")
            // Added to a playing pipeline: no preroll, no clock.
            .property("async", false)
            .property("sync", false)
            .build()?;
        bin.add_many([&queue, &depay, &parse, &mux, &sink])?;
        gst::Element::link_many([&queue, &depay, &parse, &mux, &sink])
            .context("linking the recording branch")?;

        let file = Arc::new(FileCounters {
            first_pts: AtomicU64::new(u64::MAX),
            ..Default::default()
        });
        count_drops(&queue, &file, &stats, path);
        let parse_src = parse
            .static_pad("src")
            .ok_or_else(|| anyhow!("h264parse has no src pad"))?;
        drop_until_keyframe(&parse_src);
        count_frames(&parse_src, &file, &stats);
        let sink_pad = sink
            .static_pad("sink")
            .ok_or_else(|| anyhow!("filesink has no sink pad"))?;
        count_bytes(&sink_pad, &stats);

        let queue_sink = queue
            .static_pad("sink")
            .ok_or_else(|| anyhow!("queue has no sink pad"))?;
        // Whatever goes wrong in here (a full disk, a muxer error) stays
        // in here: the tee would hand an error flow upstream and stop the
        // encoder for everyone. The bus error ends the recording instead.
        let ghost = gst::GhostPad::builder_with_target(&queue_sink)?
            .chain_function(|pad, parent, buffer| {
                let _ = gst::ProxyPad::chain_default(pad, parent, buffer);
                Ok(gst::FlowSuccess::Ok)
            })
            .chain_list_function(|pad, parent, list| {
                let _ = gst::ProxyPad::chain_list_default(pad, parent, list);
                Ok(gst::FlowSuccess::Ok)
            })
            .build();
        bin.add_pad(&ghost)?;
        // Not a sink to the pipeline: with nobody watching, the file's EOS
        // would otherwise be all the pipeline's sinks at EOS, posted as the
        // end of the stream, which the service takes for a lost capture.
        bin.unset_element_flags(gst::ElementFlags::SINK);

        let pipeline = producer.pipeline();
        pipeline.add(&bin)?;
        // Running before linked (see PeerBranch::attach: a branch in NULL
        // answers FLUSHING to the tee's sticky events).
        if let Err(e) = bin.sync_state_with_parent() {
            let _ = bin.set_state(gst::State::Null);
            let _ = pipeline.remove(&bin);
            bail!("starting the recording branch: {e}");
        }
        let Some(tee_pad) = producer.tee().request_pad_simple("src_%u") else {
            let _ = bin.set_state(gst::State::Null);
            let _ = pipeline.remove(&bin);
            bail!("tee gave no src pad");
        };
        if let Err(e) = tee_pad.link(&ghost) {
            producer.tee().release_request_pad(&tee_pad);
            let _ = bin.set_state(gst::State::Null);
            let _ = pipeline.remove(&bin);
            bail!("linking tee to the recording: {e}");
        }
        stats.active.store(true, Ordering::Relaxed);
        if let Ok(mut p) = stats.path.lock() {
            *p = Some(path.to_owned());
        }
        Ok(RecordingBranch {
            bin,
            tee_pad,
            ghost,
            sink_pad,
            path: path.to_owned(),
            file,
            stats,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The bin's name, as [`recording_bin`] reports it.
    pub fn name(&self) -> String {
        self.bin.name().to_string()
    }

    /// Ends the file cleanly while everything else keeps running: once the
    /// tee pad is idle it is unlinked and EOS goes into the branch; the
    /// returned receiver hears (and `notify` is called, from a streaming
    /// thread) when the EOS reached the filesink, i.e. the muxer wrote its
    /// duration and index. Then call [`Self::remove`].
    pub fn finish(&self, notify: impl FnOnce() + Send + 'static) -> mpsc::Receiver<()> {
        let (done_tx, done_rx) = mpsc::sync_channel::<()>(1);
        let notify = Mutex::new(Some(notify));
        self.sink_pad
            .add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
                let is_eos = matches!(
                    &info.data,
                    Some(gst::PadProbeData::Event(e)) if e.type_() == gst::EventType::Eos
                );
                if !is_eos {
                    return gst::PadProbeReturn::Ok;
                }
                let _ = done_tx.try_send(());
                if let Some(n) = notify.lock().ok().and_then(|mut n| n.take()) {
                    n();
                }
                // Not dropped: dropping this sticky EOS made GStreamer 1.22
                // unref it twice (a CRITICAL). The bin is no sink (attach).
                gst::PadProbeReturn::Ok
            });
        let ghost = self.ghost.clone();
        self.tee_pad
            .add_probe(gst::PadProbeType::IDLE, move |pad, _| {
                if let Some(peer) = pad.peer() {
                    let _ = pad.unlink(&peer);
                }
                ghost.send_event(gst::event::Eos::new());
                gst::PadProbeReturn::Remove
            });
        done_rx
    }

    /// Takes the branch out of the pipeline and returns what the file got:
    /// after [`Self::finish`] completed, or at once after an error or a
    /// timeout (the file then ends like after a crash: it plays, but has
    /// no duration or index).
    pub fn remove(self, producer: &Producer) -> RecordingSummary {
        if let Some(peer) = self.tee_pad.peer() {
            // Thread-safe: a push racing this one ends in the branch or
            // gets NOT_LINKED, which the tee ignores.
            let _ = self.tee_pad.unlink(&peer);
        }
        producer.tee().release_request_pad(&self.tee_pad);
        let _ = self.bin.set_state(gst::State::Null);
        let _ = producer.pipeline().remove(&self.bin);
        self.stats.active.store(false, Ordering::Relaxed);
        if let Ok(mut p) = self.stats.path.lock() {
            *p = None;
        }
        let first = self.file.first_pts.load(Ordering::Relaxed);
        let last = self.file.last_pts.load(Ordering::Relaxed);
        RecordingSummary {
            bytes: std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0),
            frames: self.file.frames.load(Ordering::Relaxed),
            duration: Duration::from_nanos(last.saturating_sub(first)),
            path: self.path,
        }
    }

    /// RTP packets this file lost to a full queue.
    pub fn dropped_packets(&self) -> u64 {
        self.file.dropped.load(Ordering::Relaxed)
    }
}

/// The name of the recording bin `src` is in, if any.
pub fn recording_bin(src: &gst::Object) -> Option<String> {
    let mut cur = Some(src.clone());
    while let Some(obj) = cur {
        if obj.name().starts_with(BIN_PREFIX) && obj.is::<gst::Bin>() {
            return Some(obj.name().to_string());
        }
        cur = obj.parent();
    }
    None
}

/// Drops delta frames until the first keyframe: a file must start with
/// one to be decodable from its start. h264parse flags delta units.
fn drop_until_keyframe(pad: &gst::Pad) {
    pad.add_probe(gst::PadProbeType::BUFFER, |_, info| {
        match &info.data {
            Some(gst::PadProbeData::Buffer(b))
                if b.flags().contains(gst::BufferFlags::DELTA_UNIT) =>
            {
                crate::media::probe::DROP
            }
            // The first keyframe passes, and the gate goes.
            _ => gst::PadProbeReturn::Remove,
        }
    });
}
