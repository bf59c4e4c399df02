//! How our pad probes drop what they were given.
//!
//! gstreamer-rs takes the buffer or event out of the C probe info before it
//! calls the closure and leaves the info's pointer NULL (it unrefs the item
//! itself when the closure returns `Drop`). GStreamer's chain path
//! (`gst_pad_chain_data_unchecked`, 1.22 and still on main) answers `DROP`
//! by unreffing that pointer without checking it, which logs
//! `gst_mini_object_unref: assertion 'mini_object != NULL' failed`: a
//! CRITICAL for every item a probe on a sink pad drops (the push path,
//! `gst_pad_push_data`, checks for NULL; upstream events pushed from a sink
//! pad do not). `HANDLED` tells GStreamer the probe consumed the item, so
//! it unrefs nothing, skips the remaining probes and returns OK upstream,
//! which is what `DROP` means here; it is the same on a source pad.
//! docs/gstreamer-1.22.md has the history.

/// Returned by a buffer or event probe to drop the item, on any pad.
pub const DROP: gst::PadProbeReturn = gst::PadProbeReturn::Handled;

#[cfg(test)]
mod tests {
    use super::*;
    use gst::glib;
    use gst::prelude::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Sends 20 frames through `identity` whose sink pad drops every
    /// second one returning `ret`; gives (buffers that reached the sink,
    /// GStreamer CRITICALs logged meanwhile).
    fn drop_half_on_a_sink_pad(ret: gst::PadProbeReturn) -> (usize, usize) {
        gst::init().expect("gstreamer init");
        let criticals = Arc::new(AtomicUsize::new(0));
        let counter = criticals.clone();
        let handler = glib::log_set_handler(
            Some("GStreamer"),
            glib::LogLevels::LEVEL_CRITICAL,
            false,
            false,
            move |_, _, msg| {
                if msg.contains("mini_object != NULL") {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            },
        );
        let pipeline = gst::parse::launch(
            "videotestsrc num-buffers=20 ! video/x-raw,width=16,height=16 \
             ! identity name=id ! fakesink name=sink sync=false",
        )
        .expect("pipeline")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
        let id = pipeline.by_name("id").expect("identity");
        let n = AtomicUsize::new(0);
        id.static_pad("sink").expect("identity sink pad").add_probe(
            gst::PadProbeType::BUFFER,
            move |_, _| {
                if n.fetch_add(1, Ordering::Relaxed).is_multiple_of(2) {
                    ret
                } else {
                    gst::PadProbeReturn::Ok
                }
            },
        );
        let reached = Arc::new(AtomicUsize::new(0));
        let r = reached.clone();
        let sink = pipeline.by_name("sink").expect("fakesink");
        sink.static_pad("sink")
            .expect("fakesink sink pad")
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                r.fetch_add(1, Ordering::Relaxed);
                gst::PadProbeReturn::Ok
            });
        pipeline.set_state(gst::State::Playing).expect("playing");
        let bus = pipeline.bus().expect("bus");
        let _ = bus.timed_pop_filtered(
            gst::ClockTime::from_seconds(5),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
        pipeline.set_state(gst::State::Null).expect("null");
        glib::log_remove_handler(Some("GStreamer"), handler);
        (
            reached.load(Ordering::Relaxed),
            criticals.load(Ordering::Relaxed),
        )
    }

    /// One test, so no other test's log handler takes these CRITICALs.
    #[test]
    fn dropping_on_a_sink_pad_logs_no_critical() {
        assert_eq!(drop_half_on_a_sink_pad(DROP), (10, 0));
        // The fault itself, so this module can go when GStreamer fixes it.
        assert_eq!(drop_half_on_a_sink_pad(gst::PadProbeReturn::Drop), (10, 10));
    }
}
