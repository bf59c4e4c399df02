//! The desktop's clipboard joined to the controllers' pages: what another
//! program copies on the desktop goes to every controller's `clipboard`
//! channel (`media::clipboard_channel`), and what a controller's page
//! pastes is set on the desktop. X11 only for now; on Wayland there is
//! none, said once at start (and by `oriel probe`).

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use crate::config::ServeArgs;
use crate::desktop::clipboard::{ClipboardStats, Limits};
use crate::desktop::x11::clipboard::X11Clipboard;
use crate::media::capture::Capture;
use crate::media::clipboard_channel::ClipboardHub;

pub struct Clipboard {
    pub hub: Arc<ClipboardHub>,
    pub stats: Arc<ClipboardStats>,
    /// Held: its thread watches the display as long as the agent runs.
    _desktop: Arc<X11Clipboard>,
}

/// Starts the clipboard for `capture`'s desktop, if it has one and the
/// flags allow it; the log says which.
pub fn start(args: &ServeArgs, capture: &Capture) -> Option<Clipboard> {
    if !args.clipboard {
        tracing::info!("clipboard: off (--clipboard off)");
        return None;
    }
    let Capture::X11 { display: screen } = capture else {
        tracing::info!(
            "clipboard: none on {}: oriel shares the clipboard on X11 only",
            capture.name()
        );
        return None;
    };
    let limits = Limits {
        text: usize::try_from(args.clipboard_max_text).unwrap_or(usize::MAX),
        image: usize::try_from(args.clipboard_max_image).unwrap_or(usize::MAX),
    };
    let stats = Arc::new(ClipboardStats::default());
    // Each side needs the other: copies on the desktop go to the hub, the
    // hub's pastes go to the desktop. The desktop side finds the hub here.
    let hub_slot: Arc<OnceLock<Arc<ClipboardHub>>> = Arc::default();
    let (slot, st) = (hub_slot.clone(), stats.clone());
    let desktop = X11Clipboard::start(
        screen,
        limits,
        Box::new(move |copied| {
            let Some(hub) = slot.get() else { return };
            match copied {
                Ok(content) => {
                    if hub.desktop_copied(content) > 0 {
                        st.to_browser.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(why) => {
                    st.refused(why);
                    tracing::warn!(
                        "a copy on the desktop was not sent to the browser: {}",
                        why.label()
                    );
                    hub.desktop_refused(why);
                }
            }
        }),
    )
    .map_err(|e| tracing::warn!("clipboard: none: {e:#}"))
    .ok()?;
    let (target, st) = (desktop.clone(), stats.clone());
    let hub = ClipboardHub::new(
        limits,
        Arc::new(move |peer, pasted| match pasted {
            Ok(content) => match target.set(content) {
                Ok(()) => {
                    st.to_desktop.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => tracing::warn!(peer, "setting the desktop's clipboard: {e:#}"),
            },
            Err(why) => {
                st.refused(why);
                tracing::warn!(
                    peer,
                    "a clipboard from the controller's page was refused: {}",
                    why.label()
                );
            }
        }),
    );
    let _ = hub_slot.set(hub.clone());
    tracing::info!(
        "clipboard: shared with the controller on {} (text up to {} bytes, images up to {})",
        screen,
        limits.text,
        limits.image
    );
    Some(Clipboard {
        hub,
        stats,
        _desktop: desktop,
    })
}
