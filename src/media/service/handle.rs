//! The cloneable [`MediaHandle`] and the commands it sends to the media
//! thread.

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use super::source::{OpenedSource, SourceSignal};
use super::stats::MediaStats;
use crate::media::peer::BranchEvent;
use crate::media::recording::RecordingSummary;
use crate::media::PeerId;

/// Where a reply goes: `Err` carries a message for a person.
pub(super) type ReplyTx<T> = tokio::sync::oneshot::Sender<Result<T, String>>;
/// How callers hear back: `.await` it, or `blocking_recv()` off the runtime.
pub type Reply<T> = tokio::sync::oneshot::Receiver<Result<T, String>>;

/// What a peer's connection carries besides video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerKind {
    /// The controller: the data channels, and its microphone (the one
    /// audio transceiver that also receives).
    Controls,
    /// A browser that sends input (a player): the data channels are in its
    /// offer.
    Sends,
    /// A browser that only watches (a viewer): no input channels, so it has
    /// nothing to send input on. With `--pointer video` it has no data
    /// channel at all, and no SCTP association to keep (five threads fewer
    /// per viewer); with `--pointer page` only the pointer's two, which
    /// are the agent's to send on.
    Watches,
    /// A receiver that is not a browser (an SFU publisher): no data
    /// channels, and it is gone once its RTCP stops.
    Receiver,
}

/// What reaches the media thread: from the handle, and from GStreamer's
/// threads and the live source (which only ever post, never touch state).
pub(super) enum Command {
    /// A peer, and what its connection carries besides video.
    AddPeer(PeerId, PeerKind),
    RemovePeer(PeerId),
    /// Whether a peer drives the desktop (its link sets the bitrate).
    Driving(PeerId, bool),
    Answer(PeerId, String),
    Ice(PeerId, u32, String),
    Branch(PeerId, BranchEvent),
    ProducerReady(u64),
    Bus(u64, gst::Message),
    CaptureLost(String),
    Prepare,
    SourceOpened(u64, Result<OpenedSource, String>),
    /// A replacement for a lost live source, for the running producer.
    SwapOpened(u64, Result<OpenedSource, String>),
    SourceNotice(u64, SourceSignal),
    StartRecording(PathBuf, String, ReplyTx<PathBuf>),
    StopRecording(ReplyTx<RecordingSummary>),
    /// A stopped recording's EOS reached its file.
    RecordingFinished,
    Shutdown(mpsc::Sender<()>),
}

#[derive(Clone)]
pub struct MediaHandle {
    tx: mpsc::Sender<Command>,
    pub stats: Arc<MediaStats>,
}

impl MediaHandle {
    pub(super) fn new(tx: mpsc::Sender<Command>, stats: Arc<MediaStats>) -> Self {
        MediaHandle { tx, stats }
    }

    /// A browser client, and what its connection carries (`PeerKind`).
    pub fn add_peer(&self, peer: PeerId, kind: PeerKind) {
        let _ = self.tx.send(Command::AddPeer(peer, kind));
    }
    /// Marks a peer as driving the desktop (controller, seated player) or
    /// not: the shared encoder's bitrate follows the slowest driver's link.
    pub fn set_driving(&self, peer: PeerId, driving: bool) {
        let _ = self.tx.send(Command::Driving(peer, driving));
    }
    /// A peer that only receives video (an SFU publisher): no data
    /// channels in its offer. Otherwise like any peer: it keeps the
    /// producer running, its keyframe requests are coalesced with the
    /// browsers', and it is re-offered after a capture loss.
    pub fn add_receiver(&self, peer: PeerId) {
        let _ = self.tx.send(Command::AddPeer(peer, PeerKind::Receiver));
    }
    /// Opens the live source once without a viewer, so that a dialog it
    /// needs (the first approval of screen sharing) shows up when oriel
    /// starts, while the user is at the desktop, rather than when the first
    /// viewer connects from afar. Nothing is captured afterwards.
    pub fn prepare(&self) {
        let _ = self.tx.send(Command::Prepare);
    }
    pub fn remove_peer(&self, peer: PeerId) {
        let _ = self.tx.send(Command::RemovePeer(peer));
    }
    pub fn answer(&self, peer: PeerId, sdp: String) {
        let _ = self.tx.send(Command::Answer(peer, sdp));
    }
    pub fn ice(&self, peer: PeerId, mline: u32, candidate: String) {
        let _ = self.tx.send(Command::Ice(peer, mline, candidate));
    }
    /// The capture source is gone (e.g. its X connection broke); callable
    /// from any thread, including a GStreamer streaming thread.
    pub fn capture_lost(&self, reason: String) {
        let _ = self.tx.send(Command::CaptureLost(reason));
    }
    /// Records the shared stream to `path` (a `.mkv` file, or a directory
    /// for a time-stamped file; an existing file is never overwritten:
    /// `NAME-2.mkv` instead), starting the capture if nobody watches. The
    /// reply comes once the file is being written, with its path, or with
    /// why not. `started_by` goes into the log.
    pub fn start_recording(&self, path: PathBuf, started_by: String) -> Reply<PathBuf> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let _ = self.tx.send(Command::StartRecording(path, started_by, tx));
        rx
    }
    /// Stops the recording; the reply comes once the file is complete
    /// (duration and index written), with what it got.
    pub fn stop_recording(&self) -> Reply<RecordingSummary> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let _ = self.tx.send(Command::StopRecording(tx));
        rx
    }
    /// Removes every peer and stops the pipeline; returns when done (or
    /// after `timeout`). A recording's file is finished first.
    pub fn shutdown(&self, timeout: Duration) {
        let (tx, rx) = mpsc::channel();
        if self.tx.send(Command::Shutdown(tx)).is_ok() {
            let _ = rx.recv_timeout(timeout);
        }
    }
}
