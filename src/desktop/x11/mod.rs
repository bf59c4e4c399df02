//! An X display: is it reachable (asked before rebuilding the capture),
//! and its screen read by damage (`screen`). Through x11rb (pure Rust), so
//! that neither can trip Xlib's exit.

pub mod clipboard;
pub mod pointer;
pub mod randr;
pub mod screen;

use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::Screen;
use x11rb::rust_connection::RustConnection;

/// A server that accepts but does not answer (stopped, wedged) must not
/// hold up the media thread that asks.
const ANSWER_WITHIN: Duration = Duration::from_secs(2);

/// A connection to `display` and its default screen (root window, size,
/// depth), for the watchers and the capture that each keep their own.
pub fn open(display: &str) -> anyhow::Result<(RustConnection, Screen)> {
    let (conn, n) = x11rb::connect(Some(display))
        .with_context(|| format!("connecting to display {display}"))?;
    let screen = conn
        .setup()
        .roots
        .get(n)
        .cloned()
        .ok_or_else(|| anyhow!("display {display} has no screen {n}"))?;
    Ok((conn, screen))
}

/// Waits until `conn` has something to read, or `within` (at least 1 ms).
pub fn readable_within(conn: &RustConnection, within: Duration) -> anyhow::Result<()> {
    let mut fd = libc::pollfd {
        fd: conn.stream().as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = within.as_millis().clamp(1, i32::MAX as u128) as i32;
    // SAFETY: one valid pollfd, for the call's duration.
    let r = unsafe { libc::poll(&mut fd, 1, ms) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e).context("waiting on the X connection");
        }
    }
    Ok(())
}

/// Opens and closes a connection to `display`; the error says why not.
pub fn reachable(display: &str) -> Result<(), String> {
    let (tx, rx) = mpsc::channel();
    let name = display.to_string();
    std::thread::Builder::new()
        .name("oriel-x11-check".into())
        .spawn(move || {
            let _ = tx.send(connect(&name));
        })
        .map_err(|e| format!("cannot start the display check: {e}"))?;
    rx.recv_timeout(crate::watchdog::scaled(ANSWER_WITHIN))
        .unwrap_or_else(|_| {
            Err(format!(
                "display {display} did not answer within {} s",
                crate::watchdog::scaled(ANSWER_WITHIN).as_secs()
            ))
        })
}

fn connect(display: &str) -> Result<(), String> {
    let (conn, screen) = x11rb::connect(Some(display)).map_err(|e| e.to_string())?;
    let root = conn
        .setup()
        .roots
        .get(screen)
        .ok_or_else(|| format!("display {display} has no screen {screen}"))?;
    if root.width_in_pixels == 0 {
        return Err(format!("display {display} reports an empty screen"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_display_nobody_serves_is_unreachable() {
        // Display numbers this high have no socket on any sane machine.
        let e = reachable(":65000").unwrap_err();
        assert!(!e.is_empty());
    }
}
