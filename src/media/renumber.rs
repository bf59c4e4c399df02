//! One branch's RTP sequence numbers, continuous across a move between
//! rungs. Each rung's payloader counts its own; a browser seeing the
//! number jump would take it for thousands of lost packets. So each
//! branch renumbers what it forwards once it has moved (never before: the
//! main rung's numbers pass untouched, without a copy of the packet), and
//! after a move it waits for the new rung's keyframe, which the browser
//! needs to decode the new encode.

use std::sync::{Arc, Mutex};

use gst::prelude::*;

#[derive(Debug, Default)]
struct State {
    /// Added to every incoming number (wrapping); 0 until a move.
    offset: u16,
    /// The last number sent on.
    last: Option<u16>,
    /// A move happened: the next packet sent on continues from `last`.
    resync: bool,
}

/// Shared by the probes on every tee pad the branch was fed from.
#[derive(Debug, Clone, Default)]
pub struct Renumber(Arc<Mutex<State>>);

impl Renumber {
    /// Renumbers on `pad` (a tee pad feeding the branch).
    pub fn install(&self, pad: &gst::Pad) {
        let me = self.clone();
        pad.add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
            move |_, info| {
                match info.data.as_mut() {
                    Some(gst::PadProbeData::Buffer(b)) => me.renumber(b),
                    Some(gst::PadProbeData::BufferList(list)) => {
                        list.make_mut().foreach_mut(|mut b, _| {
                            me.renumber(&mut b);
                            std::ops::ControlFlow::Continue(Some(b))
                        });
                    }
                    _ => {}
                }
                gst::PadProbeReturn::Ok
            },
        );
    }

    /// The branch now reads another rung: continue the numbering there.
    pub fn moved(&self) {
        if let Ok(mut s) = self.0.lock() {
            s.resync = true;
        }
    }

    fn renumber(&self, buffer: &mut gst::Buffer) {
        let Ok(mut s) = self.0.lock() else {
            return;
        };
        let incoming = match gst_rtp::RTPBuffer::from_buffer_readable(buffer) {
            Ok(rtp) => rtp.seq(),
            Err(_) => return,
        };
        if s.resync {
            s.resync = false;
            s.offset = s
                .last
                .map_or(0, |last| last.wrapping_add(1).wrapping_sub(incoming));
        }
        let out = incoming.wrapping_add(s.offset);
        s.last = Some(out);
        if s.offset != 0 {
            if let Ok(mut rtp) = gst_rtp::RTPBuffer::from_buffer_writable(buffer.make_mut()) {
                rtp.set_seq(out);
            }
        }
    }
}

/// Drops what `pad` carries until a keyframe begins (a buffer without the
/// DELTA_UNIT flag, as the join gate does), then lets everything through.
pub fn wait_for_keyframe(pad: &gst::Pad) {
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        |_, info| {
            let keyframe = match info.data.as_ref() {
                Some(gst::PadProbeData::Buffer(b)) => {
                    !b.flags().contains(gst::BufferFlags::DELTA_UNIT)
                }
                Some(gst::PadProbeData::BufferList(l)) => l
                    .iter()
                    .any(|b| !b.flags().contains(gst::BufferFlags::DELTA_UNIT)),
                _ => return gst::PadProbeReturn::Ok,
            };
            if keyframe {
                gst::PadProbeReturn::Remove
            } else {
                crate::media::probe::DROP
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use gst_rtp::prelude::*;

    fn packet(seq: u16) -> gst::Buffer {
        let mut b = gst::Buffer::new_rtp_with_sizes(10, 0, 0).unwrap();
        {
            let mut rtp = gst_rtp::RTPBuffer::from_buffer_writable(b.get_mut().unwrap()).unwrap();
            rtp.set_seq(seq);
        }
        b
    }

    fn seq(b: &gst::Buffer) -> u16 {
        gst_rtp::RTPBuffer::from_buffer_readable(b).unwrap().seq()
    }

    #[test]
    fn numbers_continue_across_moves_and_wrap() {
        gst::init().unwrap();
        let r = Renumber::default();
        // Before any move: untouched.
        for s in [100u16, 101, 102] {
            let mut b = packet(s);
            r.renumber(&mut b);
            assert_eq!(seq(&b), s);
        }
        let through = |seqs: &[u16]| -> Vec<u16> {
            seqs.iter()
                .map(|s| {
                    let mut b = packet(*s);
                    r.renumber(&mut b);
                    seq(&b)
                })
                .collect()
        };
        // Moved to a rung whose payloader counts elsewhere.
        r.moved();
        assert_eq!(through(&[40_000, 40_001, 40_002]), [103, 104, 105]);
        // And back, across the 16-bit wrap.
        r.moved();
        assert_eq!(through(&[65_534, 65_535, 0, 1]), [106, 107, 108, 109]);
    }
}
