//! Counting what flows: frames into and out of the shared encoder, how long
//! a frame takes from capture to encoded, and the RTP packets and bytes each
//! client's branch sends or drops. Pad probes that only bump atomics (or push
//! one number per frame), so counting costs nothing measurable; the metrics
//! endpoint reads them.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;

use crate::media::PeerId;

/// Frames through the shared encoder, over every pipeline start.
#[derive(Debug, Default)]
pub struct FrameCounters {
    /// Raw frames that reached the encoder.
    pub captured: AtomicU64,
    /// Encoded frames that left it.
    pub encoded: AtomicU64,
    /// Capture timestamp (the buffer's running time) to the encoded frame
    /// leaving the encoder fragment, against the pipeline clock: capture,
    /// colour conversion and encoding.
    pub capture_to_encoded: LatencyWindow,
    /// The same clock at two more points: the raw frame out of the colour
    /// conversion, and its RTP packets into the fan-out tee (parse and
    /// payload done). Differences of the three give each stage.
    pub capture_to_converted: LatencyWindow,
    pub capture_to_payloaded: LatencyWindow,
    /// And to the frame's last packet handed to the socket (libnice's
    /// sink, after the client's queue, webrtcbin and SRTP), every client's
    /// branch adding its own.
    pub capture_to_sent: LatencyWindow,
}

/// Latencies of the last [`LatencyWindow::MAX_AGE`] (at most
/// [`LatencyWindow::CAPACITY`] of them) for quantiles, plus an all-time count
/// and sum: a Prometheus summary with a sliding time window, so a scrape
/// describes what happened lately and not the slow frames of a start long ago.
#[derive(Debug, Default)]
pub struct LatencyWindow {
    recent_us: Mutex<VecDeque<(Instant, u32)>>,
    pub count: AtomicU64,
    pub sum_us: AtomicU64,
}

impl LatencyWindow {
    /// The quantiles' window.
    pub const MAX_AGE: Duration = Duration::from_secs(30);
    /// 30 s at 120 fps; bounds the memory whatever the frame rate.
    pub const CAPACITY: usize = 3600;

    /// The window as a Prometheus summary `name` (quantiles only while
    /// frames flow; sum and count stay, as counters).
    pub fn render(&self, s: &mut String, name: &str, help: &str) {
        use std::fmt::Write;
        let frames = self.count.load(Ordering::Relaxed);
        if frames == 0 {
            return;
        }
        let age = Self::MAX_AGE.as_secs();
        let _ = writeln!(
            s,
            "# HELP {name} {help}; quantiles over the frames of the last {age} s.\n# TYPE {name} summary"
        );
        if let Some(([p50, p99], _)) = self.quantiles_us([0.5, 0.99]) {
            let _ = writeln!(
                s,
                "{name}{{quantile=\"0.5\"}} {}\n{name}{{quantile=\"0.99\"}} {}",
                p50 as f64 / 1e6,
                p99 as f64 / 1e6
            );
        }
        let _ = writeln!(
            s,
            "{name}_sum {}\n{name}_count {frames}",
            self.sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
    }

    pub fn record_us(&self, us: u64) {
        self.record_at(Instant::now(), us);
    }

    fn record_at(&self, at: Instant, us: u64) {
        let us = us.min(u32::MAX as u64);
        if let Ok(mut r) = self.recent_us.lock() {
            while r.len() >= Self::CAPACITY
                || r.front()
                    .is_some_and(|(t, _)| at.duration_since(*t) > Self::MAX_AGE)
            {
                r.pop_front();
            }
            r.push_back((at, us as u32));
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Nearest-rank quantiles `qs`, in microseconds, of the samples recorded
    /// in the last [`Self::MAX_AGE`], and how many there were; `None` when
    /// there were none.
    pub fn quantiles_us<const N: usize>(&self, qs: [f64; N]) -> Option<([u32; N], usize)> {
        self.quantiles_at(Instant::now(), qs)
    }

    fn quantiles_at<const N: usize>(
        &self,
        now: Instant,
        qs: [f64; N],
    ) -> Option<([u32; N], usize)> {
        let mut v: Vec<u32> = self
            .recent_us
            .lock()
            .ok()?
            .iter()
            .filter(|(t, _)| now.saturating_duration_since(*t) <= Self::MAX_AGE)
            .map(|(_, us)| *us)
            .collect();
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        let n = v.len();
        let at = |q: f64| v[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
        Some((qs.map(at), n))
    }
}

impl FrameCounters {
    /// Frames the encoder took in and did not give out (its own drops,
    /// plus at most its latency's worth still inside it).
    pub fn dropped(&self) -> u64 {
        self.captured
            .load(Ordering::Relaxed)
            .saturating_sub(self.encoded.load(Ordering::Relaxed))
    }

    /// Records capture-to-here latencies of the frames through `pad` into
    /// the window `pick` chooses. With `rtp`, once per frame: at the packet
    /// with the marker bit, its last.
    pub fn watch_point(
        self: &Arc<Self>,
        pad: &gst::Pad,
        rtp: bool,
        pick: fn(&FrameCounters) -> &LatencyWindow,
    ) {
        let me = self.clone();
        pad.add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
            move |pad, info| {
                if rtp && !ends_frame(info, None) {
                    return gst::PadProbeReturn::Ok;
                }
                if let Some(us) = since_capture_us(pad, info) {
                    pick(&me).record_us(us);
                }
                gst::PadProbeReturn::Ok
            },
        );
    }

    /// Times each frame's last video packet into the sockets of a client's
    /// branch (`bin`): nicesink comes and goes with webrtcbin's transport,
    /// so it is found as it is added. SRTP leaves the RTP header readable;
    /// RTCP, DTLS and the data channel share the socket and are told apart
    /// by the payload type.
    pub fn watch_sent(self: &Arc<Self>, bin: &gst::Bin, video_pt: u8) {
        let me = self.clone();
        bin.connect_deep_element_added(move |_, _, element| {
            if element.factory().is_none_or(|f| f.name() != "nicesink") {
                return;
            }
            let Some(pad) = element.static_pad("sink") else {
                return;
            };
            let me = me.clone();
            pad.add_probe(
                gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
                move |pad, info| {
                    if ends_frame(info, Some(video_pt)) {
                        if let Some(us) = since_capture_us(pad, info) {
                            me.capture_to_sent.record_us(us);
                        }
                    }
                    gst::PadProbeReturn::Ok
                },
            );
        });
    }

    /// Counts buffers into `encoder_sink` and out of `encoder_src`.
    pub fn watch(self: &Arc<Self>, encoder_sink: &gst::Pad, encoder_src: &gst::Pad) {
        let me = self.clone();
        encoder_sink.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            me.captured.fetch_add(1, Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
        let me = self.clone();
        encoder_src.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            me.encoded.fetch_add(1, Ordering::Relaxed);
            if let Some(us) = since_capture_us(pad, info) {
                me.capture_to_encoded.record_us(us);
            }
            gst::PadProbeReturn::Ok
        });
    }
}

/// Whether the RTP packet (a list: its last) ends a frame (marker bit),
/// of payload type `pt` when given.
fn ends_frame(info: &gst::PadProbeInfo, pt: Option<u8>) -> bool {
    let last = match &info.data {
        Some(gst::PadProbeData::Buffer(b)) => Some(b.as_ref()),
        Some(gst::PadProbeData::BufferList(l)) => l.get(l.len().saturating_sub(1)),
        _ => None,
    };
    last.is_some_and(|b| {
        gst_rtp::RTPBuffer::from_buffer_readable(b)
            .is_ok_and(|r| r.is_marker() && pt.is_none_or(|pt| r.payload_type() == pt))
    })
}

/// Microseconds from a buffer's capture to now, both as running time of the
/// pipeline clock. Live sources stamp each frame with the running time at
/// which they grab it (ximagesrc: the frame slot it waited for), and the
/// encoder keeps that PTS, so at the encoder's output this is capture +
/// conversion + encoding. `None` without a timestamp, clock or segment.
fn since_capture_us(pad: &gst::Pad, info: &gst::PadProbeInfo) -> Option<u64> {
    let pts = match &info.data {
        Some(gst::PadProbeData::Buffer(b)) => b.pts()?,
        Some(gst::PadProbeData::BufferList(l)) => l.get(0)?.pts()?,
        _ => return None,
    };
    let segment = pad.sticky_event::<gst::event::Segment>(0)?;
    let captured = segment
        .segment()
        .downcast_ref::<gst::ClockTime>()?
        .to_running_time(pts)?;
    let now = pad.parent_element()?.current_running_time()?;
    Some(now.saturating_sub(captured).useconds())
}

/// One client's branch: what entered its queue and what left it for
/// webrtcbin (RTP, before SRTP and retransmissions).
#[derive(Debug, Default)]
pub struct PeerTraffic {
    pub packets_in: AtomicU64,
    pub packets_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    /// The congestion estimate of this client's link, bit/s (0 until the
    /// first TWCC feedback; `media::link`).
    pub estimate_bps: AtomicU64,
    /// What the client acknowledged receiving lately, bit/s (0 until known).
    pub delivered_bps: AtomicU64,
    /// Smoothed loss the feedback reports, in thousandths.
    pub loss_permille: AtomicU64,
    /// Retransmissions (RTX) webrtcbin sent this client, and the packets
    /// its NACKs asked for.
    pub retransmitted: AtomicU64,
    pub nack_requests: AtomicU64,
    /// Retransmissions not sent: over the link's budget (`media::link`).
    pub rtx_dropped: AtomicU64,
    /// 1 once the agent stopped asking this client for TWCC feedback (it
    /// declined it or sent none; `media::feedback_guard`).
    pub without_feedback: AtomicU64,
    /// SCTP packets from the client dropped over its data-channel budget
    /// (`media::sctp_budget`).
    pub inbound_dropped: AtomicU64,
    /// Bytes of the client's messages sctpdec handed to webrtcbin, and
    /// those webrtcbin delivered to the agent's channels: the difference
    /// is its delivery queue (`media::sctp_budget` bounds it).
    pub queued_in: AtomicU64,
    pub queued_out: AtomicU64,
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
pub(crate) fn packets(info: &gst::PadProbeInfo) -> (u64, u64) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank_over_the_recent_window() {
        let w = LatencyWindow::default();
        assert!(w.quantiles_us([0.5]).is_none());
        let t0 = Instant::now();
        for us in 1..=100 {
            w.record_at(t0, us);
        }
        let ([p50, p99, max], n) = w.quantiles_at(t0, [0.5, 0.99, 1.0]).unwrap();
        assert_eq!((p50, p99, max, n), (50, 99, 100, 100));
        assert_eq!(w.count.load(Ordering::Relaxed), 100);
        assert_eq!(w.sum_us.load(Ordering::Relaxed), 5050);
        // Older than MAX_AGE: out of the quantiles, still in count and sum.
        let later = t0 + LatencyWindow::MAX_AGE + Duration::from_secs(1);
        assert!(w.quantiles_at(later, [0.5]).is_none());
        w.record_at(later, 7);
        let ([p99], n) = w.quantiles_at(later, [0.99]).unwrap();
        assert_eq!((p99, n), (7, 1));
        assert_eq!(w.count.load(Ordering::Relaxed), 101);
        // At most CAPACITY samples, whatever their age.
        for _ in 0..LatencyWindow::CAPACITY + 10 {
            w.record_at(later, 9);
        }
        let (_, n) = w.quantiles_at(later, [0.5]).unwrap();
        assert_eq!(n, LatencyWindow::CAPACITY);
    }

    #[test]
    fn capture_to_encoded_is_measured_on_a_live_pipeline() {
        gst::init().unwrap();
        // A live source stamps running time like ximagesrc does; the sleep
        // in the identity stands in for an encoder that takes 20 ms.
        let pipeline = gst::parse::launch(
            "videotestsrc is-live=true ! video/x-raw,width=64,height=48,framerate=30/1 \
             ! identity name=in ! identity sleep-time=20000 ! identity name=out ! fakesink",
        )
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
        let pad = |name: &str, dir: &str| pipeline.by_name(name).unwrap().static_pad(dir).unwrap();
        let counters = Arc::new(FrameCounters::default());
        counters.watch(&pad("in", "src"), &pad("out", "src"));
        pipeline.set_state(gst::State::Playing).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while counters.capture_to_encoded.count.load(Ordering::Relaxed) < 10 {
            assert!(std::time::Instant::now() < deadline, "no frames measured");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        pipeline.set_state(gst::State::Null).unwrap();
        let ([p50, max], _) = counters
            .capture_to_encoded
            .quantiles_us([0.5, 1.0])
            .unwrap();
        assert!((20_000..500_000).contains(&p50), "p50 {p50} us");
        assert!(max < 1_000_000, "max {max} us");
    }
}
