//! A byte budget for what a client sends over its data channels, applied
//! to its SCTP packets before webrtcbin's SCTP stack sees them. Past
//! sctpdec, webrtcbin queues every message without bound and hands them on
//! from one thread: with Chromium sending 83 000 six-byte messages a second
//! that thread delivered about 20 000 (2-core AMD EPYC), so the backlog grew
//! by tens of MiB and reached the input rate limit (`oriel_input::flood`)
//! seconds late. Packets over the budget are dropped: the client's SCTP
//! sees loss and slows down as on a congested link; the reliable channel
//! retransmits, the unordered one loses only pointer updates.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use gst::prelude::*;
use oriel_input::flood::Bucket;

use crate::media::traffic::{packets, PeerTraffic};

/// Bytes a second. What the input rate limit lets through is at most
/// 4000 cost units of 64 bytes (256 KB/s, full text messages); SCTP adds
/// ~16 bytes a chunk, and 20 % room on top. Six-byte floods (24 bytes a
/// chunk) are held to ~13 600 messages a second, below what webrtcbin's
/// delivery thread keeps up with.
pub const BYTES_PER_SECOND: f64 = 320.0 * 1024.0;

/// Bytes that may come at once.
pub const BURST_BYTES: f64 = 320.0 * 1024.0;

/// Watches `webrtcbin` for its sctpdec (made when the SCTP transport is)
/// and puts the budget on its input; drops are counted in
/// `traffic.inbound_dropped`.
pub fn install(webrtcbin: &gst::Element, traffic: Arc<PeerTraffic>) {
    let Some(bin) = webrtcbin.downcast_ref::<gst::Bin>() else {
        return;
    };
    bin.connect_deep_element_added(move |_, _, element| {
        if element.factory().is_some_and(|f| f.name() == "sctpdec") {
            if let Some(sink) = element.static_pad("sink") {
                limit(&sink, traffic.clone());
            }
        }
    });
}

fn limit(pad: &gst::Pad, traffic: Arc<PeerTraffic>) {
    let bucket = Mutex::new(Bucket::new(BYTES_PER_SECOND, BURST_BYTES, Instant::now()));
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |_, info| {
            let (n, bytes) = packets(info);
            let over = bucket
                .lock()
                .map(|mut b| b.take(bytes as f64, Instant::now()).is_err())
                .unwrap_or(false);
            if over {
                traffic.inbound_dropped.fetch_add(n, Ordering::Relaxed);
                crate::media::probe::DROP
            } else {
                gst::PadProbeReturn::Ok
            }
        },
    );
}
