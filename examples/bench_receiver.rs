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
//! bench_receiver --janus http://HOST:PORT/janus,room=N[,feed=ID] [--name PREFIX] [--latency-ms N]
//! ```
//!
//! With `--janus`, each viewer is instead a subscriber of oriel's publisher
//! in a Janus VideoRoom, over Janus's HTTP API like web-client/sfu.js
//! (create a session, attach the VideoRoom plugin, join as subscriber to
//! `feed`, answer Janus's offer with `start`, trickle candidates, keepalive,
//! long-poll the session's events), so that a benchmark can put the same
//! receivers behind oriel or behind Janus and only the server differs.
//! `feed` defaults to oriel's publisher id (DEFAULT_JANUS_ID). Everything
//! else is the same: commands, events, counting; `joined` comes when Janus
//! answers the join (its `peerId` is the Janus plugin handle), `left` after
//! the Janus session is destroyed and the pipeline stopped.
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
use oriel::protocol::{ClientMessage, ServerMessage, PROTOCOL_VERSION};
use oriel::publish::janus;
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
    target: Target,
    name: String,
    latency_ms: u32,
}

/// Whom the viewers watch.
enum Target {
    /// oriel itself, over its WebSocket signalling.
    Oriel { ws_url: String, token: String },
    /// oriel's publisher in a Janus VideoRoom, through Janus.
    Janus(JanusTarget),
}

struct JanusTarget {
    /// Janus's HTTP API, e.g. `http://127.0.0.1:8088/janus`.
    url: String,
    room: u64,
    /// The publisher to subscribe to.
    feed: u64,
    /// One client for every viewer (its connection pool is shared).
    http: reqwest::Client,
}

fn usage() -> &'static str {
    "usage: bench_receiver --link http://HOST:PORT/#token=TOKEN [--name PREFIX] [--latency-ms N]\n\
     \x20      bench_receiver --janus http://HOST:PORT/janus,room=N[,feed=ID] [--name PREFIX] [--latency-ms N]\n\
     stdin commands: add N | remove N | stats | quit"
}

fn parse_args() -> Result<Options> {
    let mut link = None;
    let mut janus = None;
    let mut name = "bench".to_string();
    let mut latency_ms = 0;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |flag: &str| args.next().ok_or_else(|| anyhow!("{flag} needs a value"));
        match a.as_str() {
            "--link" => link = Some(value("--link")?),
            "--janus" => janus = Some(value("--janus")?),
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
    let target = match (link, janus) {
        (Some(link), None) => {
            let (ws_url, token) = ws_url_and_token(&link)?;
            Target::Oriel { ws_url, token }
        }
        (None, Some(spec)) => {
            let (url, room, feed) = janus_spec(&spec)?;
            let http = reqwest::Client::builder().build().context("HTTP client")?;
            Target::Janus(JanusTarget {
                url,
                room,
                feed,
                http,
            })
        }
        _ => bail!("exactly one of --link and --janus is required\n{}", usage()),
    };
    Ok(Options {
        target,
        name,
        latency_ms,
    })
}

/// `URL,room=N[,feed=ID]` -> (URL without a trailing `/`, N, ID).
fn janus_spec(spec: &str) -> Result<(String, u64, u64)> {
    let mut parts = spec.split(',');
    let url = parts.next().unwrap_or_default().trim_end_matches('/');
    if !url.starts_with("http://") && !url.starts_with("https://") {
        bail!("--janus takes http://HOST:PORT/janus,room=N[,feed=ID]");
    }
    let (mut room, mut feed) = (None, oriel::publish::target::DEFAULT_JANUS_ID);
    for kv in parts {
        match kv.split_once('=') {
            Some(("room", v)) => room = Some(v.parse().context("room= takes a number")?),
            Some(("feed", v)) => feed = v.parse().context("feed= takes a number")?,
            _ => bail!("--janus: unknown part {kv:?} (room=N, feed=ID)"),
        }
    }
    let room = room.ok_or_else(|| anyhow!("--janus needs room=N"))?;
    Ok((url.to_string(), room, feed))
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

/// The viewer's session: Ok when told to stop, Err when it failed.
async fn session(
    shared: &Arc<Shared>,
    opts: &Options,
    stop: &mut tokio::sync::oneshot::Receiver<()>,
    media: &mut Option<Media>,
) -> Result<()> {
    match &opts.target {
        Target::Oriel { ws_url, token } => {
            oriel_session(shared, opts, ws_url, token, stop, media).await
        }
        Target::Janus(janus) => janus_session(shared, opts, janus, stop, media).await,
    }
}

/// What both kinds of session do with an event from the media side;
/// returns a local candidate for the caller to send its own way.
fn media_event(shared: &Shared, ev: MediaEvent) -> Result<Option<(u32, String)>> {
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

/// A viewer of oriel over its WebSocket signalling.
async fn oriel_session(
    shared: &Arc<Shared>,
    opts: &Options,
    ws_url: &str,
    token: &str,
    stop: &mut tokio::sync::oneshot::Receiver<()>,
    media: &mut Option<Media>,
) -> Result<()> {
    let id = shared.id;
    let (ws, _) = tokio::select! {
        r = tokio_tungstenite::connect_async(ws_url) => r.with_context(|| format!("connecting to {ws_url}"))?,
        _ = &mut *stop => return Ok(()),
    };
    let (mut sink, mut stream) = ws.split();
    let send = |m: &ClientMessage| Message::text(serde_json::to_string(m).unwrap_or_default());
    sink.send(send(&ClientMessage::Hello {
        protocol: PROTOCOL_VERSION,
        token: token.to_string(),
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
                if let Some((mline, candidate)) = media_event(shared, ev)? {
                    sink.send(send(&ClientMessage::Ice {
                        candidate,
                        sdp_m_line_index: mline,
                        sdp_mid: None,
                    }))
                    .await
                    .context("sending a candidate")?;
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

/// Janus drops a session after 60 s without a request (tests/janus).
const JANUS_KEEPALIVE: Duration = Duration::from_secs(25);

/// A subscriber of oriel's publisher through Janus: the session is
/// destroyed on the way out (Janus then closes its PeerConnection and
/// forgets the subscriber), whatever ended it.
async fn janus_session(
    shared: &Arc<Shared>,
    opts: &Options,
    janus: &JanusTarget,
    stop: &mut tokio::sync::oneshot::Receiver<()>,
    media: &mut Option<Media>,
) -> Result<()> {
    let created = tokio::select! {
        r = janus::post(&janus.http, &janus.url, json!({"janus": "create"})) => r.context("creating a Janus session")?,
        _ = &mut *stop => return Ok(()),
    };
    let session = created["data"]["id"]
        .as_u64()
        .ok_or_else(|| anyhow!("Janus gave no session id"))?;
    let session_url = format!("{}/{session}", janus.url);
    let (mut events, poller) = janus::events(janus.http.clone(), session_url.clone());
    let outcome =
        janus_subscribe(shared, opts, janus, &session_url, &mut events, stop, media).await;
    poller.abort();
    let destroy = janus::post(&janus.http, &session_url, json!({"janus": "destroy"}));
    let _ = tokio::time::timeout(CLOSE_GRACE, destroy).await;
    outcome
}

/// Attach, join as subscriber, then answer Janus's offer and follow the
/// session's events until told to stop (Ok) or the subscription ends (Err).
async fn janus_subscribe(
    shared: &Arc<Shared>,
    opts: &Options,
    janus: &JanusTarget,
    session_url: &str,
    events: &mut mpsc::UnboundedReceiver<Result<serde_json::Value, String>>,
    stop: &mut tokio::sync::oneshot::Receiver<()>,
    media: &mut Option<Media>,
) -> Result<()> {
    let id = shared.id;
    let http = &janus.http;
    let attach = json!({"janus": "attach", "plugin": "janus.plugin.videoroom"});
    let attached = janus::post(http, session_url, attach)
        .await
        .context("attaching the VideoRoom plugin")?;
    let handle = attached["data"]["id"]
        .as_u64()
        .ok_or_else(|| anyhow!("Janus gave no plugin handle id"))?;
    let handle_url = format!("{session_url}/{handle}");
    let join = json!({"request": "join", "ptype": "subscriber", "room": janus.room,
        "streams": [{"feed": janus.feed}]});
    janus::post(http, &handle_url, json!({"janus": "message", "body": join}))
        .await
        .context("joining as a subscriber")?;
    shared.set_state("joining");

    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<MediaEvent>();
    let mut keepalive = tokio::time::interval(JANUS_KEEPALIVE);
    keepalive.tick().await;
    loop {
        tokio::select! {
            _ = &mut *stop => return Ok(()),
            _ = keepalive.tick() => {
                janus::post(http, session_url, json!({"janus": "keepalive"})).await.context("keepalive")?;
            }
            ev = ev_rx.recv() => {
                // ev_tx lives in this function, so recv never yields None here.
                let Some(ev) = ev else { continue };
                if let Some((mline, candidate)) = media_event(shared, ev)? {
                    let c = json!({"candidate": candidate, "sdpMLineIndex": mline});
                    janus::post(http, &handle_url, json!({"janus": "trickle", "candidate": c}))
                        .await
                        .context("trickling a candidate")?;
                }
            }
            event = events.recv() => {
                let event = event
                    .ok_or_else(|| anyhow!("the Janus session ended"))?
                    .map_err(|e| anyhow!(e))?;
                janus_ends(&event)?;
                let data = &event["plugindata"]["data"];
                if data["videoroom"] == "attached" {
                    shared.set_state("joined");
                    emit(json!({"event": "joined", "id": id, "peerId": handle, "ms": ms_since(shared.added)}));
                }
                if event["janus"] == "trickle" {
                    let c = &event["candidate"];
                    if let (Some(m), Some(mline), Some(cand)) = (media.as_ref(), c["sdpMLineIndex"].as_u64(), c["candidate"].as_str()) {
                        m.add_ice(mline as u32, cand);
                    }
                }
                if event["janus"] == "slowlink" {
                    // Janus saw this subscriber ask for retransmissions: say so.
                    emit(json!({"event": "error", "id": id, "message": format!("Janus reports a slow link: {event}"), "fatal": false}));
                }
                if let (Some("offer"), Some(offer)) = (event["jsep"]["type"].as_str(), event["jsep"]["sdp"].as_str()) {
                    if let Some(old) = media.take() {
                        old.shutdown().await;
                    }
                    let m = Media::start(shared.clone(), opts.latency_ms, ev_tx.clone()).await?;
                    let answer = m.answer(offer).await?;
                    *media = Some(m);
                    let start = json!({"janus": "message", "body": {"request": "start", "room": janus.room},
                        "jsep": {"type": "answer", "sdp": answer}});
                    janus::post(http, &handle_url, start).await.context("sending the answer")?;
                    shared.set_state("negotiating");
                }
            }
        }
    }
}

/// Err when a Janus event ends the subscription (as web-client/sfu.js reads them).
fn janus_ends(event: &serde_json::Value) -> Result<()> {
    let data = &event["plugindata"]["data"];
    if let Some(code) = data.get("error_code") {
        bail!(
            "VideoRoom error {code}: {}",
            data["error"].as_str().unwrap_or("no reason given")
        );
    }
    match event["janus"].as_str().unwrap_or_default() {
        "hangup" => bail!(
            "Janus hung up ({})",
            event["reason"].as_str().unwrap_or("no reason given")
        ),
        "detached" => bail!("Janus detached the plugin handle"),
        "timeout" => bail!("the Janus session timed out"),
        _ => {}
    }
    if data["videoroom"] == "event"
        && (data.get("left").is_some() || data.get("unpublished").is_some())
    {
        bail!("the publisher left");
    }
    let streams = data["streams"].as_array();
    if data["videoroom"] == "updated"
        && streams.is_some_and(|s| s.iter().all(|s| s["active"] == false))
    {
        bail!("the publisher left");
    }
    Ok(())
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
    async fn answer(&self, offer_sdp: &str) -> Result<String> {
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
    fn janus_specs() {
        let (u, room, feed) = janus_spec("http://127.0.0.1:8088/janus/,room=4321").unwrap();
        assert_eq!(
            (u.as_str(), room, feed),
            ("http://127.0.0.1:8088/janus", 4321, 4_242_001)
        );
        let (_, _, feed) = janus_spec("http://h:1/janus,room=1,feed=7").unwrap();
        assert_eq!(feed, 7);
        assert!(janus_spec("http://h:1/janus").is_err());
        assert!(janus_spec("ws://h:1/janus,room=1").is_err());
        assert!(janus_spec("http://h:1/janus,room=1,pin=x").is_err());
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
