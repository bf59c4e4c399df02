//! Making one of the agent's data channels (every opener goes through
//! here): what the page sends on it is counted as delivered out of
//! webrtcbin's queue, which `media::sctp_budget` bounds.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use gst::prelude::*;

use crate::media::traffic::PeerTraffic;

/// Creates one of the agent's channels on a READY webrtcbin; whatever the
/// page sends on it is counted as delivered out of webrtcbin's queue
/// (`PeerTraffic::queued_out`) before the channel's own handlers see it.
pub fn create(
    webrtcbin: &gst::Element,
    label: &str,
    reliable: bool,
    traffic: &Arc<PeerTraffic>,
) -> Option<gst_webrtc::WebRTCDataChannel> {
    let mut config = gst::Structure::builder("config").field("ordered", reliable);
    if !reliable {
        config = config.field("max-retransmits", 0i32);
    }
    let channel = webrtcbin.emit_by_name::<Option<gst_webrtc::WebRTCDataChannel>>(
        "create-data-channel",
        &[&label, &Some(config.build())],
    )?;
    let t = traffic.clone();
    channel.connect("on-message-data", false, move |values| {
        let n = values
            .get(1)
            .and_then(|v| v.get::<Option<gst::glib::Bytes>>().ok())
            .flatten()
            .map_or(0, |b| b.len());
        t.queued_out.fetch_add(n as u64, Ordering::Relaxed);
        None
    });
    let t = traffic.clone();
    channel.connect("on-message-string", false, move |values| {
        let n = values
            .get(1)
            .and_then(|v| v.get::<Option<String>>().ok())
            .flatten()
            .map_or(0, |s| s.len());
        t.queued_out.fetch_add(n as u64, Ordering::Relaxed);
        None
    });
    Some(channel)
}
