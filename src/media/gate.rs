//! A new client's video waits for its connection, then for a keyframe.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use gst::prelude::*;

/// Holds back media until the client's connection is up, then until the
/// next keyframe starts: packets sent while DTLS is still connecting are
/// stale by the time they arrive, and P-frames before the first keyframe
/// only make the browser send PLIs. rtph264pay leaves DELTA_UNIT off the
/// first packet of a keyframe. If that flag never shows (another
/// payloader), the gate opens anyway after `GATE_GIVE_UP` packets.
pub fn until_connected(pad: &gst::Pad, connected: Arc<AtomicBool>) {
    const GATE_GIVE_UP: u32 = 2000;
    let dropped_after_connect = std::sync::atomic::AtomicU32::new(0);
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |_, info| {
            if !connected.load(Ordering::Relaxed) {
                return crate::media::probe::DROP;
            }
            let keyframe_starts = match info.data.as_ref() {
                Some(gst::PadProbeData::Buffer(b)) => {
                    !b.flags().contains(gst::BufferFlags::DELTA_UNIT)
                }
                Some(gst::PadProbeData::BufferList(list)) => list
                    .iter()
                    .any(|b| !b.flags().contains(gst::BufferFlags::DELTA_UNIT)),
                _ => false,
            };
            let dropped = dropped_after_connect.fetch_add(1, Ordering::Relaxed);
            if keyframe_starts || dropped > GATE_GIVE_UP {
                tracing::debug!(dropped, keyframe_starts, "media gate open");
                gst::PadProbeReturn::Remove
            } else {
                crate::media::probe::DROP
            }
        },
    );
}
