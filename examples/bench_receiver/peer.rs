//! One viewer's receiving webrtcbin: the offer answered, candidates both
//! ways, and what it reports back to the viewer's task.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use gst::prelude::*;
use serde_json::json;
use tokio::sync::mpsc;

use crate::counter::attach_counter;
use crate::output::{emit, ms_since};
use crate::viewer::Shared;

/// Events from GStreamer callbacks to the viewer's task.
pub enum MediaEvent {
    LocalIce { candidate: String, mline: u32 },
    ConnectionState(String),
    BusError(String),
}

/// What both kinds of session do with an event from the media side;
/// returns a local candidate for the caller to send its own way.
pub fn media_event(shared: &Shared, ev: MediaEvent) -> Result<Option<(u32, String)>> {
    let id = shared.id;
    match ev {
        MediaEvent::LocalIce { candidate, mline } => return Ok(Some((mline, candidate))),
        MediaEvent::ConnectionState(s) => {
            shared.set_state(&s);
            match s.as_str() {
                "connected" => {
                    emit(json!({"event": "connected", "id": id, "ms": ms_since(shared.added)}))
                }
                "failed" => bail!("WebRTC connection failed"),
                _ => {}
            }
        }
        MediaEvent::BusError(e) => {
            // An error inside webrtcbin (e.g. sctpenc on teardown):
            // the video may well go on, so report and carry on.
            emit(json!({"event": "error", "id": id, "message": e, "fatal": false}));
        }
    }
    Ok(None)
}

/// One viewer's receiving pipeline: webrtcbin, and a fakesink per incoming
/// stream with a counting probe in front.
pub struct Media {
    pipeline: gst::Pipeline,
    webrtc: gst::Element,
}

impl Media {
    pub async fn start(
        shared: Arc<Shared>,
        latency_ms: u32,
        events: mpsc::UnboundedSender<MediaEvent>,
    ) -> Result<Media> {
        tokio::task::spawn_blocking(move || Media::build(shared, latency_ms, events))
            .await
            .map_err(|e| anyhow!("pipeline setup panicked: {e}"))?
    }

    fn build(
        shared: Arc<Shared>,
        latency_ms: u32,
        events: mpsc::UnboundedSender<MediaEvent>,
    ) -> Result<Media> {
        let pipeline = gst::Pipeline::with_name(&format!("viewer{}", shared.id));
        let webrtc = gst::ElementFactory::make("webrtcbin")
            .property_from_str("bundle-policy", "max-bundle")
            // The jitterbuffer holds packets this long; 0 = count frames as
            // they arrive (loopback: no reordering to wait for).
            .property("latency", latency_ms)
            .build()
            .context("creating webrtcbin (gstreamer1.0-plugins-bad, gstreamer1.0-nice)")?;
        pipeline.add(&webrtc)?;

        let tx = events.clone();
        webrtc.connect("on-ice-candidate", false, move |v| {
            let mline = v.get(1).and_then(|x| x.get::<u32>().ok());
            let cand = v.get(2).and_then(|x| x.get::<String>().ok());
            if let (Some(mline), Some(candidate)) = (mline, cand) {
                let _ = tx.send(MediaEvent::LocalIce { candidate, mline });
            }
            None
        });
        let tx = events.clone();
        webrtc.connect_notify(Some("connection-state"), move |w, _| {
            let s = w.property::<gst_webrtc::WebRTCPeerConnectionState>("connection-state");
            let name = oriel::media::peer::connection_state_name(s);
            let _ = tx.send(MediaEvent::ConnectionState(name.into()));
        });
        let pl = pipeline.downgrade();
        webrtc.connect_pad_added(move |_, pad| {
            if pad.direction() != gst::PadDirection::Src {
                return;
            }
            let Some(pipeline) = pl.upgrade() else { return };
            if let Err(e) = attach_counter(&pipeline, pad, shared.clone()) {
                eprintln!("bench_receiver: viewer {}: {e:#}", shared.id);
            }
        });

        // No main loop: a sync handler sees each message on the posting
        // thread and drops it, forwarding only errors.
        let bus = pipeline
            .bus()
            .ok_or_else(|| anyhow!("pipeline without a bus"))?;
        let tx = events;
        bus.set_sync_handler(move |_, msg| {
            if let gst::MessageView::Error(e) = msg.view() {
                let src = msg
                    .src()
                    .map(|s| s.path_string().to_string())
                    .unwrap_or_default();
                let _ = tx.send(MediaEvent::BusError(format!("{src}: {}", e.error())));
            }
            gst::BusSyncReply::Drop
        });

        pipeline
            .set_state(gst::State::Playing)
            .context("starting the receiving pipeline")?;
        Ok(Media { pipeline, webrtc })
    }

    /// set-remote-description(offer), create-answer, set-local-description;
    /// returns the answer's SDP text.
    pub async fn answer(&self, offer_sdp: &str) -> Result<String> {
        let sdp = gst_sdp::SDPMessage::parse_buffer(offer_sdp.as_bytes())
            .map_err(|e| anyhow!("the offer is not valid SDP: {e}"))?;
        // The SDP parser is lenient and webrtcbin answers an offer without
        // media with an empty answer; there would be nothing to count.
        if !sdp.medias().any(|m| m.media() == Some("video")) {
            bail!("the offer has no video line");
        }
        let offer =
            gst_webrtc::WebRTCSessionDescription::new(gst_webrtc::WebRTCSDPType::Offer, sdp);
        let (promise, done) = new_promise();
        self.webrtc
            .emit_by_name::<()>("set-remote-description", &[&offer, &promise]);
        wait_promise(done, "set-remote-description").await?;

        let (promise, done) = new_promise();
        self.webrtc
            .emit_by_name::<()>("create-answer", &[&None::<gst::Structure>, &promise]);
        let reply = wait_promise(done, "create-answer").await?;
        let answer = reply
            .and_then(|s| s.get::<gst_webrtc::WebRTCSessionDescription>("answer").ok())
            .ok_or_else(|| anyhow!("create-answer gave no answer"))?;

        let (promise, done) = new_promise();
        self.webrtc
            .emit_by_name::<()>("set-local-description", &[&answer, &promise]);
        wait_promise(done, "set-local-description").await?;
        answer
            .sdp()
            .as_text()
            .map_err(|e| anyhow!("cannot print the answer: {e}"))
    }

    pub fn add_ice(&self, mline: u32, candidate: &str) {
        // The agent never sends mDNS names, but a .local candidate crashes
        // webrtcbin 1.22 on teardown (FIELD-NOTES), so never pass one on.
        if candidate.contains(".local") {
            return;
        }
        self.webrtc
            .emit_by_name::<()>("add-ice-candidate", &[&mline, &candidate]);
    }

    pub async fn shutdown(self) {
        let pipeline = self.pipeline;
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(bus) = pipeline.bus() {
                bus.unset_sync_handler();
            }
            let _ = pipeline.set_state(gst::State::Null);
        })
        .await;
    }
}

type PromiseReply = Option<gst::Structure>;

fn new_promise() -> (
    gst::Promise,
    tokio::sync::oneshot::Receiver<Result<PromiseReply>>,
) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let p = gst::Promise::with_change_func(move |reply| {
        let r = match reply {
            Ok(s) => Ok(s.map(|s| s.to_owned())),
            Err(e) => Err(anyhow!("{e:?}")),
        };
        let _ = tx.send(r);
    });
    (p, rx)
}

async fn wait_promise(
    rx: tokio::sync::oneshot::Receiver<Result<PromiseReply>>,
    what: &str,
) -> Result<PromiseReply> {
    let reply = tokio::time::timeout(Duration::from_secs(10), rx)
        .await
        .map_err(|_| anyhow!("{what} did not complete in 10 s"))?
        .map_err(|_| anyhow!("{what}: promise dropped"))?
        .with_context(|| what.to_string())?;
    // webrtcbin reports failures as an `error` field in the reply.
    if let Some(s) = reply.as_ref() {
        if let Ok(e) = s.get::<gst::glib::Error>("error") {
            bail!("{what} failed: {e}");
        }
    }
    Ok(reply)
}
