//! One client's branch off the tee: attach, answer and ICE, removal, the
//! offer timeout and a silent receiver's end, and its keyframe requests.

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::events::MediaEvent;
use super::handle::{Command, PeerKind};
use super::state::Service;
use crate::media::peer::{BranchEvent, EventSink, PeerBranch};
use crate::media::PeerId;

/// A branch that has not produced its offer by then is failed, so its
/// client reconnects instead of waiting forever.
const OFFER_TIMEOUT: Duration = Duration::from_secs(5);

/// A connected receiver without input (an SFU) that sent no RTCP for this
/// long (or none since its branch was made) is gone: its branch is failed, so the publish task
/// retries. Receivers send reports every few seconds at most (RFC 3550's
/// interval, 5 s nominal; Janus and browsers about 1 s).
const RTCP_SILENCE: Duration = Duration::from_secs(12);

impl Service {
    pub(super) fn event_sink(&self) -> EventSink {
        let tx = self.tx.clone();
        Arc::new(move |peer, event| {
            let _ = tx.send(Command::Branch(peer, event));
        })
    }

    /// A new peer: attached at once when the producer is ready, else it
    /// waits (starting the producer if nothing runs).
    pub(super) fn add_peer(&mut self, peer: PeerId, kind: PeerKind) {
        self.kinds.insert(peer, kind);
        if self.peers.contains_key(&peer) || self.waiting.contains(&peer) {
            return;
        }
        self.idle_since = None;
        if self.recovery.is_some() {
            // The capture is away: wait with the others.
            self.waiting.push(peer);
            self.update_peer_count();
            return;
        }
        if let (Some(_), Some(text)) = (&self.opening, &self.notice) {
            // Opening waits for the desktop: this one hears why too.
            self.announced = true;
            (self.events)(MediaEvent::CaptureWaiting {
                reason: text.clone(),
            });
        }
        if self.producer.is_none() && self.opening.is_none() {
            if let Err(e) = self.start_producer() {
                // E.g. the display died while nobody watched: wait for it.
                self.waiting.push(peer);
                self.fail_producer(format!("could not start the capture pipeline: {e:#}"));
                return;
            }
        }
        if self.ready {
            self.attach(peer);
        } else {
            self.waiting.push(peer);
        }
        self.update_peer_count();
    }

    pub(super) fn attach(&mut self, peer: PeerId) {
        let Some(producer) = self.producer.as_ref() else {
            return;
        };
        let ice = self
            .config
            .ice
            .for_agent(&format!("oriel-agent-{peer}"), std::time::SystemTime::now());
        let kind = self.kinds.get(&peer).copied();
        let sends = crate::media::channels::Sends {
            input: match kind {
                Some(PeerKind::Sends | PeerKind::Controls) => self.config.input.clone(),
                _ => None,
            },
            clipboard: match kind {
                Some(PeerKind::Controls) => self.config.clipboard.clone(),
                _ => None,
            },
            files: match kind {
                Some(PeerKind::Controls) => self.config.files.clone(),
                _ => None,
            },
            // The controller's own mouse is its pointer: shapes only.
            pointer: match kind {
                Some(PeerKind::Controls) => self.config.pointer.clone().map(|h| (h, false)),
                Some(PeerKind::Sends | PeerKind::Watches) => {
                    self.config.pointer.clone().map(|h| (h, true))
                }
                _ => None,
            },
        };
        let microphone = match kind {
            Some(PeerKind::Controls) => self.config.microphone.clone(),
            Some(PeerKind::Sends) if self.config.player_microphones => {
                self.config.microphone.clone()
            }
            _ => None,
        };
        match PeerBranch::attach(
            producer,
            peer,
            &ice,
            self.event_sink(),
            sends,
            microphone,
            self.config.bitrate,
        ) {
            Ok(branch) => {
                tracing::debug!(peer, "peer branch attached");
                if self.driving.contains(&peer) {
                    branch.link.start_low();
                }
                self.peers.insert(peer, branch);
                self.awaiting_offer.insert(
                    peer,
                    Instant::now() + crate::watchdog::scaled(OFFER_TIMEOUT),
                );
            }
            Err(e) => {
                let reason = format!("could not add a media branch: {e:#}");
                tracing::warn!(peer, "{reason}");
                (self.events)(MediaEvent::PeerFailed { peer, reason });
            }
        }
        self.update_peer_count();
    }

    pub(super) fn on_answer(&self, peer: PeerId, sdp: String) {
        if let Some(branch) = self.peers.get(&peer) {
            if let Err(e) = branch.set_answer(&sdp, peer, self.event_sink()) {
                (self.events)(MediaEvent::Error {
                    peer,
                    message: e.to_string(),
                });
            }
        }
    }

    pub(super) fn on_remote_ice(&self, peer: PeerId, mline: u32, candidate: String) {
        if let Some(branch) = self.peers.get(&peer) {
            branch.add_ice(mline, &candidate);
        }
    }

    pub(super) fn remove_peer(&mut self, peer: PeerId) {
        self.kinds.remove(&peer);
        self.driving.remove(&peer);
        self.rungs.readers.remove(&peer);
        self.rungs.since.remove(&peer);
        self.waiting.retain(|p| *p != peer);
        self.awaiting_offer.remove(&peer);
        if let Some(branch) = self.peers.remove(&peer) {
            if !branch.is_connected() {
                // Usually ICE: no candidate pair worked (firewall, TURN refused).
                tracing::warn!(
                    peer,
                    ice = %branch.ice_state(),
                    turn = self.config.ice.turn_url().as_deref().unwrap_or("none"),
                    "peer left before its WebRTC connection came up"
                );
            }
            if let Some(producer) = self.producer.as_ref() {
                self.detaching
                    .retain(|rx| matches!(rx.try_recv(), Err(mpsc::TryRecvError::Empty)));
                self.leftovers
                    .watch(peer, branch.ice_state(), branch.bin(), Instant::now());
                self.detaching.push(branch.detach(producer));
            }
            tracing::debug!(peer, "peer branch removed");
        }
        self.update_peer_count();
        // A prepared opening's dialog stays up for the user at the desktop.
        let prepared = self.preparing && self.opening.is_some();
        if self.peers.is_empty()
            && self.waiting.is_empty()
            && !prepared
            && !self.recording_wanted()
            && (self.producer.is_some() || self.opening.is_some())
        {
            self.idle_since = Some(Instant::now());
        }
    }

    pub(super) fn update_peer_count(&self) {
        self.stats.peers.store(
            (self.peers.len() + self.waiting.len()) as u64,
            Ordering::Relaxed,
        );
        if let Ok(mut traffic) = self.stats.traffic.lock() {
            *traffic = self
                .peers
                .iter()
                .map(|(id, b)| (*id, b.traffic.clone()))
                .collect();
        }
    }

    pub(super) fn on_branch_event(&mut self, peer: PeerId, event: BranchEvent) {
        if !self.peers.contains_key(&peer) {
            return; // a late event from a removed branch
        }
        match event {
            BranchEvent::Offer(sdp) => {
                self.awaiting_offer.remove(&peer);
                (self.events)(MediaEvent::Offer { peer, sdp })
            }
            BranchEvent::Ice { mline, candidate } => (self.events)(MediaEvent::Ice {
                peer,
                mline,
                candidate,
            }),
            BranchEvent::Error(message) => (self.events)(MediaEvent::Error { peer, message }),
            BranchEvent::KeyframeRequest => self.request_keyframe_for(peer),
            BranchEvent::GatheringDone => (self.events)(MediaEvent::GatheringDone { peer }),
            BranchEvent::AudioRefused => {
                self.stats.audio_refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    peer,
                    "the client's answer would send audio, which its role may not: it receives only"
                );
            }
            BranchEvent::ForeignChannel(label) => {
                self.stats.foreign_channels.fetch_add(1, Ordering::Relaxed);
                let reason = format!(
                    "the client opened a data channel of its own ({label:?}): only the agent opens channels"
                );
                tracing::warn!(peer, "{reason}: cutting the client off");
                self.remove_peer(peer);
                (self.events)(MediaEvent::PeerFailed { peer, reason });
            }
            BranchEvent::State(state) => {
                if state == "failed" {
                    let ice = self.peers.get(&peer).map(PeerBranch::ice_state);
                    tracing::warn!(
                        peer,
                        ice = ice.as_deref().unwrap_or("unknown"),
                        turn = self.config.ice.turn_url().as_deref().unwrap_or("none"),
                        "WebRTC connection failed"
                    );
                }
                if state == "connected" {
                    // The join keyframe: DTLS is up, so this one arrives.
                    self.request_keyframe();
                }
                (self.events)(MediaEvent::State { peer, state });
            }
        }
    }

    /// Branches that made no offer in time are dropped.
    pub(super) fn fail_late_offers(&mut self, now: Instant) {
        let late: Vec<PeerId> = self
            .awaiting_offer
            .iter()
            .filter(|(_, deadline)| now >= **deadline)
            .map(|(peer, _)| *peer)
            .collect();
        for peer in late {
            tracing::warn!(
                peer,
                "no offer within {} s: dropping the branch",
                crate::watchdog::scaled(OFFER_TIMEOUT).as_secs()
            );
            self.remove_peer(peer);
            (self.events)(MediaEvent::PeerFailed {
                peer,
                reason: "the media branch produced no offer in time".into(),
            });
        }
    }

    /// Receivers without input that went silent are gone.
    pub(super) fn fail_silent_receivers(&mut self) {
        let silent: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(peer, b)| {
                self.kinds.get(peer) == Some(&PeerKind::Receiver)
                    && b.is_connected()
                    && b.rtcp_silence() >= crate::watchdog::scaled(RTCP_SILENCE)
            })
            .map(|(peer, _)| *peer)
            .collect();
        for peer in silent {
            let reason = format!(
                "no RTCP from the receiver for {} s: it is gone",
                crate::watchdog::scaled(RTCP_SILENCE).as_secs()
            );
            tracing::warn!(peer, "{reason}");
            self.remove_peer(peer);
            (self.events)(MediaEvent::PeerFailed { peer, reason });
        }
    }

    pub(super) fn request_keyframe(&mut self) {
        if self.gate.request(Instant::now()) {
            self.force_keyframe();
        }
        self.sync_keyframe_stats();
    }

    pub(super) fn force_keyframe(&mut self) {
        if let Some(producer) = self.producer.as_ref() {
            producer.force_keyframe();
        }
        self.sync_keyframe_stats();
    }

    fn sync_keyframe_stats(&self) {
        let c = self.gate.counters;
        self.stats
            .keyframes_requested
            .store(c.requested, Ordering::Relaxed);
        self.stats
            .keyframes_forced
            .store(c.forced, Ordering::Relaxed);
        self.stats
            .keyframes_coalesced
            .store(c.coalesced, Ordering::Relaxed);
    }
}
