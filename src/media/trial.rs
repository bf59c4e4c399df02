//! Trial runs: does a pipeline fragment actually produce data here? Used to
//! probe capture backends and encoders (a plugin can be installed yet
//! register nothing, or register and fail without a device).

use std::time::Duration;

use gst::prelude::*;

/// Runs `description` until `buffers` buffers reached the end, an error, or
/// `timeout`. Returns the error text on failure.
pub fn run(description: &str, buffers: u32, timeout: Duration) -> Result<(), String> {
    let full = format!("{description} ! identity eos-after={buffers} ! fakesink sync=false");
    let pipeline = gst::parse::launch(&full).map_err(|e| e.to_string())?;
    let bus = pipeline.bus().ok_or("pipeline has no bus")?;
    let result = (|| {
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| first_error(&bus).unwrap_or_else(|| "could not start".into()))?;
        let msg = bus.timed_pop_filtered(
            gst::ClockTime::from_nseconds(timeout.as_nanos() as u64),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
        match msg {
            None => Err(format!("no data within {} ms", timeout.as_millis())),
            Some(msg) => match msg.view() {
                gst::MessageView::Eos(_) => Ok(()),
                gst::MessageView::Error(e) => Err(error_text(e)),
                _ => Err("unexpected message".into()),
            },
        }
    })();
    let _ = pipeline.set_state(gst::State::Null);
    result
}

fn first_error(bus: &gst::Bus) -> Option<String> {
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_mseconds(100),
        &[gst::MessageType::Error],
    )?;
    match msg.view() {
        gst::MessageView::Error(e) => Some(error_text(e)),
        _ => None,
    }
}

/// "message (debug)" with the debug part trimmed to its useful tail.
pub fn error_text(e: &gst::message::Error) -> String {
    let mut text = e.error().to_string();
    if let Some(debug) = e.debug() {
        let debug = debug.lines().last().unwrap_or_default().trim().to_string();
        if !debug.is_empty() {
            text.push_str(": ");
            text.push_str(&debug);
        }
    }
    text
}
