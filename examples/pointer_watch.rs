//! Benchmark probe: prints when the X server reports the pointer at a new
//! position, so `bench/input.mjs` can time a browser's pointer event to the
//! moment the X server has moved the pointer.
//!
//! It maps an invisible input-only window over the whole screen, on top of
//! every other window, and listens for pointer motion on it: the server sends
//! MotionNotify once it has processed a motion (XTest's fake motion too), so
//! nothing is captured differently and no round trip is needed. XInput2 raw
//! events would not do: the server generates none for XTest's device.
//! Output, one line per new position on stdout: `<unix time in µs> <x> <y>`.
//!
//!   pointer_watch [--display :N]      (default: $DISPLAY)
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    ConfigureWindowAux, ConnectionExt as _, CreateWindowAux, EventMask, StackMode, WindowClass,
};
use x11rb::protocol::Event;
use x11rb::wrapper::ConnectionExt as _;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut display: Option<String> = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--display" => display = Some(args.next().context("--display needs a value")?),
            "-h" | "--help" => {
                println!("usage: pointer_watch [--display :N]\nprints `<unix µs> <x> <y>` whenever the X server reports the pointer at a new position");
                return Ok(());
            }
            other => bail!("unknown argument {other:?} (see --help)"),
        }
    }
    let (conn, screen_num) =
        x11rb::connect(display.as_deref()).context("cannot open the X display")?;
    let screen = &conn.setup().roots[screen_num];
    let (root, width, height) = (screen.root, screen.width_in_pixels, screen.height_in_pixels);
    let win = conn.generate_id()?;
    // Override-redirect: no window manager moves it; input-only: never drawn.
    conn.create_window(
        0,
        win,
        root,
        0,
        0,
        width,
        height,
        0,
        WindowClass::INPUT_ONLY,
        0,
        &CreateWindowAux::new()
            .override_redirect(1)
            .event_mask(EventMask::POINTER_MOTION),
    )?
    .check()
    .context("creating the input-only window")?;
    conn.map_window(win)?;
    conn.configure_window(win, &ConfigureWindowAux::new().stack_mode(StackMode::ABOVE))?;
    conn.sync()?;
    eprintln!("pointer_watch: ready");
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut last = (i32::MIN, i32::MIN);
    loop {
        let event = conn.wait_for_event().context("X connection lost")?;
        let Event::MotionNotify(m) = event else {
            continue;
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let pos = (i32::from(m.root_x), i32::from(m.root_y));
        if pos != last {
            last = pos;
            // A closed stdout (the bench went away) ends the probe.
            if writeln!(out, "{} {} {}", now.as_micros(), pos.0, pos.1)
                .and_then(|_| out.flush())
                .is_err()
            {
                return Ok(());
            }
        }
    }
}
