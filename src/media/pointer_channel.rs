//! The pointer for pages that draw it themselves (the stream carries none,
//! `--pointer page`). Every connection gets a `cursor` channel (reliable,
//! ordered) with the pointer's shapes: the first time a page is told of a
//! shape it gets the image, after that only its id (the page caches by
//! it). Viewers and players, whose pages draw the remote pointer where it
//! is, also get a `pointer` channel (unordered, no retransmits: the
//! latest place wins) with every move. The controller's page needs no
//! places: its own mouse is the pointer. Both are agent to page only;
//! what a page sends on them is refused and counted (docs/protocol.md,
//! "Pointer").

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use gst::prelude::*;

use crate::desktop::pointer::{PointerEvent, Shape};
use crate::media::traffic::PeerTraffic;
use crate::media::PeerId;

pub const SHAPES: &str = "cursor";
pub const PLACES: &str = "pointer";

/// A page told of more shapes than this is sent images again from scratch
/// (the page's cache is bounded the same way).
const REMEMBERED: usize = 256;
/// Places are not queued behind a page that does not read them.
const PLACES_BUFFERED_MAX: u64 = 4096;

/// Told whether any page wants the pointer's place (so the desktop side
/// asks for it only then).
pub type WantMotion = Arc<dyn Fn(bool) + Send + Sync>;

struct Client {
    shapes: gst_webrtc::WebRTCDataChannel,
    places: Option<gst_webrtc::WebRTCDataChannel>,
    /// The shapes whose image this page has.
    told: HashSet<u32>,
}

/// Every connection's pointer channels, and the pointer as it is now.
pub struct PointerHub {
    clients: Mutex<HashMap<PeerId, Client>>,
    shape: Mutex<Option<Arc<Shape>>>,
    at: Mutex<Option<(i16, i16)>>,
    want_motion: WantMotion,
    /// Messages pages sent on these channels (they may send nothing).
    pub refused: AtomicU64,
    /// Shapes the desktop's pointer took.
    pub shapes: AtomicU64,
}

impl PointerHub {
    pub fn new(want_motion: WantMotion) -> Arc<Self> {
        Arc::new(PointerHub {
            clients: Mutex::default(),
            shape: Mutex::default(),
            at: Mutex::default(),
            want_motion,
            refused: AtomicU64::new(0),
            shapes: AtomicU64::new(0),
        })
    }

    /// The desktop's pointer changed shape or moved: to every page.
    pub fn desktop(&self, event: PointerEvent) {
        match event {
            PointerEvent::Shape(shape) => {
                self.shapes.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut clients) = self.clients.lock() {
                    for c in clients.values_mut() {
                        tell_shape(c, &shape);
                    }
                }
                if let Ok(mut s) = self.shape.lock() {
                    *s = Some(shape);
                }
            }
            PointerEvent::Moved { x, y } => {
                if let Ok(clients) = self.clients.lock() {
                    for c in clients.values() {
                        if let Some(p) = &c.places {
                            tell_place(p, x, y);
                        }
                    }
                }
                if let Ok(mut at) = self.at.lock() {
                    *at = Some((x, y));
                }
            }
        }
    }

    /// Opens the channels on a READY webrtcbin (before the offer): shapes
    /// for everyone, places too when `places` (a page that draws the
    /// remote pointer where it is).
    pub fn open(
        self: &Arc<Self>,
        webrtcbin: &gst::Element,
        id: PeerId,
        places: bool,
        traffic: &Arc<PeerTraffic>,
    ) -> Option<Registered> {
        let shapes = self.create(webrtcbin, id, SHAPES, true, traffic)?;
        let places = if places {
            self.create(webrtcbin, id, PLACES, false, traffic)
        } else {
            None
        };
        let hub = Arc::downgrade(self);
        shapes.connect_on_open(move |_| {
            let Some(hub) = hub.upgrade() else { return };
            // What a late joiner sees: the shape now.
            let shape = hub.shape.lock().ok().and_then(|s| s.clone());
            let Ok(mut clients) = hub.clients.lock() else {
                return;
            };
            if let Some(c) = clients.get_mut(&id) {
                if let Some(s) = shape {
                    tell_shape(c, &s);
                }
            }
        });
        if let Some(p) = &places {
            // Opened after the shapes' channel, maybe: the place now, so a
            // still pointer is drawn too.
            let hub = Arc::downgrade(self);
            p.connect_on_open(move |p| {
                let at = hub
                    .upgrade()
                    .and_then(|h| h.at.lock().ok().and_then(|a| *a));
                if let Some((x, y)) = at {
                    tell_place(p, x, y);
                }
            });
        }
        let wants_before = self.wants_places();
        if let Ok(mut clients) = self.clients.lock() {
            clients.insert(
                id,
                Client {
                    shapes,
                    places,
                    told: HashSet::new(),
                },
            );
        }
        self.tell_wants(wants_before);
        Some(Registered {
            hub: self.clone(),
            id,
        })
    }

    fn create(
        self: &Arc<Self>,
        webrtcbin: &gst::Element,
        id: PeerId,
        label: &str,
        reliable: bool,
        traffic: &Arc<PeerTraffic>,
    ) -> Option<gst_webrtc::WebRTCDataChannel> {
        let channel = crate::media::data_channel::create(webrtcbin, label, reliable, traffic);
        let Some(channel) = channel else {
            tracing::warn!(peer = id, label, "could not create a data channel");
            return None;
        };
        for signal in ["on-message-string", "on-message-data"] {
            let hub = Arc::downgrade(self);
            let label = label.to_string();
            channel.connect(signal, false, move |_| {
                if let Some(hub) = hub.upgrade() {
                    let n = hub.refused.fetch_add(1, Ordering::Relaxed);
                    if n == 0 {
                        tracing::warn!(peer = id, "a page sent on the {label} channel: refused (it is the agent's to send on)");
                    }
                }
                None
            });
        }
        Some(channel)
    }

    /// The hub's counters, for /metrics.
    pub fn render(&self, s: &mut String) {
        use std::fmt::Write;
        let _ = writeln!(
            s,
            "# HELP oriel_pointer_shapes_total Shapes the desktop's pointer took (sent to the pages that draw it).\n# TYPE oriel_pointer_shapes_total counter\noriel_pointer_shapes_total {}",
            self.shapes.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP oriel_pointer_refused_total Messages pages sent on the pointer's channels (only the agent sends there).\n# TYPE oriel_pointer_refused_total counter\noriel_pointer_refused_total {}",
            self.refused.load(Ordering::Relaxed)
        );
    }

    fn wants_places(&self) -> bool {
        self.clients
            .lock()
            .map(|c| c.values().any(|c| c.places.is_some()))
            .unwrap_or(false)
    }

    /// Tells the desktop side when the first page that wants places came,
    /// or the last one left.
    fn tell_wants(&self, before: bool) {
        let now = self.wants_places();
        if now != before {
            (self.want_motion)(now);
        }
    }
}

/// A connection's channels, in the hub until its branch drops them.
pub struct Registered {
    hub: Arc<PointerHub>,
    id: PeerId,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let before = self.hub.wants_places();
        if let Ok(mut clients) = self.hub.clients.lock() {
            clients.remove(&self.id);
        }
        self.hub.tell_wants(before);
    }
}

fn is_open(channel: &gst_webrtc::WebRTCDataChannel) -> bool {
    channel.ready_state() == gst_webrtc::WebRTCDataChannelState::Open
}

/// The message that tells a page of `shape`: with its image when the page
/// does not have it yet.
pub fn shape_message(shape: &Shape, with_image: bool) -> String {
    let mut m = serde_json::json!({ "type": "shape", "id": shape.serial });
    if with_image {
        m["name"] = shape.name.chars().take(64).collect::<String>().into();
        m["width"] = shape.width.into();
        m["height"] = shape.height.into();
        m["hotX"] = shape.hot_x.into();
        m["hotY"] = shape.hot_y.into();
        m["hidden"] = shape.hidden.into();
        m["rgba"] = base64::engine::general_purpose::STANDARD
            .encode(&shape.rgba)
            .into();
    }
    m.to_string()
}

fn tell_shape(c: &mut Client, shape: &Shape) {
    if !is_open(&c.shapes) {
        return;
    }
    let with_image = !c.told.contains(&shape.serial);
    if let Err(e) = c
        .shapes
        .send_string_full(Some(&shape_message(shape, with_image)))
    {
        tracing::debug!("pointer shape to a page: {e}");
        return;
    }
    if with_image {
        if c.told.len() >= REMEMBERED {
            c.told.clear();
        }
        c.told.insert(shape.serial);
    }
}

fn tell_place(channel: &gst_webrtc::WebRTCDataChannel, x: i16, y: i16) {
    if !is_open(channel) || channel.buffered_amount() > PLACES_BUFFERED_MAX {
        return;
    }
    let _ = channel.send_string_full(Some(&format!("{{\"x\":{x},\"y\":{y}}}")));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(serial: u32) -> Shape {
        Shape {
            serial,
            name: "xterm".into(),
            width: 1,
            height: 1,
            hot_x: 0,
            hot_y: 0,
            rgba: vec![1, 2, 3, 255],
            hidden: false,
        }
    }

    #[test]
    fn a_shape_carries_its_image_only_the_first_time() {
        let full: serde_json::Value =
            serde_json::from_str(&shape_message(&shape(5), true)).unwrap();
        assert_eq!(full["id"], 5);
        assert_eq!(full["name"], "xterm");
        assert_eq!(full["rgba"], "AQID/w==");
        let short: serde_json::Value =
            serde_json::from_str(&shape_message(&shape(5), false)).unwrap();
        assert_eq!(short, serde_json::json!({ "type": "shape", "id": 5 }));
    }
}
