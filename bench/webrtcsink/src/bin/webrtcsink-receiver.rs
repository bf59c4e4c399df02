//! Many lightweight consumers of a webrtcsink producer in one process, for
//! the side-by-side benchmark (bench/peer.mjs). The same stdin/stdout
//! interface as oriel's `examples/bench_receiver/`, except that it takes
//! `--signalling ws://HOST:PORT` (webrtcsink's signalling server) instead of
//! an oriel link, and finds the producer itself.
//!
//! Each viewer is a real webrtcbin in its own pipeline, answering the
//! producer's offer (receive only). Nothing is decoded: the RTP packets go
//! to a fakesink, and a probe counts packets, bytes and frames (packets
//! with the RTP marker bit, which ends every frame of an H.264 stream).
//!
//! stdin, one command a line: `add N`, `remove N` (the N newest, ending
//! their sessions), `stats`, `quit`. stdout, JSON lines: `ready`, `joined`,
//! `connected`, `first_frame`, `left`, `error`, `stats` events (see
//! README.md). Logs go to stderr only.

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use async_tungstenite::tungstenite::Message;
use futures::StreamExt;
use gst::prelude::*;
use gst_plugin_webrtc_signalling_protocol as p;
use serde_json::json;
use tokio::io::AsyncBufReadExt;
use tokio::sync::{mpsc, oneshot};

/// How long a viewer waits for a producer to show up in the list.
const PRODUCER_WAIT: Duration = Duration::from_secs(30);
/// How often it asks again while the list is empty.
const RELIST_EVERY: Duration = Duration::from_millis(250);
/// Teardown per viewer at `quit` before the process exits anyway.
const QUIT_GRACE: Duration = Duration::from_secs(5);

/// One JSON line on stdout. A single lock keeps lines whole.
fn emit(v: serde_json::Value) {
    let mut out = std::io::stdout().lock();
    // A closed stdout means the harness is gone; nothing useful to do then.
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

fn ms_since(t: Instant) -> u64 {
    t.elapsed().as_millis() as u64
}

/// Counters a probe updates on a streaming thread and `stats` reads.
#[derive(Default)]
struct Counters {
    frames: AtomicU64,
    packets: AtomicU64,
    bytes: AtomicU64,
    first_frame_sent: AtomicBool,
    state: Mutex<String>,
}

impl Counters {
    fn set_state(&self, s: &str) {
        if let Ok(mut g) = self.state.lock() {
            *g = s.to_string();
        }
    }
    fn state(&self) -> String {
        self.state
            .lock()
            .map(|g| g.clone())
            .unwrap_or_else(|_| "unknown".into())
    }
}

struct Viewer {
    id: u64,
    counters: Arc<Counters>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

/// What webrtcbin's signal handlers (GStreamer threads) tell the viewer task.
enum MediaEvent {
    Ice { mline: u32, candidate: String },
    Answer(String),
    Failed(String),
    ConnectionState(gst_webrtc::WebRTCPeerConnectionState),
    FirstFrame,
}

fn outgoing(msg: &p::IncomingMessage) -> Result<Message> {
    Ok(Message::text(serde_json::to_string(msg)?))
}

/// Counts one RTP packet. The marker bit (byte 1, top bit) ends a frame.
fn count_packet(c: &Counters, buf: &gst::BufferRef, events: &mpsc::UnboundedSender<MediaEvent>) {
    c.packets.fetch_add(1, Ordering::Relaxed);
    c.bytes.fetch_add(buf.size() as u64, Ordering::Relaxed);
    let mut head = [0u8; 2];
    if buf.size() >= 12 && buf.copy_to_slice(0, &mut head).is_ok() && head[1] & 0x80 != 0 {
        c.frames.fetch_add(1, Ordering::Relaxed);
        if !c.first_frame_sent.swap(true, Ordering::Relaxed) {
            let _ = events.send(MediaEvent::FirstFrame);
        }
    }
}

/// A receive-only webrtcbin in its own pipeline; every stream it outputs
/// goes to a fakesink through a counting probe.
fn build_media(
    counters: Arc<Counters>,
    latency_ms: u32,
    events: mpsc::UnboundedSender<MediaEvent>,
) -> Result<(gst::Pipeline, gst::Element)> {
    let pipeline = gst::Pipeline::new();
    let webrtcbin = gst::ElementFactory::make("webrtcbin")
        .property_from_str("bundle-policy", "max-bundle")
        // The jitterbuffer's latency: 0 by default, as bench_receiver, so
        // first_frame is when the packet arrived, not 200 ms later.
        .property("latency", latency_ms)
        .build()
        .context("webrtcbin (gstreamer1.0-plugins-bad, gstreamer1.0-nice)")?;
    pipeline.add(&webrtcbin)?;

    {
        let events = events.clone();
        webrtcbin.connect("on-ice-candidate", false, move |v| {
            let mline = v.get(1).and_then(|x| x.get::<u32>().ok());
            let cand = v.get(2).and_then(|x| x.get::<String>().ok());
            if let (Some(mline), Some(candidate)) = (mline, cand) {
                let _ = events.send(MediaEvent::Ice { mline, candidate });
            }
            None
        });
    }
    {
        let events = events.clone();
        webrtcbin.connect_notify(Some("connection-state"), move |wb, _| {
            let s = wb.property::<gst_webrtc::WebRTCPeerConnectionState>("connection-state");
            let _ = events.send(MediaEvent::ConnectionState(s));
        });
    }
    {
        let pipeline_weak = pipeline.downgrade();
        webrtcbin.connect_pad_added(move |_, pad| {
            if pad.direction() != gst::PadDirection::Src {
                return;
            }
            let Some(pipeline) = pipeline_weak.upgrade() else {
                return;
            };
            let counters = counters.clone();
            let events = events.clone();
            pad.add_probe(
                gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
                move |_, info| {
                    match &info.data {
                        Some(gst::PadProbeData::Buffer(b)) => count_packet(&counters, b, &events),
                        Some(gst::PadProbeData::BufferList(l)) => {
                            for b in l.iter() {
                                count_packet(&counters, b, &events);
                            }
                        }
                        _ => {}
                    }
                    gst::PadProbeReturn::Ok
                },
            );
            let sink = match gst::ElementFactory::make("fakesink")
                .property("sync", false)
                .property("async", false)
                .property("enable-last-sample", false)
                .build()
            {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("webrtcsink-receiver: fakesink: {e}");
                    return;
                }
            };
            if pipeline.add(&sink).is_err() {
                return;
            }
            let _ = sink.sync_state_with_parent();
            if let Some(sinkpad) = sink.static_pad("sink") {
                if let Err(e) = pad.link(&sinkpad) {
                    eprintln!(
                        "webrtcsink-receiver: linking {} to fakesink: {e:?}",
                        pad.name()
                    );
                }
            }
        });
    }
    pipeline
        .set_state(gst::State::Playing)
        .context("starting the viewer pipeline")?;
    Ok((pipeline, webrtcbin))
}

/// Applies the producer's offer, then creates and applies the answer; the
/// answer's SDP comes back as [`MediaEvent::Answer`].
fn answer_offer(
    webrtcbin: &gst::Element,
    sdp: &str,
    events: mpsc::UnboundedSender<MediaEvent>,
) -> Result<()> {
    let msg = gst_sdp::SDPMessage::parse_buffer(sdp.as_bytes())
        .map_err(|_| anyhow!("the offer is not valid SDP"))?;
    let offer = gst_webrtc::WebRTCSessionDescription::new(gst_webrtc::WebRTCSDPType::Offer, msg);
    let wb = webrtcbin.downgrade();
    let promise = gst::Promise::with_change_func(move |reply| {
        if let Err(e) = reply {
            let _ = events.send(MediaEvent::Failed(format!("set-remote-description: {e:?}")));
            return;
        }
        let Some(wb) = wb.upgrade() else { return };
        let wb_weak = wb.downgrade();
        let events2 = events.clone();
        let p2 = gst::Promise::with_change_func(move |reply| {
            let answer = match reply {
                Ok(Some(s)) => s.get::<gst_webrtc::WebRTCSessionDescription>("answer"),
                other => {
                    let _ = events2.send(MediaEvent::Failed(format!("create-answer: {other:?}")));
                    return;
                }
            };
            let answer = match answer {
                Ok(a) => a,
                Err(e) => {
                    let _ = events2.send(MediaEvent::Failed(format!("create-answer: {e}")));
                    return;
                }
            };
            let Some(wb) = wb_weak.upgrade() else { return };
            wb.emit_by_name::<()>("set-local-description", &[&answer, &None::<gst::Promise>]);
            match answer.sdp().as_text() {
                Ok(text) => {
                    let _ = events2.send(MediaEvent::Answer(text));
                }
                Err(e) => {
                    let _ = events2.send(MediaEvent::Failed(format!("answer SDP: {e}")));
                }
            }
        });
        wb.emit_by_name::<()>("create-answer", &[&None::<gst::Structure>, &p2]);
    });
    webrtcbin.emit_by_name::<()>("set-remote-description", &[&offer, &promise]);
    Ok(())
}

/// One viewer from connect to goodbye. Returns when stopped or failed.
async fn run_viewer(
    id: u64,
    url: String,
    latency_ms: u32,
    t_add: Instant,
    counters: Arc<Counters>,
    mut stop: oneshot::Receiver<()>,
) -> Result<()> {
    counters.set_state("new");
    let (ws, _) = async_tungstenite::tokio::connect_async(url.as_str())
        .await
        .with_context(|| format!("connecting to {url}"))?;
    let (mut ws_tx, mut ws_rx) = ws.split();

    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<MediaEvent>();
    // Building a pipeline and its state changes may block: not on a
    // runtime worker.
    let (pipeline, webrtcbin) = {
        let counters = counters.clone();
        let ev_tx = ev_tx.clone();
        tokio::task::spawn_blocking(move || build_media(counters, latency_ms, ev_tx)).await??
    };
    // Whatever happens below, the pipeline goes to NULL on the way out.
    struct Teardown(gst::Pipeline);
    impl Drop for Teardown {
        fn drop(&mut self) {
            let _ = self.0.set_state(gst::State::Null);
        }
    }
    let _teardown = Teardown(pipeline.clone());
    let mut bus = pipeline
        .bus()
        .ok_or_else(|| anyhow!("viewer pipeline without a bus"))?
        .stream();

    let mut session: Option<String> = None;
    let mut producer_deadline: Option<Instant> = None;
    let mut relist_at: Option<tokio::time::Instant> = None;
    counters.set_state("signalling");

    let result: Result<()> = loop {
        let relist_deadline = relist_at;
        let relist = async move {
            match relist_deadline {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = &mut stop => break Ok(()),
            _ = relist => {
                relist_at = None;
                ws_tx.send(outgoing(&p::IncomingMessage::List)?).await?;
            }
            msg = bus.next() => {
                let Some(msg) = msg else { continue };
                if let gst::MessageView::Error(e) = msg.view() {
                    let src = msg.src().map(|s| s.path_string().to_string()).unwrap_or_default();
                    break Err(anyhow!("GStreamer error from {src}: {}", e.error()));
                }
            }
            ev = ev_rx.recv() => {
                let Some(ev) = ev else { break Err(anyhow!("media events closed")) };
                match ev {
                    MediaEvent::Ice { mline, candidate } => {
                        if let Some(sid) = &session {
                            let m = p::IncomingMessage::Peer(p::PeerMessage {
                                session_id: sid.clone(),
                                peer_message: p::PeerMessageInner::Ice { candidate, sdp_m_line_index: mline },
                            });
                            ws_tx.send(outgoing(&m)?).await?;
                        }
                    }
                    MediaEvent::Answer(sdp) => {
                        let Some(sid) = &session else { break Err(anyhow!("an answer without a session")) };
                        let m = p::IncomingMessage::Peer(p::PeerMessage {
                            session_id: sid.clone(),
                            peer_message: p::PeerMessageInner::Sdp(p::SdpMessage::Answer { sdp }),
                        });
                        ws_tx.send(outgoing(&m)?).await?;
                    }
                    MediaEvent::Failed(e) => break Err(anyhow!(e)),
                    MediaEvent::ConnectionState(s) => {
                        use gst_webrtc::WebRTCPeerConnectionState as S;
                        let name = match s {
                            S::New => "new",
                            S::Connecting => "connecting",
                            S::Connected => "connected",
                            S::Disconnected => "disconnected",
                            S::Failed => "failed",
                            S::Closed => "closed",
                            _ => "unknown",
                        };
                        counters.set_state(name);
                        match s {
                            S::Connected => emit(json!({"event": "connected", "id": id, "ms": ms_since(t_add)})),
                            S::Failed => break Err(anyhow!("peer connection failed")),
                            _ => {}
                        }
                    }
                    MediaEvent::FirstFrame => emit(json!({"event": "first_frame", "id": id, "ms": ms_since(t_add)})),
                }
            }
            msg = ws_rx.next() => {
                let text = match msg {
                    None => break Err(anyhow!("the signalling server closed the connection")),
                    Some(Err(e)) => break Err(anyhow!("signalling: {e}")),
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) => break Err(anyhow!("the signalling server closed the connection")),
                    Some(Ok(_)) => continue,
                };
                let msg: p::OutgoingMessage = match serde_json::from_str(text.as_str()) {
                    Ok(m) => m,
                    Err(e) => {
                        eprintln!("webrtcsink-receiver: viewer {id}: ignoring message ({e}): {}", text.as_str());
                        continue;
                    }
                };
                match msg {
                    p::OutgoingMessage::Welcome { peer_id } => {
                        emit(json!({"event": "joined", "id": id, "peerId": peer_id, "ms": ms_since(t_add)}));
                        producer_deadline = Some(Instant::now() + PRODUCER_WAIT);
                        ws_tx.send(outgoing(&p::IncomingMessage::List)?).await?;
                    }
                    p::OutgoingMessage::List { producers } => {
                        if session.is_some() {
                            continue;
                        }
                        match producers.first() {
                            Some(prod) => {
                                let m = p::IncomingMessage::StartSession(p::StartSessionMessage {
                                    peer_id: prod.id.clone(),
                                    offer: None,
                                });
                                ws_tx.send(outgoing(&m)?).await?;
                            }
                            None if producer_deadline.is_some_and(|d| Instant::now() > d) => {
                                break Err(anyhow!("no producer registered within {PRODUCER_WAIT:?}"));
                            }
                            None => relist_at = Some(tokio::time::Instant::now() + RELIST_EVERY),
                        }
                    }
                    p::OutgoingMessage::SessionStarted { session_id, .. } => {
                        session = Some(session_id);
                    }
                    p::OutgoingMessage::Peer(p::PeerMessage { session_id, peer_message }) => {
                        if session.as_deref() != Some(session_id.as_str()) {
                            continue;
                        }
                        match peer_message {
                            p::PeerMessageInner::Sdp(p::SdpMessage::Offer { sdp }) => {
                                answer_offer(&webrtcbin, &sdp, ev_tx.clone())?;
                            }
                            p::PeerMessageInner::Sdp(p::SdpMessage::Answer { .. }) => {
                                break Err(anyhow!("the producer sent an answer; this consumer only answers"));
                            }
                            p::PeerMessageInner::Ice { candidate, sdp_m_line_index } => {
                                // mDNS candidates crash webrtcbin 1.22 on
                                // teardown (FIELD-NOTES); webrtcsink sends
                                // none, but never pass one on.
                                if candidate.contains(".local") {
                                    continue;
                                }
                                webrtcbin.emit_by_name::<()>("add-ice-candidate", &[&sdp_m_line_index, &candidate]);
                            }
                        }
                    }
                    p::OutgoingMessage::EndSession(p::EndSessionMessage { session_id })
                        if session.as_deref() == Some(session_id.as_str()) =>
                    {
                        session = None;
                        break Err(anyhow!("the producer ended the session"));
                    }
                    p::OutgoingMessage::Error { details } => break Err(anyhow!("signalling server: {details}")),
                    _ => {}
                }
            }
        }
    };

    // Goodbye: end the session so the producer drops its consumer branch
    // now rather than when the socket times out.
    if let Some(sid) = session {
        let m = p::IncomingMessage::EndSession(p::EndSessionMessage { session_id: sid });
        if let Ok(m) = outgoing(&m) {
            let _ = tokio::time::timeout(Duration::from_secs(2), ws_tx.send(m)).await;
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), ws_tx.close(None)).await;
    let _ = tokio::task::spawn_blocking(move || drop(_teardown)).await;
    result
}

fn spawn_viewer(id: u64, url: &str, latency_ms: u32) -> Viewer {
    let counters = Arc::new(Counters::default());
    let (stop_tx, stop_rx) = oneshot::channel();
    let t_add = Instant::now();
    let task = {
        let counters = counters.clone();
        let url = url.to_string();
        tokio::spawn(async move {
            match run_viewer(id, url, latency_ms, t_add, counters.clone(), stop_rx).await {
                Ok(()) => {
                    counters.set_state("left");
                    emit(json!({"event": "left", "id": id}));
                }
                Err(e) => {
                    counters.set_state("failed");
                    eprintln!("webrtcsink-receiver: viewer {id}: {e:#}");
                    // Always fatal: a viewer that fails is finished (stays in
                    // stats as `failed` until removed), as in bench_receiver.
                    emit(
                        json!({"event": "error", "id": id, "message": format!("{e:#}"), "fatal": true}),
                    );
                }
            }
        })
    };
    Viewer {
        id,
        counters,
        stop: Some(stop_tx),
        task,
    }
}

async fn stop_viewers(viewers: Vec<Viewer>, grace: Duration) {
    let mut tasks = Vec::new();
    for mut v in viewers {
        if let Some(s) = v.stop.take() {
            let _ = s.send(());
        }
        tasks.push(v.task);
    }
    let _ = tokio::time::timeout(grace, futures::future::join_all(tasks)).await;
}

fn stats_line(t0: Instant, viewers: &[Viewer]) -> serde_json::Value {
    let list: Vec<_> = viewers
        .iter()
        .map(|v| {
            json!({
                "id": v.id,
                "frames": v.counters.frames.load(Ordering::Relaxed),
                "packets": v.counters.packets.load(Ordering::Relaxed),
                "bytes": v.counters.bytes.load(Ordering::Relaxed),
                "state": v.counters.state(),
            })
        })
        .collect();
    json!({"event": "stats", "t": ms_since(t0), "viewers": list})
}

struct Args {
    url: String,
    latency_ms: u32,
}

fn parse_args() -> Result<Args> {
    let mut url = None;
    let mut latency_ms = 0;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--signalling" => url = it.next(),
            "--latency-ms" => {
                latency_ms = it
                    .next()
                    .ok_or_else(|| anyhow!("--latency-ms needs a value"))?
                    .parse()
                    .context("--latency-ms takes a number")?
            }
            "-h" | "--help" => {
                eprintln!("usage: webrtcsink-receiver --signalling ws://HOST:PORT [--latency-ms N]   (commands on stdin: add N, remove N, stats, quit)");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}"),
        }
    }
    let url = url.ok_or_else(|| anyhow!("--signalling ws://HOST:PORT is required"))?;
    if !(url.starts_with("ws://") || url.starts_with("wss://")) {
        bail!("--signalling wants a ws:// or wss:// URL, got {url}");
    }
    Ok(Args { url, latency_ms })
}

async fn run() -> Result<()> {
    let Args { url, latency_ms } = parse_args()?;
    gst::init()?;
    let t0 = Instant::now();
    let mut viewers: Vec<Viewer> = Vec::new();
    let mut next_id = 1u64;
    emit(json!({"event": "ready"}));

    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        // End of stdin is a quit: the harness is gone.
        let line = match lines.next_line().await {
            Ok(Some(l)) => l,
            Ok(None) => break,
            Err(e) => {
                eprintln!("webrtcsink-receiver: stdin: {e}");
                break;
            }
        };
        let mut words = line.split_whitespace();
        let cmd = words.next().unwrap_or("");
        let n = words.next().map(|w| w.parse::<usize>());
        match (cmd, n) {
            ("add", Some(Ok(n))) => {
                for _ in 0..n {
                    viewers.push(spawn_viewer(next_id, &url, latency_ms));
                    next_id += 1;
                }
            }
            ("remove", Some(Ok(n))) => {
                let keep = viewers.len().saturating_sub(n);
                let gone = viewers.split_off(keep);
                tokio::spawn(stop_viewers(gone, QUIT_GRACE));
            }
            ("stats", None) => emit(stats_line(t0, &viewers)),
            ("quit", None) => break,
            ("", None) => {}
            _ => eprintln!(
                "webrtcsink-receiver: unknown command {line:?} (add N, remove N, stats, quit)"
            ),
        }
    }
    stop_viewers(std::mem::take(&mut viewers), QUIT_GRACE).await;
    Ok(())
}

fn main() -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("webrtcsink-receiver: tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = match rt.block_on(run()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("webrtcsink-receiver: {e:#}");
            1
        }
    };
    // The blocking stdin reader would keep the runtime from shutting down.
    std::process::exit(code);
}
