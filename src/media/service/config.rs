//! How the media service is set up: producer, ICE, timings, sources.

use std::sync::Arc;
use std::time::Duration;

use super::source::{LiveSource, SourceCheck};
use crate::media::ice::IceServers;
use crate::media::producer::ProducerConfig;

#[derive(Clone)]
pub struct MediaConfig {
    pub producer: ProducerConfig,
    /// STUN/TURN servers; each peer's webrtcbin gets its own credentials.
    pub ice: IceServers,
    pub keyframe_interval: Duration,
    /// The shared encoder's bitrate range, kbit/s: it starts at the upper
    /// end and follows the drivers' links down to the lower one.
    pub bitrate: (u32, u32),
    pub idle_stop: Duration,
    /// How long the producer may take to deliver its first encoded frame.
    pub start_timeout: Duration,
    /// Where data-channel bytes go; `None` opens no data channels.
    pub input: Option<crate::media::peer::InputSink>,
    /// Where the microphones go; `None`: nobody's is taken.
    pub microphone: Option<crate::media::microphone::MicSink>,
    /// Players' connections take a microphone too (`--player-microphones`).
    pub player_microphones: bool,
    /// The controllers' clipboard channels; `None`: no clipboard.
    pub clipboard: Option<std::sync::Arc<crate::media::clipboard_channel::ClipboardHub>>,
    /// Every browser's pointer channels (`--pointer page`); `None`: the
    /// pointer is in the picture.
    pub pointer: Option<std::sync::Arc<crate::media::pointer_channel::PointerHub>>,
    /// Where the controllers' uploads go; `None`: no uploads.
    pub files: Option<std::sync::Arc<crate::media::files_channel::FilesHub>>,
    /// Asked before each rebuild after a failure; `None` always tries.
    pub source_check: Option<SourceCheck>,
    /// Opened before each producer start; its fragment replaces
    /// `producer.capture`.
    pub live_source: Option<Arc<dyn LiveSource>>,
}

/// A moving test pattern at 320x240 through x264: what unit tests run the
/// media thread with (no display needed).
#[cfg(test)]
pub fn test_pattern() -> MediaConfig {
    use crate::media::producer::ProducerConfig;
    use std::time::Duration;
    MediaConfig {
        producer: ProducerConfig {
            capture: "videotestsrc is-live=true pattern=ball \
                      ! video/x-raw,width=320,height=240,framerate=30/1"
                .into(),
            encoder: "video/x-raw,format=I420 ! x264enc speed-preset=ultrafast \
                      tune=zerolatency key-int-max=100000 bframes=0"
                .into(),
            rung_encoder: None,
            playout_delay: None,
            swappable_capture: false,
            sparse_frames: false,
            convert_threads: 1,
            audio: None,
        },
        ice: Default::default(),
        keyframe_interval: Duration::from_millis(250),
        bitrate: (300, 2000),
        idle_stop: Duration::from_millis(300),
        start_timeout: Duration::from_secs(10),
        input: None,
        microphone: None,
        player_microphones: false,
        clipboard: None,
        pointer: None,
        files: None,
        source_check: None,
        live_source: None,
    }
}
