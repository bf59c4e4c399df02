//! TWCC feedback out of one client's webrtcbin. rtpsession (GStreamer
//! 1.20 and later) parses the browser's transport-wide feedback and sends it
//! upstream as a custom event `RTPTWCCPackets` towards the element that
//! feeds it: webrtcbin lets us put one there per DTLS transport
//! (`request-aux-sender`). Ours is a pass-through bin (an `identity`) whose
//! src pad reads those events and hands each packet's fate to a callback.

use std::time::Duration;

use anyhow::{anyhow, Result};
use gst::prelude::*;

/// One sent packet as the feedback reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fate {
    pub seq: u16,
    /// When rtpsession sent it (pipeline running time).
    pub sent: Duration,
    /// When the browser received it (its clock), `None` when lost.
    pub received: Option<Duration>,
    pub size: usize,
}

/// The packets of one `RTPTWCCPackets` event; other events give `None`.
pub fn parse(event: &gst::EventRef) -> Option<Vec<Fate>> {
    let s = event.structure()?;
    if s.name() != "RTPTWCCPackets" {
        return None;
    }
    // rtpsession 1.22 sends a GValueArray of RTPTWCCPacket structures.
    let packets: Vec<gst::Structure> = match s.get::<gst::glib::ValueArray>("packets") {
        Ok(array) => array
            .iter()
            .filter_map(|v| v.get::<gst::Structure>().ok())
            .collect(),
        Err(_) => s
            .get::<gst::List>("packets")
            .ok()?
            .iter()
            .filter_map(|v| v.get::<gst::Structure>().ok())
            .collect(),
    };
    let mut out = Vec::with_capacity(packets.len());
    for p in packets {
        let ns = |field: &str| -> Option<Duration> {
            p.get::<u64>(field)
                .ok()
                .filter(|t| *t != u64::MAX)
                .map(Duration::from_nanos)
        };
        let (Ok(seq), Some(sent)) = (p.get::<u32>("seqnum"), ns("local-ts")) else {
            continue;
        };
        let lost = p.get::<bool>("lost").unwrap_or(false);
        out.push(Fate {
            seq: seq as u16,
            sent,
            received: if lost { None } else { ns("remote-ts") },
            size: p.get::<u32>("size").unwrap_or(0) as usize,
        });
    }
    Some(out)
}

/// What a retransmission costs the budget: a full video packet.
const RTX_PACKET_BYTES: usize = 1200;

/// The aux sender for one transport: passes RTP through, calls
/// `on_feedback` (on a GStreamer thread) for every feedback event, and asks
/// `allow_retransmission` (with a packet's size) about every retransmission
/// request rtpsession sends up to webrtcbin's rtprtxsend (before this).
pub fn aux_sender(
    on_feedback: impl Fn(Vec<Fate>) + Send + Sync + 'static,
    allow_retransmission: impl Fn(usize) -> bool + Send + Sync + 'static,
) -> Result<gst::Element> {
    let bin = gst::Bin::new();
    let identity = gst::ElementFactory::make("identity").build()?;
    bin.add(&identity)?;
    let sink = identity
        .static_pad("sink")
        .ok_or_else(|| anyhow!("identity has no sink pad"))?;
    let src = identity
        .static_pad("src")
        .ok_or_else(|| anyhow!("identity has no src pad"))?;
    // webrtcbin takes an aux sender by these pad names.
    bin.add_pad(
        &gst::GhostPad::builder_with_target(&sink)?
            .name("sink")
            .build(),
    )?;
    bin.add_pad(
        &gst::GhostPad::builder_with_target(&src)?
            .name("src")
            .build(),
    )?;
    src.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
        let Some(gst::PadProbeData::Event(e)) = &info.data else {
            return gst::PadProbeReturn::Ok;
        };
        if let Some(fates) = parse(e) {
            on_feedback(fates);
            return gst::PadProbeReturn::Ok;
        }
        // A NACKed packet on its way to rtprtxsend: over the budget, the
        // request is turned into one for a packet rtprtxsend does not hold
        // (half the sequence space away), which it consumes and ignores.
        // Dropping the request here instead made GStreamer 1.22 log a
        // CRITICAL (an unref of NULL) for each one.
        let Some(skipped) = e.structure().and_then(unanswerable) else {
            return gst::PadProbeReturn::Ok;
        };
        if !allow_retransmission(RTX_PACKET_BYTES) {
            info.data = Some(gst::PadProbeData::Event(skipped));
        }
        gst::PadProbeReturn::Ok
    });
    Ok(bin.upcast())
}

/// The aux sender as `request-aux-sender` must return it: a floating
/// reference. webrtcbin (1.22) `gst_bin_add`s what the signal returns and
/// never unrefs it; glib-rs objects are never floating, so returning one
/// as it is kept every client's aux bin alive after the client left (the
/// bin, its identity, its bus and six pads: 10 GStreamer objects per join,
/// found by the leaks tracer in bench/churn.mjs; docs/gstreamer-1.22.md).
pub fn floating_value(element: gst::Element) -> gst::glib::Value {
    // SAFETY: `element` is a valid object we hold a reference to; marking
    // that reference floating hands it to whoever sinks it (gst_bin_add).
    unsafe {
        gst::glib::gobject_ffi::g_object_force_floating(
            element.as_ptr() as *mut gst::glib::gobject_ffi::GObject
        )
    };
    element.to_value()
}

/// For a retransmission request, the same request for a packet half the
/// sequence space away: never in rtprtxsend's history (500 packets).
fn unanswerable(request: &gst::StructureRef) -> Option<gst::Event> {
    if request.name() != "GstRTPRetransmissionRequest" {
        return None;
    }
    let mut s = request.to_owned();
    let seqnum = request.get::<u32>("seqnum").ok()?;
    s.set("seqnum", (seqnum + 32768) & 0xffff);
    Some(gst::event::CustomUpstream::new(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only feedback is feedback; an over-budget retransmission request
    /// becomes one for a packet half the sequence space away (wrapping).
    #[test]
    fn other_events_are_not_feedback_and_requests_are_rewritten() {
        gst::init().unwrap();
        let other = gst::event::CustomUpstream::new(gst::Structure::new_empty("Other"));
        assert!(parse(&other).is_none());
        let request = |seqnum: u32| {
            gst::Structure::builder("GstRTPRetransmissionRequest")
                .field("seqnum", seqnum)
                .field("ssrc", 1u32)
                .build()
        };
        let seq_of = |e: gst::Event| e.structure().and_then(|s| s.get::<u32>("seqnum").ok());
        assert_eq!(unanswerable(&request(100)).and_then(seq_of), Some(32868));
        assert_eq!(unanswerable(&request(40000)).and_then(seq_of), Some(7232));
        assert!(unanswerable(&gst::Structure::new_empty("Other")).is_none());
    }

    /// What webrtcbin 1.22 does with the signal's return value (take the
    /// pointer, `gst_bin_add` it, never unref it) must leave nothing alive
    /// once its parent goes: the leak the churn benchmark found.
    #[test]
    fn an_aux_sender_dies_with_the_bin_it_was_given_to() {
        use gst::glib::translate::ToGlibPtr;
        gst::init().unwrap();
        let aux = aux_sender(|_| {}, |_| true).unwrap();
        let weak = aux.downgrade();
        let value = floating_value(aux);
        let parent = gst::Bin::new();
        // SAFETY: plain GObject/GStreamer calls on live objects, in the
        // order g_signal_emit and webrtcbin make them.
        unsafe {
            let ptr = gst::glib::gobject_ffi::g_value_dup_object(value.to_glib_none().0);
            drop(value);
            assert!(gst::ffi::gst_bin_add(parent.as_ptr(), ptr as *mut gst::ffi::GstElement) != 0);
        }
        assert!(weak.upgrade().is_some(), "the parent holds it");
        drop(parent);
        assert!(
            weak.upgrade().is_none(),
            "the aux sender outlived its parent"
        );
    }
}
