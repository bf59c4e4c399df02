//! A budget for what a client sends over its data channels, in messages
//! and in bytes, applied to its SCTP packets before webrtcbin's SCTP stack
//! sees them. Past
//! sctpdec, webrtcbin queues every message without bound and hands them on
//! from one thread: with Chromium sending 83 000 six-byte messages a second
//! that thread delivered about 20 000 (2-core AMD EPYC), so the backlog grew
//! by tens of MiB and reached the input rate limit (`oriel_input::flood`)
//! seconds late. Packets over the budget are dropped: the client's SCTP
//! sees loss and slows down as on a congested link; the reliable channel
//! retransmits, the unordered one loses only pointer updates.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use gst::prelude::*;
use oriel_input::flood::Bucket;

use crate::media::traffic::{packets, PeerTraffic};

/// Messages a second (DATA chunks that end a message) on a connection that
/// may upload. webrtcbin's cost is per message: six-byte floods are held
/// by the small byte budget to ~13 600 a second, below what its delivery
/// thread keeps up with, and that is the limit with the upload budget too.
pub const MESSAGES_PER_SECOND: f64 = 13_600.0;

/// Bytes a second for a connection without uploads. What the input rate
/// limit lets through is at most 4000 cost units of 64 bytes (256 KB/s,
/// full text messages); SCTP adds ~16 bytes a chunk, and 20 % room on top.
pub const BYTES_PER_SECOND: f64 = 320.0 * 1024.0;

/// Bytes a second for the controller's connection when it may upload
/// files (`media::files_channel`): the page's window of unacknowledged
/// bytes, not this, bounds what the agent holds; this only bounds what a
/// page can make webrtcbin copy.
pub const UPLOAD_BYTES_PER_SECOND: f64 = 256.0 * 1024.0 * 1024.0;

/// What may come at once: a second's worth.
const BURST_SECONDS: f64 = 1.0;

/// The most of a client's messages webrtcbin may hold undelivered: past
/// it, the client's packets are dropped until its delivery thread has
/// caught up (the client's SCTP retransmits, slower, as on a congested
/// link). Four times the upload window (`media::files_channel::WINDOW`).
pub const MAX_QUEUED_BYTES: u64 = 16 << 20;

/// Watches `webrtcbin` for its sctpdec (made when the SCTP transport is)
/// and puts the budget on its input (the larger byte budget when
/// `uploads`); drops are counted in `traffic.inbound_dropped`.
pub fn install(webrtcbin: &gst::Element, traffic: Arc<PeerTraffic>, uploads: bool) {
    let Some(bin) = webrtcbin.downcast_ref::<gst::Bin>() else {
        return;
    };
    let bytes = if uploads {
        UPLOAD_BYTES_PER_SECOND
    } else {
        BYTES_PER_SECOND
    };
    bin.connect_deep_element_added(move |_, _, element| {
        if element.factory().is_some_and(|f| f.name() == "sctpdec") {
            if let Some(sink) = element.static_pad("sink") {
                limit(&sink, traffic.clone(), bytes);
            }
            count_queued(element, traffic.clone());
        }
    });
}

/// Counts the bytes of every message sctpdec hands on (one src pad per
/// SCTP stream, made as streams appear) into `traffic.queued_in`; the
/// channels count what is delivered (`data_channel::create`).
fn count_queued(sctpdec: &gst::Element, traffic: Arc<PeerTraffic>) {
    sctpdec.connect_pad_added(move |_, pad| {
        if pad.direction() != gst::PadDirection::Src {
            return;
        }
        let t = traffic.clone();
        pad.add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
            move |pad, info| {
                // A stream no channel of ours reads delivers nothing.
                if pad.is_linked() {
                    t.queued_in.fetch_add(packets(info).1, Ordering::Relaxed);
                }
                gst::PadProbeReturn::Ok
            },
        );
    });
}

/// Bytes webrtcbin holds undelivered for this client now.
pub fn queued(traffic: &PeerTraffic) -> u64 {
    traffic
        .queued_in
        .load(Ordering::Relaxed)
        .saturating_sub(traffic.queued_out.load(Ordering::Relaxed))
}

/// Messages a plaintext SCTP packet ends: its DATA (0) and I-DATA (64)
/// chunks with the E bit. A malformed packet counts as one (and usrsctp
/// drops it).
pub fn messages_ended(packet: &[u8]) -> u64 {
    const COMMON_HEADER: usize = 12;
    let mut at = COMMON_HEADER;
    let mut n = 0;
    while at + 4 <= packet.len() {
        let (kind, flags) = (packet[at], packet[at + 1]);
        let len = u16::from_be_bytes([packet[at + 2], packet[at + 3]]) as usize;
        if len < 4 {
            return n.max(1);
        }
        if (kind == 0 || kind == 64) && flags & 0x01 != 0 {
            n += 1;
        }
        // Chunks are padded to four bytes.
        at += (len + 3) & !3;
    }
    n
}

fn ended(info: &gst::PadProbeInfo) -> u64 {
    let of = |b: &gst::BufferRef| b.map_readable().map_or(1, |m| messages_ended(&m));
    match &info.data {
        Some(gst::PadProbeData::Buffer(b)) => of(b),
        Some(gst::PadProbeData::BufferList(l)) => l.iter().map(of).sum(),
        _ => 0,
    }
}

fn limit(pad: &gst::Pad, traffic: Arc<PeerTraffic>, bytes_per_second: f64) {
    let now = Instant::now();
    let bytes = Mutex::new(Bucket::new(
        bytes_per_second,
        bytes_per_second * BURST_SECONDS,
        now,
    ));
    // Only where bytes may come fast (uploads) do messages need their own
    // budget: the small byte budget already holds six-byte floods to
    // MESSAGES_PER_SECOND, and a second budget at the same rate dropped so
    // many of a flooder's packets that its SCTP slowed below the input rate
    // limit, and it was never cut off (seen in a CI-style run).
    let messages = (bytes_per_second > BYTES_PER_SECOND).then(|| {
        Mutex::new(Bucket::new(
            MESSAGES_PER_SECOND,
            MESSAGES_PER_SECOND * BURST_SECONDS,
            now,
        ))
    });
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |_, info| {
            let (n, size) = packets(info);
            let now = Instant::now();
            let over = |bucket: &Mutex<Bucket>, cost: f64| {
                bucket
                    .lock()
                    .map(|mut b| b.take(cost, now).is_err())
                    .unwrap_or(false)
            };
            let full = queued(&traffic) > MAX_QUEUED_BYTES;
            let too_many = messages
                .as_ref()
                .is_some_and(|m| over(m, ended(info) as f64));
            if full || over(&bytes, size as f64) || too_many {
                traffic.inbound_dropped.fetch_add(n, Ordering::Relaxed);
                crate::media::probe::DROP
            } else {
                gst::PadProbeReturn::Ok
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A packet of `chunks` (type, flags, payload length).
    fn packet(chunks: &[(u8, u8, usize)]) -> Vec<u8> {
        let mut p = vec![0u8; 12];
        for &(kind, flags, payload) in chunks {
            let len = (4 + payload) as u16;
            p.extend_from_slice(&[kind, flags]);
            p.extend_from_slice(&len.to_be_bytes());
            p.extend(std::iter::repeat_n(0xaa, payload));
            while !p.len().is_multiple_of(4) {
                p.push(0);
            }
        }
        p
    }

    #[test]
    fn messages_are_counted_by_their_last_chunk() {
        // Three bundled six-byte messages (DATA, B|E), a SACK between.
        let bundled = packet(&[(0, 3, 18), (3, 0, 12), (0, 3, 18), (0, 3, 18)]);
        assert_eq!(messages_ended(&bundled), 3);
        // A large message: first and middle fragments end nothing.
        assert_eq!(messages_ended(&packet(&[(0, 2, 1200)])), 0);
        assert_eq!(messages_ended(&packet(&[(0, 0, 1200)])), 0);
        assert_eq!(messages_ended(&packet(&[(0, 1, 300)])), 1);
        assert_eq!(messages_ended(&packet(&[(64, 3, 20)])), 1, "I-DATA");
        assert_eq!(messages_ended(&packet(&[(3, 0, 12)])), 0, "a SACK alone");
    }

    #[test]
    fn a_malformed_packet_costs_one_and_is_not_read_past() {
        let mut p = packet(&[(0, 3, 18)]);
        p.extend_from_slice(&[0, 3, 0, 1]); // a chunk shorter than its header
        assert_eq!(messages_ended(&p), 1);
        assert_eq!(messages_ended(&[0; 13]), 0);
        let mut long = packet(&[(0, 3, 4)]);
        long[14..16].copy_from_slice(&9999u16.to_be_bytes()); // past the end
        assert_eq!(messages_ended(&long), 1);
        assert_eq!(messages_ended(&[]), 0);
    }
}
