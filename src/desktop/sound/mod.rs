//! The desktop's sound server (PulseAudio, or PipeWire's pulse layer):
//! where it is, which device oriel records the desktop's sound from, and
//! oriel's own server for its virtual display (`embedded`).
//!
//! The server is found the way the desktop user's own programs find it:
//! `$PULSE_SERVER`, else the socket under `$XDG_RUNTIME_DIR` (which systemd
//! sets for a user service). What the desktop plays is the monitor of its
//! default sink, `@DEFAULT_MONITOR@` in the pulse protocol, so the capture
//! follows the user's choice of output device.

pub mod embedded;
pub mod microphone;

use std::path::PathBuf;
use std::time::Duration;

use gst::prelude::*;

/// `--audio`: what to send as the desktop's sound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioChoice {
    /// The default sink's monitor; no sound (said once) without a server.
    Auto,
    Off,
    /// A pulse source by name (e.g. `alsa_output.pci-0000_00_1f.3.analog-stereo.monitor`).
    Device(String),
}

/// Parses `auto`, `off` or a source name.
pub fn parse_choice(s: &str) -> Result<AudioChoice, String> {
    let s = s.trim();
    match s {
        "auto" => Ok(AudioChoice::Auto),
        "off" | "none" => Ok(AudioChoice::Off),
        "" => Err("expected auto, off or a sound source name".into()),
        // A name goes into a pipeline description: keep it to what pulse
        // source names are made of.
        name if name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-:@".contains(c)) =>
        {
            Ok(AudioChoice::Device(name.into()))
        }
        other => Err(format!(
            "`{other}` is not a sound source name (letters, digits and . _ - : @ only)"
        )),
    }
}

/// The device a capture records when none is named: what the desktop plays.
pub const DEFAULT_MONITOR: &str = "@DEFAULT_MONITOR@";

/// A sound server's address, as `pulsesrc server=` takes it, and where it
/// was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub address: String,
    pub found: String,
}

/// The user's sound server from these environment values, if any: a
/// `PULSE_SERVER`, or the pulse socket in the runtime directory when it
/// exists.
pub fn locate(pulse_server: Option<&str>, runtime_dir: Option<&str>) -> Option<Server> {
    if let Some(s) = pulse_server.map(str::trim).filter(|s| !s.is_empty()) {
        return Some(Server {
            address: s.into(),
            found: "$PULSE_SERVER".into(),
        });
    }
    let socket = PathBuf::from(runtime_dir.filter(|d| !d.is_empty())?)
        .join("pulse")
        .join("native");
    socket.exists().then(|| Server {
        address: format!("unix:{}", socket.display()),
        found: "$XDG_RUNTIME_DIR/pulse/native".into(),
    })
}

/// [`locate`] with this process's environment.
pub fn locate_from_env() -> Option<Server> {
    locate(
        std::env::var("PULSE_SERVER").ok().as_deref(),
        std::env::var("XDG_RUNTIME_DIR").ok().as_deref(),
    )
}

/// The capture fragment for `device` on `server`. The pipeline keeps the
/// system clock (`provide-clock=false`): video is stamped with it, and the
/// sound is re-timed to it (audiobasesrc's skew slaving), so the two never
/// drift apart however long the stream runs.
pub fn capture_fragment(server: &Server, device: &str) -> String {
    format!(
        "pulsesrc server=\"{}\" device=\"{device}\" client-name=oriel provide-clock=false \
         buffer-time=100000 latency-time=10000",
        server.address.replace(['"', '\\'], "")
    )
}

/// Records a moment of `fragment` and returns the device it really used
/// (the name `@DEFAULT_MONITOR@` resolved to), or why it failed.
pub fn check(fragment: &str, timeout: Duration) -> Result<String, String> {
    let text = format!("{fragment} name=sound ! identity eos-after=5 ! fakesink sync=false");
    let pipeline = gst::parse::launch(&text).map_err(|e| e.to_string())?;
    let bin = pipeline
        .clone()
        .downcast::<gst::Bin>()
        .map_err(|_| "not a bin".to_string())?;
    let bus = pipeline.bus().ok_or("pipeline has no bus")?;
    let started = pipeline.set_state(gst::State::Playing);
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_nseconds(timeout.as_nanos() as u64),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let result = match msg.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => Ok(bin
            .by_name("sound")
            .and_then(|s| s.property::<Option<String>>("current-device"))
            .unwrap_or_else(|| "?".into())),
        Some(gst::MessageView::Error(e)) => Err(crate::media::trial::error_text(e)),
        _ if started.is_err() => Err("could not start".into()),
        _ => Err(format!("no sound data within {} ms", timeout.as_millis())),
    };
    let _ = pipeline.set_state(gst::State::Null);
    result
}

/// What `serve` sends as sound, decided once at startup.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The capture fragment, or `None` for no sound.
    pub fragment: Option<String>,
    /// The server recorded from, with sound.
    pub server: Option<Server>,
    /// For logs, `/healthz` and `oriel probe`.
    pub summary: String,
}

/// Decides the sound: `server` is oriel's own (virtual display) or the
/// user's. With `auto`, anything missing means no sound and a reason; with
/// a named device, it is an error.
pub fn plan(choice: &AudioChoice, server: Option<Server>) -> Result<Plan, String> {
    let device = match choice {
        AudioChoice::Off => {
            return Ok(Plan {
                fragment: None,
                server: None,
                summary: "off (--audio off)".into(),
            })
        }
        AudioChoice::Auto => DEFAULT_MONITOR,
        AudioChoice::Device(d) => d.as_str(),
    };
    let Some(server) = server else {
        let why = "no sound server found ($PULSE_SERVER unset, no pulse socket in \
                   $XDG_RUNTIME_DIR): is PulseAudio or pipewire-pulse running for this user?";
        return match choice {
            AudioChoice::Auto => Ok(Plan {
                fragment: None,
                server: None,
                summary: format!("off: {why}"),
            }),
            _ => Err(format!("--audio {device}: {why}")),
        };
    };
    let fragment = capture_fragment(&server, device);
    match check(&fragment, Duration::from_secs(3)) {
        Ok(used) => Ok(Plan {
            fragment: Some(fragment),
            server: Some(server.clone()),
            summary: format!(
                "{used} on {} (found by {}{})",
                server.address,
                server.found,
                if device == DEFAULT_MONITOR {
                    ", the default output's monitor"
                } else {
                    ""
                }
            ),
        }),
        Err(e) => match choice {
            AudioChoice::Auto => Ok(Plan {
                fragment: None,
                server: None,
                summary: format!("off: recording {device} on {} failed: {e}", server.address),
            }),
            _ => Err(format!(
                "--audio {device}: recording it on {} failed: {e}",
                server.address
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_parse_and_odd_names_are_refused() {
        assert_eq!(parse_choice("auto"), Ok(AudioChoice::Auto));
        assert_eq!(parse_choice(" off "), Ok(AudioChoice::Off));
        assert_eq!(
            parse_choice("alsa_output.pci-0000_00_1f.3.analog-stereo.monitor"),
            Ok(AudioChoice::Device(
                "alsa_output.pci-0000_00_1f.3.analog-stereo.monitor".into()
            ))
        );
        for bad in ["", "a b", "x\" ! filesink location=/etc/passwd", "a!b"] {
            assert!(parse_choice(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn the_server_is_found_as_desktop_programs_find_it() {
        let dir = std::env::temp_dir().join(format!("oriel-sound-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("pulse")).unwrap();
        let dir_s = dir.to_str().unwrap();
        // No socket yet: nothing found, unless PULSE_SERVER says.
        assert_eq!(locate(None, Some(dir_s)), None);
        assert_eq!(locate(Some("  "), None), None);
        assert_eq!(
            locate(Some("tcp:host:4713"), Some(dir_s)).map(|s| s.address),
            Some("tcp:host:4713".into())
        );
        std::fs::write(dir.join("pulse").join("native"), b"").unwrap();
        let found = locate(None, Some(dir_s)).unwrap();
        assert_eq!(
            found.address,
            format!("unix:{}/pulse/native", dir.display())
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn without_a_server_auto_is_silent_and_a_named_device_an_error() {
        let auto = plan(&AudioChoice::Auto, None).unwrap();
        assert!(auto.fragment.is_none());
        assert!(auto.summary.contains("no sound server"), "{}", auto.summary);
        assert!(plan(&AudioChoice::Device("x".into()), None).is_err());
        assert!(plan(&AudioChoice::Off, None).unwrap().fragment.is_none());
    }
}
