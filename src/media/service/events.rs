//! What the media service tells the rest of oriel.

use crate::media::PeerId;

/// What the media service tells the signalling layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    Offer {
        peer: PeerId,
        sdp: String,
    },
    Ice {
        peer: PeerId,
        mline: u32,
        candidate: String,
    },
    State {
        peer: PeerId,
        state: String,
    },
    /// Something the client sent could not be applied; the peer lives on.
    Error {
        peer: PeerId,
        message: String,
    },
    /// Every local ICE candidate of the peer has been reported (for
    /// signalling that sends one offer with all candidates, e.g. WHIP).
    GatheringDone {
        peer: PeerId,
    },
    /// The peer's branch is gone (its own failure); the client should leave.
    PeerFailed {
        peer: PeerId,
        reason: String,
    },
    /// The capture failed; every branch was dropped and its peer waits for
    /// the capture to come back.
    CaptureLost {
        reason: String,
    },
    /// The capture waits for something on the desktop (e.g. the user's
    /// approval of screen sharing); like `CaptureLost` for the clients.
    CaptureWaiting {
        reason: String,
    },
    /// The capture works again; waiting peers get new offers.
    CaptureRestored,
    /// How a peer's link looks (about once a second): congestion estimate,
    /// the encoder's bitrate, loss, retransmissions, which rung it gets.
    Link {
        peer: PeerId,
        estimate_kbps: Option<u64>,
        encoder_kbps: u64,
        loss_permille: u64,
        retransmitted: u64,
        rung: &'static str,
    },
}

impl MediaEvent {
    /// The peer an event is about; `None` for those about the capture,
    /// which concern everyone.
    pub fn peer(&self) -> Option<PeerId> {
        match self {
            MediaEvent::Offer { peer, .. }
            | MediaEvent::Ice { peer, .. }
            | MediaEvent::State { peer, .. }
            | MediaEvent::Error { peer, .. }
            | MediaEvent::GatheringDone { peer }
            | MediaEvent::PeerFailed { peer, .. }
            | MediaEvent::Link { peer, .. } => Some(*peer),
            MediaEvent::CaptureLost { .. }
            | MediaEvent::CaptureWaiting { .. }
            | MediaEvent::CaptureRestored => None,
        }
    }
}
