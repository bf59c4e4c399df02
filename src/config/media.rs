//! Options shared by `serve` and `probe`: what to capture and how to encode.

use std::path::PathBuf;

use clap::Args;

/// Which desktop to capture: the capture logic owns the choice.
pub use crate::media::capture::{CaptureChoice, X11Timing};
use crate::media::encoder::EncoderSettings;

/// Options shared by `serve` and `probe`: what to capture and how to encode.
#[derive(Debug, Clone, Args)]
pub struct MediaArgs {
    /// Capture backend.
    #[arg(
        long,
        env = "ORIEL_CAPTURE",
        help_heading = "Capture and encoding",
        value_enum,
        default_value = "auto"
    )]
    pub capture: CaptureChoice,

    /// Wayland: the monitor to show, numbered from 1 left to right. `auto`:
    /// the portal's dialog offers one. A number lets the dialog select
    /// several, and the log lists the shared ones with their numbers.
    #[arg(long, env = "ORIEL_MONITOR", help_heading = "Capture and encoding", default_value = "auto", value_parser = parse_monitor)]
    pub monitor: MonitorChoice,

    /// X display to capture (default: `$DISPLAY`).
    #[arg(long, env = "ORIEL_DISPLAY", help_heading = "Capture and encoding")]
    pub display: Option<String>,

    /// Size of the virtual display oriel starts when there is no `$DISPLAY`,
    /// and of the test pattern.
    #[arg(long, env = "ORIEL_VIRTUAL_DISPLAY_SIZE", help_heading = "Capture and encoding", default_value = "1280x720", value_parser = parse_size)]
    pub virtual_display_size: (u32, u32),

    /// Command started inside the virtual display (e.g. `xterm`), stopped with oriel.
    #[arg(long, env = "ORIEL_SESSION_CMD", help_heading = "Capture and encoding")]
    pub session_cmd: Option<String>,

    /// The desktop's sound, sent to every client: `auto` (what the default
    /// output plays; none, said once, without a sound server), `off`, or a
    /// source by name (`oriel probe` shows the server and device). With its
    /// own virtual display oriel starts its own sound server.
    #[arg(long, env = "ORIEL_AUDIO", help_heading = "Capture and encoding", default_value = "auto", value_parser = crate::desktop::sound::parse_choice)]
    pub audio: crate::desktop::sound::AudioChoice,

    /// Let players send their microphones too (off: only the controller's
    /// reaches "oriel microphone"); what several send is mixed there.
    #[arg(
        long,
        env = "ORIEL_PLAYER_MICROPHONES",
        help_heading = "Capture and encoding"
    )]
    pub player_microphones: bool,

    /// X11: when to read the screen.
    #[arg(
        long,
        env = "ORIEL_X11_CAPTURE",
        help_heading = "Capture and encoding",
        value_enum,
        default_value_t
    )]
    pub x11_capture: X11Timing,

    /// Capture frame rate (with `--x11-capture damage`, the most).
    #[arg(long, env = "ORIEL_FRAMERATE", help_heading = "Capture and encoding", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=240))]
    pub framerate: u32,

    /// Threads converting the captured frames' colours for the encoder
    /// (BGRx to I420 in software); 0: one per core, at most 4.
    #[arg(long, env = "ORIEL_CONVERT_THREADS", help_heading = "Capture and encoding", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=64))]
    pub convert_threads: u32,

    /// Video bitrate in kbit/s.
    #[arg(long, env = "ORIEL_BITRATE", help_heading = "Capture and encoding", default_value_t = 4000, value_parser = clap::value_parser!(u32).range(100..=200_000))]
    pub bitrate: u32,

    /// Lowest video bitrate in kbit/s: on a congested link the controller's
    /// (and seated players') congestion estimate moves the shared encoder
    /// between this and --bitrate. Viewers never pull it down.
    #[arg(long, env = "ORIEL_MIN_BITRATE", help_heading = "Capture and encoding", default_value_t = 300, value_parser = clap::value_parser!(u32).range(100..=200_000))]
    pub min_bitrate: u32,

    /// Force one encoder (see `oriel probe`); default: the best one that works.
    #[arg(long, env = "ORIEL_ENCODER", help_heading = "Capture and encoding")]
    pub encoder: Option<String>,

    /// Directory whose `pipelines/*.txt` override the built-in fragments.
    #[arg(long, env = "ORIEL_CONFIG_DIR", help_heading = "Capture and encoding")]
    pub config_dir: Option<PathBuf>,
}

impl MediaArgs {
    /// Where `pipelines/*.txt` overrides are read from.
    pub fn fragments_dir(&self) -> Option<PathBuf> {
        self.config_dir
            .clone()
            .or_else(crate::media::fragments::default_config_dir)
    }

    pub fn encoder_settings(&self) -> EncoderSettings {
        EncoderSettings {
            bitrate_kbps: self.bitrate,
            framerate: self.framerate,
        }
    }
}

/// Which of the shared monitors a Wayland capture shows (`--monitor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonitorChoice {
    Auto,
    /// 1 is the leftmost.
    Number(u32),
}

impl MonitorChoice {
    pub fn number(self) -> Option<u32> {
        match self {
            MonitorChoice::Auto => None,
            MonitorChoice::Number(n) => Some(n),
        }
    }
}

pub fn parse_monitor(s: &str) -> Result<MonitorChoice, String> {
    match s.trim() {
        "auto" => Ok(MonitorChoice::Auto),
        n => match n.parse::<u32>() {
            Ok(n @ 1..=64) => Ok(MonitorChoice::Number(n)),
            _ => Err(format!(
                "`{s}`: expected auto or a monitor number from 1 (leftmost)"
            )),
        },
    }
}

/// Parses `WIDTHxHEIGHT`.
pub fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("`{s}` is not WIDTHxHEIGHT, e.g. 1280x720"))?;
    let w: u32 = w
        .trim()
        .parse()
        .map_err(|_| format!("bad width in `{s}`"))?;
    let h: u32 = h
        .trim()
        .parse()
        .map_err(|_| format!("bad height in `{s}`"))?;
    if !(16..=8192).contains(&w) || !(16..=8192).contains(&h) {
        return Err(format!("`{s}`: width and height must be within 16..=8192"));
    }
    if !w.is_multiple_of(2) || !h.is_multiple_of(2) {
        return Err(format!(
            "`{s}`: width and height must be even (H.264 4:2:0)"
        ));
    }
    Ok((w, h))
}
