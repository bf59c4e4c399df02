//! The RTP header extensions written into the shared stream, one probe on
//! the payloader's output:
//!
//! - playout-delay (`http://www.webrtc.org/experiments/rtp-hdrext/playout-delay`):
//!   without it Chromium holds each frame ~25-30 ms for smoothness; with
//!   min/max 0 it renders a frame as soon as it is decoded. Three bytes:
//!   12-bit minimum and 12-bit maximum, in units of 10 ms.
//! - transport-wide congestion control (TWCC) is not written here: its
//!   `extmap` in the payloader's caps makes rtph264pay add the extension
//!   itself (`auto-header-extension`), and each client's rtpsession then
//!   writes its own sequence number into it, on its own copy of the packet
//!   (the tee shares buffers), and reads the browser's feedback against it:
//!   the congestion estimate of that client's link (`media::twcc`). A second
//!   TWCC extension of ours was seen here to hide the real one: Chromium
//!   read the later, always 0.

use gst::prelude::*;

pub const PLAYOUT_DELAY_URI: &str = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay";
pub const TWCC_URI: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

/// The one-byte-header extension ids we announce in the offer.
pub const PLAYOUT_DELAY_ID: u8 = 6;
pub const TWCC_ID: u8 = 3;

/// The 3-byte payload for `min_ms`/`max_ms` (clamped to 12 bits of 10 ms).
pub fn payload(min_ms: u32, max_ms: u32) -> [u8; 3] {
    let min = (min_ms / 10).min(0xfff);
    let max = (max_ms / 10).min(0xfff);
    [
        (min >> 4) as u8,
        (((min & 0xf) << 4) | (max >> 8)) as u8,
        (max & 0xff) as u8,
    ]
}

/// Writes the playout-delay extension into every RTP packet leaving `pad`.
pub fn install(pad: &gst::Pad, min_ms: u32, max_ms: u32) {
    let data = payload(min_ms, max_ms);
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |_, info| {
            match info.data.as_mut() {
                Some(gst::PadProbeData::Buffer(buffer)) => add(buffer.make_mut(), &data),
                Some(gst::PadProbeData::BufferList(list)) => {
                    list.make_mut().foreach_mut(|mut buffer, _| {
                        add(buffer.make_mut(), &data);
                        std::ops::ControlFlow::Continue(Some(buffer))
                    });
                }
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    );
}

fn add(buffer: &mut gst::BufferRef, data: &[u8; 3]) {
    if let Ok(mut rtp) = gst_rtp::RTPBuffer::from_buffer_writable(buffer) {
        // Fails only if the packet already has a two-byte header: leave it.
        let _ = rtp.add_extension_onebyte_header(PLAYOUT_DELAY_ID, data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_encodes_12_bit_fields() {
        assert_eq!(payload(0, 0), [0, 0, 0]);
        // min 100 ms = 10 units, max 500 ms = 50 units.
        assert_eq!(payload(100, 500), [0x00, 0xa0, 0x32]);
        // Clamped at 4095 units.
        assert_eq!(payload(1_000_000, 1_000_000), [0xff, 0xff, 0xff]);
    }
}
