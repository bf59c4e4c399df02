//! A slow client loses whole frames, never parts of frames. Its leaky
//! queue would drop single packets when full, which breaks the frame they
//! belong to and every frame after it until the next keyframe. So at the
//! start of each frame (access unit) the branch looks at how much its queue
//! holds: past half of it, the whole frame is dropped, and so is every
//! frame after it until a keyframe, which the branch asks for once (the
//! request goes through the usual coalescing). The queue's own leak stays
//! as the last resort for a single frame larger than the queue.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gst::prelude::*;

/// Frames are dropped while the queue holds more than this.
pub const HIGH_WATER: Duration = Duration::from_millis(100);

const PASSING: u8 = 0;
/// Dropping the rest of the frame being dropped.
const DROPPING: u8 = 1;
/// Dropping until a keyframe starts.
const AWAITING_KEYFRAME: u8 = 2;

/// Installs the dropper on `queue`'s sink pad; `want_keyframe` is called
/// (on a streaming thread) once per gap.
pub fn install(queue: &gst::Element, want_keyframe: impl Fn() + Send + Sync + 'static) {
    let Some(sink) = queue.static_pad("sink") else {
        return;
    };
    let weak = queue.downgrade();
    let state = Arc::new(AtomicU8::new(PASSING));
    // The previous packet ended a frame: the next one starts one.
    let at_frame_start = Arc::new(AtomicBool::new(true));
    sink.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |_, info| {
            // A buffer, or a list (rtph264pay pushes a fragmented frame as
            // one): where it starts, whether it starts a keyframe, whether
            // it ends a frame.
            let (keyframe, ends) = match info.data.as_ref() {
                Some(gst::PadProbeData::Buffer(b)) => (is_key(b), ends_frame(b)),
                Some(gst::PadProbeData::BufferList(l)) => (
                    l.iter().any(is_key),
                    l.get(l.len().saturating_sub(1)).is_some_and(ends_frame),
                ),
                _ => return gst::PadProbeReturn::Ok,
            };
            let starts = at_frame_start.swap(ends, Ordering::Relaxed);
            let mut s = state.load(Ordering::Relaxed);
            if starts {
                if s == AWAITING_KEYFRAME && keyframe {
                    s = PASSING;
                }
                if s == DROPPING {
                    s = AWAITING_KEYFRAME;
                }
                let level = weak
                    .upgrade()
                    .map(|q| q.property::<u64>("current-level-time"))
                    .unwrap_or(0);
                if level > HIGH_WATER.as_nanos() as u64 && s == PASSING {
                    s = DROPPING;
                    want_keyframe();
                }
            }
            state.store(s, Ordering::Relaxed);
            if s == PASSING {
                gst::PadProbeReturn::Ok
            } else {
                crate::media::probe::DROP
            }
        },
    );
}

fn is_key(buffer: &gst::BufferRef) -> bool {
    !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT)
}

/// The RTP marker bit ends a video frame.
fn ends_frame(buffer: &gst::BufferRef) -> bool {
    gst_rtp::RTPBuffer::from_buffer_readable(buffer).is_ok_and(|rtp| rtp.is_marker())
}
