//! Which rung each viewer reads. A viewer whose congestion estimate stays
//! under the main encode's bitrate moves to the cheaper rung (created for
//! the first such viewer, stopped a while after the last one left); one
//! whose estimate clears the main bitrate for long enough moves back. The
//! rung's bitrate follows the slowest viewer on it, between --min-bitrate
//! and 80 % of the main bitrate (so a recovering viewer's estimate, which
//! never runs far ahead of what it was delivered, can clear the main one).
//! Drivers (controller, players) always read the main rung: their link
//! sets its bitrate instead (`rate.rs`).

use std::time::{Duration, Instant};

use super::state::Service;
use crate::media::rung::Rung;
use crate::media::PeerId;

/// Below this share of the main bitrate, for `MOVE_DOWN_AFTER`: too slow.
const SLOW: f64 = 0.8;
const MOVE_DOWN_AFTER: Duration = Duration::from_secs(1);
/// Above this share, for `MOVE_UP_AFTER`: fast enough for the main rung.
const FAST: f64 = 1.1;
const MOVE_UP_AFTER: Duration = Duration::from_secs(4);
/// An unread rung stops after this (a viewer may come right back).
const RUNG_IDLE_STOP: Duration = Duration::from_secs(5);
/// The rung's bitrate range, as shares of the main bitrate's maximum.
const RUNG_MAX: f64 = 0.8;
const RUNG_HEADROOM: f64 = 0.85;

impl Service {
    /// Whether `peer` reads the cheaper rung.
    pub(super) fn on_rung(&self, peer: PeerId) -> bool {
        self.rungs.readers.contains(&peer)
    }

    /// The rung's name for a peer, for its `link` report.
    pub(super) fn rung_name(&self, peer: PeerId) -> &'static str {
        if self.on_rung(peer) {
            "cheaper"
        } else {
            "main"
        }
    }

    /// Moves viewers between rungs and sets the rung's bitrate; called on
    /// the rate timer.
    pub(super) fn place_viewers(&mut self, now: Instant) {
        let Some(encoder) = self.config.producer.rung_encoder.clone() else {
            return;
        };
        let main_bps = f64::from(self.bitrate_kbps) * 1000.0;
        let mut down = Vec::new();
        let mut up = Vec::new();
        for (peer, branch) in &self.peers {
            if self.driving.contains(peer) || !branch.is_connected() {
                continue;
            }
            let Some(estimate) = branch.link.estimate_bps() else {
                continue;
            };
            let reading_rung = self.rungs.readers.contains(peer);
            let wants_move = if reading_rung {
                estimate as f64 > FAST * main_bps
            } else {
                (estimate as f64) < SLOW * main_bps
            };
            if !wants_move {
                self.rungs.since.remove(peer);
                continue;
            }
            let since = *self.rungs.since.entry(*peer).or_insert(now);
            let wait = if reading_rung {
                MOVE_UP_AFTER
            } else {
                MOVE_DOWN_AFTER
            };
            if now.duration_since(since) >= wait {
                if reading_rung {
                    up.push(*peer);
                } else {
                    down.push(*peer);
                }
            }
        }
        if !down.is_empty() && self.rungs.rung.is_none() {
            self.start_rung(&encoder);
        }
        for peer in down {
            self.move_peer(peer, true);
        }
        for peer in up {
            self.move_peer(peer, false);
        }
        self.set_rung_bitrate();
        self.stop_rung_if_unread(now);
    }

    fn start_rung(&mut self, encoder: &str) {
        let Some(producer) = self.producer.as_ref() else {
            return;
        };
        let kbps = self.rung_bitrate();
        match Rung::attach(producer, encoder, kbps) {
            Ok(rung) => {
                // Its first keyframe is what moving viewers wait for.
                rung.force_keyframe();
                self.rungs.rung = Some(rung);
                self.stats
                    .rungs
                    .store(1, std::sync::atomic::Ordering::Relaxed);
            }
            Err(e) => tracing::warn!("could not start the cheaper rung: {e:#}"),
        }
    }

    fn move_peer(&mut self, peer: PeerId, to_rung: bool) {
        self.rungs.since.remove(&peer);
        let tee = match (to_rung, self.rungs.rung.as_ref(), self.producer.as_ref()) {
            (true, Some(rung), _) => rung.tee().clone(),
            (false, _, Some(producer)) => producer.tee().clone(),
            _ => return,
        };
        let Some(branch) = self.peers.get_mut(&peer) else {
            return;
        };
        match branch.move_to(&tee) {
            Ok(()) => {
                let estimate = branch.link.estimate_bps().unwrap_or(0) / 1000;
                if to_rung {
                    self.rungs.readers.insert(peer);
                    tracing::info!(
                        peer,
                        estimate_kbps = estimate,
                        "viewer moved to the cheaper rung"
                    );
                    if let Some(rung) = self.rungs.rung.as_ref() {
                        rung.force_keyframe();
                    }
                } else {
                    self.rungs.readers.remove(&peer);
                    tracing::info!(
                        peer,
                        estimate_kbps = estimate,
                        "viewer moved back to the main rung"
                    );
                    self.request_keyframe();
                }
            }
            Err(e) => tracing::warn!(peer, "could not move a viewer between rungs: {e:#}"),
        }
    }

    /// The slowest reader's estimate with some headroom, within
    /// [--min-bitrate, 80 % of --bitrate].
    fn rung_bitrate(&self) -> u32 {
        let (min, max) = self.config.bitrate;
        let top = (f64::from(max) * RUNG_MAX) as u32;
        self.rungs
            .readers
            .iter()
            .filter_map(|p| self.peers.get(p))
            .filter_map(|b| b.link.estimate_bps())
            .map(|bps| (bps as f64 * RUNG_HEADROOM / 1000.0) as u32)
            .min()
            .unwrap_or(top / 2)
            .clamp(min.min(top), top)
    }

    fn set_rung_bitrate(&mut self) {
        let kbps = self.rung_bitrate();
        if let Some(rung) = self.rungs.rung.as_mut() {
            let change =
                (f64::from(kbps) - f64::from(rung.kbps)).abs() / f64::from(rung.kbps.max(1));
            if change >= 0.05 {
                rung.set_bitrate(kbps);
            }
            self.stats
                .rung_bitrate_kbps
                .store(u64::from(rung.kbps), std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn stop_rung_if_unread(&mut self, now: Instant) {
        if self.rungs.rung.is_none() || !self.rungs.readers.is_empty() {
            self.rungs.idle_since = None;
            return;
        }
        let since = *self.rungs.idle_since.get_or_insert(now);
        if now.duration_since(since) >= RUNG_IDLE_STOP {
            if let Some(rung) = self.rungs.rung.take() {
                rung.detach();
            }
            self.rungs.idle_since = None;
            self.clear_rung_stats();
        }
    }

    fn clear_rung_stats(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        self.stats.rungs.store(0, Relaxed);
        self.stats.rung_bitrate_kbps.store(0, Relaxed);
    }

    /// A keyframe request from a branch: its own rung's encoder.
    pub(super) fn request_keyframe_for(&mut self, peer: PeerId) {
        if self.on_rung(peer) {
            if self.rungs.gate.request(Instant::now()) {
                if let Some(rung) = self.rungs.rung.as_ref() {
                    rung.force_keyframe();
                }
            }
        } else {
            self.request_keyframe();
        }
    }

    /// The rung's coalesced keyframe, when its interval ends.
    pub(super) fn poll_rung_keyframes(&mut self, now: Instant) {
        if self.rungs.gate.poll(now) {
            if let Some(rung) = self.rungs.rung.as_ref() {
                rung.force_keyframe();
            }
        }
    }

    /// The producer goes: its rung with it (the pipeline stops as a whole).
    pub(super) fn forget_rung(&mut self) {
        self.rungs.rung = None;
        self.rungs.readers.clear();
        self.rungs.since.clear();
        self.rungs.idle_since = None;
        self.clear_rung_stats();
        self.stats
            .encoders
            .store(0, std::sync::atomic::Ordering::Relaxed);
    }
}
