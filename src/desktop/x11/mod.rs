//! An X display: is it reachable (asked before rebuilding the capture),
//! and its screen read by damage (`screen`). Through x11rb (pure Rust), so
//! that neither can trip Xlib's exit.

pub mod clipboard;
pub mod pointer;
pub mod randr;
pub mod screen;

use std::sync::mpsc;
use std::time::Duration;

use x11rb::connection::Connection;

/// A server that accepts but does not answer (stopped, wedged) must not
/// hold up the media thread that asks.
const ANSWER_WITHIN: Duration = Duration::from_secs(2);

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
