//! Is an X display reachable? Asked before rebuilding the capture, through
//! x11rb (pure Rust), so that the check itself can never trip Xlib's exit.

use x11rb::connection::Connection;

/// Opens and closes a connection to `display`; the error says why not.
pub fn reachable(display: &str) -> Result<(), String> {
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
