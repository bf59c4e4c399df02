//! One viewer's counters and state, shared by its task, the command loop
//! (`stats`) and its GStreamer callbacks.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a removed viewer may take to say bye and close before we move on.
pub const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// How a viewer is told to go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leave {
    /// Bye, then wait for the agent to close: a polite client.
    Bye,
    /// The socket and the pipeline just go, without a word: a closed tab.
    Drop,
}

/// How a viewer behaves while it joins (`add N way=...`): the ways a real
/// client's join goes wrong, for the churn benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// A normal viewer.
    Normal,
    /// Closes the socket as soon as the offer arrives, never answering: a
    /// tab closed mid-offer.
    MidOffer,
    /// Answers, but keeps its candidates to itself and gives the agent one
    /// that leads nowhere, so the agent's ICE checks fail.
    IceFail,
}

impl Way {
    pub fn parse(s: &str) -> Option<Way> {
        match s {
            "normal" => Some(Way::Normal),
            "midoffer" => Some(Way::MidOffer),
            "icefail" => Some(Way::IceFail),
            _ => None,
        }
    }
}

/// What stats reports for one viewer; shared with the GStreamer callbacks.
pub struct Shared {
    pub id: u64,
    pub added: Instant,
    pub frames: AtomicU64,
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    pub first_frame_sent: AtomicBool,
    /// Frames that ended (marker bit) with a packet of theirs missing.
    pub incomplete: AtomicU64,
    /// Packets missing from the sequence numbers seen.
    pub lost: AtomicU64,
    pub seq: Mutex<SeqState>,
    state: Mutex<String>,
}

/// Where the RTP sequence stands: the last number seen, and whether the
/// frame being received has a gap.
#[derive(Default)]
pub struct SeqState {
    pub last: Option<u16>,
    pub broken: bool,
}

impl Shared {
    /// A viewer just added: nothing counted, `connecting`.
    pub fn new(id: u64) -> Self {
        Shared {
            id,
            added: Instant::now(),
            frames: AtomicU64::new(0),
            packets: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            first_frame_sent: AtomicBool::new(false),
            incomplete: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            seq: Mutex::new(SeqState::default()),
            state: Mutex::new("connecting".into()),
        }
    }

    pub fn set_state(&self, s: &str) {
        if let Ok(mut st) = self.state.lock() {
            *st = s.to_string();
        }
    }
    pub fn state(&self) -> String {
        self.state
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|_| "unknown".into())
    }
}
