//! The desktop's pointer joined to the pages (`--pointer page`): shapes go
//! to every page, places to the pages that draw the remote pointer
//! (`media::pointer_channel`), and the capture leaves the pointer out of
//! the picture. X11 only; elsewhere the pointer stays in the stream, said
//! once at start.

use std::sync::{Arc, OnceLock};

use crate::config::{PointerMode, ServeArgs};
use crate::desktop::x11::pointer::X11Pointer;
use crate::media::capture::Capture;
use crate::media::pointer_channel::PointerHub;

pub struct Pointer {
    pub hub: Arc<PointerHub>,
    /// Held: its thread watches the display as long as the agent runs.
    _desktop: Arc<X11Pointer>,
}

/// Starts watching `capture`'s pointer for the pages, if the flag asks for
/// it and the desktop can; `None`: the capture draws it.
pub fn start(args: &ServeArgs, capture: &Capture) -> Option<Pointer> {
    if args.pointer == PointerMode::Video {
        tracing::info!("pointer: drawn into the stream (--pointer video)");
        return None;
    }
    let Capture::X11 { display: screen } = capture else {
        tracing::info!(
            "pointer: drawn into the stream on {}: pages draw it on X11 only",
            capture.name()
        );
        return None;
    };
    // Each side needs the other: the desktop's events go to the hub, the
    // hub says when places are wanted.
    let hub_slot: Arc<OnceLock<Arc<PointerHub>>> = Arc::default();
    let slot = hub_slot.clone();
    let desktop = X11Pointer::start(
        screen,
        Box::new(move |event| {
            if let Some(hub) = slot.get() {
                hub.desktop(event);
            }
        }),
    )
    .map_err(|e| tracing::warn!("pointer: drawn into the stream: {e:#}"))
    .ok()?;
    let target = Arc::downgrade(&desktop);
    let hub = PointerHub::new(Arc::new(move |on| {
        if let Some(d) = target.upgrade() {
            d.want_motion(on);
        }
    }));
    let _ = hub_slot.set(hub.clone());
    tracing::info!("pointer: drawn by the pages on {screen}, not into the stream");
    Some(Pointer {
        hub,
        _desktop: desktop,
    })
}
