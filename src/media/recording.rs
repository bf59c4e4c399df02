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
//! - **Starts at a keyframe, at 0.** Delta frames are dropped until the
//!   first keyframe (the service asks the encoder for one), and
//!   `offset-to-zero` makes the file start at 0 whatever the pipeline's
//!   running time.
//! - **Clean end** ([`RecordingBranch::finish`]): unlink from the tee once
//!   its pad is idle, EOS into the branch only, wait for it at the
//!   filesink (the muxer has then written everything), then
//!   [`RecordingBranch::remove`]. The bin does not count as a sink, so that
//!   EOS never makes the pipeline believe its stream ended.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use gst::prelude::*;

use crate::media::producer::Producer;

/// Prefix of a recording bin's name (`record-1`, ...), also used to
/// attribute bus errors. Numbered: a finishing file and a new one may
/// share the pipeline for a moment.
pub const BIN_PREFIX: &str = "record-";

/// The queue in front of the file: generous, so that only a disk stalled
/// for minutes loses anything.
const QUEUE_BYTES: u32 = 64 * 1024 * 1024;

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
struct FileCounters {
    frames: AtomicU64,
    /// First and last frame timestamp (ns); `u64::MAX` before the first.
    first_pts: AtomicU64,
    last_pts: AtomicU64,
    dropped: AtomicU64,
}

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
    /// [`create_file`] made). Frames reach the file from the next keyframe
    /// on: ask the encoder for one.
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
                gst::PadProbeReturn::Drop
            }
            // The first keyframe passes, and the gate goes.
            _ => gst::PadProbeReturn::Remove,
        }
    });
}

fn count_frames(pad: &gst::Pad, file: &Arc<FileCounters>, stats: &Arc<RecordingStats>) {
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

fn count_bytes(pad: &gst::Pad, stats: &Arc<RecordingStats>) {
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
fn count_drops(
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

/// Checks a recording path before anything is captured: a directory that
/// exists (files are named there by time), or a `.mkv` file in a directory
/// that exists.
pub fn check_path(path: &Path) -> Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    let is_mkv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("mkv"));
    if !is_mkv {
        bail!(
            "recording path {}: expected a file name ending in .mkv or an existing directory",
            path.display()
        );
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        bail!(
            "recording path {}: the directory {} does not exist",
            path.display(),
            parent.display()
        );
    }
    Ok(())
}

/// Creates the file a recording writes to, never overwriting one: a
/// directory gets `oriel-YYYYMMDD-HHMMSSZ.mkv` (UTC) inside; a file name
/// that is taken becomes `NAME-2.mkv`, `NAME-3.mkv`, ... (so a recording
/// continued after a capture loss lands next to its first part). The file
/// is created exclusively here, so two recordings never share one.
pub fn create_file(path: &Path, now: SystemTime) -> Result<PathBuf> {
    check_path(path)?;
    let base = if path.is_dir() {
        path.join(format!("oriel-{}.mkv", compact_utc(now)))
    } else {
        path.to_owned()
    };
    let stem = base
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = base
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_else(|| "mkv".into());
    for n in 1..10_000u32 {
        let candidate = if n == 1 {
            base.clone()
        } else {
            base.with_file_name(format!("{stem}-{n}.{ext}"))
        };
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&candidate)
        {
            Ok(_) => return Ok(candidate),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => bail!("cannot create the recording {}: {e}", candidate.display()),
        }
    }
    bail!(
        "cannot create the recording {}: every name up to {stem}-9999.{ext} is taken",
        base.display()
    )
}

/// `2026-11-30T06:54:23Z`, for logs.
pub fn rfc3339_utc(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = civil_utc(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// `20261130-065423Z`, for file names.
fn compact_utc(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = civil_utc(t);
    format!("{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}Z")
}

/// Calendar date and time (UTC) of `t`: Howard Hinnant's days-to-civil.
fn civil_utc(t: SystemTime) -> (i64, u32, u32, u32, u32, u32) {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::producer::ProducerConfig;
    use std::time::Instant;

    fn tmp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("oriel-rec-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn paths_are_checked_and_never_overwritten() {
        let d = tmp_dir("paths");
        assert!(check_path(&d.join("a.mkv")).is_ok());
        assert!(check_path(&d.join("a.mp4")).is_err());
        assert!(check_path(&d.join("missing/a.mkv")).is_err());
        let t = UNIX_EPOCH + Duration::from_secs(1_796_021_663); // 2026-11-30T06:54:23Z
        let first = create_file(&d.join("a.mkv"), t).unwrap();
        let second = create_file(&d.join("a.mkv"), t).unwrap();
        let third = create_file(&d.join("a.mkv"), t).unwrap();
        assert_eq!(first, d.join("a.mkv"));
        assert_eq!(second, d.join("a-2.mkv"));
        assert_eq!(third, d.join("a-3.mkv"));
        assert_eq!(
            create_file(&d, t).unwrap(),
            d.join("oriel-20261130-065423Z.mkv")
        );
        assert_eq!(
            create_file(&d, t).unwrap(),
            d.join("oriel-20261130-065423Z-2.mkv")
        );
        assert_eq!(rfc3339_utc(t), "2026-11-30T06:54:23Z");
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        // 2024-02-29T23:59:59Z, a leap day.
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH + Duration::from_secs(1_709_251_199)),
            "2024-02-29T23:59:59Z"
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    /// A producer like the agent's, with a long GOP: its only keyframes
    /// are the forced ones.
    fn producer() -> Producer {
        gst::init().unwrap();
        Producer::build(&ProducerConfig {
            capture: "videotestsrc is-live=true pattern=ball \
                      ! video/x-raw,width=320,height=240,framerate=30/1"
                .into(),
            encoder: "video/x-raw,format=I420 ! x264enc speed-preset=ultrafast \
                      tune=zerolatency key-int-max=100000 bframes=0 \
                      ! video/x-h264,profile=constrained-baseline"
                .into(),
            playout_delay: None,
            swappable_capture: false,
        })
        .unwrap()
    }

    /// Another consumer of the tee (a stand-in for a viewer's branch): the
    /// RTP sequence numbers it saw, to find gaps.
    fn viewer(producer: &Producer) -> Arc<Mutex<Vec<u16>>> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = gst::ElementFactory::make("fakesink")
            .property("async", false)
            .property("sync", false)
            .build()
            .unwrap();
        producer.pipeline().add(&sink).unwrap();
        let s = seen.clone();
        sink.static_pad("sink")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(gst::PadProbeData::Buffer(b)) = &info.data {
                    if let Ok(rtp) = gst_rtp::RTPBuffer::from_buffer_readable(b) {
                        s.lock().unwrap().push(rtp.seq());
                    }
                }
                gst::PadProbeReturn::Ok
            });
        producer.tee().link(&sink).unwrap();
        seen
    }

    fn gaps(seqs: &[u16]) -> usize {
        seqs.windows(2)
            .filter(|w| w[1] != w[0].wrapping_add(1))
            .count()
    }

    /// Plays `path` through decodebin: (frames decoded, first and last
    /// timestamp, width, height), or the error.
    fn decode(path: &Path) -> Result<(u64, u64, u64, i32, i32), String> {
        let pipeline = gst::parse::launch(&format!(
            "filesrc location={} ! matroskademux ! h264parse ! avdec_h264 name=dec ! fakesink",
            path.display()
        ))
        .unwrap();
        let frames = Arc::new(Mutex::new((0u64, u64::MAX, 0u64, 0i32, 0i32)));
        let f = frames.clone();
        let dec = pipeline
            .downcast_ref::<gst::Bin>()
            .unwrap()
            .by_name("dec")
            .unwrap();
        dec.static_pad("src")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
                if let Some(gst::PadProbeData::Buffer(b)) = &info.data {
                    let mut f = f.lock().unwrap();
                    f.0 += 1;
                    let pts = b.pts().map(|t| t.nseconds()).unwrap_or(0);
                    f.1 = f.1.min(pts);
                    f.2 = f.2.max(pts);
                    if let Some(s) = pad
                        .current_caps()
                        .and_then(|c| c.structure(0).map(|s| s.to_owned()))
                    {
                        f.3 = s.get::<i32>("width").unwrap_or(0);
                        f.4 = s.get::<i32>("height").unwrap_or(0);
                    }
                }
                gst::PadProbeReturn::Ok
            });
        pipeline.set_state(gst::State::Playing).unwrap();
        let bus = pipeline.bus().unwrap();
        let msg = bus.timed_pop_filtered(
            gst::ClockTime::from_seconds(20),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
        pipeline.set_state(gst::State::Null).unwrap();
        match msg.as_ref().map(|m| m.view()) {
            Some(gst::MessageView::Eos(_)) => Ok(*frames.lock().unwrap()),
            Some(gst::MessageView::Error(e)) => Err(e.error().to_string()),
            _ => Err("no end of stream within 20 s".into()),
        }
    }

    #[test]
    fn records_from_a_keyframe_at_zero_and_finishes_while_others_flow() {
        let d = tmp_dir("record");
        let p = producer();
        let seen = viewer(&p);
        p.start().unwrap();
        // The recording starts well after the pipeline did: its file
        // must start at 0 all the same.
        std::thread::sleep(Duration::from_millis(1500));
        let stats = Arc::new(RecordingStats::default());
        let path = create_file(&d.join("r.mkv"), SystemTime::now()).unwrap();
        let rec = RecordingBranch::attach(&p, &path, stats.clone()).unwrap();
        p.force_keyframe();
        assert!(stats.active.load(Ordering::Relaxed));
        std::thread::sleep(Duration::from_secs(3));
        let done = rec.finish(|| {});
        done.recv_timeout(Duration::from_secs(3))
            .expect("EOS reached the file");
        let summary = rec.remove(&p);
        std::thread::sleep(Duration::from_millis(500));
        p.stop();
        assert!(!stats.active.load(Ordering::Relaxed));
        let seqs = seen.lock().unwrap().clone();
        assert!(seqs.len() > 100, "the viewer got {} packets", seqs.len());
        assert_eq!(gaps(&seqs), 0, "the viewer lost packets");

        // ~3 s at 30 fps, from the forced keyframe on.
        assert!(
            (60..=100).contains(&summary.frames),
            "{} frames written",
            summary.frames
        );
        assert!(
            summary.duration > Duration::from_millis(2000)
                && summary.duration < Duration::from_millis(3500),
            "{:?}",
            summary.duration
        );
        assert_eq!(stats.frames.load(Ordering::Relaxed), summary.frames);
        assert!(summary.bytes > 0);
        let (frames, first, last, w, h) = decode(&path).unwrap();
        assert_eq!((w, h), (320, 240));
        assert_eq!(frames, summary.frames, "every written frame decodes");
        assert!(first < 100_000_000, "the file starts at {first} ns, not 0");
        assert!(
            (2_000_000_000..3_500_000_000).contains(&last),
            "last frame at {last} ns"
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn finishing_with_nobody_watching_does_not_end_the_stream() {
        let d = tmp_dir("alone");
        let p = producer();
        let bus = p.pipeline().bus().unwrap();
        p.start().unwrap();
        let path = create_file(&d.join("r.mkv"), SystemTime::now()).unwrap();
        let rec = RecordingBranch::attach(&p, &path, Arc::new(RecordingStats::default())).unwrap();
        p.force_keyframe();
        std::thread::sleep(Duration::from_secs(1));
        rec.finish(|| {})
            .recv_timeout(Duration::from_secs(3))
            .expect("EOS reached the file");
        let summary = rec.remove(&p);
        let before = p.buffers.load(Ordering::Relaxed);
        let msg = bus.timed_pop_filtered(
            gst::ClockTime::from_mseconds(700),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
        let after = p.buffers.load(Ordering::Relaxed);
        p.stop();
        assert!(msg.is_none(), "the pipeline posted {msg:?}");
        assert!(after > before + 10, "the stream stopped");
        assert!(summary.frames > 10, "{summary:?}");
        assert!(decode(&path).is_ok());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_failing_file_ends_the_recording_not_the_stream() {
        let p = producer();
        let seen = viewer(&p);
        let bus = p.pipeline().bus().unwrap();
        p.start().unwrap();
        std::thread::sleep(Duration::from_millis(500));
        // Every write fails with ENOSPC: a full disk.
        let rec = RecordingBranch::attach(
            &p,
            Path::new("/dev/full"),
            Arc::new(RecordingStats::default()),
        )
        .unwrap();
        p.force_keyframe();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut recording_error = None;
        while Instant::now() < deadline && recording_error.is_none() {
            let Some(msg) = bus.timed_pop_filtered(
                gst::ClockTime::from_mseconds(100),
                &[gst::MessageType::Error],
            ) else {
                continue;
            };
            let from = msg.src().and_then(recording_bin);
            assert_eq!(from.as_deref(), Some(rec.name().as_str()), "{msg:?}");
            recording_error = from;
        }
        assert!(recording_error.is_some(), "no error from the recording");
        // The stream goes on for the others, with no error of its own.
        let before = seen.lock().unwrap().len();
        std::thread::sleep(Duration::from_secs(1));
        let summary = rec.remove(&p);
        std::thread::sleep(Duration::from_millis(500));
        let seqs = seen.lock().unwrap().clone();
        while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
            let from = msg.src().and_then(recording_bin);
            assert!(from.is_some(), "an error outside the recording: {msg:?}");
        }
        p.stop();
        assert!(seqs.len() > before + 20, "the stream stopped");
        assert_eq!(gaps(&seqs), 0, "the viewer lost packets");
        assert_eq!(summary.path, Path::new("/dev/full"));
    }
}
