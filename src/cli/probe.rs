//! `oriel probe`: every capture backend and encoder, whether it works
//! here, and which ones `serve` would pick.

use anyhow::{Context, Result};

use crate::config::MediaArgs;
use crate::desktop::{sound, wayland};
use crate::media::capture::{self, Capture, Plan};
use crate::media::encoder;

pub fn run(args: MediaArgs) -> Result<()> {
    let dir = args.fragments_dir();
    let dir = dir.as_deref();
    println!("capture backends:");
    let env = capture::SessionEnv::from_env(args.display.clone());
    let display = env.display.clone().filter(|d| !d.trim().is_empty());
    match &display {
        Some(d) => {
            match (Capture::X11 { display: d.clone() }).check(args.framerate, args.x11_capture, dir)
            {
                Ok(()) => println!("  x11      available    display {d}"),
                Err(e) => println!("  x11      unavailable  display {d}: {e}"),
            }
        }
        None => println!("  x11      unavailable  no $DISPLAY (auto starts a virtual display)"),
    }
    match which("Xvfb") {
        Some(path) => println!("  virtual  available    Xvfb at {path}"),
        None => println!("  virtual  unavailable  Xvfb not installed (package xvfb)"),
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let session = match env.wayland() {
        Some(why) => why,
        None => {
            "not a Wayland session ($WAYLAND_DISPLAY unset, $XDG_SESSION_TYPE not wayland)".into()
        }
    };
    match runtime.block_on(wayland::check()) {
        Ok(version) => println!(
            "  wayland  available    ScreenCast portal version {version}{}; {session}",
            if version >= 4 {
                ", remembers approval"
            } else {
                ", asks at every start"
            }
        ),
        Err(e) => println!("  wayland  unavailable  {e}; {session}"),
    }
    let uinput = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/uinput")
        .is_ok();
    match runtime.block_on(wayland::remote_desktop_version()) {
        Ok(v) => println!(
            "  wayland input: {}; RemoteDesktop portal version {v} ({})",
            if uinput {
                "uinput (/dev/uinput is writable)"
            } else {
                "/dev/uinput not writable"
            },
            if v >= wayland::REMOTE_PERSIST_VERSION {
                "remembers approval: auto uses it without uinput"
            } else {
                "cannot remember approval: only with --input portal"
            }
        ),
        Err(e) => println!(
            "  wayland input: {}; {e}",
            if uinput {
                "uinput (/dev/uinput is writable)"
            } else {
                "/dev/uinput not writable"
            }
        ),
    }
    let test = Capture::Test {
        width: args.virtual_display_size.0,
        height: args.virtual_display_size.1,
    };
    match test.check(args.framerate, args.x11_capture, dir) {
        Ok(()) => println!("  test     available    moving test pattern"),
        Err(e) => println!("  test     unavailable  {e}"),
    }
    let planned = capture::plan(args.capture, &env, args.virtual_display_size);
    let own_display = matches!(planned, Ok((Plan::VirtualDisplay, _)));
    let clipboard = match &planned {
        Ok((Plan::Ready(Capture::X11 { .. }) | Plan::VirtualDisplay, _)) => {
            "shared with the controller (the X11 CLIPBOARD selection, text and PNG)"
        }
        Ok((Plan::Ready(Capture::Wayland), _)) => {
            "none: oriel shares the clipboard on X11 only, not on Wayland yet"
        }
        _ => "none",
    };
    let chosen = match planned {
        Ok((Plan::Ready(c), why)) => format!("{} ({why})", c.name()),
        Ok((Plan::VirtualDisplay, why)) => format!("x11 on a virtual display (Xvfb) ({why})"),
        Err(e) => format!("none: {e}"),
    };
    println!("serve would capture: {chosen}");
    println!("clipboard: {clipboard}\n");

    println!("sound:");
    let server = sound::locate_from_env();
    match &server {
        Some(s) => println!("  server   {} (found by {})", s.address, s.found),
        None => {
            println!("  server   none ($PULSE_SERVER unset, no pulse socket in $XDG_RUNTIME_DIR)")
        }
    }
    match which("pulseaudio") {
        Some(path) => println!("  virtual  {path} gives a virtual display its own sound server"),
        None => println!(
            "  virtual  no pulseaudio: a virtual display would have no sound (package pulseaudio)"
        ),
    }
    let own_server = own_display && args.audio != sound::AudioChoice::Off;
    match (own_server, which("pulseaudio")) {
        (true, Some(_)) => println!(
            "serve would send sound: {}.monitor on its own sound server (it starts a virtual display)\n",
            sound::embedded::SINK
        ),
        _ => match sound::plan(&args.audio, server) {
            Ok(plan) => println!("serve would send sound: {}\n", plan.summary),
            Err(e) => println!("serve would fail: {e}\n"),
        },
    }

    println!("H.264 encoders, best first:");
    let all = encoder::probe_all(args.encoder_settings(), dir);
    for a in &all {
        match &a.result {
            Ok(()) => println!("  {:<14} available", a.name),
            Err(e) => println!("  {:<14} unavailable  {e}", a.name),
        }
    }
    match encoder::pick(args.encoder.as_deref(), args.encoder_settings(), dir) {
        Ok(name) => println!("serve would encode with: {name}"),
        Err(e) => println!("serve would fail: {e}"),
    }
    Ok(())
}

pub use crate::desktop::child::which;
