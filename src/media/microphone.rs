//! The controller's microphone: the one connection whose audio transceiver
//! also receives. What arrives is decoded and played into the desktop's
//! virtual microphone (`desktop::sound::microphone`). Every other client's
//! answer is kept from sending audio, whatever it says (`refuse_sending`).
//!
//! ```text
//! controller's webrtcbin ─ [oriel-mic: queue ─ depay ─ opusdec ─ convert ─ pulsesink → oriel_mic_sink]
//! ```

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use gst::prelude::*;

/// Name of the bin playing one controller's microphone.
pub const MIC_BIN: &str = "oriel-mic";

/// Where the microphone goes and who hears that it started or stopped.
#[derive(Clone)]
pub struct MicSink {
    /// The sound server's address (`pulsesrc server=` form).
    pub server: String,
    /// The sink the virtual source reads.
    pub sink: String,
    /// Told `true` at the first sound, `false` when the branch goes.
    pub on_active: Arc<dyn Fn(bool) + Send + Sync>,
}

/// How long without a packet before the microphone counts as off: the page
/// switching it off (`replaceTrack(null)`) stops the packets.
const SILENT_AFTER: Duration = Duration::from_secs(1);

/// Held by the branch: the microphone is on while packets come, off once
/// they stop (`check`) and when the branch goes (its drop).
pub struct MicGuard {
    active: Arc<AtomicBool>,
    /// Milliseconds since `since` of the last packet.
    last_ms: Arc<AtomicU64>,
    since: Instant,
    on_active: Arc<dyn Fn(bool) + Send + Sync>,
}

impl MicGuard {
    /// Turns the microphone off once no packet came for a while (the media
    /// thread's timer calls it).
    pub fn check(&self) {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        if self.since.elapsed().saturating_sub(last) >= SILENT_AFTER
            && self.active.swap(false, Ordering::SeqCst)
        {
            (self.on_active)(false);
        }
    }
}

impl Drop for MicGuard {
    fn drop(&mut self) {
        if self.active.swap(false, Ordering::SeqCst) {
            (self.on_active)(false);
        }
    }
}

/// Plays whatever audio `webrtcbin` receives into `mic`, inside `bin`.
pub fn receive(webrtcbin: &gst::Element, bin: &gst::Bin, mic: MicSink) -> MicGuard {
    let active = Arc::new(AtomicBool::new(false));
    let last_ms = Arc::new(AtomicU64::new(0));
    let since = Instant::now();
    let guard = MicGuard {
        active: active.clone(),
        last_ms: last_ms.clone(),
        since,
        on_active: mic.on_active.clone(),
    };
    let bin = bin.downgrade();
    webrtcbin.connect_pad_added(move |_, pad| {
        if pad.direction() != gst::PadDirection::Src {
            return;
        }
        let Some(bin) = bin.upgrade() else { return };
        match play(&bin, pad, &mic) {
            Ok(()) => {
                let (active, on_active) = (active.clone(), mic.on_active.clone());
                let last_ms = last_ms.clone();
                // One store per packet (100 a second); on again at the
                // first packet after a silence.
                pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                    last_ms.store(since.elapsed().as_millis() as u64, Ordering::Relaxed);
                    if !active.load(Ordering::Relaxed) && !active.swap(true, Ordering::SeqCst) {
                        on_active(true);
                    }
                    gst::PadProbeReturn::Ok
                });
            }
            Err(e) => tracing::warn!("the controller's microphone: {e:#}"),
        }
    });
    guard
}

fn play(bin: &gst::Bin, pad: &gst::Pad, mic: &MicSink) -> Result<()> {
    // Mono at 48 kHz, what the virtual sink takes. No clock of its own
    // (the pipeline keeps the system clock), and no waiting on it: each
    // packet is played as it comes, a 100 ms queue at most in between.
    let text = format!(
        "queue max-size-buffers=0 max-size-bytes=0 max-size-time=100000000 leaky=downstream \
         ! rtpopusdepay ! opusdec plc=true ! audioconvert ! audioresample \
         ! audio/x-raw,rate=48000,channels=1 \
         ! pulsesink server=\"{}\" device=\"{}\" client-name=oriel-microphone \
         provide-clock=false sync=false",
        mic.server.replace(['"', '\\'], ""),
        mic.sink
    );
    let play = gst::parse::bin_from_description_with_name(&text, true, MIC_BIN)?;
    bin.add(&play)?;
    play.sync_state_with_parent()?;
    let sink = play
        .static_pad("sink")
        .ok_or_else(|| anyhow!("the microphone bin has no sink pad"))?;
    pad.link(&sink)
        .map_err(|e| anyhow!("linking the microphone: {e}"))?;
    Ok(())
}

/// Anything a client that may not send audio receives from the agent's
/// webrtcbin (nothing, once its answer was corrected) goes nowhere.
pub fn discard(webrtcbin: &gst::Element, bin: &gst::Bin) {
    let bin = bin.downgrade();
    webrtcbin.connect_pad_added(move |_, pad| {
        if pad.direction() != gst::PadDirection::Src {
            return;
        }
        let Some(bin) = bin.upgrade() else { return };
        let Ok(sink) = gst::ElementFactory::make("fakesink")
            .property("sync", false)
            .property("async", false)
            .build()
        else {
            return;
        };
        if bin.add(&sink).is_ok() && sink.sync_state_with_parent().is_ok() {
            if let Some(sink_pad) = sink.static_pad("sink") {
                let _ = pad.link(&sink_pad);
            }
        }
    });
}

/// Turns every audio m-line of an answer that would send (`sendrecv`,
/// `sendonly`) into one that only receives (`recvonly`, `inactive`): a
/// client whose offer did not ask for its sound sends none, whatever its
/// answer says. Returns whether anything was changed.
pub fn refuse_sending(answer: &mut gst_sdp::SDPMessage) -> bool {
    let mut changed = false;
    for media in answer.medias_mut() {
        if media.media() != Some("audio") {
            continue;
        }
        let found = media
            .attributes()
            .enumerate()
            .find_map(|(i, a)| match a.key() {
                "sendrecv" => Some((i as u32, "recvonly")),
                "sendonly" => Some((i as u32, "inactive")),
                _ => None,
            });
        if let Some((i, now)) = found {
            if media
                // An empty value as the parser makes: webrtcbin reads every
                // attribute's value as a string (a NULL one crashed it).
                .replace_attribute(i, gst_sdp::SDPAttribute::new(now, Some("")))
                .is_ok()
            {
                changed = true;
            }
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::refuse_sending;

    fn answer(audio_direction: &str) -> gst_sdp::SDPMessage {
        let text = format!(
            "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
             m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:video0\r\na=recvonly\r\n\
             m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:audio1\r\na={audio_direction}\r\n"
        );
        gst_sdp::SDPMessage::parse_buffer(text.as_bytes()).unwrap()
    }

    fn direction(m: &gst_sdp::SDPMessage, kind: &str) -> String {
        let media = m.medias().find(|x| x.media() == Some(kind)).unwrap();
        ["sendrecv", "sendonly", "recvonly", "inactive"]
            .into_iter()
            .find(|d| media.attribute_val(d).is_some() || media.attributes().any(|a| a.key() == *d))
            .unwrap()
            .to_string()
    }

    #[test]
    fn a_forged_sending_answer_is_kept_from_sending() {
        gst::init().unwrap();
        let mut m = answer("sendrecv");
        assert!(refuse_sending(&mut m));
        assert_eq!(direction(&m, "audio"), "recvonly");
        let audio = m.medias().find(|x| x.media() == Some("audio")).unwrap();
        assert!(
            audio.attributes().all(|a| a.value().is_some()),
            "every attribute has a value, as parsed ones do"
        );
        assert_eq!(direction(&m, "video"), "recvonly", "video untouched");
        let mut m = answer("sendonly");
        assert!(refuse_sending(&mut m));
        assert_eq!(direction(&m, "audio"), "inactive");
        let mut m = answer("recvonly");
        assert!(!refuse_sending(&mut m), "an honest answer is left alone");
    }
}
