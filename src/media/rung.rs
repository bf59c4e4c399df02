//! The cheaper rung: a second encode of the same capture for viewers whose
//! link cannot carry the main stream, one for all of them however many
//! there are. It hangs off the producer's raw tee (after videoconvert) and
//! ends in a tee of its own that viewers' branches move to (`PeerBranch::
//! move_to`). It runs only while some viewer reads it.
//!
//! ```text
//! convert ─ raw tee ─┬─ main encoder ─ … ─ fanout tee ─ drivers, fast viewers
//!                    └─ queue(leaky) ─ encoder ─ parse ─ pay ─ caps ─ rung tee ─ slow viewers
//! ```
//!
//! Its payloader takes the main one's SSRC, payload type and timestamp
//! offset and the same RTP caps, so a branch that moves keeps one stream
//! for the browser: only sequence numbers are renumbered, per branch.

use anyhow::{anyhow, Context, Result};
use gst::prelude::*;

use crate::media::producer::Producer;

pub struct Rung {
    bin: gst::Bin,
    tee: gst::Element,
    /// The request pad on the producer's raw tee feeding it.
    raw_pad: gst::Pad,
    encoder: Option<gst::Element>,
    /// The encoder fragment's output, where keyframe requests go in.
    encoder_src: gst::Pad,
    pub kbps: u32,
}

impl Rung {
    /// Builds the rung from `encoder` (a rendered encoder fragment, at
    /// `kbps`) and starts it off `producer`'s raw tee.
    pub fn attach(producer: &Producer, encoder: &str, kbps: u32) -> Result<Rung> {
        let pay = producer.payloader();
        let description = format!(
            "queue name=rungqueue leaky=downstream max-size-buffers=1 max-size-bytes=0 \
             max-size-time=0 ! {encoder} ! h264parse name=rungparse \
             ! rtph264pay name=rungpay pt={pt} config-interval=-1 ssrc={ssrc} \
             timestamp-offset={ts} ! capsfilter name=rungcaps",
            pt = pay.pt,
            ssrc = pay.ssrc,
            ts = pay.timestamp_offset,
        );
        let bin = gst::parse::bin_from_description_with_name(&description, false, "rung")
            .with_context(|| format!("building the rung `{description}`"))?;
        let by_name = |name: &str| {
            bin.by_name(name)
                .ok_or_else(|| anyhow!("rung element `{name}` missing"))
        };
        let caps = by_name("rungcaps")?;
        caps.set_property("caps", producer.rtp_caps());
        let caps_src = caps
            .static_pad("src")
            .ok_or_else(|| anyhow!("capsfilter has no src pad"))?;
        producer.decorate_rtp(&caps_src);
        bin.add_pad(&gst::GhostPad::with_target(&caps_src)?)?;
        // The tee sits in the pipeline itself: branches (bins of their
        // own) link to its request pads.
        let tee = gst::ElementFactory::make("tee")
            .name("rungfanout")
            .property("allow-not-linked", true)
            .build()?;
        let encoder_src = by_name("rungparse")?
            .static_pad("sink")
            .and_then(|p| p.peer())
            .ok_or_else(|| anyhow!("the rung's encoder is not linked to h264parse"))?;
        let encoder = crate::media::producer::encoder_element(&encoder_src);
        let queue_sink = by_name("rungqueue")?
            .static_pad("sink")
            .ok_or_else(|| anyhow!("queue has no sink pad"))?;
        bin.add_pad(&gst::GhostPad::with_target(&queue_sink)?)?;

        let pipeline = producer.pipeline();
        pipeline.add_many([bin.upcast_ref::<gst::Element>(), &tee])?;
        bin.link(&tee).context("linking the rung to its tee")?;
        tee.sync_state_with_parent()
            .context("starting the rung's tee")?;
        bin.sync_state_with_parent().context("starting the rung")?;
        let raw = producer.raw_tee()?;
        let Some(raw_pad) = raw.request_pad_simple("src_%u") else {
            stop_and_remove(pipeline, &bin, &tee);
            return Err(anyhow!("the raw tee gave no src pad"));
        };
        let sink = bin
            .static_pad("sink")
            .ok_or_else(|| anyhow!("rung has no sink pad"))?;
        if let Err(e) = raw_pad.link(&sink) {
            raw.release_request_pad(&raw_pad);
            stop_and_remove(pipeline, &bin, &tee);
            return Err(anyhow!("linking the raw tee to the rung: {e}"));
        }
        tracing::info!(kbps, "cheaper rung started (for viewers on slow links)");
        Ok(Rung {
            bin,
            tee,
            raw_pad,
            encoder,
            encoder_src,
            kbps,
        })
    }

    /// The tee branches read the rung from.
    pub fn tee(&self) -> &gst::Element {
        &self.tee
    }

    pub fn set_bitrate(&mut self, kbps: u32) -> bool {
        let done = self
            .encoder
            .as_ref()
            .is_some_and(|e| crate::media::encoder::set_bitrate(e, kbps));
        if done {
            self.kbps = kbps;
        }
        done
    }

    /// A keyframe from this rung only (see `Producer::force_keyframe`).
    pub fn force_keyframe(&self) {
        let event = gst_video::UpstreamForceKeyUnitEvent::builder()
            .all_headers(true)
            .build();
        self.encoder_src.send_event(event);
    }

    /// Stops the rung and takes it out of the pipeline, from a thread of
    /// GStreamer's once the raw tee's pad is idle (never blocks the caller).
    pub fn detach(self) {
        let Rung {
            bin, raw_pad, tee, ..
        } = self;
        tracing::info!("cheaper rung stopped (no viewer reads it)");
        raw_pad.add_probe(gst::PadProbeType::IDLE, move |pad, _| {
            if let Some(sink) = bin.static_pad("sink") {
                let _ = pad.unlink(&sink);
            }
            let (bin, tee) = (bin.clone(), tee.clone());
            let pad = pad.clone();
            bin.call_async(move |bin| {
                if let Some(raw) = pad.parent_element() {
                    raw.release_request_pad(&pad);
                }
                if let Some(pipeline) = bin.parent().and_then(|p| p.downcast::<gst::Bin>().ok()) {
                    stop_and_remove(&pipeline, bin, &tee);
                }
            });
            gst::PadProbeReturn::Remove
        });
    }
}

fn stop_and_remove(pipeline: &impl IsA<gst::Bin>, bin: &gst::Bin, tee: &gst::Element) {
    let _ = bin.set_state(gst::State::Null);
    let _ = tee.set_state(gst::State::Null);
    let _ = pipeline.remove(bin);
    let _ = pipeline.remove(tee);
}
