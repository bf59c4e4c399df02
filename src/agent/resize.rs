//! The desktop made the size of the controller's window (`--resize`): the
//! page asks (signalling `resize`, the controller's only), this thread
//! applies the latest request through RandR (`desktop::x11::randr`), and
//! the capture follows the new size under the running clients
//! (`media::x11src`). Requests that come while the window is dragged are
//! coalesced: only the last one of a burst is applied.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::desktop::x11::randr::Randr;
use crate::signalling::server::ResizeSink;

/// The largest oriel's own virtual display can be made (Xvfb allocates its
/// screen at this size once: 28 MiB more resident than at 1280x720).
pub const LARGEST: (u32, u32) = (3840, 2160);
/// A burst of requests (a window being dragged) settles this long before
/// the last one is applied.
const SETTLE: Duration = Duration::from_millis(150);

#[derive(Default)]
struct Latest {
    want: Mutex<Option<(u32, u32)>>,
    changed: Condvar,
}

/// Starts the resizing thread for `screen`; the sink the room's
/// `resize` outputs go to.
pub fn start(screen: &str) -> Option<ResizeSink> {
    let randr = Randr::open(screen)
        .map_err(|e| tracing::warn!("resize: the desktop keeps its size: {e:#}"))
        .ok()?;
    let (w, h) = randr.max();
    tracing::info!("resize: the controller's page sets the size of {screen} (up to {w}x{h})");
    let latest = Arc::new(Latest::default());
    let worker = latest.clone();
    let name = screen.to_string();
    std::thread::Builder::new()
        .name("oriel-resize".into())
        .spawn(move || run(randr, &name, &worker))
        .map_err(|e| tracing::warn!("resize: no thread: {e}"))
        .ok()?;
    Some(Arc::new(move |w, h| {
        if let Ok(mut want) = latest.want.lock() {
            *want = Some((w, h));
            latest.changed.notify_one();
        }
    }))
}

fn run(mut randr: Randr, screen: &str, latest: &Latest) {
    loop {
        let Some(want) = next(latest) else { return };
        match randr.resize(want) {
            Ok((w, h)) => tracing::info!("resize: {screen} is now {w}x{h}"),
            Err(e) => {
                tracing::warn!("resize: {screen} to {}x{}: {e:#}", want.0, want.1);
                // The X server may have restarted: a new connection.
                if let Ok(r) = Randr::open(screen) {
                    randr = r;
                }
            }
        }
    }
}

/// Waits for a request, then for the burst to settle; the last of it.
fn next(latest: &Latest) -> Option<(u32, u32)> {
    let mut want = latest.want.lock().ok()?;
    while want.is_none() {
        want = latest.changed.wait(want).ok()?;
    }
    loop {
        let seen = *want;
        let (w, timeout) = latest.changed.wait_timeout(want, SETTLE).ok()?;
        want = w;
        if timeout.timed_out() && *want == seen {
            return want.take();
        }
    }
}
