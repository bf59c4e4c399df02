//! The producer's life: opening a live source, building and starting the
//! pipeline, its first frame, preparing without a viewer, the idle stop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gst::prelude::*;

use super::events::MediaEvent;
use super::handle::Command;
use super::source::{LiveSource, OpenedSource};
use super::state::Service;
use crate::media::producer::{Producer, ProducerConfig};

/// Hands memory freed by the stopped pipeline back to the system: glibc
/// keeps freed heap in its arenas, so an idle agent otherwise stays at the
/// high-water mark of its busiest session (benchmarks: +31 MiB after 200
/// join/leave cycles).
fn release_freed_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free heap pages to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// How long stopping the producer waits for branch removals under way.
const DETACH_WAIT: Duration = Duration::from_secs(1);

impl Service {
    /// Starts opening `source` for the current generation; its notices and
    /// its outcome (wrapped by `done`) come back as commands.
    pub(super) fn open_source(
        &self,
        source: &Arc<dyn LiveSource>,
        done: fn(u64, Result<OpenedSource, String>) -> Command,
    ) -> Box<dyn Send> {
        let generation = self.generation;
        let tx = self.tx.clone();
        let notice_tx = self.tx.clone();
        source.open(
            Box::new(move |signal| {
                let _ = notice_tx.send(Command::SourceNotice(generation, signal));
            }),
            Box::new(move |result| {
                let _ = tx.send(done(generation, result));
            }),
        )
    }

    /// Starts a producer, or with a live source starts opening that (the
    /// producer follows in [`Command::SourceOpened`]).
    pub(super) fn start_producer(&mut self) -> anyhow::Result<()> {
        self.generation += 1;
        let generation = self.generation;
        if let Some(source) = self.config.live_source.clone() {
            self.opening = Some(self.open_source(&source, Command::SourceOpened));
            return Ok(());
        }
        let capture = self.config.producer.capture.clone();
        self.build_producer(generation, capture, None)
    }

    fn build_producer(
        &mut self,
        generation: u64,
        capture: String,
        keep: Option<Box<dyn Send>>,
    ) -> anyhow::Result<()> {
        let config = ProducerConfig {
            capture,
            ..self.config.producer.clone()
        };
        let producer = Producer::build(&config)?;
        producer.count_frames(&self.stats.frames);

        let tx = self.tx.clone();
        let bus = producer
            .pipeline()
            .bus()
            .ok_or_else(|| anyhow::anyhow!("pipeline without bus"))?;
        bus.set_sync_handler(move |_, msg| {
            if matches!(
                msg.type_(),
                gst::MessageType::Error | gst::MessageType::Eos | gst::MessageType::Warning
            ) {
                let _ = tx.send(Command::Bus(generation, msg.clone()));
            }
            gst::BusSyncReply::Drop
        });

        let tx = self.tx.clone();
        let sent = Arc::new(AtomicBool::new(false));
        producer
            .tee_sink()?
            .connect_notify(Some("caps"), move |pad, _| {
                if pad.current_caps().is_some() && !sent.swap(true, Ordering::SeqCst) {
                    let _ = tx.send(Command::ProducerReady(generation));
                }
            });

        producer.start()?;
        tracing::info!("capture and encoder started");
        self.stats.pipeline_starts.fetch_add(1, Ordering::Relaxed);
        self.stats.pipeline_running.store(true, Ordering::Relaxed);
        self.producer = Some(producer);
        self.reset_bitrate();
        self.keep = keep;
        self.ready = false;
        self.started_at = Some(Instant::now());
        Ok(())
    }

    pub(super) fn stop_producer(&mut self) {
        for (_, branch) in self.peers.drain() {
            drop(branch);
        }
        self.forget_rung();
        // Removals still under way finish first (each takes a few ms; a
        // streaming thread stuck on a dead display may never let its pad go
        // idle, hence the bound).
        let deadline = Instant::now() + crate::watchdog::scaled(DETACH_WAIT);
        for rx in self.detaching.drain(..) {
            let left = deadline.saturating_duration_since(Instant::now());
            if let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(left) {
                tracing::debug!("a peer branch was still being removed when the pipeline stopped");
            }
        }
        self.awaiting_offer.clear();
        self.waiting.clear();
        self.close_recording_files();
        if let Some(producer) = self.producer.take() {
            producer.stop();
        }
        // After the pipeline let go of it: e.g. closes the portal session.
        self.keep = None;
        self.opening = None;
        self.swapping = None;
        self.preparing = false;
        self.notice = None;
        self.generation += 1;
        self.ready = false;
        self.started_at = None;
        self.idle_since = None;
        self.stats.pipeline_running.store(false, Ordering::Relaxed);
        self.update_peer_count();
    }

    /// The producer delivered caps: it is up, a recovery ends, and the
    /// waiting peers and the recording get their branches.
    pub(super) fn on_producer_ready(&mut self, generation: u64) {
        if generation == self.generation && !self.ready && self.producer.is_some() {
            self.ready = true;
            self.backoff.reset();
            self.stats.recovering.store(false, Ordering::Relaxed);
            if let Some(r) = self.recovery.take() {
                tracing::info!("capture restored (it was lost: {})", r.reason);
                self.stats.pipeline_restarts.fetch_add(1, Ordering::Relaxed);
                (self.events)(MediaEvent::CaptureRestored);
            } else if self.announced {
                (self.events)(MediaEvent::CaptureRestored);
            }
            self.announced = false;
            self.flow = (Instant::now(), 0);
            if let Some(t) = self.started_at {
                tracing::info!(ms = t.elapsed().as_millis() as u64, "first encoded frame");
            }
            for peer in std::mem::take(&mut self.waiting) {
                self.attach(peer);
            }
            self.attach_recording();
        }
    }

    /// See [`MediaHandle::prepare`](super::handle::MediaHandle::prepare).
    pub(super) fn prepare(&mut self) {
        if self.config.live_source.is_some()
            && self.producer.is_none()
            && self.opening.is_none()
            && self.recovery.is_none()
        {
            self.preparing = true;
            if let Err(e) = self.start_producer() {
                tracing::warn!("preparing the capture: {e:#}");
            }
        }
    }

    /// A live source opened (or could not) for a starting producer.
    pub(super) fn on_source_opened(
        &mut self,
        generation: u64,
        result: Result<OpenedSource, String>,
    ) {
        if generation != self.generation || self.opening.is_none() {
            // Abandoned meanwhile: dropping it closes the session.
            return;
        }
        self.opening = None;
        self.notice = None;
        if std::mem::take(&mut self.preparing)
            && self.waiting.is_empty()
            && !self.recording_wanted()
        {
            // Approved (or not) with nobody to watch yet: the grant
            // is stored, the session closes with `result`.
            match result {
                Ok(_) => {
                    tracing::info!("screen sharing is ready; capture starts with the first viewer")
                }
                Err(e) => tracing::warn!("preparing the capture: {e}"),
            }
            self.generation += 1;
            return;
        }
        let opened = result.and_then(|o| {
            self.build_producer(generation, o.capture, Some(o.keep))
                .map_err(|e| format!("{e:#}"))
        });
        if let Err(why) = opened {
            self.fail_producer(why);
        }
    }

    /// The opening waits for something on the desktop (a dialog): the
    /// peers hear why.
    pub(super) fn on_source_waiting(&mut self, generation: u64, text: String) {
        if generation == self.generation && self.opening.is_some() {
            tracing::warn!("{text}");
            self.notice = Some(text.clone());
            if !self.waiting.is_empty() || !self.peers.is_empty() {
                self.announced = true;
                (self.events)(MediaEvent::CaptureWaiting { reason: text });
            }
        }
    }

    /// Nobody left for `idle_stop`: nothing is captured or encoded.
    pub(super) fn stop_if_idle(&mut self, now: Instant) {
        if let Some(since) = self.idle_since {
            if now >= since + self.config.idle_stop {
                tracing::info!("no clients left: stopping capture and encoder");
                self.stop_producer();
                release_freed_memory();
            }
        }
    }

    /// A starting producer that delivers no frame in time has failed.
    pub(super) fn fail_if_start_late(&mut self, now: Instant) {
        if let (false, Some(t)) = (self.ready, self.started_at) {
            if now >= t + self.config.start_timeout {
                self.fail_producer(format!(
                    "the capture produced no frame within {} s",
                    self.config.start_timeout.as_secs()
                ));
            }
        }
    }
}
