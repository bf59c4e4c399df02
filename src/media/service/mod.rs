//! The media service: a dedicated thread that owns the producer and every
//! peer branch. GStreamer calls that may block (state changes) run here,
//! never on the async runtime. The rest of oriel talks to it through a
//! cloneable [`MediaHandle`] and hears back through [`MediaEvent`]s.
//!
//! Lifecycle: the producer starts with the first peer and stops
//! `idle_stop` after the last one left, so nobody watching means nothing is
//! captured or encoded.
//!
//! Recovery: when the shared part fails (the X server died, the source
//! ended or stalled), every branch is dropped but the peers are kept
//! waiting, [`MediaEvent::CaptureLost`] goes out, and the producer is
//! rebuilt with backoff (0.5 s doubling to 5 s), each attempt only after
//! the display answers. Once it delivers frames again the waiting peers get
//! fresh branches (new offers) and [`MediaEvent::CaptureRestored`] goes out.
//!
//! Layout: the types the rest of oriel uses are in `events.rs`, `source.rs`,
//! `config.rs`, `stats.rs` and `handle.rs` (re-exported here); `state.rs`
//! holds the thread's state, and every other module extends it with an
//! `impl Service` block for one concern. Those use the shared types and the
//! state, never each other.

use std::sync::mpsc;
use std::sync::Arc;

mod branches;
mod bus;
mod config;
mod events;
mod handle;
mod lifecycle;
mod rate;
mod record;
mod recovery;
mod run;
mod rungs;
mod source;
mod state;
mod stats;

#[cfg(test)]
pub use config::test_pattern;
pub use config::MediaConfig;
pub use events::MediaEvent;
pub use handle::{MediaHandle, PeerKind, Reply};
pub use source::{LiveSource, OpenedSource, SourceCheck, SourceDone, SourceNotice, SourceSignal};
pub use stats::MediaStats;

use state::Service;

/// Starts the media thread. `events` receives everything peers report.
pub fn spawn(
    config: MediaConfig,
    events: impl Fn(MediaEvent) + Send + 'static,
) -> std::io::Result<MediaHandle> {
    let (tx, rx) = mpsc::channel();
    let stats = Arc::new(MediaStats::default());
    let handle = MediaHandle::new(tx.clone(), stats.clone());
    std::thread::Builder::new()
        .name("oriel-media".into())
        .spawn(move || {
            let mut service = Service::new(config, tx, Box::new(events), stats);
            service.run(rx);
        })?;
    Ok(handle)
}
