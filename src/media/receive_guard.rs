//! Cuts webrtcbin's receive bins off their ICE transport before a branch
//! stops.
//!
//! webrtcbin 1.22's TransportReceiveBin connects to its ICE transport's
//! `notify::state` and never disconnects. Its handler blocks the receive
//! chain whenever ICE is not connected, with a pad block that holds a
//! reference to the receive bin; the bin's own READY→NULL frees the block.
//! When the ICE state changes after that (libnice reports "closed" or
//! "failed" from its own thread while the branch is torn down), a new block
//! is made and nothing frees it. The receive bin, its nicesrc, dtls and
//! srtp elements, their pads and the nice agent's sockets then outlive the
//! client: +39 live GStreamer objects about once in 500 leaves
//! (docs/gstreamer-1.22.md). Disconnecting that handler first leaves
//! nothing to make the block.

use gst::glib;
use gst::prelude::*;

/// Disconnects, on every ICE transport of the webrtcbins inside `bin`, the
/// signal handlers whose data is one of their receive bins. Returns how
/// many it disconnected. Call it before `bin` goes to NULL.
pub fn release(bin: &gst::Bin) -> u32 {
    let mut disconnected = 0;
    for webrtcbin in elements(bin, "GstWebRTCBin") {
        let Ok(inner) = webrtcbin.clone().downcast::<gst::Bin>() else {
            continue;
        };
        let receive_bins = elements(&inner, "TransportReceiveBin");
        if receive_bins.is_empty() {
            continue;
        }
        for ice in ice_transports(&webrtcbin) {
            for receive in &receive_bins {
                // SAFETY: both are live objects we hold references to;
                // matching on the data pointer only removes handlers that
                // were connected with this receive bin as their data.
                disconnected += unsafe {
                    glib::gobject_ffi::g_signal_handlers_disconnect_matched(
                        ice.as_ptr(),
                        glib::gobject_ffi::G_SIGNAL_MATCH_DATA,
                        0,
                        0,
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                        receive.as_ptr() as glib::ffi::gpointer,
                    )
                };
            }
        }
    }
    disconnected
}

/// Stops a branch bin: its receive bins cut off first (see above), then NULL.
pub fn stop(bin: &gst::Bin) {
    let cut = release(bin);
    tracing::debug!(cut, "receive bins cut off their ICE transport");
    let _ = bin.set_state(gst::State::Null);
}

/// Every element under `bin` (at any depth) whose GType is named `type_name`.
pub(crate) fn elements(bin: &gst::Bin, type_name: &str) -> Vec<gst::Element> {
    let mut found = Vec::new();
    let mut it = bin.iterate_recurse();
    loop {
        match it.next() {
            Ok(Some(e)) => {
                if e.type_().name() == type_name {
                    found.push(e);
                }
            }
            Ok(None) => break,
            // The bin changed while we walked it: start again.
            Err(gst::IteratorError::Resync) => {
                found.clear();
                it.resync();
            }
            Err(gst::IteratorError::Error) => break,
        }
    }
    found
}

/// The ICE transports under a webrtcbin's transceivers and its SCTP
/// transport (one with bundling, but not assumed).
fn ice_transports(webrtcbin: &gst::Element) -> Vec<glib::Object> {
    let mut dtls: Vec<glib::Object> = Vec::new();
    for i in 0..16i32 {
        let Some(t) = webrtcbin
            .emit_by_name::<Option<gst_webrtc::WebRTCRTPTransceiver>>("get-transceiver", &[&i])
        else {
            break;
        };
        for side in ["sender", "receiver"] {
            if let Some(o) =
                object_property(t.upcast_ref(), side).and_then(|s| object_property(&s, "transport"))
            {
                dtls.push(o);
            }
        }
    }
    if let Some(o) = object_property(webrtcbin.upcast_ref(), "sctp-transport")
        .and_then(|s| object_property(&s, "transport"))
    {
        dtls.push(o);
    }
    let mut ice: Vec<glib::Object> = Vec::new();
    for d in dtls {
        if let Some(i) = object_property(&d, "transport") {
            if !ice.iter().any(|x| x.as_ptr() == i.as_ptr()) {
                ice.push(i);
            }
        }
    }
    ice
}

/// An object-valued property, if the object has it and it is set.
fn object_property(o: &glib::Object, name: &str) -> Option<glib::Object> {
    o.find_property(name)?;
    o.property_value(name)
        .get::<Option<glib::Object>>()
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A webrtcbin with a transceiver and a data channel has receive bins
    /// connected to its ICE transport; `release` finds and cuts them.
    #[test]
    fn finds_the_receive_bins_handlers() {
        gst::init().expect("gstreamer init");
        let bin = gst::Bin::new();
        let webrtcbin = gst::ElementFactory::make("webrtcbin")
            .build()
            .expect("webrtcbin");
        bin.add(&webrtcbin).expect("added");
        let caps = gst::Caps::builder("application/x-rtp")
            .field("media", "video")
            .field("encoding-name", "H264")
            .field("payload", 96i32)
            .field("clock-rate", 90000i32)
            .build();
        let _t = webrtcbin.emit_by_name::<gst_webrtc::WebRTCRTPTransceiver>(
            "add-transceiver",
            &[&gst_webrtc::WebRTCRTPTransceiverDirection::Sendonly, &caps],
        );
        bin.set_state(gst::State::Ready).expect("ready");
        let promise = gst::Promise::new();
        webrtcbin.emit_by_name::<()>("create-offer", &[&None::<gst::Structure>, &promise]);
        let _ = promise.wait();
        let offer = promise
            .get_reply()
            .and_then(|r| r.get::<gst_webrtc::WebRTCSessionDescription>("offer").ok())
            .expect("an offer");
        webrtcbin.emit_by_name::<()>("set-local-description", &[&offer, &None::<gst::Promise>]);
        // The receive bins exist once the local description made transports.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut n = 0;
        while n == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
            n = release(&bin);
        }
        assert!(n >= 1, "no receive-bin handler found to disconnect");
        // A second pass finds nothing left.
        assert_eq!(release(&bin), 0);
        bin.set_state(gst::State::Null).expect("null");
    }
}
