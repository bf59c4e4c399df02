//! Capture sources that are opened elsewhere ([`LiveSource`], e.g. the
//! Wayland portal), and the check asked before each rebuild.

use std::sync::Arc;

/// A capture source that has to be opened afresh for every producer, and
/// whose opening may take long: a Wayland screencast (a portal session
/// serves one PipeWire consumer, and the first one waits for the user to
/// approve a dialog on the desktop). The D-Bus work happens elsewhere (on
/// the async runtime); the media thread only hears the outcome.
pub trait LiveSource: Send + Sync {
    /// Starts opening. `notice` may be called with what the agent waits
    /// for (e.g. "approve screen sharing on the desktop") and, once the
    /// source is open, when it is lost; `done` is called once, from any
    /// thread. Dropping the returned guard abandons the attempt (a pending
    /// dialog goes away).
    fn open(&self, notice: SourceNotice, done: SourceDone) -> Box<dyn Send>;
}

/// What a [`LiveSource`] reports besides its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSignal {
    /// Still opening, waiting for this (told to clients).
    Waiting(String),
    /// The opened source went away (e.g. the compositor died): the
    /// producer is rebuilt, with a new opening.
    Lost(String),
}

/// How a [`LiveSource`] reports a [`SourceSignal`]; callable from any thread.
pub type SourceNotice = Box<dyn Fn(SourceSignal) + Send + Sync>;
/// How a [`LiveSource`] reports the outcome of one opening.
pub type SourceDone = Box<dyn FnOnce(Result<OpenedSource, String>) + Send>;

/// One opened [`LiveSource`].
pub struct OpenedSource {
    /// The capture fragment for this producer.
    pub capture: String,
    /// Kept while the producer runs (the portal session behind it), dropped
    /// after the pipeline stopped.
    pub keep: Box<dyn Send>,
}

/// Says whether the capture source can be opened right now (for X11: the
/// display accepts connections), without touching GStreamer.
pub type SourceCheck = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;
