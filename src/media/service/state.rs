//! The media thread's state: one [`Service`], which every other module of
//! the service extends with its own `impl` block.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use super::config::MediaConfig;
use super::events::MediaEvent;
use super::handle::{Command, PeerKind, ReplyTx};
use super::stats::MediaStats;
use crate::media::backoff::Backoff;
use crate::media::keyframes::KeyframeGate;
use crate::media::peer::PeerBranch;
use crate::media::producer::Producer;
use crate::media::recording::{RecordingBranch, RecordingSummary};
use crate::media::rung::Rung;
use crate::media::PeerId;

pub(super) struct Service {
    pub(super) config: MediaConfig,
    pub(super) tx: mpsc::Sender<Command>,
    pub(super) events: Box<dyn Fn(MediaEvent) + Send>,
    pub(super) stats: Arc<MediaStats>,
    pub(super) producer: Option<Producer>,
    /// What the producer's live source needs kept open while it runs.
    pub(super) keep: Option<Box<dyn Send>>,
    /// Set while a live source is being opened (dropping it abandons that).
    pub(super) opening: Option<Box<dyn Send>>,
    /// Set while a lost live source is being replaced under the running
    /// producer: the attempt, and when to give up and rebuild instead.
    pub(super) swapping: Option<(Box<dyn Send>, Instant)>,
    /// Clients were told the capture waits for something (a dialog): they
    /// hear when it is back even without a failure before.
    pub(super) announced: bool,
    /// The current opening was asked for by
    /// [`MediaHandle::prepare`](super::handle::MediaHandle::prepare): with
    /// nobody watching it is neither abandoned nor turned into a producer.
    pub(super) preparing: bool,
    /// What the current opening waits for, told to clients joining meanwhile.
    pub(super) notice: Option<String>,
    /// Bumped per producer, so messages from a stopped one are ignored.
    pub(super) generation: u64,
    /// The producer delivered caps: peers can negotiate.
    pub(super) ready: bool,
    pub(super) started_at: Option<Instant>,
    /// Peers that joined before the producer was ready.
    pub(super) waiting: Vec<PeerId>,
    pub(super) peers: HashMap<PeerId, PeerBranch>,
    /// What each peer's connection carries besides video.
    pub(super) kinds: HashMap<PeerId, PeerKind>,
    /// Branches being removed (see `PeerBranch::detach`): the producer
    /// waits for them before it stops.
    pub(super) detaching: Vec<mpsc::Receiver<()>>,
    /// Removed branches, checked for outliving their client.
    pub(super) leftovers: crate::media::leftover::Leftovers,
    pub(super) idle_since: Option<Instant>,
    pub(super) gate: KeyframeGate,
    /// Peers attached but still without an offer, and when to give up.
    pub(super) awaiting_offer: HashMap<PeerId, Instant>,
    /// Last time the tee's buffer count was seen to move, and the count.
    pub(super) flow: (Instant, u64),
    /// Set while the capture is lost: why, and when to try again.
    pub(super) recovery: Option<Recovery>,
    pub(super) backoff: Backoff,
    pub(super) recorder: Recorder,
    /// Peers who drive the desktop: their links set the encoder's bitrate.
    pub(super) driving: HashSet<PeerId>,
    /// The encoder's current target, kbit/s, and when to look again.
    pub(super) bitrate_kbps: u32,
    pub(super) next_rate_check: Instant,
    pub(super) next_link_report: Instant,
    /// The cheaper rung and its readers (`rungs.rs`).
    pub(super) rungs: Rungs,
}

pub(super) struct Recovery {
    pub(super) reason: String,
    /// `None` while a rebuilt producer is starting.
    pub(super) next_try: Option<Instant>,
}

/// The recording asked for, and a stopped file still finishing (see
/// `record.rs`).
#[derive(Default)]
pub(super) struct Recorder {
    pub(super) wanted: Option<Wanted>,
    pub(super) finishing: Option<Finishing>,
}

pub(super) struct Wanted {
    /// The path as given: a `.mkv` file or a directory.
    pub(super) requested: PathBuf,
    pub(super) started_by: String,
    /// Writing, while a producer runs.
    pub(super) branch: Option<RecordingBranch>,
    /// Answered once the first file is being written.
    pub(super) reply: Option<ReplyTx<PathBuf>>,
    /// Files so far (a new one after each capture loss).
    pub(super) files: u32,
}

pub(super) struct Finishing {
    pub(super) branch: RecordingBranch,
    pub(super) done: mpsc::Receiver<()>,
    pub(super) deadline: Instant,
    pub(super) reply: Option<ReplyTx<RecordingSummary>>,
}

impl Service {
    pub(super) fn new(
        config: MediaConfig,
        tx: mpsc::Sender<Command>,
        events: Box<dyn Fn(MediaEvent) + Send>,
        stats: Arc<MediaStats>,
    ) -> Self {
        let config_bitrate_max = config.bitrate.1;
        let config_keyframe_interval = config.keyframe_interval;
        Service {
            gate: KeyframeGate::new(config.keyframe_interval),
            config,
            tx,
            events,
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
            kinds: Default::default(),
            detaching: Vec::new(),
            leftovers: Default::default(),
            idle_since: None,
            awaiting_offer: HashMap::new(),
            flow: (Instant::now(), 0),
            recovery: None,
            backoff: Backoff::default(),
            recorder: Default::default(),
            driving: HashSet::new(),
            bitrate_kbps: config_bitrate_max,
            next_rate_check: Instant::now(),
            next_link_report: Instant::now(),
            rungs: Rungs::new(config_keyframe_interval),
        }
    }
}

/// The cheaper rung and who reads it (`rungs.rs`).
pub(super) struct Rungs {
    pub(super) rung: Option<Rung>,
    pub(super) readers: HashSet<PeerId>,
    /// Since when a viewer has looked too slow (on main) or fast enough (on
    /// the rung).
    pub(super) since: HashMap<PeerId, Instant>,
    pub(super) idle_since: Option<Instant>,
    pub(super) gate: KeyframeGate,
}

impl Rungs {
    pub(super) fn new(keyframe_interval: std::time::Duration) -> Self {
        Rungs {
            rung: None,
            readers: Default::default(),
            since: Default::default(),
            idle_since: None,
            gate: KeyframeGate::new(keyframe_interval),
        }
    }
}
