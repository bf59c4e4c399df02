//! Counting what arrives: a fakesink behind a pad probe that counts packets,
//! bytes and whole frames (RTP marker bits), and gaps (sequence numbers).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use gst::prelude::*;
use serde_json::json;

use crate::output::{emit, ms_since};
use crate::viewer::{SeqState, Shared};

/// fakesink behind a probe that counts what arrives on `pad`.
pub fn attach_counter(pipeline: &gst::Pipeline, pad: &gst::Pad, shared: Arc<Shared>) -> Result<()> {
    let sink = gst::ElementFactory::make("fakesink")
        .property("sync", false)
        .property("async", false)
        .property("enable-last-sample", false)
        .build()
        .context("creating fakesink")?;
    pipeline.add(&sink)?;
    sink.sync_state_with_parent()?;
    let sinkpad = sink
        .static_pad("sink")
        .ok_or_else(|| anyhow!("fakesink without a sink pad"))?;
    pad.link(&sinkpad)
        .context("linking webrtcbin to fakesink")?;
    // Only the video is counted: the agent's sound, when it has some, is a
    // second stream of its own sequence numbers and marker bits.
    let video = pad.current_caps().is_none_or(|caps| {
        caps.structure(0)
            .and_then(|s| s.get::<&str>("media").ok())
            .is_none_or(|m| m == "video")
    });
    if !video {
        return Ok(());
    }
    // A new stream (e.g. a new connection after capture lost/ok) starts its
    // own sequence numbers.
    if let Ok(mut st) = shared.seq.lock() {
        *st = SeqState::default();
    }
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |_, info| {
            match info.data.as_ref() {
                Some(gst::PadProbeData::Buffer(b)) => count(&shared, b),
                Some(gst::PadProbeData::BufferList(l)) => {
                    for b in l.iter() {
                        count(&shared, b);
                    }
                }
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    );
    Ok(())
}

fn count(shared: &Shared, buf: &gst::BufferRef) {
    shared.packets.fetch_add(1, Ordering::Relaxed);
    shared.bytes.fetch_add(buf.size() as u64, Ordering::Relaxed);
    let Ok(rtp) = gst_rtp::RTPBuffer::from_buffer_readable(buf) else {
        return;
    };
    let (seq, marker) = (rtp.seq(), rtp.is_marker());
    // Probes of one pad run on its streaming thread one at a time, so the
    // lock is never contended.
    let Ok(mut st) = shared.seq.lock() else {
        return;
    };
    let gap = seq_gap(st.last, seq);
    if gap > 0 {
        shared.lost.fetch_add(gap as u64, Ordering::Relaxed);
        st.broken = true;
    }
    // A late or repeated packet (behind the last one) changes nothing.
    if gap >= 0 {
        st.last = Some(seq);
    }
    if marker {
        // A frame counts only whole: no gap since the previous frame ended.
        if std::mem::take(&mut st.broken) {
            shared.incomplete.fetch_add(1, Ordering::Relaxed);
        } else {
            shared.frames.fetch_add(1, Ordering::Relaxed);
            if !shared.first_frame_sent.swap(true, Ordering::Relaxed) {
                emit(
                    json!({"event": "first_frame", "id": shared.id, "ms": ms_since(shared.added)}),
                );
            }
        }
    }
}

/// Packets missing between the last sequence number and `seq` (0 when
/// consecutive or the first), or -1 for a packet at or behind the last one.
fn seq_gap(last: Option<u16>, seq: u16) -> i32 {
    let Some(last) = last else { return 0 };
    let d = seq.wrapping_sub(last);
    if d == 0 || d >= 0x8000 {
        -1
    } else {
        i32::from(d) - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_gaps() {
        assert_eq!(seq_gap(None, 7), 0);
        assert_eq!(seq_gap(Some(7), 8), 0);
        assert_eq!(seq_gap(Some(7), 10), 2);
        assert_eq!(seq_gap(Some(65535), 0), 0);
        assert_eq!(seq_gap(Some(65534), 1), 2);
        assert_eq!(seq_gap(Some(7), 7), -1);
        assert_eq!(seq_gap(Some(7), 5), -1);
    }
}
