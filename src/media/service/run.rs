//! The media thread's loop: one command at a time, then whatever timer is
//! due; each command goes to the module of its concern.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::handle::Command;
use super::source::SourceSignal;
use super::state::Service;

impl Service {
    pub(super) fn run(&mut self, rx: mpsc::Receiver<Command>) {
        loop {
            let timeout = self
                .next_deadline()
                .map(|d| d.saturating_duration_since(Instant::now()))
                .unwrap_or(Duration::from_secs(3600));
            match rx.recv_timeout(timeout) {
                Ok(Command::Shutdown(done)) => {
                    self.end_recording("the agent is shutting down");
                    self.stop_producer();
                    let _ = done.send(());
                    return;
                }
                Ok(cmd) => self.handle(cmd),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.stop_producer();
                    return;
                }
            }
            self.on_timers();
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let idle = self.idle_since.map(|t| t + self.config.idle_stop);
        let start = match (self.ready, self.started_at) {
            (false, Some(t)) => Some(t + self.config.start_timeout),
            _ => None,
        };
        let offer = self.awaiting_offer.values().min().copied();
        let stall = self.stall_check_deadline();
        let retry = self.recovery.as_ref().and_then(|r| r.next_try);
        let swap = self.swapping.as_ref().map(|(_, t)| *t);
        let recording = self.recording_deadline();
        let rate = self.rate_deadline();
        let leftovers = self.leftovers.deadline();
        [
            self.gate.deadline(),
            idle,
            start,
            offer,
            stall,
            retry,
            swap,
            recording,
            rate,
            leftovers,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn on_timers(&mut self) {
        let now = Instant::now();
        let outlived = self.leftovers.poll(now);
        self.stats
            .branches_outlived
            .fetch_add(outlived, std::sync::atomic::Ordering::Relaxed);
        self.fail_late_offers(now);
        if self.gate.poll(now) {
            self.force_keyframe();
        }
        self.fail_silent_receivers();
        self.poll_recording(now);
        self.adjust_bitrate(now);
        self.poll_rung_keyframes(now);
        // Either one tears the producer down: nothing below applies then.
        if self.fail_if_swap_late(now) || self.fail_if_stalled(now) {
            return;
        }
        self.stop_if_idle(now);
        self.fail_if_start_late(now);
        self.retry_if_due(now);
    }

    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::AddPeer(peer, kind) => self.add_peer(peer, kind),
            Command::RemovePeer(peer) => self.remove_peer(peer),
            Command::Driving(peer, true) => self.set_driving(peer),
            Command::Driving(peer, false) => drop(self.driving.remove(&peer)),
            Command::Answer(peer, sdp) => self.on_answer(peer, sdp),
            Command::Ice(peer, mline, candidate) => self.on_remote_ice(peer, mline, candidate),
            Command::Branch(peer, event) => self.on_branch_event(peer, event),
            Command::ProducerReady(generation) => self.on_producer_ready(generation),
            Command::Bus(generation, msg) => {
                if generation == self.generation {
                    self.on_bus(msg);
                }
            }
            Command::CaptureLost(reason) => self.on_capture_lost(reason),
            Command::Prepare => self.prepare(),
            Command::SourceOpened(generation, result) => self.on_source_opened(generation, result),
            Command::SourceNotice(generation, SourceSignal::Lost(reason)) => {
                // Only the producer this source was opened for.
                if generation == self.generation && self.producer.is_some() {
                    self.replace_source(reason);
                }
            }
            Command::SwapOpened(generation, result) => self.on_swap_opened(generation, result),
            Command::SourceNotice(generation, SourceSignal::Waiting(text)) => {
                self.on_source_waiting(generation, text)
            }
            Command::StartRecording(path, by, reply) => self.start_recording(path, by, reply),
            Command::StopRecording(reply) => self.stop_recording(reply),
            Command::RecordingFinished => self.poll_recording(Instant::now()),
            Command::Shutdown(_) => unreachable!("handled in run"),
        }
    }
}
