//! The `clipboard` data channel: only the controller's connection has one
//! (the agent opens it; any channel a client opens itself is refused, see
//! `channels`). Both ways a clipboard is a text message, the header
//! `{"type":"clipboard","mime":MIME,"size":N}`, then N bytes in binary
//! messages of at most [`CHUNK`] (docs/protocol.md, "Clipboard").
//!
//! The hub keeps every open controller channel and the desktop's latest
//! clipboard, so that what is copied on the desktop reaches each of them,
//! and a controller who joins later gets what is there now.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use gst::glib;
use gst::prelude::*;
use serde::Deserialize;

use crate::desktop::clipboard::{Content, Limits, Refusal};
use crate::media::PeerId;

pub const LABEL: &str = "clipboard";

/// Binary pieces the agent sends: well under every browser's SCTP message
/// limit (Chromium's and Firefox's are 256 KiB and more).
const CHUNK: usize = 16 * 1024;

/// Told each clipboard a controller's page sends, or why it was refused.
pub type Deliver = Arc<dyn Fn(PeerId, Result<Content, Refusal>) + Send + Sync>;

/// The controllers' clipboard channels and where their pastes go.
pub struct ClipboardHub {
    pub limits: Limits,
    deliver: Deliver,
    channels: Mutex<HashMap<PeerId, gst_webrtc::WebRTCDataChannel>>,
    latest: Mutex<Option<Content>>,
}

impl ClipboardHub {
    pub fn new(limits: Limits, deliver: Deliver) -> Arc<Self> {
        Arc::new(ClipboardHub {
            limits,
            deliver,
            channels: Mutex::default(),
            latest: Mutex::default(),
        })
    }

    /// The desktop's clipboard changed: to every controller's page; how
    /// many it reached.
    pub fn desktop_copied(&self, content: Content) -> usize {
        let sent = self
            .channels
            .lock()
            .map(|channels| channels.values().filter(|c| send(c, &content)).count())
            .unwrap_or(0);
        if let Ok(mut latest) = self.latest.lock() {
            *latest = Some(content);
        }
        sent
    }

    /// A copy on the desktop was not taken: the pages say why.
    pub fn desktop_refused(&self, why: Refusal) {
        let note = serde_json::json!({ "type": "refused", "reason": why.label(), "limits": self.limits_json() });
        if let Ok(channels) = self.channels.lock() {
            for c in channels.values().filter(|c| is_open(c)) {
                let _ = c.send_string_full(Some(&note.to_string()));
            }
        }
    }

    fn limits_json(&self) -> serde_json::Value {
        serde_json::json!({ "text": self.limits.text, "image": self.limits.image })
    }

    /// Opens the channel on a READY webrtcbin (before the offer), for `id`.
    pub fn open(
        self: &Arc<Self>,
        webrtcbin: &gst::Element,
        id: PeerId,
        traffic: &Arc<crate::media::traffic::PeerTraffic>,
    ) -> Option<Registered> {
        let channel = crate::media::data_channel::create(webrtcbin, LABEL, true, traffic)?;
        let assembler = Arc::new(Mutex::new(Assembler::new(self.limits)));
        let (a, deliver) = (assembler.clone(), self.deliver.clone());
        channel.connect("on-message-string", false, move |values| {
            let text = values
                .get(1)
                .and_then(|v| v.get::<Option<String>>().ok())
                .flatten();
            if let Some(done) = a
                .lock()
                .ok()
                .and_then(|mut a| a.text(text.as_deref().unwrap_or("")))
            {
                deliver(id, done);
            }
            None
        });
        let deliver = self.deliver.clone();
        channel.connect("on-message-data", false, move |values| {
            let data = values
                .get(1)
                .and_then(|v| v.get::<Option<glib::Bytes>>().ok())
                .flatten();
            let bytes = data.as_deref().unwrap_or(&[]);
            if let Some(done) = assembler.lock().ok().and_then(|mut a| a.data(bytes)) {
                deliver(id, done);
            }
            None
        });
        let hub = Arc::downgrade(self);
        channel.connect_on_open(move |c| {
            let Some(hub) = hub.upgrade() else { return };
            // The page learns the limits first, then gets what is there now.
            let limits = serde_json::json!({ "type": "limits", "limits": hub.limits_json() });
            let _ = c.send_string_full(Some(&limits.to_string()));
            let latest = hub.latest.lock().ok().and_then(|l| l.clone());
            if let Some(content) = latest {
                send(c, &content);
            }
        });
        if let Ok(mut channels) = self.channels.lock() {
            channels.insert(id, channel.clone());
        }
        Some(Registered {
            hub: self.clone(),
            id,
            _channel: channel,
        })
    }
}

/// A controller's channel, in the hub until the branch drops it.
pub struct Registered {
    hub: Arc<ClipboardHub>,
    id: PeerId,
    _channel: gst_webrtc::WebRTCDataChannel,
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut channels) = self.hub.channels.lock() {
            channels.remove(&self.id);
        }
    }
}

fn is_open(channel: &gst_webrtc::WebRTCDataChannel) -> bool {
    channel.ready_state() == gst_webrtc::WebRTCDataChannelState::Open
}

/// Sends `content` in pieces; whether it went.
fn send(channel: &gst_webrtc::WebRTCDataChannel, content: &Content) -> bool {
    if !is_open(channel) {
        return false;
    }
    let header = serde_json::json!({
        "type": "clipboard",
        "mime": content.mime(),
        "size": content.bytes().len(),
    });
    if let Err(e) = channel.send_string_full(Some(&header.to_string())) {
        tracing::debug!("clipboard to the page: {e}");
        return false;
    }
    for piece in content.bytes().chunks(CHUNK) {
        if let Err(e) = channel.send_data_full(Some(&glib::Bytes::from(piece))) {
            tracing::debug!("clipboard to the page: {e}");
            return false;
        }
    }
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    #[serde(rename = "type")]
    kind: String,
    mime: String,
    size: usize,
}

/// Puts a page's clipboard back together from its messages. Whatever the
/// page sends, it holds at most one clipboard's limit in memory.
pub struct Assembler {
    limits: Limits,
    /// The clipboard being received: its type, size and bytes so far.
    current: Option<(String, usize, Vec<u8>)>,
}

impl Assembler {
    pub fn new(limits: Limits) -> Self {
        Assembler {
            limits,
            current: None,
        }
    }

    /// A text message: a header. One in the middle of a clipboard drops it.
    pub fn text(&mut self, text: &str) -> Option<Result<Content, Refusal>> {
        let interrupted = self.current.take().is_some();
        let header = match serde_json::from_str::<Header>(text) {
            Ok(h) if h.kind == "clipboard" => h,
            _ => return Some(Err(Refusal::Malformed)),
        };
        let Some(limit) = self.limits.for_mime(&header.mime) else {
            return Some(Err(Refusal::Malformed));
        };
        if header.size > limit {
            return Some(Err(Refusal::TooLarge));
        }
        if interrupted {
            tracing::debug!("a clipboard from the page was cut short by the next one");
        }
        if header.size == 0 {
            return Some(self.limits.content(&header.mime, Vec::new()));
        }
        self.current = Some((header.mime, header.size, Vec::with_capacity(header.size)));
        None
    }

    /// A binary message: the next piece of the current clipboard.
    pub fn data(&mut self, bytes: &[u8]) -> Option<Result<Content, Refusal>> {
        let Some((_, size, buf)) = self.current.as_mut() else {
            return Some(Err(Refusal::Malformed));
        };
        if buf.len() + bytes.len() > *size {
            self.current = None;
            return Some(Err(Refusal::Malformed));
        }
        buf.extend_from_slice(bytes);
        if buf.len() < *size {
            return None;
        }
        let (mime, _, buf) = self.current.take()?;
        Some(self.limits.content(&mime, buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(mime: &str, size: usize) -> String {
        format!(r#"{{"type":"clipboard","mime":"{mime}","size":{size}}}"#)
    }

    #[test]
    fn a_clipboard_in_pieces_comes_out_whole() {
        let mut a = Assembler::new(Limits::default());
        let text = "héllo 世界 ✓".repeat(1000);
        assert_eq!(
            a.text(&header("text/plain;charset=utf-8", text.len())),
            None
        );
        let pieces: Vec<&[u8]> = text.as_bytes().chunks(CHUNK / 3).collect();
        for p in &pieces[..pieces.len() - 1] {
            assert_eq!(a.data(p), None);
        }
        assert_eq!(
            a.data(pieces[pieces.len() - 1]),
            Some(Ok(Content::Text(text)))
        );
        assert_eq!(
            a.text(&header("text/plain;charset=utf-8", 0)),
            Some(Ok(Content::Text(String::new())))
        );
    }

    #[test]
    fn what_does_not_add_up_is_refused_and_nothing_is_held() {
        let limits = Limits {
            text: 10,
            image: 10,
        };
        let mut a = Assembler::new(limits);
        assert_eq!(
            a.data(b"orphan"),
            Some(Err(Refusal::Malformed)),
            "bytes before a header"
        );
        assert_eq!(a.text("not json"), Some(Err(Refusal::Malformed)));
        assert_eq!(
            a.text(r#"{"type":"clipboard","mime":"text/html","size":3}"#),
            Some(Err(Refusal::Malformed))
        );
        assert_eq!(
            a.text(&header("text/plain;charset=utf-8", 11)),
            Some(Err(Refusal::TooLarge)),
            "over the limit: refused before any byte"
        );
        assert_eq!(a.text(&header("text/plain;charset=utf-8", 4)), None);
        assert_eq!(
            a.data(b"12345"),
            Some(Err(Refusal::Malformed)),
            "more bytes than announced"
        );
        assert_eq!(
            a.data(b"1"),
            Some(Err(Refusal::Malformed)),
            "and the clipboard was dropped"
        );
        assert_eq!(a.text(&header("text/plain;charset=utf-8", 2)), None);
        assert_eq!(
            a.data(&[0xff, 0xfe]),
            Some(Err(Refusal::Malformed)),
            "not UTF-8"
        );
        assert_eq!(a.text(&header("image/png", 4)), None);
        assert_eq!(
            a.data(b"GIF8"),
            Some(Err(Refusal::Malformed)),
            "an image that is no PNG"
        );
        assert_eq!(
            a.text(r#"{"type":"clipboard","mime":"image/png","size":1,"x":1}"#),
            Some(Err(Refusal::Malformed)),
            "unknown fields"
        );
    }
}
