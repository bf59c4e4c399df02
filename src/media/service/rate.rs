//! Who sets the shared encoder's bitrate: the clients who drive the desktop
//! (the controller and seated players, `MediaHandle::set_driving`), through
//! the congestion estimate of their own links, between `--min-bitrate` and
//! `--bitrate`. The slowest driver wins; viewers never pull it down (a
//! viewer's link only costs that viewer frames). Without a driver the
//! encoder runs at `--bitrate`.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::state::Service;
use crate::media::PeerId;

/// How often estimates are read and the encoder adjusted.
pub(super) const RATE_INTERVAL: Duration = Duration::from_millis(250);
/// Each client hears how its link looks this often.
const LINK_REPORT: Duration = Duration::from_secs(1);
/// Changes smaller than this are not worth an encoder reconfiguration.
const MIN_CHANGE: f64 = 0.05;

impl Service {
    pub(super) fn set_driving(&mut self, peer: PeerId) {
        self.driving.insert(peer);
        if let Some(branch) = self.peers.get(&peer) {
            branch.link.start_low();
        }
    }

    pub(super) fn rate_deadline(&self) -> Option<Instant> {
        (!self.peers.is_empty()).then_some(self.next_rate_check)
    }

    /// What the encoder should run at now, kbit/s.
    pub(super) fn target_bitrate(&self) -> u32 {
        let (min, max) = self.config.bitrate;
        self.peers
            .iter()
            .filter(|(peer, b)| self.driving.contains(peer) && b.is_connected())
            .filter_map(|(_, b)| b.link.estimate_bps())
            .map(|bps| (bps / 1000).min(u64::from(u32::MAX)) as u32)
            .min()
            .unwrap_or(max)
            .clamp(min, max)
    }

    pub(super) fn adjust_bitrate(&mut self, now: Instant) {
        if now < self.next_rate_check {
            return;
        }
        self.next_rate_check = now + RATE_INTERVAL;
        for branch in self.peers.values() {
            branch.read_link();
        }
        if now >= self.next_link_report {
            self.next_link_report = now + LINK_REPORT;
            self.report_links();
        }
        if self.producer.is_none() {
            return;
        }
        self.place_viewers(now);
        let Some(producer) = self.producer.as_ref() else {
            return;
        };
        self.stats
            .encoders
            .store(producer.encoders_running(), Ordering::Relaxed);
        let target = self.target_bitrate();
        let current = self.bitrate_kbps;
        let change = (f64::from(target) - f64::from(current)).abs() / f64::from(current.max(1));
        if change < MIN_CHANGE && target != self.config.bitrate.1 {
            return;
        }
        if target != current && producer.set_bitrate(target) {
            tracing::debug!(from = current, to = target, "encoder bitrate (kbit/s)");
            self.bitrate_kbps = target;
            self.stats
                .encoder_bitrate_kbps
                .store(u64::from(target), Ordering::Relaxed);
        }
    }

    fn report_links(&self) {
        for (peer, branch) in &self.peers {
            if !branch.is_connected() {
                continue;
            }
            let t = &branch.traffic;
            (self.events)(super::MediaEvent::Link {
                peer: *peer,
                estimate_kbps: branch.link.estimate_bps().map(|b| b / 1000),
                encoder_kbps: u64::from(self.bitrate_kbps),
                loss_permille: t.loss_permille.load(Ordering::Relaxed),
                retransmitted: t.retransmitted.load(Ordering::Relaxed),
                rung: self.rung_name(*peer),
            });
        }
    }

    /// A new producer's encoder starts at `--bitrate` (its fragment's).
    pub(super) fn reset_bitrate(&mut self) {
        self.bitrate_kbps = self.config.bitrate.1;
        self.stats
            .encoder_bitrate_kbps
            .store(u64::from(self.bitrate_kbps), Ordering::Relaxed);
    }
}
