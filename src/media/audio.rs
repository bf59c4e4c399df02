//! The desktop's sound, the way video goes: captured once, encoded once
//! with Opus, and teed into every client's webrtcbin as a second,
//! send-only track of the same media stream.
//!
//! ```text
//! [audio bin: capture ─ audioconvert ─ audioresample ─ opusenc ─ rtpopuspay ─ caps] ─ audio tee ─┬─ peer 1
//!                                                                                                └─ peer 2
//! ```
//!
//! The capture lives in a bin of its own so that a sound server going away
//! ends the sound only (`Producer::drop_audio`), never the picture.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use gst::prelude::*;

/// The RTP payload type of the audio stream (what browsers offer for Opus).
pub const AUDIO_PT: u32 = 111;

/// Name of the bin holding the audio capture and encoder.
pub const AUDIO_BIN: &str = "audio";

/// The media stream id both tracks carry (`a=msid`): the browser puts them
/// in one MediaStream and plays them in sync by their RTCP sender reports.
pub const STREAM_ID: &str = "oriel";

/// The Opus encoder: 48 kHz stereo, 10 ms frames (half the usual 20 ms
/// of delay per packet), in-band FEC so a lost packet is rebuilt from the
/// next one, at 128 kbit/s (transparent for music). opusenc's generic mode
/// lets libopus pick speech or music coding per frame. Complexity 5 of 10:
/// 30 s of stereo pink noise took 0.55 s of CPU against 0.83 s at the
/// default (Intel Xeon), a third less for a difference not heard at this
/// bitrate.
const ENCODER: &str = "audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=2 \
     ! opusenc frame-size=10 complexity=5 inband-fec=true packet-loss-percentage=10 bitrate=128000";

/// The audio bin's description for a capture fragment, e.g. `pulsesrc
/// device=@DEFAULT_MONITOR@`.
pub fn description(capture: &str, ssrc: u32) -> String {
    format!(
        "{capture} ! {ENCODER} ! rtpopuspay name=audiopay pt={AUDIO_PT} ssrc={ssrc} \
         ! capsfilter name=audiocaps"
    )
}

/// The RTP caps of the audio every branch negotiates.
pub fn rtp_caps() -> gst::Caps {
    gst::Caps::builder("application/x-rtp")
        .field("media", "audio")
        .field("encoding-name", "OPUS")
        .field("payload", AUDIO_PT as i32)
        .field("clock-rate", 48000i32)
        .field("encoding-params", "2")
        // What the browser's decoder should know (RFC 7587): a stereo
        // stream, and that FEC is in it.
        .field("sprop-stereo", "1")
        .field("useinbandfec", "1")
        .build()
}

/// The audio bin (capture to RTP, with a ghost src pad) and the tee
/// branches read it from, both added to `pipeline` and linked.
pub fn build(pipeline: &gst::Pipeline, capture: &str, ssrc: u32) -> Result<gst::Element> {
    let text = description(capture, ssrc);
    let bin = gst::parse::bin_from_description_with_name(&text, false, AUDIO_BIN)
        .with_context(|| format!("building the audio chain `{text}`"))?;
    let caps = bin
        .by_name("audiocaps")
        .ok_or_else(|| anyhow!("audio element `audiocaps` missing"))?;
    caps.set_property("caps", rtp_caps());
    let src = caps
        .static_pad("src")
        .ok_or_else(|| anyhow!("capsfilter has no src pad"))?;
    bin.add_pad(&gst::GhostPad::with_target(&src)?)?;
    // The tee sits in the pipeline itself, beside the bin, so the bin can
    // go (drop_audio) while branches stay linked to the tee.
    let tee = gst::ElementFactory::make("tee")
        .name("audiofanout")
        .property("allow-not-linked", true)
        .build()?;
    pipeline.add_many([bin.upcast_ref::<gst::Element>(), &tee])?;
    bin.link(&tee).context("linking the audio to its tee")?;
    Ok(tee)
}

/// Stops the audio bin for good (this producer's life): the tee stays, so
/// every client keeps its (now silent) track and its connection. The bin
/// stays in the pipeline, locked in NULL: its late messages still name it
/// as their source's parent, so they are told apart from the picture's.
/// Returns false when there was no running sound to stop.
pub fn stop(pipeline: &gst::Pipeline) -> bool {
    match pipeline.by_name(AUDIO_BIN) {
        Some(bin) if !bin.is_locked_state() => {
            bin.set_locked_state(true);
            let _ = bin.set_state(gst::State::Null);
            true
        }
        _ => false,
    }
}

/// The sound bin `src` is in: the desktop's sound (`AUDIO_BIN`) or a
/// controller's microphone (`microphone::MIC_BIN`).
pub fn sound_bin(src: &gst::Object) -> Option<gst::Bin> {
    let mut cur = Some(src.clone());
    while let Some(obj) = cur {
        let name = obj.name();
        if name == AUDIO_BIN || name == crate::media::microphone::MIC_BIN {
            if let Ok(bin) = obj.clone().downcast::<gst::Bin>() {
                return Some(bin);
            }
        }
        cur = obj.parent();
    }
    None
}

/// One client's audio: a small leaky queue into a send-only transceiver of
/// its webrtcbin, fed by the audio tee once the connection is up (packets
/// before that would only be stale). Returns the tee's pad, to release
/// when the branch goes.
pub fn attach_branch(
    bin: &gst::Bin,
    webrtcbin: &gst::Element,
    tee: &gst::Element,
    connected: Arc<AtomicBool>,
    receive: bool,
) -> Result<gst::Pad> {
    let queue = gst::ElementFactory::make("queue")
        .name("audioqueue")
        .property("max-size-buffers", 0u32)
        .property("max-size-bytes", 0u32)
        // 200 ms: a client that stalls loses its own oldest sound.
        .property("max-size-time", 200_000_000u64)
        .property_from_str("leaky", "downstream")
        .build()?;
    bin.add(&queue)?;
    let sink = webrtcbin
        .request_pad_simple("sink_%u")
        .ok_or_else(|| anyhow!("webrtcbin gave no audio sink pad"))?;
    sink.set_property("msid", STREAM_ID);
    queue
        .static_pad("src")
        .ok_or_else(|| anyhow!("queue has no src pad"))?
        .link(&sink)
        .context("linking the audio queue to webrtcbin")?;
    let transceiver = sink.property::<gst_webrtc::WebRTCRTPTransceiver>("transceiver");
    // Only the controller's (and with --player-microphones the players')
    // also receives: its microphone.
    transceiver.set_property(
        "direction",
        if receive {
            gst_webrtc::WebRTCRTPTransceiverDirection::Sendrecv
        } else {
            gst_webrtc::WebRTCRTPTransceiverDirection::Sendonly
        },
    );
    transceiver.set_property("codec-preferences", rtp_caps());
    if !receive {
        crate::media::microphone::discard(webrtcbin, bin);
    }
    queue.sync_state_with_parent()?;
    let ghost = gst::GhostPad::builder(gst::PadDirection::Sink)
        .name("audio")
        .build();
    ghost.set_target(Some(
        &queue
            .static_pad("sink")
            .ok_or_else(|| anyhow!("queue has no sink pad"))?,
    ))?;
    ghost.set_active(true)?;
    bin.add_pad(&ghost)?;
    let tee_pad = tee
        .request_pad_simple("src_%u")
        .ok_or_else(|| anyhow!("the audio tee gave no src pad"))?;
    tee_pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |_, _| {
            if connected.load(Ordering::Relaxed) {
                gst::PadProbeReturn::Remove
            } else {
                crate::media::probe::DROP
            }
        },
    );
    if let Err(e) = tee_pad.link(&ghost) {
        tee.release_request_pad(&tee_pad);
        return Err(anyhow!("linking the audio tee to the branch: {e}"));
    }
    Ok(tee_pad)
}

/// Unlinks and releases a branch's audio tee pad once it is idle.
pub fn detach_branch(tee_pad: gst::Pad) {
    tee_pad.add_probe(gst::PadProbeType::IDLE, |pad, _| {
        if let Some(peer) = pad.peer() {
            let _ = pad.unlink(&peer);
        }
        if let Some(tee) = pad.parent_element() {
            let pad = pad.clone();
            tee.call_async(move |tee| tee.release_request_pad(&pad));
        }
        gst::PadProbeReturn::Remove
    });
}
