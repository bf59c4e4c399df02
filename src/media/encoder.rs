//! H.264 encoders, best first. Hardware ones are only known to work by
//! trying them (their plugins may be installed on a machine without the
//! device), so `probe` runs a short trial encode of each.

use std::path::Path;
use std::time::Duration;

use crate::media::{fragments, trial};

/// Every encoder oriel knows, in order of preference: NVIDIA, VA-API,
/// Intel QSV, then software.
pub const ENCODERS: &[&str] = &[
    "nvh264enc",
    "nvcudah264enc",
    "vah264enc",
    "vaapih264enc",
    "qsvh264enc",
    "x264enc",
    "openh264enc",
];

/// Settings substituted into the encoder fragments.
#[derive(Debug, Clone, Copy)]
pub struct EncoderSettings {
    pub bitrate_kbps: u32,
    pub framerate: u32,
}

impl EncoderSettings {
    fn vars(&self) -> Vec<(&'static str, String)> {
        // A long GOP: keyframes come on demand (joins, PLIs); the periodic
        // one only bounds recovery if a request is lost.
        let gop = (self.framerate * 10).min(300);
        let threads = worker_threads();
        vec![
            ("bitrate", self.bitrate_kbps.to_string()),
            ("bitrate_bps", (self.bitrate_kbps as u64 * 1000).to_string()),
            ("gop", gop.to_string()),
            ("threads", threads.to_string()),
        ]
    }
}

/// Threads for the software encoders and the colour conversion: one per
/// core, at most 4 (more slices cost quality and gain little at 720p).
pub fn worker_threads() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get().min(4) as u32)
        .unwrap_or(2)
}

/// The rendered gst-launch text for encoder `name`.
pub fn description(
    name: &str,
    settings: EncoderSettings,
    config_dir: Option<&Path>,
) -> Result<String, String> {
    let fragment =
        fragments::load(&format!("encoder-{name}"), config_dir).map_err(|e| e.to_string())?;
    fragment.render(&settings.vars())
}

/// Changes a running encoder's target bitrate, where its element allows
/// that while playing (all of ours do). Units differ: openh264enc takes
/// bit/s, the others kbit/s. Returns whether it was set.
pub fn set_bitrate(encoder: &gst::Element, kbps: u32) -> bool {
    use gst::prelude::*;
    let Some(factory) = encoder.factory() else {
        return false;
    };
    let value = match factory.name().as_str() {
        "openh264enc" => kbps.saturating_mul(1000),
        name if ENCODERS.contains(&name) => kbps,
        _ => return false,
    };
    let Some(pspec) = encoder.find_property("bitrate") else {
        return false;
    };
    // A property of another type would panic in set_property.
    if pspec.value_type() == u32::static_type() {
        encoder.set_property("bitrate", value);
    } else if pspec.value_type() == i32::static_type() {
        encoder.set_property("bitrate", i32::try_from(value).unwrap_or(i32::MAX));
    } else {
        return false;
    }
    true
}

/// Whether one encoder works here.
#[derive(Debug, Clone)]
pub struct Availability {
    pub name: &'static str,
    pub result: Result<(), String>,
}

/// Checks one encoder: is the element registered, and does a trial encode
/// of a few small frames succeed?
pub fn check(
    name: &'static str,
    settings: EncoderSettings,
    config_dir: Option<&Path>,
) -> Availability {
    let result = (|| {
        if gst::ElementFactory::find(name).is_none() {
            return Err(
                "element not registered (plugin not installed, or no device for it)".into(),
            );
        }
        let desc = description(name, settings, config_dir)?;
        let test = format!(
            "videotestsrc num-buffers=10 ! video/x-raw,width=320,height=240,framerate={}/1 ! videoconvert ! {desc}",
            settings.framerate
        );
        trial::run(&test, 1, Duration::from_secs(10))
    })();
    Availability { name, result }
}

/// Probes every encoder, best first.
pub fn probe_all(settings: EncoderSettings, config_dir: Option<&Path>) -> Vec<Availability> {
    ENCODERS
        .iter()
        .map(|name| check(name, settings, config_dir))
        .collect()
}

/// Picks the encoder `serve` uses: `forced` if given (an unknown or
/// unavailable one is an error), else the first that works.
pub fn pick(
    forced: Option<&str>,
    settings: EncoderSettings,
    config_dir: Option<&Path>,
) -> Result<&'static str, String> {
    if let Some(wanted) = forced {
        let name = ENCODERS
            .iter()
            .find(|n| **n == wanted)
            .ok_or_else(|| format!("unknown encoder `{wanted}`; known: {}", ENCODERS.join(", ")))?;
        return match check(name, settings, config_dir).result {
            Ok(()) => Ok(name),
            Err(why) => Err(format!("encoder `{name}` is unavailable here: {why}")),
        };
    }
    let mut reasons = Vec::new();
    for name in ENCODERS {
        match check(name, settings, config_dir).result {
            Ok(()) => return Ok(name),
            Err(why) => reasons.push(format!("{name}: {why}")),
        }
    }
    Err(format!(
        "no H.264 encoder works here:\n  {}",
        reasons.join("\n  ")
    ))
}
