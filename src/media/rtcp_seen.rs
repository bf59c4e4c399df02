//! When a client's RTCP last arrived: a receiver gone without a word (an
//! SFU behind WHIP has no session to watch) stops sending reports.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gst::prelude::*;

/// When RTCP last arrived from the remote side: a probe on webrtcbin's
/// internal rtpbin, on each `recv_rtcp_sink` pad as it is added.
#[derive(Debug)]
pub struct RtcpSeen {
    since: Instant,
    /// Milliseconds after `since` of the last RTCP packet, 0 for none yet.
    last_ms: AtomicU64,
}

impl RtcpSeen {
    pub fn watch(webrtcbin: &gst::Element) -> Arc<Self> {
        let seen = Arc::new(RtcpSeen {
            since: Instant::now(),
            last_ms: AtomicU64::new(0),
        });
        let rtpbin = webrtcbin
            .downcast_ref::<gst::Bin>()
            .and_then(|b| b.by_name("rtpbin"));
        if let Some(rtpbin) = rtpbin {
            let s = seen.clone();
            rtpbin.connect_pad_added(move |_, pad| {
                if !pad.name().starts_with("recv_rtcp_sink") {
                    return;
                }
                let s = s.clone();
                pad.add_probe(
                    gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
                    move |_, _| {
                        let ms = s.since.elapsed().as_millis().max(1) as u64;
                        s.last_ms.store(ms, Ordering::Relaxed);
                        gst::PadProbeReturn::Ok
                    },
                );
            });
        }
        seen
    }

    /// Since the last RTCP packet, or since the branch was made if none came.
    pub fn silence(&self) -> Duration {
        let ms = self.last_ms.load(Ordering::Relaxed);
        self.since
            .elapsed()
            .saturating_sub(Duration::from_millis(ms))
    }
}
