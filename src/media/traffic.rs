//! Counting what flows: frames into and out of the shared encoder, and the
//! RTP packets and bytes each client's branch sends or drops. Pad probes
//! that only bump atomics, so counting costs nothing measurable; the
//! metrics endpoint reads the atomics.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use gst::prelude::*;

use crate::media::PeerId;

/// Frames through the shared encoder, over every pipeline start.
#[derive(Debug, Default)]
pub struct FrameCounters {
    /// Raw frames that reached the encoder.
    pub captured: AtomicU64,
    /// Encoded frames that left it.
    pub encoded: AtomicU64,
}

impl FrameCounters {
    /// Frames the encoder took in and did not give out (its own drops,
    /// plus at most its latency's worth still inside it).
    pub fn dropped(&self) -> u64 {
        self.captured
            .load(Ordering::Relaxed)
            .saturating_sub(self.encoded.load(Ordering::Relaxed))
    }

    /// Counts buffers into `encoder_sink` and out of `encoder_src`.
    pub fn watch(self: &Arc<Self>, encoder_sink: &gst::Pad, encoder_src: &gst::Pad) {
        let me = self.clone();
        encoder_sink.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            me.captured.fetch_add(1, Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
        let me = self.clone();
        encoder_src.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            me.encoded.fetch_add(1, Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
    }
}

/// One client's branch: what entered its queue and what left it for
/// webrtcbin (RTP, before SRTP and retransmissions).
#[derive(Debug, Default)]
pub struct PeerTraffic {
    pub packets_in: AtomicU64,
    pub packets_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    queue: Mutex<Option<gst::glib::WeakRef<gst::Element>>>,
}

impl PeerTraffic {
    /// Counts packets into and out of the branch's leaky `queue`.
    pub fn watch(queue: &gst::Element) -> Arc<Self> {
        let me = Arc::new(PeerTraffic::default());
        if let Ok(mut q) = me.queue.lock() {
            *q = Some(queue.downgrade());
        }
        if let Some(sink) = queue.static_pad("sink") {
            let t = me.clone();
            sink.add_probe(
                gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
                move |_, info| {
                    t.packets_in.fetch_add(packets(info).0, Ordering::Relaxed);
                    gst::PadProbeReturn::Ok
                },
            );
        }
        if let Some(src) = queue.static_pad("src") {
            let t = me.clone();
            src.add_probe(
                gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
                move |_, info| {
                    let (n, bytes) = packets(info);
                    t.packets_sent.fetch_add(n, Ordering::Relaxed);
                    t.bytes_sent.fetch_add(bytes, Ordering::Relaxed);
                    gst::PadProbeReturn::Ok
                },
            );
        }
        me
    }

    /// Packets the leaky queue threw away because the client fell behind:
    /// in, minus sent, minus still waiting.
    pub fn dropped(&self) -> u64 {
        let queued = self
            .queue
            .lock()
            .ok()
            .and_then(|q| q.as_ref().and_then(|w| w.upgrade()))
            .map(|q| q.property::<u32>("current-level-buffers") as u64)
            .unwrap_or(0);
        self.packets_in
            .load(Ordering::Relaxed)
            .saturating_sub(self.packets_sent.load(Ordering::Relaxed))
            .saturating_sub(queued)
    }
}

/// `(packets, bytes)` in a probe's buffer or buffer list.
fn packets(info: &gst::PadProbeInfo) -> (u64, u64) {
    match &info.data {
        Some(gst::PadProbeData::Buffer(b)) => (1, b.size() as u64),
        Some(gst::PadProbeData::BufferList(l)) => (
            l.len() as u64,
            l.iter().map(|b| b.size() as u64).sum::<u64>(),
        ),
        _ => (0, 0),
    }
}

/// The live branches' counters by peer, for the metrics endpoint.
pub type PeerTrafficMap = Mutex<BTreeMap<PeerId, Arc<PeerTraffic>>>;
