//! Keeps oriel's own virtual display alive: when its Xvfb dies, start it
//! again on the same display number, session command included. The media
//! service notices the lost capture by itself and picks the display up
//! again once it answers.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::desktop::xvfb::VirtualDisplay;
use crate::media::backoff::Backoff;

const CHECK_EVERY: Duration = Duration::from_millis(250);

pub struct Supervisor {
    pub name: String,
    /// Times Xvfb was started again.
    pub restarts: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    /// Set once oriel is stopping: a display dying then (the service
    /// manager signals the whole group) is not to be replaced.
    paused: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    display: Arc<Mutex<Option<VirtualDisplay>>>,
}

impl Supervisor {
    /// Watches `display` from a thread of its own. That thread also starts
    /// the replacements, and lives as long as oriel: children die with the
    /// thread that started them (`PR_SET_PDEATHSIG`).
    pub fn start(display: VirtualDisplay) -> std::io::Result<Self> {
        let name = display.name.clone();
        let display = Arc::new(Mutex::new(Some(display)));
        let stop = Arc::new(AtomicBool::new(false));
        let paused = Arc::new(AtomicBool::new(false));
        let restarts = Arc::new(AtomicU64::new(0));
        let (d, s, p, r) = (
            display.clone(),
            stop.clone(),
            paused.clone(),
            restarts.clone(),
        );
        let thread = std::thread::Builder::new()
            .name("oriel-xvfb".into())
            .spawn(move || watch(&d, &s, &p, &r))?;
        Ok(Supervisor {
            name,
            restarts,
            stop,
            paused,
            thread: Some(thread),
            display,
        })
    }

    /// No more restarts (oriel is stopping); the display stays until
    /// [`Supervisor::shutdown`].
    pub fn stop_watching(&self) {
        self.paused.store(true, Ordering::SeqCst);
    }

    /// Stops watching, then stops Xvfb and the session.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Ok(mut d) = self.display.lock() {
            d.take();
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop_now();
    }
}

fn watch(
    display: &Mutex<Option<VirtualDisplay>>,
    stop: &AtomicBool,
    paused: &AtomicBool,
    restarts: &AtomicU64,
) {
    let mut backoff = Backoff::default();
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(CHECK_EVERY);
        if paused.load(Ordering::SeqCst) {
            continue;
        }
        let Ok(mut guard) = display.lock() else {
            return;
        };
        let Some(vd) = guard.as_mut() else {
            return;
        };
        if vd.is_running() {
            continue;
        }
        tracing::warn!(display = %vd.name, "the virtual display died: starting it again");
        match vd.restart() {
            Ok(()) => {
                restarts.fetch_add(1, Ordering::Relaxed);
                backoff.reset();
                tracing::info!(display = %vd.name, "virtual display started again");
            }
            Err(e) => {
                let wait = backoff.next_delay();
                tracing::error!(
                    "restarting the virtual display failed: {e:#}; next try in {wait:?}"
                );
                drop(guard);
                std::thread::sleep(wait);
            }
        }
    }
    // The thread ends here and `Supervisor` drops the display.
}
