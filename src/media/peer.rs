//! One client's branch off the producer's tee: a small leaky queue and a
//! send-only webrtcbin, in a bin of its own so that its errors can be told
//! apart from the producer's and it can be removed without touching anyone
//! else.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use gst::prelude::*;

use crate::media::channels;
use crate::media::feedback_guard::FeedbackGuard;
use crate::media::ice::AgentIce;
use crate::media::link::Link;
use crate::media::producer::Producer;
use crate::media::renumber::Renumber;
use crate::media::rtcp_seen::RtcpSeen;
use crate::media::traffic::PeerTraffic;
use crate::media::PeerId;

/// What a branch reports from GStreamer's threads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BranchEvent {
    /// The local SDP offer, already set as local description.
    Offer(String),
    /// A local ICE candidate.
    Ice { mline: u32, candidate: String },
    /// The peer connection state changed (`connected`, `failed`, ...).
    State(String),
    /// The remote description or a candidate was refused.
    Error(String),
    /// The client asked for a keyframe (PLI/FIR through RTCP).
    KeyframeRequest,
    /// Every local ICE candidate has been reported.
    GatheringDone,
    /// The client's answer would have sent audio, which it may not: it was
    /// made to receive only (`media::microphone::refuse_sending`).
    AudioRefused,
    /// The client opened a data channel of its own (label); see
    /// [`crate::media::channels`].
    ForeignChannel(String),
}

pub type EventSink = Arc<dyn Fn(PeerId, BranchEvent) + Send + Sync>;

pub use crate::media::channels::InputSink;

/// What a client's queue holds at most with sparse frames: 200 ms at
/// 40 Mbit/s.
const QUEUE_BYTES: u32 = 1024 * 1024;

/// At most one keyframe request this often for packets a client lost and
/// will not get again.
const UNREPAIRED_KEYFRAME: Duration = Duration::from_millis(500);

pub struct PeerBranch {
    pub id: PeerId,
    bin: gst::Bin,
    webrtcbin: gst::Element,
    tee_pad: gst::Pad,
    connected: Arc<AtomicBool>,
    /// When RTCP last came from the remote side (see [`RtcpSeen`]).
    rtcp: Arc<RtcpSeen>,
    /// Packets and bytes this client was sent or lost to its queue.
    pub traffic: Arc<PeerTraffic>,
    /// Its link: congestion estimate and retransmissions.
    pub link: Arc<Link>,
    /// Whether this client gives TWCC feedback (`media::feedback_guard`).
    feedback: Arc<FeedbackGuard>,
    /// Sequence numbers across moves between rungs.
    renumber: Renumber,
    events: EventSink,
    /// The audio tee's pad feeding this branch, when there is sound.
    audio_pad: Option<gst::Pad>,
    /// The controller's microphone, while this is its branch.
    microphone: Option<crate::media::microphone::MicGuard>,
    _channels: channels::Opened,
}

/// Name of a peer's bin, also used to attribute bus errors.
pub fn bin_name(id: PeerId) -> String {
    format!("peer-{id}")
}

impl PeerBranch {
    /// Adds the branch to the producer's pipeline and starts negotiation;
    /// the offer arrives as [`BranchEvent::Offer`].
    pub fn attach(
        producer: &Producer,
        id: PeerId,
        ice: &AgentIce,
        events: EventSink,
        sends: channels::Sends,
        microphone: Option<crate::media::microphone::MicSink>,
        bitrate: (u32, u32),
    ) -> Result<Self> {
        let bin = gst::Bin::with_name(&bin_name(id));
        // 200 ms of media, or with sparse frames 1 MiB: GstQueue measures
        // time as newest in minus newest out, so a frame a second after the
        // last (a still desktop's repeat, media::x11src) would read as a
        // second queued and lose its first packets. Whole frames are
        // dropped before either limit (media::frame_drop, 100 ms).
        let (max_bytes, max_time) = if producer.sparse_frames() {
            (QUEUE_BYTES, 0u64)
        } else {
            (0u32, 200_000_000u64)
        };
        let queue = gst::ElementFactory::make("queue")
            .property("max-size-buffers", 0u32)
            .property("max-size-bytes", max_bytes)
            .property("max-size-time", max_time)
            // A stalled client loses its own oldest packets; it never
            // blocks the tee and so never stalls anyone else.
            .property_from_str("leaky", "downstream")
            .build()?;
        let traffic = PeerTraffic::watch(&queue);
        let feedback = Arc::new(FeedbackGuard::default());
        feedback.install(
            &queue
                .static_pad("src")
                .ok_or_else(|| anyhow!("queue has no src pad"))?,
        );
        let ev = events.clone();
        crate::media::frame_drop::install(&queue, move || ev(id, BranchEvent::KeyframeRequest));
        let webrtcbin = gst::ElementFactory::make("webrtcbin")
            .property_from_str("bundle-policy", "max-bundle")
            .build()?;
        if let Some(stun) = &ice.stun {
            webrtcbin.set_property("stun-server", stun);
        }
        if let Some(turn) = &ice.turn {
            // The agent gathers relay candidates too, so either side can
            // relay. webrtcbin refuses a malformed URL with a GStreamer
            // error log only; ours was validated at startup.
            webrtcbin.set_property("turn-server", turn.expose());
        }
        if let Some(frames) = producer.frame_counters() {
            frames.watch_sent(&bin, crate::media::producer::VIDEO_PT as u8);
        }
        bin.add_many([&queue, &webrtcbin])?;
        let uploads = sends.files.is_some();
        crate::media::sctp_budget::install(&webrtcbin, traffic.clone(), uploads);
        let sink = webrtcbin
            .request_pad_simple("sink_%u")
            .ok_or_else(|| anyhow!("webrtcbin gave no sink pad"))?;
        queue
            .static_pad("src")
            .ok_or_else(|| anyhow!("queue has no src pad"))?
            .link(&sink)
            .context("linking queue to webrtcbin")?;
        sink.set_property("msid", crate::media::audio::STREAM_ID);
        let transceiver = sink.property::<gst_webrtc::WebRTCRTPTransceiver>("transceiver");
        transceiver.set_property(
            "direction",
            gst_webrtc::WebRTCRTPTransceiverDirection::Sendonly,
        );
        // Tell webrtcbin the exact stream it will get. Without codec
        // preferences, create-offer queries caps upstream through the tee,
        // which asks every other branch's webrtcbin too: two clients
        // creating offers at once deadlocked that way (AB/BA on their
        // locks), and every later client waited behind them forever.
        if let Some(caps) = producer.tee_sink()?.current_caps() {
            transceiver.set_property("codec-preferences", codec_preferences(&caps));
        }
        // Loss recovery in this client's own webrtcbin: NACK with RTX
        // (RFC 4588) resends what this client lost from its own buffer, at
        // the cost of its own bandwidth only; a keyframe would cost every
        // client's. The payloaded stream from the tee stays shared.
        transceiver.set_property("do-nack", true);
        // No FEC: webrtcbin's ULPFEC/RED (fec-type ulp-red, 20 %) was tried
        // at 5 % loss and the page decoded 10.8 fps with 0 FEC packets
        // counted, against 30 fps with NACK alone (docs/architecture.md).
        let queue_sink = queue
            .static_pad("sink")
            .ok_or_else(|| anyhow!("queue has no sink pad"))?;
        let ghost = gst::GhostPad::with_target(&queue_sink)?;
        bin.add_pad(&ghost)?;

        let link = Link::new(bitrate.0, bitrate.1, traffic.clone());
        let fed = link.clone();
        let ev = events.clone();
        let reports = feedback.clone();
        webrtcbin.connect("request-aux-sender", false, move |_| {
            let (fed, budget) = (fed.clone(), fed.clone());
            let reports = reports.clone();
            let ev = ev.clone();
            // A packet that will not be resent leaves the client's picture
            // broken until a keyframe: ask for one at once (coalesced with
            // everyone's) instead of waiting for the browser to give up on
            // its NACKs, which took seconds (docs/architecture.md).
            let asked = std::sync::Mutex::new(None::<Instant>);
            let sender = crate::media::twcc::aux_sender(
                move |fates| {
                    reports.reports.fetch_add(1, Ordering::Relaxed);
                    fed.on_feedback(&fates)
                },
                move |size| {
                    let allowed = budget.allow_retransmission(size);
                    if !allowed {
                        let now = Instant::now();
                        if let Ok(mut last) = asked.lock() {
                            if last.is_none_or(|t| now.duration_since(t) >= UNREPAIRED_KEYFRAME) {
                                *last = Some(now);
                                ev(id, BranchEvent::KeyframeRequest);
                            }
                        }
                    }
                    allowed
                },
            )
            .ok()?;
            Some(crate::media::twcc::floating_value(sender))
        });
        let connected = Arc::new(AtomicBool::new(false));
        connect_signals(&webrtcbin, id, events.clone(), connected.clone());
        let rtcp = RtcpSeen::watch(&webrtcbin);

        let pipeline = producer.pipeline();
        pipeline.add(&bin)?;
        // Running before linked: the tee pushes sticky events into a new
        // pad at once, and a branch still in NULL answers FLUSHING, which
        // the tee hands upstream; the capture task then pauses for good,
        // silently, and every client freezes.
        if let Err(e) = bin.sync_state_with_parent() {
            crate::media::receive_guard::stop(&bin);
            let _ = pipeline.remove(&bin);
            return Err(anyhow!("starting the peer branch: {e}"));
        }
        // The sound, a second track in the same offer.
        let audio_pad = match producer.audio_tee() {
            Some(tee) => {
                match crate::media::audio::attach_branch(
                    &bin,
                    &webrtcbin,
                    tee,
                    connected.clone(),
                    microphone.is_some(),
                ) {
                    Ok(pad) => Some(pad),
                    Err(e) => {
                        crate::media::receive_guard::stop(&bin);
                        let _ = pipeline.remove(&bin);
                        return Err(e);
                    }
                }
            }
            None => None,
        };
        // Data channels can only be created once webrtcbin is READY, and
        // must exist before the offer so that it carries them.
        let channels = channels::open_all(&webrtcbin, id, sends, &traffic);
        let ev = events.clone();
        channels::refuse_foreign(&webrtcbin, move |label| {
            ev(id, BranchEvent::ForeignChannel(label))
        });
        create_offer(&webrtcbin, id, events.clone());

        let Some(tee_pad) = producer.tee().request_pad_simple("src_%u") else {
            if let Some(pad) = audio_pad {
                crate::media::audio::detach_branch(pad);
            }
            crate::media::receive_guard::stop(&bin);
            let _ = pipeline.remove(&bin);
            return Err(anyhow!("tee gave no src pad"));
        };
        crate::media::gate::until_connected(&tee_pad, connected.clone());
        intercept_keyframe_requests(&tee_pad, id, events.clone());
        let renumber = Renumber::default();
        renumber.install(&tee_pad);
        if let Err(e) = tee_pad.link(&ghost) {
            producer.tee().release_request_pad(&tee_pad);
            if let Some(pad) = audio_pad {
                crate::media::audio::detach_branch(pad);
            }
            crate::media::receive_guard::stop(&bin);
            let _ = pipeline.remove(&bin);
            return Err(anyhow!("linking tee to peer: {e}"));
        }
        let microphone =
            microphone.map(|mic| crate::media::microphone::receive(&webrtcbin, &bin, mic));
        Ok(PeerBranch {
            id,
            bin,
            webrtcbin,
            tee_pad,
            connected,
            rtcp,
            traffic,
            link,
            feedback,
            renumber,
            events,
            audio_pad,
            microphone,
            _channels: channels,
        })
    }

    /// How long since the remote side last sent RTCP (reports, feedback),
    /// or since the branch was made if it never did. A receiver that is
    /// gone without a word (an SFU behind WHIP, which has no session to
    /// watch) stops sending it.
    pub fn rtcp_silence(&self) -> Duration {
        self.rtcp.silence()
    }

    /// Moves the branch to another rung's tee (`tee`): it starts at that
    /// rung's next keyframe, with its sequence numbers continued, on the
    /// same connection. The old tee pad goes once it is idle.
    pub fn move_to(&mut self, tee: &gst::Element) -> Result<()> {
        let ghost = self
            .bin
            .static_pad("sink")
            .ok_or_else(|| anyhow!("branch has no sink pad"))?;
        let new_pad = tee
            .request_pad_simple("src_%u")
            .ok_or_else(|| anyhow!("the rung's tee gave no src pad"))?;
        crate::media::renumber::wait_for_keyframe(&new_pad);
        intercept_keyframe_requests(&new_pad, self.id, self.events.clone());
        self.renumber.install(&new_pad);
        let old = std::mem::replace(&mut self.tee_pad, new_pad.clone());
        let renumber = self.renumber.clone();
        old.add_probe(gst::PadProbeType::IDLE, move |pad, _| {
            let _ = pad.unlink(&ghost);
            renumber.moved();
            if let Err(e) = new_pad.link(&ghost) {
                tracing::warn!("moving a branch between rungs: {e}");
            }
            if let Some(tee) = pad.parent_element() {
                let pad = pad.clone();
                tee.call_async(move |tee| tee.release_request_pad(&pad));
            }
            gst::PadProbeReturn::Remove
        });
        Ok(())
    }

    /// Refreshes the retransmission counters (the media thread's timer).
    pub fn read_link(&self) {
        self.link.read_retransmissions(&self.webrtcbin);
        if let Some(mic) = &self.microphone {
            mic.check();
        }
        let within = crate::watchdog::scaled(crate::media::feedback_guard::FEEDBACK_WITHIN);
        if self.feedback.silent_for(within) && self.feedback.hide() {
            self.traffic.without_feedback.store(1, Ordering::Relaxed);
            tracing::warn!(
                peer = self.id,
                "no congestion feedback (TWCC) from this client in {} s although it accepted it: \
                 its packets go without the extension from now on (GStreamer keeps a record of \
                 each stamped packet until feedback comes)",
                within.as_secs()
            );
        }
    }

    /// The branch's bin (in the producer's pipeline while attached).
    pub fn bin(&self) -> &gst::Bin {
        &self.bin
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// webrtcbin's ICE connection state, for logs (`checking`, `failed`, ...).
    pub fn ice_state(&self) -> String {
        let state = self
            .webrtcbin
            .property::<gst_webrtc::WebRTCICEConnectionState>("ice-connection-state");
        match state {
            gst_webrtc::WebRTCICEConnectionState::New => "new",
            gst_webrtc::WebRTCICEConnectionState::Checking => "checking",
            gst_webrtc::WebRTCICEConnectionState::Connected => "connected",
            gst_webrtc::WebRTCICEConnectionState::Completed => "completed",
            gst_webrtc::WebRTCICEConnectionState::Failed => "failed",
            gst_webrtc::WebRTCICEConnectionState::Disconnected => "disconnected",
            gst_webrtc::WebRTCICEConnectionState::Closed => "closed",
            _ => "unknown",
        }
        .into()
    }

    /// Applies the client's SDP answer.
    pub fn set_answer(&self, sdp: &str, id: PeerId, events: EventSink) -> Result<()> {
        let mut message = gst_sdp::SDPMessage::parse_buffer(sdp.as_bytes())
            .map_err(|_| anyhow!("the answer is not valid SDP"))?;
        if self.microphone.is_none() && crate::media::microphone::refuse_sending(&mut message) {
            events(id, BranchEvent::AudioRefused);
        }
        if message.medias_len() == 0 {
            return Err(anyhow!("the answer has no media section"));
        }
        if !crate::media::feedback_guard::answer_accepts_twcc(&message) && self.feedback.hide() {
            self.traffic.without_feedback.store(1, Ordering::Relaxed);
            tracing::info!(
                peer = id,
                "the client's answer declined transport-wide congestion control: \
                 its packets go without the extension, at its rung's full rate"
            );
        }
        let answer =
            gst_webrtc::WebRTCSessionDescription::new(gst_webrtc::WebRTCSDPType::Answer, message);
        let promise = gst::Promise::with_change_func(move |reply| {
            if let Some(reason) = promise_error(reply) {
                events(id, BranchEvent::Error(format!("answer refused: {reason}")));
            }
        });
        self.webrtcbin
            .emit_by_name::<()>("set-remote-description", &[&answer, &promise]);
        Ok(())
    }

    /// Adds a remote ICE candidate.
    pub fn add_ice(&self, mline: u32, candidate: &str) {
        self.webrtcbin
            .emit_by_name::<()>("add-ice-candidate", &[&mline, &candidate]);
    }

    /// Removes the branch without disturbing the stream: wait until the tee
    /// pad is idle, unlink it, then release the pad and stop the branch from
    /// the pipeline's async context (never from a streaming thread). The
    /// returned receiver hears (or sees its sender dropped) once that is
    /// done: the pipeline must not be stopped while a removal is under way,
    /// or the two race over the same elements (seen as a crash on SIGTERM).
    pub fn detach(self, producer: &Producer) -> mpsc::Receiver<()> {
        let (done_tx, done_rx) = mpsc::sync_channel::<()>(1);
        let pipeline = producer.pipeline().clone();
        // The tee it reads now: the main one, or a rung's.
        let tee = self
            .tee_pad
            .parent_element()
            .unwrap_or_else(|| producer.tee().clone());
        let bin = self.bin;
        if let Some(pad) = self.audio_pad {
            crate::media::audio::detach_branch(pad);
        }
        self.tee_pad
            .add_probe(gst::PadProbeType::IDLE, move |pad, _| {
                if let Some(peer) = pad.peer() {
                    let _ = pad.unlink(&peer);
                }
                let pad = pad.clone();
                let tee = tee.clone();
                let bin = bin.clone();
                let done = done_tx.clone();
                pipeline.call_async(move |pipeline| {
                    tee.release_request_pad(&pad);
                    crate::media::receive_guard::stop(&bin);
                    let _ = pipeline.remove(&bin);
                    drop(bin);
                    crate::media::heap::give_back();
                    let _ = done.try_send(());
                });
                gst::PadProbeReturn::Remove
            });
        done_rx
    }
}

/// The producer's RTP caps without the per-stream fields that do not
/// belong in an offer. The SSRC stays: the offer names it (`a=ssrc`), and
/// an SFU demultiplexes by it (Janus drops packets of an SSRC its offer did
/// not name; browsers go by the MID and take either).
fn codec_preferences(caps: &gst::Caps) -> gst::Caps {
    let mut caps = caps.copy();
    if let Some(s) = caps.make_mut().structure_mut(0) {
        for field in ["timestamp-offset", "seqnum-offset"] {
            s.remove_field(field);
        }
    }
    caps
}

/// webrtcbin turns a client's PLI/FIR into an upstream force-key-unit event.
/// Left alone, every client's request would reach the shared encoder; here
/// they are taken off the pad and handed to the coalescer instead.
fn intercept_keyframe_requests(pad: &gst::Pad, id: PeerId, events: EventSink) {
    pad.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
        let is_fku = match info.data.as_ref() {
            Some(gst::PadProbeData::Event(ev)) => {
                gst_video::UpstreamForceKeyUnitEvent::parse(ev).is_ok()
            }
            _ => false,
        };
        if is_fku {
            events(id, BranchEvent::KeyframeRequest);
            // Handled, not Drop: the event is consumed here and the sender
            // is told it succeeded.
            gst::PadProbeReturn::Handled
        } else {
            gst::PadProbeReturn::Ok
        }
    });
}

/// Creates the offer and sets it as local description. Called once the
/// transceiver and data channels exist; renegotiation is not supported.
fn create_offer(webrtcbin: &gst::Element, id: PeerId, ev: EventSink) {
    let wb = webrtcbin.downgrade();
    let promise = gst::Promise::with_change_func(move |reply| {
        let Some(webrtcbin) = wb.upgrade() else {
            return;
        };
        let offer = match reply {
            Ok(Some(s)) => s.get::<gst_webrtc::WebRTCSessionDescription>("offer").ok(),
            _ => None,
        };
        let Some(offer) = offer else {
            ev(
                id,
                BranchEvent::Error(format!(
                    "could not create an offer: {}",
                    promise_error(reply).unwrap_or_else(|| "no reply".into())
                )),
            );
            return;
        };
        webrtcbin.emit_by_name::<()>("set-local-description", &[&offer, &None::<gst::Promise>]);
        match offer.sdp().as_text() {
            Ok(sdp) => ev(id, BranchEvent::Offer(sdp)),
            Err(e) => ev(id, BranchEvent::Error(format!("offer SDP: {e}"))),
        }
    });
    webrtcbin.emit_by_name::<()>("create-offer", &[&None::<gst::Structure>, &promise]);
}

fn connect_signals(
    webrtcbin: &gst::Element,
    id: PeerId,
    events: EventSink,
    connected: Arc<AtomicBool>,
) {
    let ev = events.clone();
    webrtcbin.connect("on-ice-candidate", false, move |values| {
        let mline = values[1].get::<u32>().ok()?;
        let candidate = values[2].get::<String>().ok()?;
        ev(id, BranchEvent::Ice { mline, candidate });
        None
    });

    let ev = events.clone();
    webrtcbin.connect_notify(Some("ice-gathering-state"), move |webrtcbin, _| {
        let state =
            webrtcbin.property::<gst_webrtc::WebRTCICEGatheringState>("ice-gathering-state");
        if state == gst_webrtc::WebRTCICEGatheringState::Complete {
            ev(id, BranchEvent::GatheringDone);
        }
    });

    webrtcbin.connect_notify(Some("connection-state"), move |webrtcbin, _| {
        let state = webrtcbin.property::<gst_webrtc::WebRTCPeerConnectionState>("connection-state");
        let name = connection_state_name(state);
        if state == gst_webrtc::WebRTCPeerConnectionState::Connected {
            connected.store(true, Ordering::Relaxed);
        }
        events(id, BranchEvent::State(name.into()));
    });
}

/// A peer connection state as the W3C API spells it.
pub fn connection_state_name(state: gst_webrtc::WebRTCPeerConnectionState) -> &'static str {
    match state {
        gst_webrtc::WebRTCPeerConnectionState::New => "new",
        gst_webrtc::WebRTCPeerConnectionState::Connecting => "connecting",
        gst_webrtc::WebRTCPeerConnectionState::Connected => "connected",
        gst_webrtc::WebRTCPeerConnectionState::Disconnected => "disconnected",
        gst_webrtc::WebRTCPeerConnectionState::Failed => "failed",
        gst_webrtc::WebRTCPeerConnectionState::Closed => "closed",
        _ => "unknown",
    }
}

/// The error text of a failed webrtcbin promise, if it failed.
fn promise_error(reply: Result<Option<&gst::StructureRef>, gst::PromiseError>) -> Option<String> {
    match reply {
        Err(e) => Some(format!("{e:?}")),
        Ok(None) => None,
        Ok(Some(s)) => s
            .get::<gst::glib::Error>("error")
            .ok()
            .map(|e| e.to_string()),
    }
}
