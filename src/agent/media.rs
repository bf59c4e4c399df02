//! The media service's configuration: which encoder, the producer's
//! pipeline text, and how the service checks that the desktop is back.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use crate::config::ServeArgs;
use crate::desktop::sound::microphone::VirtualMicrophone;
use crate::desktop::{wayland, x11};
use crate::input::service::InputHandle;
use crate::media::capture::Capture;
use crate::media::encoder;
use crate::media::ice::IceServers;
use crate::media::microphone::MicSink;
use crate::media::peer::InputSink;
use crate::media::producer::ProducerConfig;
use crate::media::service::{LiveSource, MediaConfig, SourceCheck};

/// The best encoder that works here (or the one asked for), logged.
pub fn pick_encoder(args: &ServeArgs, capture: &Capture) -> Result<&'static str> {
    let media_args = &args.media;
    let encoder_name = encoder::pick(
        media_args.encoder.as_deref(),
        media_args.encoder_settings(),
        media_args.fragments_dir().as_deref(),
    )
    .map_err(anyhow::Error::msg)?;
    tracing::info!(
        capture = capture.name(),
        encoder = encoder_name,
        "media ready"
    );
    Ok(encoder_name)
}

/// Capture and encoder as pipeline text, with the playout delay.
pub fn producer(
    args: &ServeArgs,
    capture: &Capture,
    encoder_name: &str,
    playout_delay: Option<(u32, u32)>,
    audio: Option<String>,
    show_pointer: bool,
) -> Result<ProducerConfig> {
    let media_args = &args.media;
    let dir = media_args.fragments_dir();
    Ok(ProducerConfig {
        capture: match capture {
            // Rendered per portal session by the live source.
            Capture::Wayland => String::new(),
            _ => capture
                .description(
                    media_args.framerate,
                    media_args.x11_capture,
                    show_pointer,
                    dir.as_deref(),
                )
                .map_err(anyhow::Error::msg)?,
        },
        encoder: encoder::description(encoder_name, media_args.encoder_settings(), dir.as_deref())
            .map_err(anyhow::Error::msg)?,
        // The cheaper rung for slow viewers: the same encoder, started at
        // half the bitrate (it follows its viewers' links from there).
        rung_encoder: Some(
            encoder::description(
                encoder_name,
                encoder::EncoderSettings {
                    bitrate_kbps: (media_args.bitrate / 2).max(media_args.min_bitrate),
                    ..media_args.encoder_settings()
                },
                dir.as_deref(),
            )
            .map_err(anyhow::Error::msg)?,
        ),
        playout_delay,
        audio,
        // A lost screencast is first replaced under the running encoder.
        swappable_capture: matches!(capture, Capture::Wayland),
        convert_threads: match media_args.convert_threads {
            0 => encoder::worker_threads(),
            n => n,
        },
        // Both captures by damage (X11's by default, Wayland's always).
        sparse_frames: match capture {
            Capture::X11 { .. } => {
                media_args.x11_capture == crate::media::capture::X11Timing::Damage
            }
            Capture::Wayland => true,
            Capture::Test { .. } => false,
        },
    })
}

/// Everything the media thread needs; input reaches the input thread
/// through a sink, so media knows nothing of input.
pub fn config(
    args: &ServeArgs,
    capture: &Capture,
    producer: ProducerConfig,
    ice: IceServers,
    input: Option<&InputHandle>,
    live_source: Option<Arc<dyn LiveSource>>,
    microphone: Option<&VirtualMicrophone>,
) -> MediaConfig {
    let input_sink: Option<InputSink> = input.cloned().map(|i| {
        let sink: InputSink = Arc::new(move |peer, bytes: &[u8]| i.data(peer, bytes));
        sink
    });
    let microphone = microphone.map(|mic| {
        let switch = mic.switch();
        // With --player-microphones several may send at once: the source is
        // the default from the first that starts to the last that stops.
        let sending = std::sync::atomic::AtomicUsize::new(0);
        MicSink {
            server: mic.server.address.clone(),
            sink: crate::desktop::sound::microphone::SINK.into(),
            on_active: Arc::new(move |on| {
                use std::sync::atomic::Ordering::SeqCst;
                let first_or_last = if on {
                    sending.fetch_add(1, SeqCst) == 0
                } else {
                    sending.fetch_sub(1, SeqCst) == 1
                };
                if first_or_last {
                    switch.set_active(on);
                }
            }),
        }
    });
    MediaConfig {
        input: input_sink,
        microphone,
        player_microphones: args.media.player_microphones,
        clipboard: None,
        pointer: None,
        files: None,
        producer,
        ice,
        keyframe_interval: args.keyframe_interval(),
        bitrate: (
            args.media.min_bitrate.min(args.media.bitrate),
            args.media.bitrate,
        ),
        idle_stop: Duration::from_millis(args.idle_stop_ms),
        start_timeout: Duration::from_secs(10),
        source_check: source_check(capture),
        live_source,
    }
}

/// "Is the desktop there again?", asked before each rebuild of a lost capture.
fn source_check(capture: &Capture) -> Option<SourceCheck> {
    match capture {
        Capture::X11 { display } => {
            let display = display.clone();
            let check: SourceCheck = Arc::new(move || x11::reachable(&display));
            Some(check)
        }
        Capture::Wayland => {
            let check: SourceCheck = Arc::new(wayland::compositor_reachable);
            Some(check)
        }
        Capture::Test { .. } => None,
    }
}
