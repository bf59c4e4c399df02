//! webrtcsink serving an X display the way oriel captures it, for the
//! side-by-side benchmark (bench/peer.mjs). See README.md for every setting
//! and each difference from oriel's own pipeline.
//!
//!   webrtcsink-server --display :99 [--port 8443] [--host 127.0.0.1]
//!                     [--framerate 30] [--bitrate 4000]
//!
//! Consumers connect to ws://HOST:PORT (webrtcsink's built-in signalling
//! server) and start a session with the producer; `webrtcsink-receiver`
//! does that.

use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use gst::glib;
use gst::prelude::*;

struct Args {
    display: String,
    host: String,
    port: u16,
    framerate: u32,
    bitrate_kbps: u32,
}

fn usage() -> &'static str {
    "usage: webrtcsink-server --display :N [--host 127.0.0.1] [--port 8443] [--framerate 30] [--bitrate KBIT/S]"
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        display: std::env::var("DISPLAY").unwrap_or_default(),
        host: "127.0.0.1".into(),
        port: 8443,
        framerate: 30,
        bitrate_kbps: 4000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| anyhow!("{flag} needs a value\n{}", usage()))
        };
        match flag.as_str() {
            "--display" => args.display = value()?,
            "--host" => args.host = value()?,
            "--port" => args.port = value()?.parse().context("--port")?,
            "--framerate" => args.framerate = value()?.parse().context("--framerate")?,
            "--bitrate" => args.bitrate_kbps = value()?.parse().context("--bitrate")?,
            "-h" | "--help" => {
                println!("{}", usage());
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}\n{}", usage()),
        }
    }
    if args.display.is_empty() {
        bail!("no X display: pass --display or set $DISPLAY");
    }
    if args.framerate == 0 || args.bitrate_kbps == 0 {
        bail!("--framerate and --bitrate must be positive");
    }
    Ok(args)
}

/// oriel's x264 threads: the machine's cores, at most 4
/// (src/media/encoder.rs).
fn oriel_threads() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get().min(4) as u32)
        .unwrap_or(2)
}

/// oriel's GOP: ten seconds, at most 300 frames (src/media/encoder.rs).
fn oriel_gop(framerate: u32) -> u32 {
    (framerate * 10).min(300)
}

fn build(args: &Args) -> Result<(gst::Pipeline, gst::Element)> {
    // The capture and conversion are oriel's (pipelines/capture-x11.txt,
    // then `videoconvert` into the x264 fragment's I420). Converting before
    // webrtcsink keeps the conversion shared, as in oriel: webrtcsink's own
    // per-consumer videoconvert then has nothing to do. Only the encode and
    // everything after it differ between the two.
    let desc = format!(
        "ximagesrc display-name={display} use-damage=false show-pointer=true \
           ! video/x-raw,framerate={fps}/1 \
           ! videoconvert name=convert ! video/x-raw,format=I420 \
           ! webrtcsink name=ws",
        display = args.display,
        fps = args.framerate,
    );
    eprintln!("webrtcsink-server: pipeline: {desc}");
    let pipeline = gst::parse::launch(&desc)
        .context("building the pipeline")?
        .downcast::<gst::Pipeline>()
        .map_err(|_| anyhow!("the launch line did not give a pipeline"))?;
    let ws = pipeline
        .by_name("ws")
        .ok_or_else(|| anyhow!("no webrtcsink in the pipeline"))?;

    let bps = args.bitrate_kbps * 1000;
    ws.set_property("run-signalling-server", true);
    ws.set_property("signalling-server-host", &args.host);
    ws.set_property("signalling-server-port", u32::from(args.port));
    // No STUN: oriel has none by default, and webrtcsink's default
    // (stun.l.google.com) cannot resolve on a closed network.
    ws.set_property("stun-server", None::<String>);
    // H.264 only, like oriel (no VP8/VP9 offered, no discovery of them).
    ws.set_property("video-caps", gst::Caps::builder("video/x-h264").build());
    // A fixed bitrate: without congestion control webrtcsink sets every
    // encoder to max-bitrate, so min = start = max = oriel's bitrate.
    ws.set_property_from_str("congestion-control", "disabled");
    ws.set_property("min-bitrate", bps);
    ws.set_property("start-bitrate", bps);
    ws.set_property("max-bitrate", bps);
    // oriel sends neither FEC nor retransmissions; webrtcsink defaults to
    // both (and to 50 % FEC when congestion control is off).
    ws.set_property("do-fec", false);
    ws.set_property("do-retransmission", false);
    // No downscaling or frame dropping on webrtcsink's own initiative.
    ws.set_property_from_str("enable-mitigation-modes", "none");

    let threads = oriel_threads();
    let gop = oriel_gop(args.framerate);
    let kbps = args.bitrate_kbps;
    // Runs after webrtcsink's own handler (connect after=true), which sets
    // its defaults (threads 4, key-int-max 2560, b-adapt off, vbv 120); this
    // one puts oriel's values over them (pipelines/encoder-x264enc.txt).
    ws.connect("encoder-setup", true, move |values| {
        let consumer = values
            .get(1)
            .and_then(|v| v.get::<String>().ok())
            .unwrap_or_default();
        let Some(enc) = values.get(3).and_then(|v| v.get::<gst::Element>().ok()) else {
            return Some(false.to_value());
        };
        let factory = enc.factory().map(|f| f.name().to_string());
        if factory.as_deref() == Some("x264enc") {
            enc.set_property_from_str("speed-preset", "ultrafast");
            enc.set_property_from_str("tune", "zerolatency");
            enc.set_property("bitrate", kbps);
            enc.set_property("vbv-buf-capacity", 120u32);
            enc.set_property("key-int-max", gop);
            enc.set_property("bframes", 0u32);
            enc.set_property("threads", threads);
            eprintln!(
                "webrtcsink-server: encoder for {consumer}: x264enc speed-preset=ultrafast tune=zerolatency \
                 bitrate={kbps} vbv-buf-capacity=120 key-int-max={gop} bframes=0 threads={threads}"
            );
        } else {
            eprintln!(
                "webrtcsink-server: WARNING: encoder for {consumer} is {factory:?}, not x264enc; left at webrtcsink's defaults"
            );
        }
        Some(false.to_value())
    });
    Ok((pipeline, ws))
}

fn run() -> Result<()> {
    let args = parse_args()?;
    gst::init()?;
    // webrtcsink lives in this binary (crate gst-plugin-webrtc), not in the
    // system's plugin path.
    gstrswebrtc::plugin_register_static().context("registering the webrtc plugin")?;

    let (pipeline, _ws) = build(&args)?;
    let main_loop = glib::MainLoop::new(None, false);

    let failed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let bus = pipeline
        .bus()
        .ok_or_else(|| anyhow!("pipeline without bus"))?;
    let _watch = {
        let main_loop = main_loop.clone();
        let failed = failed.clone();
        bus.add_watch(move |_, msg| {
            use gst::MessageView;
            match msg.view() {
                MessageView::Error(e) => {
                    let src = e.src().map(|s| s.path_string().to_string());
                    eprintln!(
                        "webrtcsink-server: ERROR from {}: {} ({:?})",
                        src.as_deref().unwrap_or("?"),
                        e.error(),
                        e.debug()
                    );
                    failed.store(true, std::sync::atomic::Ordering::SeqCst);
                    main_loop.quit();
                }
                MessageView::Warning(w) => {
                    let src = w.src().map(|s| s.path_string().to_string());
                    eprintln!(
                        "webrtcsink-server: WARN from {}: {}",
                        src.as_deref().unwrap_or("?"),
                        w.error()
                    );
                }
                MessageView::Eos(_) => {
                    eprintln!("webrtcsink-server: end of stream");
                    main_loop.quit();
                }
                _ => {}
            }
            glib::ControlFlow::Continue
        })?
    };
    // SIGINT/SIGTERM stop the pipeline cleanly (the bench stops the server
    // with SIGTERM): a tokio signal listener on its own thread quits the loop.
    {
        let main_loop = main_loop.clone();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("signal runtime")?;
        std::thread::spawn(move || {
            rt.block_on(async {
                use tokio::signal::unix::{signal, SignalKind};
                let (Ok(mut int), Ok(mut term)) = (
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::terminate()),
                ) else {
                    eprintln!("webrtcsink-server: cannot listen for signals");
                    return;
                };
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            });
            main_loop.quit();
        });
    }

    pipeline
        .set_state(gst::State::Playing)
        .context("starting the pipeline")?;
    eprintln!(
        "webrtcsink-server: serving ws://{}:{} (display {}, {} fps, {} kbit/s)",
        args.host, args.port, args.display, args.framerate, args.bitrate_kbps
    );
    main_loop.run();
    eprintln!("webrtcsink-server: stopping");
    // Best effort: a state change failure on the way out changes nothing.
    let _ = pipeline.set_state(gst::State::Null);
    if failed.load(std::sync::atomic::Ordering::SeqCst) {
        bail!("the pipeline failed");
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("webrtcsink-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}
