//! Clients that take transport-wide congestion control (TWCC) and send no
//! feedback for it. rtpsession (GStreamer 1.22) keeps a record of every
//! packet it stamps with a TWCC sequence number until feedback for it
//! arrives (rtptwcc.c prunes only then): the 60-minute soak grew the agent
//! by 454 MiB/h with 8 such viewers (docs/gstreamer-1.22.md). It stamps only
//! packets that carry the extension, so for such a client the branch renames
//! the extension, before its webrtcbin sees the packet, to an id nobody
//! negotiated (RFC 8285: a receiver skips ids it does not know).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gst::prelude::*;

use crate::media::header_ext;

/// Media may flow this long without any feedback before the extension goes.
pub const FEEDBACK_WITHIN: Duration = Duration::from_secs(10);

/// Unused one-byte-header id the TWCC element is renamed to.
const HIDDEN_ID: u8 = 14;

#[derive(Debug, Default)]
pub struct FeedbackGuard {
    hidden: AtomicBool,
    /// TWCC feedback reports received (`media::link`).
    pub reports: AtomicU64,
    /// When media first left the branch; `None` before.
    first_media: Mutex<Option<Instant>>,
}

impl FeedbackGuard {
    /// Renames the extension in every packet leaving `pad` once hidden.
    pub fn install(self: &std::sync::Arc<Self>, pad: &gst::Pad) {
        let me = self.clone();
        pad.add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
            move |_, info| {
                if let Ok(mut t) = me.first_media.lock() {
                    t.get_or_insert_with(Instant::now);
                }
                if !me.hidden.load(Ordering::Relaxed) {
                    return gst::PadProbeReturn::Ok;
                }
                match &mut info.data {
                    Some(gst::PadProbeData::Buffer(b)) => rename_in(b.make_mut()),
                    Some(gst::PadProbeData::BufferList(list)) => {
                        let list = list.make_mut();
                        for i in 0..list.len() {
                            if let Some(b) = list.get_mut(i) {
                                rename_in(b);
                            }
                        }
                    }
                    _ => {}
                }
                gst::PadProbeReturn::Ok
            },
        );
    }

    /// Stops stamping this client's packets; true the first time.
    pub fn hide(&self) -> bool {
        !self.hidden.swap(true, Ordering::Relaxed)
    }

    pub fn is_hidden(&self) -> bool {
        self.hidden.load(Ordering::Relaxed)
    }

    /// Whether media has flowed for `within` with no feedback at all.
    pub fn silent_for(&self, within: Duration) -> bool {
        self.reports.load(Ordering::Relaxed) == 0
            && self
                .first_media
                .lock()
                .ok()
                .and_then(|t| *t)
                .is_some_and(|t| t.elapsed() >= within)
    }
}

fn rename_in(buffer: &mut gst::BufferRef) {
    if let Ok(mut map) = buffer.map_writable() {
        rename_extension(map.as_mut_slice(), header_ext::TWCC_ID, HIDDEN_ID);
    }
}

/// Whether the answer accepted the TWCC extension on some media.
pub fn answer_accepts_twcc(sdp: &gst_sdp::SDPMessageRef) -> bool {
    sdp.medias().any(|m| {
        m.attributes().any(|a| {
            a.key() == "extmap" && a.value().is_some_and(|v| v.contains(header_ext::TWCC_URI))
        })
    })
}

/// Renames one-byte-header extension element `from` to `to` in the RTP
/// packet `p` (RFC 8285 section 4.2); false when there is none or the
/// packet is malformed.
pub fn rename_extension(p: &mut [u8], from: u8, to: u8) -> bool {
    if p.len() < 12 || p[0] >> 6 != 2 || p[0] & 0x10 == 0 {
        return false;
    }
    let start = 12 + 4 * usize::from(p[0] & 0x0f);
    let Some(header) = p.get(start..start + 4) else {
        return false;
    };
    if header[0..2] != [0xbe, 0xde] {
        return false;
    }
    let end = start + 4 + 4 * usize::from(u16::from_be_bytes([header[2], header[3]]));
    if end > p.len() {
        return false;
    }
    let mut i = start + 4;
    while i < end {
        let id = p[i] >> 4;
        match id {
            0 => i += 1, // padding
            15 => return false,
            _ if id == from => {
                p[i] = (to << 4) | (p[i] & 0x0f);
                return true;
            }
            _ => i += 2 + usize::from(p[i] & 0x0f),
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An RTP packet with one-byte extensions: playout delay (id 6, 3
    /// bytes), a padding byte, TWCC (id 3, 2 bytes), then the payload.
    fn packet() -> Vec<u8> {
        let mut p = vec![0x90, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7];
        p.extend([0xbe, 0xde, 0, 2]);
        p.extend([0x62, 1, 2, 3, 0x00, 0x31, 0xaa, 0xbb]);
        p.extend([0x65, 0x88]);
        p
    }

    #[test]
    fn renames_only_the_twcc_element() {
        let mut p = packet();
        assert!(rename_extension(&mut p, 3, 14));
        let mut want = packet();
        want[21] = 0xe1;
        assert_eq!(p, want);
        assert!(!rename_extension(&mut p, 3, 14), "already renamed");
    }

    #[test]
    fn malformed_packets_are_left_alone() {
        for cut in 0..packet().len() - 2 {
            let mut p = packet()[..cut].to_vec();
            let before = p.clone();
            assert!(!rename_extension(&mut p, 3, 14), "cut at {cut}");
            assert_eq!(p, before);
        }
        let mut no_ext = packet();
        no_ext[0] = 0x80;
        assert!(!rename_extension(&mut no_ext, 3, 14));
        let mut two_byte = packet();
        two_byte[12..14].copy_from_slice(&[0x10, 0x00]);
        assert!(!rename_extension(&mut two_byte, 3, 14));
    }

    #[test]
    fn the_answer_decides_at_once() {
        gst::init().expect("gstreamer");
        let with = format!("v=0\r\no=- 1 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=extmap:3 {}\r\n", header_ext::TWCC_URI);
        let without =
            "v=0\r\no=- 1 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n";
        let parse = |s: &str| gst_sdp::SDPMessage::parse_buffer(s.as_bytes()).expect("sdp");
        assert!(answer_accepts_twcc(&parse(&with)));
        assert!(!answer_accepts_twcc(&parse(without)));
    }
}
