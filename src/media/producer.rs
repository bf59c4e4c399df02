//! The producer: one pipeline per desktop that captures, converts, encodes,
//! payloads and tees the stream exactly once. Client branches
//! ([`super::peer::PeerBranch`]) hang off its tee; adding or removing one
//! never touches the encoder.
//!
//! ```text
//! capture ─ videoconvert ─ raw tee ─ encoder ─ h264parse ─ rtph264pay ─ capsfilter ─ tee ─┬─ peer 1
//!                            │                                  (header extensions)      └─ peer 2
//!                            └─ the cheaper rung, while slow viewers read it (media::rung)
//! ```

use anyhow::{anyhow, Context, Result};
use gst::prelude::*;

use crate::media::header_ext;
use crate::media::traffic::FrameCounters;

/// The RTP payload type of the video stream.
pub const VIDEO_PT: u32 = 96;

/// Everything needed to build the producer pipeline.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// Rendered capture fragment.
    pub capture: String,
    /// Rendered encoder fragment.
    pub encoder: String,
    /// The same encoder for the cheaper rung (`media::rung`), or `None`
    /// for no rung.
    pub rung_encoder: Option<String>,
    /// Playout-delay extension `(min_ms, max_ms)`, or `None` to not send it.
    pub playout_delay: Option<(u32, u32)>,
    /// Build the capture as a bin of its own, so that
    /// [`Producer::replace_capture`] can swap it while everything after it
    /// (encoder, tee, every client's branch) keeps running.
    pub swappable_capture: bool,
    /// The capture sends frames only when the screen changed (seconds
    /// apart on a still desktop): client queues are then bounded in bytes,
    /// since GstQueue would take the gap for a backlog (`media::peer`).
    pub sparse_frames: bool,
    /// Threads of the colour conversion before the encoder (at least 1).
    pub convert_threads: u32,
    /// The sound's capture fragment (`media::audio`), or `None` for none.
    pub audio: Option<String>,
}

pub struct Producer {
    /// Buffers that reached the tee; the media thread watches it for stalls.
    pub buffers: std::sync::Arc<std::sync::atomic::AtomicU64>,
    pipeline: gst::Pipeline,
    tee: gst::Element,
    /// The encoder fragment's output pad, where keyframe requests go in.
    encoder_src: gst::Pad,
    /// The encoder element itself, whose bitrate follows the drivers' links.
    encoder: Option<gst::Element>,
    /// The capture bin, when built swappable.
    capture: Option<gst::Bin>,
    /// The tee of the encoded sound, when there is sound.
    audio_tee: Option<gst::Element>,
    pay: PayInfo,
    rtp_caps: gst::Caps,
    playout_delay: Option<(u32, u32)>,
    sparse_frames: bool,
    /// The counters [`Producer::count_frames`] was given; clients' branches
    /// add their send times to them.
    frames: std::sync::OnceLock<std::sync::Arc<FrameCounters>>,
}

/// What a second payloader needs to continue the main one's stream.
#[derive(Debug, Clone, Copy)]
pub struct PayInfo {
    pub pt: u32,
    pub ssrc: u32,
    pub timestamp_offset: u32,
}

impl PayInfo {
    fn new() -> Self {
        use std::hash::{BuildHasher, Hasher};
        // Random enough for an SSRC (RFC 3550 wants it unpredictable).
        let bits = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        PayInfo {
            pt: VIDEO_PT,
            ssrc: (bits >> 32) as u32 | 1,
            timestamp_offset: bits as u32,
        }
    }
}

impl Producer {
    /// Builds the pipeline (in NULL state).
    pub fn build(config: &ProducerConfig) -> Result<Self> {
        // One launch line, so the fragments may begin or end with caps.
        // rtph264pay keeps its default aggregate mode: with
        // `aggregate-mode=zero-latency` Chromium 156 dropped a frame at
        // every keyframe and answered with a PLI, a keyframe loop.
        // The raw tee feeds the main encoder in its own thread (no queue:
        // no added latency) and, while slow viewers need it, the cheaper
        // rung (`media::rung`) through a leaky queue. Our own SSRC and
        // timestamp offset, so the rung can use the same ones.
        let pay = PayInfo::new();
        let rest = format!(
            "videoconvert name=convert n-threads={convert_threads} ! tee name=raw allow-not-linked=true ! {encoder} \
             ! h264parse name=parse \
             ! rtph264pay name=pay pt={VIDEO_PT} config-interval=-1 ssrc={ssrc} \
             timestamp-offset={ts} \
             ! capsfilter name=rtpcaps ! tee name=fanout allow-not-linked=true",
            encoder = config.encoder,
            ssrc = pay.ssrc,
            ts = pay.timestamp_offset,
            convert_threads = config.convert_threads.max(1),
        );
        let description = if config.swappable_capture {
            rest
        } else {
            format!("{} ! {rest}", config.capture)
        };
        let pipeline = gst::parse::launch(&description)
            .with_context(|| format!("building the pipeline `{description}`"))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| anyhow!("the producer description did not make a pipeline"))?;
        pipeline.set_property("name", "oriel-producer");
        let capture = if config.swappable_capture {
            let bin = capture_bin(&config.capture)?;
            pipeline
                .add(&bin)
                .context("adding the capture to the pipeline")?;
            let convert = pipeline
                .by_name("convert")
                .ok_or_else(|| anyhow!("producer element `convert` missing"))?;
            bin.link(&convert)
                .context("linking the capture to videoconvert")?;
            Some(bin)
        } else {
            None
        };
        let by_name = |name: &str| {
            pipeline
                .by_name(name)
                .ok_or_else(|| anyhow!("producer element `{name}` missing"))
        };
        let rtp_filter = by_name("rtpcaps")?;
        let encoder_src = by_name("parse")?
            .static_pad("sink")
            .and_then(|p| p.peer())
            .ok_or_else(|| anyhow!("the encoder fragment is not linked to h264parse"))?;
        let tee = by_name("fanout")?;
        let rtp_caps = rtp_caps(config.playout_delay.is_some());
        rtp_filter.set_property("caps", &rtp_caps);
        let rtp_src = rtp_filter
            .static_pad("src")
            .ok_or_else(|| anyhow!("capsfilter has no src pad"))?;
        decorate_rtp(&rtp_src, config.playout_delay);
        let buffers = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = buffers.clone();
        tee.static_pad("sink")
            .ok_or_else(|| anyhow!("tee has no sink pad"))?
            .add_probe(
                gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
                move |_, _| {
                    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    gst::PadProbeReturn::Ok
                },
            );
        let encoder = encoder_element(&encoder_src);
        let audio_tee = match &config.audio {
            Some(capture) => Some(crate::media::audio::build(
                &pipeline,
                capture,
                pay.ssrc.wrapping_add(1),
            )?),
            None => None,
        };
        Ok(Producer {
            buffers,
            pipeline,
            tee,
            encoder_src,
            encoder,
            capture,
            audio_tee,
            pay,
            rtp_caps,
            playout_delay: config.playout_delay,
            sparse_frames: config.sparse_frames,
            frames: std::sync::OnceLock::new(),
        })
    }

    /// Sets the shared encoder's target bitrate (kbit/s); false when this
    /// encoder cannot change it while running.
    pub fn set_bitrate(&self, kbps: u32) -> bool {
        self.encoder
            .as_ref()
            .is_some_and(|e| crate::media::encoder::set_bitrate(e, kbps))
    }

    /// Swaps the capture for a new one (e.g. a new screencast session after
    /// the monitor changed size) while the encoder, the tee and every
    /// branch keep running: clients keep their connection, and the encoder
    /// starts over at the new size with a keyframe carrying the new SPS,
    /// which browsers decode in-band. Only for a producer built with
    /// `swappable_capture`.
    pub fn replace_capture(&mut self, description: &str) -> Result<()> {
        let old = self
            .capture
            .clone()
            .ok_or_else(|| anyhow!("this producer's capture cannot be swapped"))?;
        let new = capture_bin(description)?;
        let convert = self
            .pipeline
            .by_name("convert")
            .ok_or_else(|| anyhow!("producer element `convert` missing"))?;
        // Stopped before it is unlinked: a source still pushing into an
        // unlinked pad would post a not-linked error.
        let _ = old.set_state(gst::State::Null);
        old.unlink(&convert);
        let _ = self.pipeline.remove(&old);
        self.pipeline
            .add(&new)
            .context("adding the new capture to the pipeline")?;
        new.link(&convert)
            .context("linking the new capture to videoconvert")?;
        new.sync_state_with_parent()
            .context("starting the new capture")?;
        self.capture = Some(new);
        // The encoder restarts at the new size: make that a keyframe.
        self.force_keyframe();
        Ok(())
    }

    /// Counts frames into and out of the encoder fragment.
    pub fn count_frames(&self, counters: &std::sync::Arc<FrameCounters>) {
        let _ = self.frames.set(counters.clone());
        // The raw tee's first pad feeds the main encoder.
        let encoder_sink = self
            .pipeline
            .by_name("raw")
            .and_then(|t| t.src_pads().into_iter().next())
            .and_then(|p| p.peer());
        if let Some(sink) = encoder_sink {
            counters.watch(&sink, &self.encoder_src);
        }
        if let Some(src) = self
            .pipeline
            .by_name("convert")
            .and_then(|c| c.static_pad("src"))
        {
            counters.watch_point(&src, false, |c| &c.capture_to_converted);
        }
        if let Some(sink) = self.tee.static_pad("sink") {
            counters.watch_point(&sink, true, |c| &c.capture_to_payloaded);
        }
    }

    /// The frame counters, once [`Producer::count_frames`] was called.
    pub fn frame_counters(&self) -> Option<&std::sync::Arc<FrameCounters>> {
        self.frames.get()
    }

    /// Whether frames may come seconds apart (see [`ProducerConfig`]).
    pub fn sparse_frames(&self) -> bool {
        self.sparse_frames
    }

    pub fn pipeline(&self) -> &gst::Pipeline {
        &self.pipeline
    }

    pub fn tee(&self) -> &gst::Element {
        &self.tee
    }

    /// Video encoders in the pipeline now (the main one and any rung's),
    /// counted from its elements.
    pub fn encoders_running(&self) -> u64 {
        self.pipeline
            .iterate_recurse()
            .into_iter()
            .flatten()
            .filter(|e| {
                e.factory()
                    .is_some_and(|f| crate::media::encoder::ENCODERS.contains(&f.name().as_str()))
            })
            .count() as u64
    }

    /// The tee of raw frames after videoconvert, which rungs read.
    pub fn raw_tee(&self) -> Result<gst::Element> {
        self.pipeline
            .by_name("raw")
            .ok_or_else(|| anyhow!("producer element `raw` missing"))
    }

    pub fn payloader(&self) -> PayInfo {
        self.pay
    }

    /// The RTP caps every branch negotiates.
    pub fn rtp_caps(&self) -> &gst::Caps {
        &self.rtp_caps
    }

    /// What every RTP stream of ours gets on its way to the tee.
    pub fn decorate_rtp(&self, pad: &gst::Pad) {
        decorate_rtp(pad, self.playout_delay);
    }

    /// The pad the tee receives the encoded stream on; its caps tell when
    /// the producer is ready for clients.
    pub fn tee_sink(&self) -> Result<gst::Pad> {
        self.tee
            .static_pad("sink")
            .ok_or_else(|| anyhow!("tee has no sink pad"))
    }

    /// Starts the pipeline. A sound capture that cannot start (its server
    /// went away since startup) is dropped and the picture starts alone.
    pub fn start(&self) -> Result<()> {
        if self.pipeline.set_state(gst::State::Playing).is_ok() {
            return Ok(());
        }
        if !self.drop_audio() {
            return Err(anyhow!("the capture pipeline could not start"));
        }
        tracing::warn!("the sound capture could not start: the desktop goes without sound");
        let _ = self.pipeline.set_state(gst::State::Null);
        self.pipeline
            .set_state(gst::State::Playing)
            .map(|_| ())
            .map_err(|_| anyhow!("the capture pipeline could not start"))
    }

    /// The tee of the encoded sound, when this producer has sound.
    pub fn audio_tee(&self) -> Option<&gst::Element> {
        self.audio_tee.as_ref()
    }

    /// Ends the sound capture (its tee stays, so clients keep a silent
    /// track); false when there was none.
    pub fn drop_audio(&self) -> bool {
        crate::media::audio::stop(&self.pipeline)
    }

    /// Asks the encoder for a keyframe. The request goes straight into the
    /// encoder fragment's output pad, past h264parse and rtph264pay: the
    /// payloader answers a force-key-unit event by sending SPS/PPS with the
    /// very next frame, a P-frame, which Chromium takes for a broken
    /// keyframe, drops, and answers with a PLI: a keyframe loop. SPS/PPS
    /// still precede every IDR (rtph264pay config-interval=-1).
    pub fn force_keyframe(&self) {
        let event = gst_video::UpstreamForceKeyUnitEvent::builder()
            .all_headers(true)
            .build();
        self.encoder_src.send_event(event);
    }

    pub fn stop(&self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// A capture fragment as a bin with a ghost src pad. Its elements are
/// named by GStreamer, so two captures can live in one pipeline. The
/// parser takes caps only between two elements, and fragments may end with
/// caps: a passthrough `identity` closes the bin.
fn capture_bin(description: &str) -> Result<gst::Bin> {
    let bin = gst::parse::bin_from_description(&format!("{description} ! identity"), true)
        .with_context(|| format!("building the capture `{description}`"))?;
    for element in bin.iterate_recurse().into_iter().flatten() {
        if element.factory().is_some_and(|f| f.name() == "pipewiresrc") {
            keep_pipewire_stream(&element);
        }
    }
    Ok(bin)
}

/// pipewiresrc (PipeWire 0.3.65) answers every RECONFIGURE event, such as
/// the one a tee sends up when a client's branch is linked, by
/// disconnecting its stream and connecting again, and mutter then sends
/// the reconnected consumer one frame and nothing more: the picture froze
/// at the first client's join. The stream's format is the compositor's to
/// set (a new size comes as a new session), so reconfiguring is never
/// needed: the events stop at the element after pipewiresrc. The probe
/// sits on that element's sink pad because a source pad marks itself for
/// renegotiation before its own probes see the event.
fn keep_pipewire_stream(src: &gst::Element) {
    let Some(peer) = src.static_pad("src").and_then(|p| p.peer()) else {
        return;
    };
    peer.add_probe(gst::PadProbeType::EVENT_UPSTREAM, |_, info| {
        match &info.data {
            Some(gst::PadProbeData::Event(e)) if e.type_() == gst::EventType::Reconfigure => {
                crate::media::probe::DROP
            }
            _ => gst::PadProbeReturn::Ok,
        }
    });
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The encoder behind the fragment's output: the first element upstream of
/// `pad` that is not a capsfilter or a queue.
pub(crate) fn encoder_element(pad: &gst::Pad) -> Option<gst::Element> {
    let mut element = pad.parent_element()?;
    for _ in 0..8 {
        let factory = element.factory()?;
        if !matches!(factory.name().as_str(), "capsfilter" | "queue") {
            return Some(element);
        }
        element = element.static_pad("sink")?.peer()?.parent_element()?;
    }
    None
}

/// The RTP caps of our video: H.264 with the header extensions we use.
/// Caps fields `extmap-N` end up as `a=extmap:N URI` in the offer.
fn rtp_caps(playout_delay: bool) -> gst::Caps {
    let mut caps = gst::Caps::builder("application/x-rtp")
        .field("media", "video")
        .field("encoding-name", "H264")
        .field("payload", VIDEO_PT as i32)
        .field("clock-rate", 90000i32)
        .field(
            format!("extmap-{}", header_ext::TWCC_ID),
            header_ext::TWCC_URI,
        );
    if playout_delay {
        caps = caps.field(
            format!("extmap-{}", header_ext::PLAYOUT_DELAY_ID),
            header_ext::PLAYOUT_DELAY_URI,
        );
    }
    caps.build()
}

/// The playout-delay extension on every packet, and caps that never carry
/// SPS/PPS. A swapped capture may come back at another size, and a branch
/// may move between rungs: rtph264pay would put each encoder's SPS/PPS
/// into its caps (sprop-parameter-sets), a caps change that negotiated
/// webrtcbins refuse (not-negotiated). Browsers take SPS/PPS in-band
/// (config-interval=-1 sends them with every IDR), so the caps go without
/// them and stay the same.
fn decorate_rtp(pad: &gst::Pad, playout_delay: Option<(u32, u32)>) {
    if let Some((min, max)) = playout_delay {
        header_ext::install(pad, min, max);
    }
    pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, |_, info| {
        let Some(gst::PadProbeData::Event(event)) = &info.data else {
            return gst::PadProbeReturn::Ok;
        };
        let gst::EventView::Caps(c) = event.view() else {
            return gst::PadProbeReturn::Ok;
        };
        let mut caps = c.caps().to_owned();
        let changed = caps
            .make_mut()
            .structure_mut(0)
            .filter(|st| st.has_field("sprop-parameter-sets"))
            .map(|st| st.remove_field("sprop-parameter-sets"))
            .is_some();
        if changed {
            info.data = Some(gst::PadProbeData::Event(gst::event::Caps::new(&caps)));
        }
        gst::PadProbeReturn::Ok
    });
}
