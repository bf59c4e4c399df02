//! The media service: a dedicated thread that owns the producer and every
//! peer branch. GStreamer calls that may block (state changes) run here,
//! never on the async runtime. The rest of oriel talks to it through a
//! cloneable [`MediaHandle`] and hears back through [`MediaEvent`]s.
//!
//! Lifecycle: the producer starts with the first peer and stops
//! `idle_stop` after the last one left, so nobody watching means nothing is
//! captured or encoded.
//!
//! Recovery: when the shared part fails (the X server died, the source
//! ended or stalled), every branch is dropped but the peers are kept
//! waiting, [`MediaEvent::CaptureLost`] goes out, and the producer is
//! rebuilt with backoff (0.5 s doubling to 5 s), each attempt only after
//! the display answers. Once it delivers frames again the waiting peers get
//! fresh branches (new offers) and [`MediaEvent::CaptureRestored`] goes out.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gst::prelude::*;

use crate::media::backoff::Backoff;
use crate::media::ice::IceServers;
use crate::media::keyframes::KeyframeGate;
use crate::media::peer::{bin_name, BranchEvent, EventSink, PeerBranch};
use crate::media::producer::{Producer, ProducerConfig};
use crate::media::trial::error_text;
use crate::media::PeerId;

mod record;
pub use record::Reply;

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
            | MediaEvent::PeerFailed { peer, .. } => Some(*peer),
            MediaEvent::CaptureLost { .. }
            | MediaEvent::CaptureWaiting { .. }
            | MediaEvent::CaptureRestored => None,
        }
    }
}

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

#[derive(Clone)]
pub struct MediaConfig {
    pub producer: ProducerConfig,
    /// STUN/TURN servers; each peer's webrtcbin gets its own credentials.
    pub ice: IceServers,
    pub keyframe_interval: Duration,
    pub idle_stop: Duration,
    /// How long the producer may take to deliver its first encoded frame.
    pub start_timeout: Duration,
    /// Where data-channel bytes go; `None` opens no data channels.
    pub input: Option<crate::media::peer::InputSink>,
    /// Asked before each rebuild after a failure; `None` always tries.
    pub source_check: Option<SourceCheck>,
    /// Opened before each producer start; its fragment replaces
    /// `producer.capture`.
    pub live_source: Option<Arc<dyn LiveSource>>,
}

/// Counters shared with the metrics endpoint.
#[derive(Debug, Default)]
pub struct MediaStats {
    pub peers: AtomicU64,
    pub pipeline_running: AtomicBool,
    /// The capture is lost and being retried (peers wait for it).
    pub recovering: AtomicBool,
    pub pipeline_starts: AtomicU64,
    pub pipeline_failures: AtomicU64,
    /// Rebuilds after a failure that delivered frames again.
    pub pipeline_restarts: AtomicU64,
    pub keyframes_requested: AtomicU64,
    pub keyframes_forced: AtomicU64,
    pub keyframes_coalesced: AtomicU64,
    /// Frames through the encoder.
    pub frames: Arc<crate::media::traffic::FrameCounters>,
    /// Each live branch's packet and byte counters.
    pub traffic: crate::media::traffic::PeerTrafficMap,
    /// Whether and where a recording is written, and what it got.
    pub recording: Arc<crate::media::recording::RecordingStats>,
}

enum Command {
    /// A peer; `false` for one that sends no input (an SFU publisher): its
    /// connection carries no data channels.
    AddPeer(PeerId, bool),
    RemovePeer(PeerId),
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
    StartRecording(
        std::path::PathBuf,
        String,
        record::ReplyTx<std::path::PathBuf>,
    ),
    StopRecording(record::ReplyTx<crate::media::recording::RecordingSummary>),
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
    pub fn add_peer(&self, peer: PeerId) {
        let _ = self.tx.send(Command::AddPeer(peer, true));
    }
    /// A peer that only receives video (an SFU publisher): no data
    /// channels in its offer. Otherwise like any peer: it keeps the
    /// producer running, its keyframe requests are coalesced with the
    /// browsers', and it is re-offered after a capture loss.
    pub fn add_receiver(&self, peer: PeerId) {
        let _ = self.tx.send(Command::AddPeer(peer, false));
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
    pub fn start_recording(
        &self,
        path: std::path::PathBuf,
        started_by: String,
    ) -> Reply<std::path::PathBuf> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let _ = self.tx.send(Command::StartRecording(path, started_by, tx));
        rx
    }
    /// Stops the recording; the reply comes once the file is complete
    /// (duration and index written), with what it got.
    pub fn stop_recording(&self) -> Reply<crate::media::recording::RecordingSummary> {
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

/// Starts the media thread. `events` receives everything peers report.
pub fn spawn(
    config: MediaConfig,
    events: impl Fn(MediaEvent) + Send + 'static,
) -> std::io::Result<MediaHandle> {
    let (tx, rx) = mpsc::channel();
    let stats = Arc::new(MediaStats::default());
    let handle = MediaHandle {
        tx: tx.clone(),
        stats: stats.clone(),
    };
    std::thread::Builder::new()
        .name("oriel-media".into())
        .spawn(move || {
            let mut service = Service {
                gate: KeyframeGate::new(config.keyframe_interval),
                config,
                tx,
                events: Box::new(events),
                stats,
                producer: None,
                keep: None,
                opening: None,
                swapping: None,
                announced: false,
                preparing: false,
                notice: None,
                generation: 0,
                ready: false,
                started_at: None,
                waiting: Vec::new(),
                peers: HashMap::new(),
                without_input: Default::default(),
                detaching: Vec::new(),
                idle_since: None,
                awaiting_offer: HashMap::new(),
                flow: (Instant::now(), 0),
                recovery: None,
                backoff: Backoff::default(),
                recorder: Default::default(),
            };
            service.run(rx);
        })?;
    Ok(handle)
}

struct Service {
    config: MediaConfig,
    tx: mpsc::Sender<Command>,
    events: Box<dyn Fn(MediaEvent) + Send>,
    stats: Arc<MediaStats>,
    producer: Option<Producer>,
    /// What the producer's live source needs kept open while it runs.
    keep: Option<Box<dyn Send>>,
    /// Set while a live source is being opened (dropping it abandons that).
    opening: Option<Box<dyn Send>>,
    /// Set while a lost live source is being replaced under the running
    /// producer: the attempt, and when to give up and rebuild instead.
    swapping: Option<(Box<dyn Send>, Instant)>,
    /// Clients were told the capture waits for something (a dialog): they
    /// hear when it is back even without a failure before.
    announced: bool,
    /// The current opening was asked for by [`MediaHandle::prepare`]: with
    /// nobody watching it is neither abandoned nor turned into a producer.
    preparing: bool,
    /// What the current opening waits for, told to clients joining meanwhile.
    notice: Option<String>,
    /// Bumped per producer, so messages from a stopped one are ignored.
    generation: u64,
    /// The producer delivered caps: peers can negotiate.
    ready: bool,
    started_at: Option<Instant>,
    /// Peers that joined before the producer was ready.
    waiting: Vec<PeerId>,
    peers: HashMap<PeerId, PeerBranch>,
    /// Peers whose connection carries no data channels.
    without_input: std::collections::HashSet<PeerId>,
    /// Branches being removed (see `PeerBranch::detach`): the producer
    /// waits for them before it stops.
    detaching: Vec<mpsc::Receiver<()>>,
    idle_since: Option<Instant>,
    gate: KeyframeGate,
    /// Peers attached but still without an offer, and when to give up.
    awaiting_offer: HashMap<PeerId, Instant>,
    /// Last time the tee's buffer count was seen to move, and the count.
    flow: (Instant, u64),
    /// Set while the capture is lost: why, and when to try again.
    recovery: Option<Recovery>,
    backoff: Backoff,
    recorder: record::Recorder,
}

struct Recovery {
    reason: String,
    /// `None` while a rebuilt producer is starting.
    next_try: Option<Instant>,
}

/// A running producer whose tee saw no buffer for this long has stalled
/// (a streaming task can stop without an error message): restart it.
const STALL_TIMEOUT: Duration = Duration::from_secs(4);
const STALL_CHECK: Duration = Duration::from_secs(1);

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

/// A branch that has not produced its offer by then is failed, so its
/// client reconnects instead of waiting forever.
const OFFER_TIMEOUT: Duration = Duration::from_secs(5);

/// A connected receiver without input (an SFU) that sent no RTCP for this
/// long (or none since its branch was made) is gone: its branch is failed, so the publish task
/// retries. Receivers send reports every few seconds at most (RFC 3550's
/// interval, 5 s nominal; Janus and browsers about 1 s).
const RTCP_SILENCE: Duration = Duration::from_secs(12);

/// A replacement live source that is not open by then is given up: the
/// producer is rebuilt the usual way (clients are told, backoff).
const SWAP_TIMEOUT: Duration = Duration::from_secs(5);

impl Service {
    fn run(&mut self, rx: mpsc::Receiver<Command>) {
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
        let stall = (self.ready && self.producer.is_some()).then(|| Instant::now() + STALL_CHECK);
        let retry = self.recovery.as_ref().and_then(|r| r.next_try);
        let swap = self.swapping.as_ref().map(|(_, t)| *t);
        let recording = self.recording_deadline();
        [
            self.gate.deadline(),
            idle,
            start,
            offer,
            stall,
            retry,
            swap,
            recording,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn on_timers(&mut self) {
        let now = Instant::now();
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
                OFFER_TIMEOUT.as_secs()
            );
            self.remove_peer(peer);
            (self.events)(MediaEvent::PeerFailed {
                peer,
                reason: "the media branch produced no offer in time".into(),
            });
        }
        if self.gate.poll(now) {
            self.force_keyframe();
        }
        let silent: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(peer, b)| {
                self.without_input.contains(peer)
                    && b.is_connected()
                    && b.rtcp_silence() >= RTCP_SILENCE
            })
            .map(|(peer, _)| *peer)
            .collect();
        for peer in silent {
            let reason = format!(
                "no RTCP from the receiver for {} s: it is gone",
                RTCP_SILENCE.as_secs()
            );
            tracing::warn!(peer, "{reason}");
            self.remove_peer(peer);
            (self.events)(MediaEvent::PeerFailed { peer, reason });
        }
        self.poll_recording(now);
        if self.swapping.as_ref().is_some_and(|(_, t)| now >= *t) {
            self.swapping = None;
            self.fail_producer(format!(
                "the capture source was lost and no new one opened within {} s",
                SWAP_TIMEOUT.as_secs()
            ));
            return;
        }
        if let (true, Some(producer)) = (self.ready, self.producer.as_ref()) {
            let count = producer.buffers.load(Ordering::Relaxed);
            if count != self.flow.1 {
                self.flow = (now, count);
            } else if now.duration_since(self.flow.0) >= STALL_TIMEOUT {
                self.fail_producer(format!(
                    "the capture stalled: no frame for {} s",
                    STALL_TIMEOUT.as_secs()
                ));
                return;
            }
        }
        if let Some(since) = self.idle_since {
            if now >= since + self.config.idle_stop {
                tracing::info!("no clients left: stopping capture and encoder");
                self.stop_producer();
                release_freed_memory();
            }
        }
        if let (false, Some(t)) = (self.ready, self.started_at) {
            if now >= t + self.config.start_timeout {
                self.fail_producer(format!(
                    "the capture produced no frame within {} s",
                    self.config.start_timeout.as_secs()
                ));
            }
        }
        if self
            .recovery
            .as_ref()
            .and_then(|r| r.next_try)
            .is_some_and(|t| now >= t)
        {
            self.retry_capture();
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

    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::AddPeer(peer, input) => {
                if !input {
                    self.without_input.insert(peer);
                }
                self.add_peer(peer)
            }
            Command::RemovePeer(peer) => self.remove_peer(peer),
            Command::Answer(peer, sdp) => {
                if let Some(branch) = self.peers.get(&peer) {
                    if let Err(e) = branch.set_answer(&sdp, peer, self.event_sink()) {
                        (self.events)(MediaEvent::Error {
                            peer,
                            message: e.to_string(),
                        });
                    }
                }
            }
            Command::Ice(peer, mline, candidate) => {
                if let Some(branch) = self.peers.get(&peer) {
                    branch.add_ice(mline, &candidate);
                }
            }
            Command::Branch(peer, event) => self.on_branch_event(peer, event),
            Command::ProducerReady(generation) => {
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
            Command::Bus(generation, msg) => {
                if generation == self.generation {
                    self.on_bus(msg);
                }
            }
            Command::CaptureLost(reason) => {
                if self.producer.is_some() {
                    self.fail_producer(reason);
                }
            }
            Command::Prepare => {
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
            Command::SourceOpened(generation, result) => {
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
                        Ok(_) => tracing::info!(
                            "screen sharing is ready; capture starts with the first viewer"
                        ),
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
            Command::SourceNotice(generation, SourceSignal::Lost(reason)) => {
                // Only the producer this source was opened for.
                if generation == self.generation && self.producer.is_some() {
                    self.replace_source(reason);
                }
            }
            Command::SwapOpened(generation, result) => {
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
            Command::SourceNotice(generation, SourceSignal::Waiting(text)) => {
                if generation == self.generation && self.opening.is_some() {
                    tracing::warn!("{text}");
                    self.notice = Some(text.clone());
                    if !self.waiting.is_empty() || !self.peers.is_empty() {
                        self.announced = true;
                        (self.events)(MediaEvent::CaptureWaiting { reason: text });
                    }
                }
            }
            Command::StartRecording(path, by, reply) => self.start_recording(path, by, reply),
            Command::StopRecording(reply) => self.stop_recording(reply),
            Command::RecordingFinished => self.poll_recording(Instant::now()),
            Command::Shutdown(_) => unreachable!("handled in run"),
        }
    }

    fn event_sink(&self) -> EventSink {
        let tx = self.tx.clone();
        Arc::new(move |peer, event| {
            let _ = tx.send(Command::Branch(peer, event));
        })
    }

    fn add_peer(&mut self, peer: PeerId) {
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

    fn attach(&mut self, peer: PeerId) {
        let Some(producer) = self.producer.as_ref() else {
            return;
        };
        let ice = self
            .config
            .ice
            .for_agent(&format!("oriel-agent-{peer}"), std::time::SystemTime::now());
        let input = if self.without_input.contains(&peer) {
            None
        } else {
            self.config.input.clone()
        };
        match PeerBranch::attach(producer, peer, &ice, self.event_sink(), input) {
            Ok(branch) => {
                tracing::debug!(peer, "peer branch attached");
                self.peers.insert(peer, branch);
                self.awaiting_offer
                    .insert(peer, Instant::now() + OFFER_TIMEOUT);
            }
            Err(e) => {
                let reason = format!("could not add a media branch: {e:#}");
                tracing::warn!(peer, "{reason}");
                (self.events)(MediaEvent::PeerFailed { peer, reason });
            }
        }
        self.update_peer_count();
    }

    fn remove_peer(&mut self, peer: PeerId) {
        self.without_input.remove(&peer);
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

    fn update_peer_count(&self) {
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

    fn on_branch_event(&mut self, peer: PeerId, event: BranchEvent) {
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
            BranchEvent::KeyframeRequest => self.request_keyframe(),
            BranchEvent::GatheringDone => (self.events)(MediaEvent::GatheringDone { peer }),
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

    fn request_keyframe(&mut self) {
        if self.gate.request(Instant::now()) {
            self.force_keyframe();
        }
        self.sync_keyframe_stats();
    }

    fn force_keyframe(&mut self) {
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

    /// A running producer's live source went away (the monitor changed, the
    /// compositor restarted its streams). The old source keeps repeating
    /// its last frame meanwhile, so first try a new one under the running
    /// encoder: clients keep their connections and see the new picture.
    /// When the source cannot come back at once (the compositor is gone),
    /// or does not within [`SWAP_TIMEOUT`], the producer fails as usual.
    fn replace_source(&mut self, reason: String) {
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

    /// Starts opening `source` for the current generation; its notices and
    /// its outcome (wrapped by `done`) come back as commands.
    fn open_source(
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
    fn start_producer(&mut self) -> anyhow::Result<()> {
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
        self.keep = keep;
        self.ready = false;
        self.started_at = Some(Instant::now());
        Ok(())
    }

    fn stop_producer(&mut self) {
        for (_, branch) in self.peers.drain() {
            drop(branch);
        }
        // Removals still under way finish first (each takes a few ms; a
        // streaming thread stuck on a dead display may never let its pad go
        // idle, hence the bound).
        let deadline = Instant::now() + DETACH_WAIT;
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

    /// The shared part failed: branches go, their peers wait, and the
    /// producer is rebuilt with backoff (see the module comment).
    fn fail_producer(&mut self, reason: String) {
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

    fn on_bus(&mut self, msg: gst::Message) {
        if let Some(bin) = msg.src().and_then(crate::media::recording::recording_bin) {
            match msg.view() {
                gst::MessageView::Error(e) => self.on_recording_error(&bin, &error_text(e)),
                gst::MessageView::Warning(w) => {
                    tracing::debug!(bin, "recording warning: {}", w.error())
                }
                _ => {}
            }
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
