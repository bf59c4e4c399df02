//! The producer: one pipeline per desktop that captures, converts, encodes,
//! payloads and tees the stream exactly once. Client branches
//! ([`super::peer::PeerBranch`]) hang off its tee; adding or removing one
//! never touches the encoder.
//!
//! ```text
//! capture ─ videoconvert ─ encoder ─ h264parse ─ rtph264pay ─ capsfilter ─ tee ─┬─ peer 1
//!                                                 (playout-delay ext)            └─ peer 2
//! ```

use anyhow::{anyhow, Context, Result};
use gst::prelude::*;

use crate::media::playout_delay;
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
    /// Playout-delay extension `(min_ms, max_ms)`, or `None` to not send it.
    pub playout_delay: Option<(u32, u32)>,
}

pub struct Producer {
    /// Buffers that reached the tee; the media thread watches it for stalls.
    pub buffers: std::sync::Arc<std::sync::atomic::AtomicU64>,
    pipeline: gst::Pipeline,
    tee: gst::Element,
    /// The encoder fragment's output pad, where keyframe requests go in.
    encoder_src: gst::Pad,
}

impl Producer {
    /// Builds the pipeline (in NULL state).
    pub fn build(config: &ProducerConfig) -> Result<Self> {
        // One launch line, so the fragments may begin or end with caps.
        // rtph264pay keeps its default aggregate mode: with
        // `aggregate-mode=zero-latency` Chromium 156 dropped a frame at
        // every keyframe and answered with a PLI, a keyframe loop.
        let description = format!(
            "{capture} ! videoconvert name=convert ! {encoder} \
             ! h264parse name=parse \
             ! rtph264pay name=pay pt={VIDEO_PT} config-interval=-1 \
             ! capsfilter name=rtpcaps ! tee name=fanout allow-not-linked=true",
            capture = config.capture,
            encoder = config.encoder,
        );
        let pipeline = gst::parse::launch(&description)
            .with_context(|| format!("building the pipeline `{description}`"))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| anyhow!("the producer description did not make a pipeline"))?;
        pipeline.set_property("name", "oriel-producer");
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
        // SPS/PPS go with every IDR (config-interval=-1), so any keyframe
        // is a starting point; the tee keeps flowing with no branch linked.
        let mut rtp_caps = gst::Caps::builder("application/x-rtp")
            .field("media", "video")
            .field("encoding-name", "H264")
            .field("payload", VIDEO_PT as i32)
            .field("clock-rate", 90000i32);
        if config.playout_delay.is_some() {
            // Caps fields `extmap-N` end up as `a=extmap:N URI` in the offer.
            rtp_caps = rtp_caps.field(
                format!("extmap-{}", playout_delay::EXT_ID),
                playout_delay::URI,
            );
        }
        rtp_filter.set_property("caps", rtp_caps.build());

        if let Some((min, max)) = config.playout_delay {
            let src = rtp_filter
                .static_pad("src")
                .ok_or_else(|| anyhow!("capsfilter has no src pad"))?;
            playout_delay::install(&src, min, max);
        }
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
        Ok(Producer {
            buffers,
            pipeline,
            tee,
            encoder_src,
        })
    }

    /// Counts frames into and out of the encoder fragment.
    pub fn count_frames(&self, counters: &std::sync::Arc<FrameCounters>) {
        let encoder_sink = self
            .pipeline
            .by_name("convert")
            .and_then(|c| c.static_pad("src"))
            .and_then(|p| p.peer());
        if let Some(sink) = encoder_sink {
            counters.watch(&sink, &self.encoder_src);
        }
    }

    pub fn pipeline(&self) -> &gst::Pipeline {
        &self.pipeline
    }

    pub fn tee(&self) -> &gst::Element {
        &self.tee
    }

    /// The pad the tee receives the encoded stream on; its caps tell when
    /// the producer is ready for clients.
    pub fn tee_sink(&self) -> Result<gst::Pad> {
        self.tee
            .static_pad("sink")
            .ok_or_else(|| anyhow!("tee has no sink pad"))
    }

    pub fn start(&self) -> Result<()> {
        self.pipeline
            .set_state(gst::State::Playing)
            .map(|_| ())
            .map_err(|_| anyhow!("the capture pipeline could not start"))
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

impl Drop for Producer {
    fn drop(&mut self) {
        self.stop();
    }
}
