//! A failed producer: branches go, peers wait, and the producer is rebuilt
//! with backoff (see the service's module comment); a lost live source is
//! first replaced under the running encoder. Also what counts as a failure
//! of a running producer: a stall, a replacement source that never opens.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::events::MediaEvent;
use super::handle::Command;
use super::source::OpenedSource;
use super::state::{Recovery, Service};
use crate::media::PeerId;

/// A running producer whose tee saw no buffer for this long has stalled
/// (a streaming task can stop without an error message): restart it.
const STALL_TIMEOUT: Duration = Duration::from_secs(4);
const STALL_CHECK: Duration = Duration::from_secs(1);

/// A replacement live source that is not open by then is given up: the
/// producer is rebuilt the usual way (clients are told, backoff).
const SWAP_TIMEOUT: Duration = Duration::from_secs(5);

impl Service {
    /// The shared part failed: branches go, their peers wait, and the
    /// producer is rebuilt with backoff (see the service's module comment).
    pub(super) fn fail_producer(&mut self, reason: String) {
        tracing::error!("capture pipeline failed: {reason}");
        self.stats.pipeline_failures.fetch_add(1, Ordering::Relaxed);
        let mut peers: Vec<PeerId> = self
            .peers
            .keys()
            .copied()
            .chain(self.waiting.iter().copied())
            .collect();
        peers.sort_unstable();
        let recover = !peers.is_empty() || self.recording_wanted();
        if recover {
            // What /healthz and /metrics say changes before (never after)
            // the news reaches the clients: the teardown below may take a
            // second on a loaded machine.
            self.stats.recovering.store(true, Ordering::Relaxed);
        }
        self.stats.pipeline_running.store(false, Ordering::Relaxed);
        if !peers.is_empty() && self.recovery.is_none() {
            // Told before the teardown: clients drop their side while ours
            // is torn down.
            (self.events)(MediaEvent::CaptureLost {
                reason: reason.clone(),
            });
        }
        self.stop_producer();
        if !recover {
            return; // nobody watching: the next join starts afresh
        }
        self.waiting = peers;
        self.update_peer_count();
        let delay = self.backoff.next_delay();
        self.recovery = Some(Recovery {
            reason,
            next_try: Some(Instant::now() + delay),
        });
    }

    /// Told from outside (e.g. the X connection broke).
    pub(super) fn on_capture_lost(&mut self, reason: String) {
        if self.producer.is_some() {
            self.fail_producer(reason);
        }
    }

    /// One recovery attempt: check the source, then rebuild the producer.
    /// Its first frame ([`Command::ProducerReady`]) ends the recovery.
    fn retry_capture(&mut self) {
        if self.waiting.is_empty() && !self.recording_wanted() {
            // Everyone left while the capture was away: the next join starts
            // a fresh producer.
            tracing::info!("capture still lost, but nobody is waiting: stop retrying");
            self.recovery = None;
            self.stats.recovering.store(false, Ordering::Relaxed);
            self.backoff.reset();
            return;
        }
        let attempt = self
            .config
            .source_check
            .as_ref()
            .map_or(Ok(()), |check| check())
            .and_then(|()| self.start_producer().map_err(|e| format!("{e:#}")));
        match attempt {
            Ok(()) => {
                if let Some(r) = self.recovery.as_mut() {
                    r.next_try = None;
                }
            }
            Err(why) => {
                let delay = self.backoff.next_delay();
                tracing::info!(
                    retry_ms = delay.as_millis() as u64,
                    "capture not back yet: {why}"
                );
                if let Some(r) = self.recovery.as_mut() {
                    r.next_try = Some(Instant::now() + delay);
                }
            }
        }
    }

    pub(super) fn retry_if_due(&mut self, now: Instant) {
        if self
            .recovery
            .as_ref()
            .and_then(|r| r.next_try)
            .is_some_and(|t| now >= t)
        {
            self.retry_capture();
        }
    }

    /// A running producer's live source went away (the monitor changed, the
    /// compositor restarted its streams). The old source keeps repeating
    /// its last frame meanwhile, so first try a new one under the running
    /// encoder: clients keep their connections and see the new picture.
    /// When the source cannot come back at once (the compositor is gone),
    /// or does not within [`SWAP_TIMEOUT`], the producer fails as usual.
    pub(super) fn replace_source(&mut self, reason: String) {
        let source = self.config.live_source.clone();
        let check = self
            .config
            .source_check
            .as_ref()
            .map_or(Ok(()), |check| check());
        let (Some(source), true, Ok(()), None) = (source, self.ready, check, &self.swapping) else {
            if self.swapping.is_none() {
                self.fail_producer(reason);
            }
            return;
        };
        tracing::warn!(
            "capture source lost ({reason}): opening a new one under the running encoder"
        );
        let guard = self.open_source(&source, Command::SwapOpened);
        self.swapping = Some((guard, Instant::now() + SWAP_TIMEOUT));
    }

    /// A replacement source opened (or could not) under the running producer.
    pub(super) fn on_swap_opened(&mut self, generation: u64, result: Result<OpenedSource, String>) {
        if generation != self.generation || self.swapping.take().is_none() {
            return; // abandoned meanwhile: dropping it closes it
        }
        let swapped = result.and_then(|o| {
            let producer = self
                .producer
                .as_mut()
                .ok_or_else(|| "the producer is gone".to_string())?;
            producer
                .replace_capture(&o.capture)
                .map_err(|e| format!("{e:#}"))?;
            Ok(o.keep)
        });
        match swapped {
            Ok(keep) => {
                // The old session closes now, after its source stopped.
                self.keep = Some(keep);
                self.flow = (Instant::now(), self.flow.1);
                tracing::info!("capture source replaced; clients kept their connections");
            }
            Err(why) => self.fail_producer(why),
        }
    }

    /// A replacement source not open in time: `true` once the producer failed.
    pub(super) fn fail_if_swap_late(&mut self, now: Instant) -> bool {
        if self.swapping.as_ref().is_some_and(|(_, t)| now >= *t) {
            self.swapping = None;
            self.fail_producer(format!(
                "the capture source was lost and no new one opened within {} s",
                SWAP_TIMEOUT.as_secs()
            ));
            return true;
        }
        false
    }

    /// When a running producer's buffer count is next looked at.
    pub(super) fn stall_check_deadline(&self) -> Option<Instant> {
        (self.ready && self.producer.is_some()).then(|| Instant::now() + STALL_CHECK)
    }

    /// A running producer whose tee stopped moving: `true` once it failed.
    pub(super) fn fail_if_stalled(&mut self, now: Instant) -> bool {
        if let (true, Some(producer)) = (self.ready, self.producer.as_ref()) {
            let count = producer.buffers.load(Ordering::Relaxed);
            if count != self.flow.1 {
                self.flow = (now, count);
            } else if now.duration_since(self.flow.0) >= crate::watchdog::scaled(STALL_TIMEOUT) {
                self.fail_producer(format!(
                    "the capture stalled: no frame for {} s",
                    crate::watchdog::scaled(STALL_TIMEOUT).as_secs()
                ));
                return true;
            }
        }
        false
    }
}
