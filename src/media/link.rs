//! One client's link as the agent sees it: the congestion estimate, fed by
//! the browser's transport-wide feedback (`twcc`), and the retransmissions
//! its webrtcbin sent. Written on GStreamer's RTCP thread, read by the
//! media thread (bitrate) and by `/metrics`.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gst::prelude::*;

use crate::media::congestion::{Estimator, PacketResult, SeqUnwrapper};
use crate::media::traffic::PeerTraffic;
use crate::media::twcc::Fate;

pub struct Link {
    estimator: Mutex<(Estimator, SeqUnwrapper)>,
    traffic: Arc<PeerTraffic>,
    range: (u64, u64),
    /// Retransmissions may use this share of the estimate: on a full link
    /// every resend would be lost again and asked for again, a storm
    /// (measured: 4 resends per media packet after a capacity drop).
    rtx_budget: Mutex<Bucket>,
}

/// Bytes that may be resent now, refilled with time.
#[derive(Debug)]
struct Bucket {
    bytes: f64,
    at: std::time::Instant,
}

/// The estimate's share retransmissions may take, and how much may go at
/// once (seconds of that share).
const RTX_SHARE: f64 = 0.2;
const RTX_BURST_S: f64 = 0.2;

impl Link {
    /// Starts at `max_kbps` (the first seconds of a session are a keyframe
    /// and little else) and never estimates below `min_kbps`.
    pub fn new(min_kbps: u32, max_kbps: u32, traffic: Arc<PeerTraffic>) -> Arc<Self> {
        let (min, max) = (u64::from(min_kbps) * 1000, u64::from(max_kbps) * 1000);
        Arc::new(Link {
            estimator: Mutex::new((Estimator::new(max, min, max), SeqUnwrapper::default())),
            traffic,
            range: (min, max),
            rtx_budget: Mutex::new(Bucket {
                bytes: 0.0,
                at: std::time::Instant::now(),
            }),
        })
    }

    /// Whether a retransmission of `size` bytes fits the link's budget;
    /// one that does not is dropped and counted.
    pub fn allow_retransmission(&self, size: usize) -> bool {
        // What the link carried lately bounds it too: right after a
        // capacity drop the estimate still says the old rate.
        let delivered = Some(self.traffic.delivered_bps.load(Ordering::Relaxed)).filter(|d| *d > 0);
        let estimate = self
            .estimate_bps()
            .unwrap_or(self.range.1)
            .min(delivered.unwrap_or(u64::MAX)) as f64;
        let rate = estimate / 8.0 * RTX_SHARE; // bytes per second
        let allowed = self.rtx_budget.lock().is_ok_and(|mut b| {
            let now = std::time::Instant::now();
            let dt = now.duration_since(b.at).as_secs_f64();
            b.at = now;
            b.bytes = (b.bytes + rate * dt).min(rate * RTX_BURST_S);
            if b.bytes >= size as f64 {
                b.bytes -= size as f64;
                true
            } else {
                false
            }
        });
        if !allowed {
            self.traffic.rtx_dropped.fetch_add(1, Ordering::Relaxed);
        }
        allowed
    }

    /// A driver's link sets the encoder's bitrate: it starts at a quarter
    /// of the range's top and ramps up from there, rather than flooding a
    /// narrow link with the full rate first (whose queue and losses then
    /// cost seconds of frozen picture). Only before any feedback.
    pub fn start_low(&self) {
        if self.estimate_bps().is_some() {
            return;
        }
        let (min, max) = self.range;
        if let Ok(mut guard) = self.estimator.lock() {
            guard.0 = Estimator::new((max / 4).max(min), min, max);
        }
    }

    /// One feedback report from rtpsession.
    pub fn on_feedback(&self, fates: &[Fate]) {
        let Ok(mut guard) = self.estimator.lock() else {
            return;
        };
        let (estimator, seqs) = &mut *guard;
        let packets: Vec<PacketResult> = fates
            .iter()
            .map(|f| PacketResult {
                seq: seqs.extend(f.seq),
                sent: f.sent,
                received: f.received,
                size: f.size,
            })
            .collect();
        // rtpsession stamps packets with the system clock; so do we.
        let now = Duration::from_nanos(gst::SystemClock::obtain().time().nseconds());
        estimator.on_feedback(now, &packets);
        self.traffic
            .estimate_bps
            .store(estimator.estimate_bps(), Ordering::Relaxed);
        let loss = (estimator.loss_fraction() * 1000.0)
            .round()
            .clamp(0.0, 1000.0) as u64;
        self.traffic.loss_permille.store(loss, Ordering::Relaxed);
        if let Some(delivered) = estimator.delivered_bps() {
            self.traffic
                .delivered_bps
                .store(delivered, Ordering::Relaxed);
        }
    }

    /// The estimate, once feedback came in.
    pub fn estimate_bps(&self) -> Option<u64> {
        Some(self.traffic.estimate_bps.load(Ordering::Relaxed)).filter(|b| *b > 0)
    }

    /// Copies webrtcbin's RTX counters into the traffic record.
    pub fn read_retransmissions(&self, webrtcbin: &gst::Element) {
        let Some(bin) = webrtcbin.downcast_ref::<gst::Bin>() else {
            return;
        };
        let mut sent = 0u64;
        let mut asked = 0u64;
        for rtx in bin
            .iterate_all_by_element_factory_name("rtprtxsend")
            .into_iter()
            .flatten()
        {
            sent += u64::from(rtx.property::<u32>("num-rtx-packets"));
            asked += u64::from(rtx.property::<u32>("num-rtx-requests"));
        }
        self.traffic.retransmitted.store(sent, Ordering::Relaxed);
        self.traffic.nack_requests.store(asked, Ordering::Relaxed);
    }
}
