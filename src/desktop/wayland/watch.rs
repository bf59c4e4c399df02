//! Noticing that a screencast is lost (portal Closed, the portal leaving the
//! bus, the compositor going away), and whether the compositor is back.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use crate::media::service::{SourceNotice, SourceSignal};

/// Reports the screencast lost when the portal closes the session, when
/// the portal (front end or desktop back end) leaves the bus, or when the
/// compositor goes away. The last two are watched directly: pipewiresrc
/// keeps repeating its last frame when the stream ends, and here neither a
/// killed compositor nor a killed xdg-desktop-portal-gnome (whose session
/// mutter then stops) made the portal say Closed. An idle client connection
/// to the Wayland socket (no request is ever sent, so the compositor keeps
/// it open) ends exactly when the compositor does.
///
/// `closed` resolves when the portal says the session ended (the session
/// types are the opener's business, not this watcher's).
pub(super) async fn watch(
    closed: impl Future<Output = ()>,
    conn: ashpd::zbus::Connection,
    notice: Arc<SourceNotice>,
) {
    let portal = async {
        use futures_util::StreamExt;
        let Ok(dbus) = ashpd::zbus::fdo::DBusProxy::new(&conn).await else {
            return std::future::pending().await;
        };
        let Ok(mut changes) = dbus.receive_name_owner_changed().await else {
            return std::future::pending().await;
        };
        while let Some(signal) = changes.next().await {
            let Ok(args) = signal.args() else {
                continue;
            };
            let name = args.name().as_str();
            let portal = name == "org.freedesktop.portal.Desktop"
                || name.starts_with("org.freedesktop.impl.portal.desktop.");
            if portal && args.new_owner().is_none() {
                return format!("the screen-sharing portal ({name}) left the session bus");
            }
        }
        std::future::pending().await
    };
    let closed = async {
        closed.await;
        "the screencast portal closed the session".to_string()
    };
    let compositor = async {
        let Some(path) = wayland_socket() else {
            return std::future::pending().await;
        };
        let Ok(mut stream) = tokio::net::UnixStream::connect(&path).await else {
            return format!("cannot reach the Wayland compositor at {}", path.display());
        };
        let mut buf = [0u8; 4096];
        loop {
            use tokio::io::AsyncReadExt;
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return "the Wayland compositor went away".to_string(),
                // A compositor may still send events (e.g. on shutdown).
                Ok(_) => {}
            }
        }
    };
    let reason = tokio::select! {
        r = closed => r,
        r = portal => r,
        r = compositor => r,
    };
    tracing::warn!("screencast lost: {reason}");
    notice(SourceSignal::Lost(reason));
}

/// The compositor's socket: `$WAYLAND_DISPLAY`, relative to
/// `$XDG_RUNTIME_DIR` unless absolute.
pub fn wayland_socket() -> Option<PathBuf> {
    let display = std::env::var_os("WAYLAND_DISPLAY").filter(|d| !d.is_empty())?;
    let display = PathBuf::from(display);
    if display.is_absolute() {
        return Some(display);
    }
    let dir = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty())?;
    Some(PathBuf::from(dir).join(display))
}

/// Before a new screencast after a loss: does the compositor accept
/// connections again? Without `$WAYLAND_DISPLAY` there is nothing to ask.
pub fn compositor_reachable() -> Result<(), String> {
    match wayland_socket() {
        None => Ok(()),
        Some(path) => std::os::unix::net::UnixStream::connect(&path)
            .map(drop)
            .map_err(|e| {
                format!(
                    "the Wayland compositor at {} does not answer: {e}",
                    path.display()
                )
            }),
    }
}
