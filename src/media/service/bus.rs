//! The producer's bus messages: an error inside a peer's branch ends that
//! peer, one inside the recording ends the recording, any other error or
//! the end of the stream is a lost capture.

use gst::prelude::*;

use super::events::MediaEvent;
use super::state::Service;
use crate::media::peer::bin_name;
use crate::media::recording::{recording_bin, FailureKind};
use crate::media::trial::error_text;
use crate::media::PeerId;

impl Service {
    pub(super) fn on_bus(&mut self, msg: gst::Message) {
        if let Some(bin) = msg.src().and_then(recording_bin) {
            match msg.view() {
                gst::MessageView::Error(e) => {
                    self.on_recording_error(&bin, FailureKind::of(&e.error()), &error_text(e))
                }
                gst::MessageView::Warning(w) => {
                    tracing::debug!(bin, "recording warning: {}", w.error())
                }
                _ => {}
            }
            return;
        }
        if let Some(bin) = msg.src().and_then(crate::media::audio::sound_bin) {
            self.on_audio_message(&bin, &msg);
            return;
        }
        let owner = msg.src().and_then(|src| self.owning_peer(src));
        match msg.view() {
            gst::MessageView::Error(e) => {
                let text = error_text(e);
                match owner {
                    // An error inside one client's branch only ends that client.
                    // Already gone (bye, then the browser tore its side down):
                    // nothing left to end.
                    Some(peer) if !self.peers.contains_key(&peer) => {
                        tracing::debug!(peer, "late error from a removed branch: {text}");
                    }
                    Some(peer) => {
                        // A browser closing its tab ends the SCTP association
                        // before (or instead of) saying bye: a normal leave.
                        let from_sctp = msg.src().is_some_and(|s| {
                            s.name().starts_with("sctpenc") || s.name().starts_with("sctpdec")
                        });
                        if from_sctp {
                            tracing::info!(peer, "client closed its connection: {text}");
                        } else {
                            tracing::warn!(peer, "peer branch error: {text}");
                        }
                        self.remove_peer(peer);
                        (self.events)(MediaEvent::PeerFailed {
                            peer,
                            reason: format!("media error: {text}"),
                        });
                    }
                    None => self.fail_producer(text),
                }
            }
            gst::MessageView::Eos(_) => self.fail_producer("the capture source ended".into()),
            gst::MessageView::Warning(w) => {
                tracing::debug!(peer = owner, "pipeline warning: {}", w.error());
            }
            _ => {}
        }
    }

    /// The sound capture failed (its server went away, the device
    /// vanished): the sound ends, the picture goes on. The next producer
    /// start (after the idle stop) tries the sound again.
    /// A microphone's bin that fails is stopped alike; the controller keeps
    /// its connection.
    fn on_audio_message(&mut self, bin: &gst::Bin, msg: &gst::Message) {
        match msg.view() {
            gst::MessageView::Error(e) => {
                let dropped = if bin.name() == crate::media::audio::AUDIO_BIN {
                    self.producer.as_ref().is_some_and(|p| p.drop_audio())
                } else {
                    !bin.is_locked_state() && {
                        bin.set_locked_state(true);
                        let _ = bin.set_state(gst::State::Null);
                        true
                    }
                };
                if dropped {
                    self.stats
                        .audio_failures
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!(
                        "the sound capture failed: {}; the picture goes on without sound \
                         (tried again when the stream next starts)",
                        error_text(e)
                    );
                }
            }
            gst::MessageView::Warning(w) => tracing::debug!("sound warning: {}", w.error()),
            _ => {}
        }
    }

    /// The peer whose bin contains `src`, if any.
    fn owning_peer(&self, src: &gst::Object) -> Option<PeerId> {
        let mut cur = Some(src.clone());
        while let Some(obj) = cur {
            let name = obj.name();
            if let Some(id) = name.strip_prefix("peer-").and_then(|n| n.parse().ok()) {
                if obj.name() == bin_name(id) {
                    return Some(id);
                }
            }
            cur = obj.parent();
        }
        None
    }
}
