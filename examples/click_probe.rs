//! Click probe for the click-to-photon benchmark (`bench/click.mjs`).
//!
//! Covers an X screen with one window that is dark or light, and flips it
//! from one to the other on every button press or key press it receives, at
//! once: the picture a remote-desktop page shows changes exactly when the
//! desktop has handled the click. A page that notes when it clicked and when
//! it first presents a frame of the new colour measures click-to-photon: the
//! page's event, the input's trip to the desktop, the injection, the capture
//! (which waits for its next slot on a clock, not by damage), encode, network
//! and decode.
//!
//! ```text
//! cargo run --release --example click_probe -- --display :99
//! ```
//!
//! Each flip is one request (the window's background changed and cleared)
//! followed by a round trip, so the server has painted it before the next
//! event is read. Prints `click_probe: ready WxH` once mapped, and one line per
//! flip (`click_probe: flip N light|dark`) so the harness can tell a click
//! that never reached the desktop from one that was not seen in the video.
//! Stops on SIGTERM or SIGINT.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use clap::Parser;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    ChangeWindowAttributesAux, ConnectionExt as _, CreateWindowAux, EventMask, WindowClass,
};
use x11rb::protocol::Event;
use x11rb::wrapper::ConnectionExt as _;

/// The two colours, far apart in luma so a page reads them without doubt.
const DARK: u32 = 0x10_10_10;
const LIGHT: u32 = 0xf0_f0_f0;

#[derive(Parser, Debug)]
#[command(about = "Covers an X screen and flips it dark/light on every click or key press")]
struct Args {
    /// X display to use (default: $DISPLAY).
    #[arg(long)]
    display: Option<String>,
}

/// Set by the signal handler; the event loop checks it between events.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    STOP.store(true, Ordering::SeqCst);
}

fn main() -> Result<()> {
    let args = Args::parse();
    // SAFETY: installing a handler that only stores to an atomic.
    unsafe {
        let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(libc::SIGTERM, handler);
        libc::signal(libc::SIGINT, handler);
    }
    let (conn, screen_num) = x11rb::connect(args.display.as_deref())
        .map_err(|e| anyhow!("cannot open X display {:?}: {e}", args.display))?;
    let screen = conn
        .setup()
        .roots
        .get(screen_num)
        .ok_or_else(|| anyhow!("X screen {screen_num} missing"))?
        .clone();
    if screen.root_depth < 24 {
        anyhow::bail!(
            "the probe needs a 24-bit screen (this one is {} bits)",
            screen.root_depth
        );
    }
    let (width, height) = (screen.width_in_pixels, screen.height_in_pixels);
    let win = conn.generate_id()?;
    // Override-redirect: no window manager moves it, and mapped last it lies
    // above everything, so every click on the screen lands on it.
    conn.create_window(
        screen.root_depth,
        win,
        screen.root,
        0,
        0,
        width,
        height,
        0,
        WindowClass::INPUT_OUTPUT,
        screen.root_visual,
        &CreateWindowAux::new()
            .override_redirect(1)
            .background_pixel(DARK)
            .event_mask(EventMask::BUTTON_PRESS | EventMask::KEY_PRESS),
    )?;
    conn.map_window(win)?;
    // Key presses go to the focus window: ours, whatever the pointer does.
    conn.set_input_focus(
        x11rb::protocol::xproto::InputFocus::POINTER_ROOT,
        win,
        x11rb::CURRENT_TIME,
    )?;
    conn.sync().context("mapping the probe window")?;
    println!("click_probe: ready {width}x{height}");

    let mut light = false;
    let mut flips = 0u64;
    while !STOP.load(Ordering::SeqCst) {
        let Some(event) = conn.poll_for_event()? else {
            // No blocking wait: a signal must be able to stop the loop. The
            // poll interval adds at most 0.2 ms to what is measured.
            std::thread::sleep(Duration::from_micros(200));
            continue;
        };
        if matches!(event, Event::ButtonPress(_) | Event::KeyPress(_)) {
            light = !light;
            flips += 1;
            let pixel = if light { LIGHT } else { DARK };
            conn.change_window_attributes(
                win,
                &ChangeWindowAttributesAux::new().background_pixel(pixel),
            )?;
            conn.clear_area(false, win, 0, 0, 0, 0)?;
            conn.sync().context("painting a flip")?;
            println!(
                "click_probe: flip {flips} {}",
                if light { "light" } else { "dark" }
            );
        }
    }
    eprintln!("click_probe: stopped after {flips} flips");
    Ok(())
}
