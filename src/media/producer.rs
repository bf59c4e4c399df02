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
    pipeline: gst::Pipeline,
    tee: gst::Element,
}

impl Producer {
    /// Builds the pipeline (in NULL state).
    pub fn build(config: &ProducerConfig) -> Result<Self> {
        // One launch line, so the fragments may begin or end with caps.
        let description = format!(
            "{capture} ! videoconvert name=convert ! {encoder} \
             ! h264parse name=parse \
             ! rtph264pay name=pay pt={VIDEO_PT} config-interval=-1 aggregate-mode=zero-latency \
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
        Ok(Producer { pipeline, tee })
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

    /// Asks the encoder for a keyframe with SPS/PPS. The event travels
    /// upstream from the tee through the payloader and parser.
    pub fn force_keyframe(&self) {
        let event = gst_video::UpstreamForceKeyUnitEvent::builder()
            .all_headers(true)
            .build();
        if let Ok(pad) = self.tee_sink() {
            pad.push_event(event);
        }
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
