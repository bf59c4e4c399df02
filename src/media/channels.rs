//! The data channels of a client's connection. The agent opens every one
//! of them, before the offer so that it carries them; a channel the client
//! opens itself is not part of the protocol. webrtcbin builds elements and
//! unbounded queues for each channel it is handed, and its delivery thread
//! can fall behind a client that sends as fast as it can, so such a channel
//! is never served: the client is reported (and then cut off) instead.

use gst::prelude::*;

use std::sync::Arc;

use crate::media::data_channel::create;
use crate::media::traffic::PeerTraffic;
use crate::media::PeerId;

/// Receives the bytes of every data-channel message of a peer.
pub type InputSink = Arc<dyn Fn(PeerId, &[u8]) + Send + Sync>;

/// Keys and buttons reliable and ordered (a lost key-up is a stuck key);
/// pointer motion and gamepad axes unordered without retransmits (the
/// latest value wins).
const CHANNELS: &[(&str, bool)] = &[("input", true), ("motion", false)];

/// Opens the agent's input channels on a READY webrtcbin; every message
/// on them goes to `input` (which rate-limits and checks roles).
pub fn open(
    webrtcbin: &gst::Element,
    id: PeerId,
    input: &InputSink,
    traffic: &Arc<PeerTraffic>,
) -> Vec<gst_webrtc::WebRTCDataChannel> {
    let mut channels = Vec::new();
    for (label, reliable) in CHANNELS {
        let Some(c) = create(webrtcbin, label, *reliable, traffic) else {
            tracing::warn!(peer = id, label, "could not create a data channel");
            continue;
        };
        let sink = input.clone();
        c.connect("on-message-data", false, move |values| {
            if let Some(Ok(Some(data))) = values.get(1).map(|v| v.get::<Option<gst::glib::Bytes>>())
            {
                sink(id, &data);
            }
            None
        });
        let sink = input.clone();
        // Text is not part of the input protocol: passed on empty, it is
        // counted as malformed.
        c.connect("on-message-string", false, move |_| {
            sink(id, &[]);
            None
        });
        channels.push(c);
    }
    channels
}

/// The channels a client gets (a viewer's: the pointer's only, if any).
#[derive(Default)]
pub struct Sends {
    /// Input and motion: the controller's and the players'.
    pub input: Option<InputSink>,
    /// The clipboard: the controller's only.
    pub clipboard: Option<Arc<crate::media::clipboard_channel::ClipboardHub>>,
    /// The pointer's shapes (everyone's, with `--pointer page`), and its
    /// places too when the flag is set (pages that draw the remote one).
    pub pointer: Option<(Arc<crate::media::pointer_channel::PointerHub>, bool)>,
    /// Uploads: the controller's only.
    pub files: Option<Arc<crate::media::files_channel::FilesHub>>,
}

/// A branch's open channels, held as long as it lives.
pub struct Opened {
    _input: Vec<gst_webrtc::WebRTCDataChannel>,
    _clipboard: Option<crate::media::clipboard_channel::Registered>,
    _pointer: Option<crate::media::pointer_channel::Registered>,
    _files: Option<crate::media::files_channel::Opened>,
}

/// Opens what `sends` asks for on a READY webrtcbin.
pub fn open_all(
    webrtcbin: &gst::Element,
    id: PeerId,
    sends: Sends,
    traffic: &Arc<PeerTraffic>,
) -> Opened {
    Opened {
        _input: sends
            .input
            .map(|input| open(webrtcbin, id, &input, traffic))
            .unwrap_or_default(),
        _clipboard: sends
            .clipboard
            .and_then(|hub| hub.open(webrtcbin, id, traffic)),
        _pointer: sends
            .pointer
            .and_then(|(hub, places)| hub.open(webrtcbin, id, places, traffic)),
        _files: sends.files.and_then(|hub| hub.open(webrtcbin, id, traffic)),
    }
}

/// Tells `refused` the label (cut short) of each channel the client opens.
pub fn refuse_foreign(webrtcbin: &gst::Element, refused: impl Fn(String) + Send + Sync + 'static) {
    webrtcbin.connect("on-data-channel", false, move |values| {
        let label = values
            .get(1)
            .and_then(|v| v.get::<gst_webrtc::WebRTCDataChannel>().ok())
            .and_then(|c| c.label())
            .map(|l| l.chars().take(64).collect::<String>())
            .unwrap_or_default();
        refused(label);
        None
    });
}
