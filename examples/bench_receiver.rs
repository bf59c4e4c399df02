//! bench_receiver: many lightweight oriel viewers in one process, for the
//! benchmarks (bench/README.md). Each viewer is a real WebRTC receiver, a
//! GStreamer webrtcbin on its own WebSocket, speaking oriel's signalling the
//! way the web client does; it never decodes. Incoming RTP goes to a fakesink
//! through a pad probe that counts packets, bytes and frames: a frame is
//! counted when its last packet (RTP marker bit) arrives and no packet went
//! missing since the previous frame ended (RTP sequence numbers); frames with
//! a gap count as `incomplete`, the missing packets as `lost`.
//!
//! ```text
//! bench_receiver --link http://HOST:PORT/#token=... [--name PREFIX] [--latency-ms N]
//! ```
//!
//! Commands on stdin, one per line: `add N`, `remove N` (the N newest, with
//! bye), `stats`, `quit` (bye to all, exit 0; end of input does the same).
//! JSON lines on stdout (diagnostics go to stderr):
//!
//! ```text
//! {"event":"ready"}
//! {"event":"joined","id":K,"peerId":P,"ms":T}      welcome received, T = ms since its add
//! {"event":"connected","id":K,"ms":T}              webrtcbin connection-state connected
//! {"event":"first_frame","id":K,"ms":T}            first whole frame
//! {"event":"left","id":K}                          after remove: bye, the agent closed, pipeline stopped
//! {"event":"error","id":K,"message":"...","fatal":B}
//! {"event":"stats","t":MS,"viewers":[{"id":K,"frames":F,"incomplete":I,"lost":L,"packets":P,"bytes":B,"state":"connected"}]}
//! ```
//!
//! `fatal: true` means the viewer is finished (socket closed, refused, media
//! failure) and stays in `stats` with state `failed` until removed; `fatal:
//! false` reports something odd the viewer survived (e.g. a message from the
//! agent it could not parse).
//!
//! Threads: the tokio runtime (2 workers), one thread reading stdin, and
//! whatever each webrtcbin starts itself. Buses are read by sync handlers (no
//! GLib main loop), and every GStreamer call that may block (building a
//! pipeline, state changes) runs on tokio's blocking pool (its threads come
//! and go with joins and leaves, and exit after 10 s idle).
//!
//! Not done: the `iceServers` of `welcome` are ignored (the benchmarks reach
//! the agent on loopback), and `https` links (no TLS here).

use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use gst::prelude::*;
use oriel::signalling::protocol::{ClientMessage, ServerMessage, PROTOCOL_VERSION};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// Keepalive period; the agent drops a silent client after 30 s.
const PING_EVERY: Duration = Duration::from_secs(5);
/// How long a removed viewer may take to say bye and close before we move on.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// One JSON line on stdout. Called from tokio tasks and GStreamer streaming
/// threads alike; the lock keeps lines whole.
fn emit(v: serde_json::Value) {
    let mut out = std::io::stdout().lock();
    // A closed stdout means nobody listens any more; nothing useful to do.
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

fn ms_since(t: Instant) -> f64 {
    (t.elapsed().as_secs_f64() * 10_000.0).round() / 10.0
}

struct Options {
    ws_url: String,
    token: String,
    name: String,
    latency_ms: u32,
}

fn usage() -> &'static str {
    "usage: bench_receiver --link http://HOST:PORT/#token=TOKEN [--name PREFIX] [--latency-ms N]\n\
     stdin commands: add N | remove N | stats | quit"
}

fn parse_args() -> Result<Options> {
    let mut link = None;
    let mut name = "bench".to_string();
    let mut latency_ms = 0;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |flag: &str| args.next().ok_or_else(|| anyhow!("{flag} needs a value"));
        match a.as_str() {
            "--link" => link = Some(value("--link")?),
            "--name" => name = value("--name")?,
            "--latency-ms" => {
                latency_ms = value("--latency-ms")?
                    .parse()
                    .context("--latency-ms takes a number")?
            }
            "-h" | "--help" => {
                println!("{}", usage());
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{}", usage()),
        }
    }
    let link = link.ok_or_else(|| anyhow!("--link is required\n{}", usage()))?;
    let (ws_url, token) = ws_url_and_token(&link)?;
    Ok(Options {
        ws_url,
        token,
        name,
        latency_ms,
    })
}

/// `http://HOST:PORT/path#token=T` -> (`ws://HOST:PORT/ws`, T).
fn ws_url_and_token(link: &str) -> Result<(String, String)> {
    let (base, fragment) = link
        .split_once('#')
        .ok_or_else(|| anyhow!("the link has no #token= fragment"))?;
    let token = fragment
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .filter(|t| !t.is_empty())
        .ok_or_else(|| anyhow!("the link has no #token= fragment"))?;
    let token = percent_encoding::percent_decode_str(token)
        .decode_utf8()
        .context("the token is not UTF-8")?
        .into_owned();
    let (scheme, rest) = base
        .split_once("://")
        .ok_or_else(|| anyhow!("the link is not an http:// URL"))?;
    let ws_scheme = match scheme {
        "http" => "ws",
        // This example links tokio-tungstenite without TLS support.
        "https" => bail!("https links are not supported (no TLS in this receiver)"),
        other => bail!("unsupported link scheme {other:?}"),
    };
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    if host.is_empty() {
        bail!("the link has no host");
    }
    Ok((format!("{ws_scheme}://{host}/ws"), token))
}

/// What stats reports for one viewer; shared with the GStreamer callbacks.
struct Shared {
    id: u64,
    added: Instant,
    frames: AtomicU64,
    packets: AtomicU64,
    bytes: AtomicU64,
    first_frame_sent: AtomicBool,
    /// Frames that ended (marker bit) with a packet of theirs missing.
    incomplete: AtomicU64,
    /// Packets missing from the sequence numbers seen.
    lost: AtomicU64,
    seq: Mutex<SeqState>,
    state: Mutex<String>,
}

/// Where the RTP sequence stands: the last number seen, and whether the
/// frame being received has a gap.
#[derive(Default)]
struct SeqState {
    last: Option<u16>,
    broken: bool,
}

impl Shared {
    fn set_state(&self, s: &str) {
        if let Ok(mut st) = self.state.lock() {
            *st = s.to_string();
        }
    }
    fn state(&self) -> String {
        self.state
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|_| "unknown".into())
    }
}

/// A viewer as the command loop sees it.
struct Viewer {
    shared: Arc<Shared>,
    /// Dropping or sending on it tells the viewer task to say bye and stop.
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

/// Events from GStreamer callbacks to the viewer's task.
enum MediaEvent {
    LocalIce { candidate: String, mline: u32 },
    ConnectionState(String),
    BusError(String),
}

fn main() {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bench_receiver: {e:#}");
            std::process::exit(2);
        }
    };
    if let Err(e) = gst::init() {
        eprintln!("bench_receiver: GStreamer init failed: {e}");
        std::process::exit(1);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench_receiver: tokio runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = rt.block_on(run(Arc::new(opts)));
    // Viewer tasks are all finished by now; do not wait for blocking-pool
    // threads that may still sit in a GStreamer call.
    rt.shutdown_timeout(Duration::from_secs(2));
    std::process::exit(code);
}

async fn run(opts: Arc<Options>) -> i32 {
    // stdin is read on its own thread (a blocking read), lines forwarded.
    let (line_tx, mut lines) = mpsc::unbounded_channel::<String>();
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            for line in std::io::stdin().lock().lines() {
                match line {
                    Ok(l) => {
                        if line_tx.send(l).is_err() {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        })
        .ok();

    let started = Instant::now();
    let mut viewers: Vec<Viewer> = Vec::new();
    let mut next_id = 1u64;
    emit(json!({"event": "ready"}));
    loop {
        let Some(line) = lines.recv().await else {
            eprintln!("bench_receiver: end of input, quitting");
            break;
        };
        let mut words = line.split_whitespace();
        let cmd = words.next().unwrap_or("");
        let n = words.next().map(|w| w.parse::<usize>());
        match (cmd, n) {
            ("", _) => {}
            ("add", Some(Ok(n))) => {
                for _ in 0..n {
                    viewers.push(spawn_viewer(next_id, opts.clone()));
                    next_id += 1;
                }
            }
            ("remove", Some(Ok(n))) => {
                let k = n.min(viewers.len());
                let gone: Vec<Viewer> = viewers.drain(viewers.len() - k..).collect();
                // Removed newest first, concurrently: each says bye itself.
                stop_viewers(gone).await;
            }
            ("stats", None) => {
                let list: Vec<_> = viewers
                    .iter()
                    .map(|v| {
                        let s = &v.shared;
                        json!({
                            "id": s.id,
                            "frames": s.frames.load(Ordering::Relaxed),
                            "incomplete": s.incomplete.load(Ordering::Relaxed),
                            "lost": s.lost.load(Ordering::Relaxed),
                            "packets": s.packets.load(Ordering::Relaxed),
                            "bytes": s.bytes.load(Ordering::Relaxed),
                            "state": s.state(),
                        })
                    })
                    .collect();
                emit(json!({"event": "stats", "t": ms_since(started), "viewers": list}));
            }
            ("quit", None) => break,
            _ => eprintln!("bench_receiver: bad command {line:?}\n{}", usage()),
        }
    }
    stop_viewers(std::mem::take(&mut viewers)).await;
    0
}

async fn stop_viewers(gone: Vec<Viewer>) {
    let mut tasks = Vec::new();
    for mut v in gone.into_iter().rev() {
        if let Some(stop) = v.stop.take() {
            let _ = stop.send(());
        }
        tasks.push((v.shared.id, v.task));
    }
    for (id, task) in tasks {
        if let Err(e) = task.await {
            eprintln!("bench_receiver: viewer {id} task ended badly: {e}");
        }
        emit(json!({"event": "left", "id": id}));
    }
}

fn spawn_viewer(id: u64, opts: Arc<Options>) -> Viewer {
    let shared = Arc::new(Shared {
        id,
        added: Instant::now(),
        frames: AtomicU64::new(0),
        packets: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        first_frame_sent: AtomicBool::new(false),
        incomplete: AtomicU64::new(0),
        lost: AtomicU64::new(0),
        seq: Mutex::new(SeqState::default()),
        state: Mutex::new("connecting".into()),
    });
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(viewer_task(shared.clone(), opts, stop_rx));
    Viewer {
        shared,
        stop: Some(stop_tx),
        task,
    }
}

/// Runs one viewer until it is told to stop; a failure is reported as a
/// fatal error event and the task then waits for its removal.
async fn viewer_task(
    shared: Arc<Shared>,
    opts: Arc<Options>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let mut media: Option<Media> = None;
    let outcome = session(&shared, &opts, &mut stop, &mut media).await;
    if let Some(m) = media.take() {
        m.shutdown().await;
    }
    if let Err(e) = outcome {
        shared.set_state("failed");
        eprintln!("bench_receiver: viewer {}: {e:#}", shared.id);
        emit(
            json!({"event": "error", "id": shared.id, "message": format!("{e:#}"), "fatal": true}),
        );
        // Stay listed (state failed) until removed.
        let _ = stop.await;
    } else {
        shared.set_state("closed");
    }
}

/// The signalling session: Ok when told to stop, Err when it failed.
async fn session(
    shared: &Arc<Shared>,
    opts: &Options,
    stop: &mut tokio::sync::oneshot::Receiver<()>,
    media: &mut Option<Media>,
) -> Result<()> {
    let id = shared.id;
    let (ws, _) = tokio::select! {
        r = tokio_tungstenite::connect_async(opts.ws_url.as_str()) => r.with_context(|| format!("connecting to {}", opts.ws_url))?,
        _ = &mut *stop => return Ok(()),
    };
    let (mut sink, mut stream) = ws.split();
    let send = |m: &ClientMessage| Message::text(serde_json::to_string(m).unwrap_or_default());
    sink.send(send(&ClientMessage::Hello {
        protocol: PROTOCOL_VERSION,
        token: opts.token.clone(),
        name: Some(format!("{} {id}", opts.name)),
    }))
    .await
    .context("sending hello")?;
    shared.set_state("joining");

    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<MediaEvent>();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            _ = &mut *stop => {
                // Leave like a polite client: bye, then keep our side of the
                // connection up until the agent has removed its branch and
                // closed the socket, so its SCTP/DTLS end does not see ours
                // vanish first. Best effort: the agent also notices a
                // socket that just closes.
                let bye = async {
                    sink.send(send(&ClientMessage::Bye {})).await?;
                    while let Some(Ok(m)) = stream.next().await {
                        if m.is_close() {
                            break;
                        }
                    }
                    sink.close().await
                };
                let _ = tokio::time::timeout(CLOSE_GRACE, bye).await;
                return Ok(());
            }
            _ = ping.tick() => {
                sink.send(send(&ClientMessage::Ping {})).await.context("sending ping")?;
            }
            ev = ev_rx.recv() => {
                // ev_tx lives in this function, so recv never yields None here.
                let Some(ev) = ev else { continue };
                match ev {
                    MediaEvent::LocalIce { candidate, mline } => {
                        sink.send(send(&ClientMessage::Ice {
                            candidate,
                            sdp_m_line_index: mline,
                            sdp_mid: None,
                        }))
                        .await
                        .context("sending a candidate")?;
                    }
                    MediaEvent::ConnectionState(s) => {
                        shared.set_state(&s);
                        match s.as_str() {
                            "connected" => emit(json!({"event": "connected", "id": id, "ms": ms_since(shared.added)})),
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
            }
            msg = stream.next() => {
                let text = match msg {
                    None => bail!("the agent closed the socket"),
                    Some(Err(e)) => bail!("WebSocket error: {e}"),
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(f))) => bail!("the agent closed the socket ({})", f.map(|f| f.reason.to_string()).unwrap_or_default()),
                    Some(Ok(_)) => continue,
                };
                let msg: ServerMessage = match serde_json::from_str(text.as_str()) {
                    Ok(m) => m,
                    Err(e) => {
                        let shown: String = text.chars().take(120).collect();
                        eprintln!("bench_receiver: viewer {id}: ignoring a message it cannot parse ({e}): {shown}");
                        emit(json!({"event": "error", "id": id, "message": format!("unparsable message from the agent ignored: {e}"), "fatal": false}));
                        continue;
                    }
                };
                match msg {
                    ServerMessage::Welcome { peer_id, .. } => {
                        shared.set_state("joined");
                        emit(json!({"event": "joined", "id": id, "peerId": peer_id, "ms": ms_since(shared.added)}));
                    }
                    ServerMessage::Offer { sdp } => {
                        // A new offer (after capture lost/ok) means a new connection.
                        if let Some(old) = media.take() {
                            old.shutdown().await;
                        }
                        let m = Media::start(shared.clone(), opts.latency_ms, ev_tx.clone()).await?;
                        let answer = m.answer(&sdp).await?;
                        *media = Some(m);
                        sink.send(send(&ClientMessage::Answer { sdp: answer })).await.context("sending the answer")?;
                        shared.set_state("negotiating");
                    }
                    ServerMessage::Ice { candidate, sdp_m_line_index } => {
                        match media.as_ref() {
                            Some(m) if !candidate.is_empty() => m.add_ice(sdp_m_line_index, &candidate),
                            _ => {}
                        }
                    }
                    ServerMessage::Capture { state, reason } => {
                        eprintln!("bench_receiver: viewer {id}: capture {state:?} {}", reason.unwrap_or_default());
                        if let Some(old) = media.take() {
                            old.shutdown().await;
                        }
                        shared.set_state("capture-lost");
                    }
                    ServerMessage::Error { code, message } => {
                        // A refused hello is followed by bye; anything else
                        // leaves the session up.
                        emit(json!({"event": "error", "id": id, "message": format!("agent error {}: {message}", code.as_str()), "fatal": false}));
                    }
                    ServerMessage::Bye { reason } => bail!("the agent said bye: {reason}"),
                    ServerMessage::Participants { .. } | ServerMessage::Pong | ServerMessage::PeerState { .. } => {}
                }
            }
        }
    }
}

/// One viewer's receiving pipeline: webrtcbin, and a fakesink per incoming
/// stream with a counting probe in front.
struct Media {
    pipeline: gst::Pipeline,
    webrtc: gst::Element,
}

impl Media {
    async fn start(
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
            let name = match s {
                gst_webrtc::WebRTCPeerConnectionState::New => "new",
                gst_webrtc::WebRTCPeerConnectionState::Connecting => "connecting",
                gst_webrtc::WebRTCPeerConnectionState::Connected => "connected",
                gst_webrtc::WebRTCPeerConnectionState::Disconnected => "disconnected",
                gst_webrtc::WebRTCPeerConnectionState::Failed => "failed",
                gst_webrtc::WebRTCPeerConnectionState::Closed => "closed",
                _ => "unknown",
            };
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
    async fn answer(&self, offer_sdp: &str) -> Result<String> {
        let sdp = gst_sdp::SDPMessage::parse_buffer(offer_sdp.as_bytes())
            .map_err(|e| anyhow!("the agent's offer is not valid SDP: {e}"))?;
        // The SDP parser is lenient and webrtcbin answers an offer without
        // media with an empty answer; there would be nothing to count.
        if !sdp.medias().any(|m| m.media() == Some("video")) {
            bail!("the agent's offer has no video line");
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

    fn add_ice(&self, mline: u32, candidate: &str) {
        // The agent never sends mDNS names, but a .local candidate crashes
        // webrtcbin 1.22 on teardown (FIELD-NOTES), so never pass one on.
        if candidate.contains(".local") {
            return;
        }
        self.webrtc
            .emit_by_name::<()>("add-ice-candidate", &[&mline, &candidate]);
    }

    async fn shutdown(self) {
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

/// fakesink behind a probe that counts what arrives on `pad`.
fn attach_counter(pipeline: &gst::Pipeline, pad: &gst::Pad, shared: Arc<Shared>) -> Result<()> {
    let sink = gst::ElementFactory::make("fakesink")
        .property("sync", false)
        .property("async", false)
        .property("enable-last-sample", false)
        .build()
        .context("creating fakesink")?;
    pipeline.add(&sink)?;
    sink.sync_state_with_parent()?;
    let sinkpad = sink
        .static_pad("sink")
        .ok_or_else(|| anyhow!("fakesink without a sink pad"))?;
    pad.link(&sinkpad)
        .context("linking webrtcbin to fakesink")?;
    // A new stream (e.g. a new connection after capture lost/ok) starts its
    // own sequence numbers.
    if let Ok(mut st) = shared.seq.lock() {
        *st = SeqState::default();
    }
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |_, info| {
            match info.data.as_ref() {
                Some(gst::PadProbeData::Buffer(b)) => count(&shared, b),
                Some(gst::PadProbeData::BufferList(l)) => {
                    for b in l.iter() {
                        count(&shared, b);
                    }
                }
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    );
    Ok(())
}

fn count(shared: &Shared, buf: &gst::BufferRef) {
    shared.packets.fetch_add(1, Ordering::Relaxed);
    shared.bytes.fetch_add(buf.size() as u64, Ordering::Relaxed);
    let Ok(rtp) = gst_rtp::RTPBuffer::from_buffer_readable(buf) else {
        return;
    };
    let (seq, marker) = (rtp.seq(), rtp.is_marker());
    // Probes of one pad run on its streaming thread one at a time, so the
    // lock is never contended.
    let Ok(mut st) = shared.seq.lock() else {
        return;
    };
    let gap = seq_gap(st.last, seq);
    if gap > 0 {
        shared.lost.fetch_add(gap as u64, Ordering::Relaxed);
        st.broken = true;
    }
    // A late or repeated packet (behind the last one) changes nothing.
    if gap >= 0 {
        st.last = Some(seq);
    }
    if marker {
        // A frame counts only whole: no gap since the previous frame ended.
        if std::mem::take(&mut st.broken) {
            shared.incomplete.fetch_add(1, Ordering::Relaxed);
        } else {
            shared.frames.fetch_add(1, Ordering::Relaxed);
            if !shared.first_frame_sent.swap(true, Ordering::Relaxed) {
                emit(
                    json!({"event": "first_frame", "id": shared.id, "ms": ms_since(shared.added)}),
                );
            }
        }
    }
}

/// Packets missing between the last sequence number and `seq` (0 when
/// consecutive or the first), or -1 for a packet at or behind the last one.
fn seq_gap(last: Option<u16>, seq: u16) -> i32 {
    let Some(last) = last else { return 0 };
    let d = seq.wrapping_sub(last);
    if d == 0 || d >= 0x8000 {
        -1
    } else {
        i32::from(d) - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_gaps() {
        assert_eq!(seq_gap(None, 7), 0);
        assert_eq!(seq_gap(Some(7), 8), 0);
        assert_eq!(seq_gap(Some(7), 10), 2);
        assert_eq!(seq_gap(Some(65535), 0), 0);
        assert_eq!(seq_gap(Some(65534), 1), 2);
        assert_eq!(seq_gap(Some(7), 7), -1);
        assert_eq!(seq_gap(Some(7), 5), -1);
    }

    #[test]
    fn link_to_ws_url() {
        let (u, t) = ws_url_and_token("http://127.0.0.1:8080/#token=abc.def").unwrap();
        assert_eq!(u, "ws://127.0.0.1:8080/ws");
        assert_eq!(t, "abc.def");
        let (u, _) = ws_url_and_token("http://h:1/x/?ice=relay#token=a").unwrap();
        assert_eq!(u, "ws://h:1/ws");
        assert!(ws_url_and_token("http://h:1/").is_err());
        assert!(ws_url_and_token("https://h:1/#token=a").is_err());
    }
}
