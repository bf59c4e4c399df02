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
//! Commands on stdin, one per line: `add N [way=normal|midoffer|icefail]
//! [token=T]`, `remove N` (the N newest, with bye), `leave bye|drop ID...`
//! (those viewers, all at once: with bye, or just gone like a closed tab),
//! `stats`, `quit` (bye to all, exit 0; end of input does the same). `way`
//! and `token` (another link's token) are for the churn benchmark: a viewer
//! with `way=midoffer` closes its socket when the offer comes, one with
//! `way=icefail` answers but gives the agent only a candidate that leads
//! nowhere.
//! JSON lines on stdout (diagnostics go to stderr):
//!
//! ```text
//! {"event":"ready"}
//! {"event":"joined","id":K,"peerId":P,"ms":T}      welcome received, T = ms since its add
//! {"event":"connected","id":K,"ms":T}              webrtcbin connection-state connected
//! {"event":"first_frame","id":K,"ms":T}            first whole frame
//! {"event":"left","id":K}                          after remove/leave: bye (or not), the agent closed, pipeline stopped
//! {"event":"ended","id":K}                         the session ended by itself (way=midoffer)
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
//!
//! Files: `cli.rs` the command line, `output.rs` the stdout lines,
//! `viewer.rs` one viewer's counters, `signalling.rs` and `janus.rs` the two
//! ways of watching, `peer.rs` the webrtcbin, `counter.rs` the counting.

mod cli;
mod counter;
mod janus;
mod output;
mod peer;
mod signalling;
mod viewer;

use std::io::BufRead;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;
use tokio::sync::mpsc;

use cli::{parse_args, usage, Options, Target};
use output::{emit, ms_since};
use peer::Media;
use viewer::{Leave, Shared, Way};

/// A viewer as the command loop sees it.
struct Viewer {
    shared: Arc<Shared>,
    /// Dropping it or sending `Bye` tells the viewer task to say bye and
    /// stop; `Drop` to just go.
    stop: Option<tokio::sync::oneshot::Sender<Leave>>,
    task: tokio::task::JoinHandle<()>,
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
            ("add", Some(Ok(n))) => match join_options(words) {
                Ok((way, token)) => {
                    for _ in 0..n {
                        viewers.push(spawn_viewer(next_id, opts.clone(), way, token.clone()));
                        next_id += 1;
                    }
                }
                Err(e) => eprintln!("bench_receiver: {e}\n{}", usage()),
            },
            ("leave", _) => {
                let how = match line.split_whitespace().nth(1) {
                    Some("bye") => Some(Leave::Bye),
                    Some("drop") => Some(Leave::Drop),
                    _ => None,
                };
                let ids: Vec<u64> = line
                    .split_whitespace()
                    .skip(2)
                    .filter_map(|w| w.parse().ok())
                    .collect();
                match how {
                    Some(how) => {
                        let (gone, kept) =
                            viewers.drain(..).partition(|v| ids.contains(&v.shared.id));
                        viewers = kept;
                        stop_viewers_with(gone, how).await;
                    }
                    None => eprintln!("bench_receiver: bad command {line:?}\n{}", usage()),
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

/// `way=...` and `token=...` after `add N`.
fn join_options<'a>(words: impl Iterator<Item = &'a str>) -> Result<(Way, Option<String>)> {
    let (mut way, mut token) = (Way::Normal, None);
    for w in words {
        match w.split_once('=') {
            Some(("way", v)) => {
                way = Way::parse(v).ok_or_else(|| anyhow::anyhow!("unknown way {v:?}"))?
            }
            Some(("token", v)) if !v.is_empty() => token = Some(v.to_string()),
            _ => anyhow::bail!("unknown add option {w:?}"),
        }
    }
    Ok((way, token))
}

async fn stop_viewers(gone: Vec<Viewer>) {
    stop_viewers_with(gone, Leave::Bye).await
}

/// Tells all of `gone` to go at once, then waits for each.
async fn stop_viewers_with(gone: Vec<Viewer>, how: Leave) {
    let mut tasks = Vec::new();
    for mut v in gone.into_iter().rev() {
        if let Some(stop) = v.stop.take() {
            let _ = stop.send(how);
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

fn spawn_viewer(id: u64, opts: Arc<Options>, way: Way, token: Option<String>) -> Viewer {
    let shared = Arc::new(Shared::new(id));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(viewer_task(shared.clone(), opts, way, token, stop_rx));
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
    way: Way,
    token: Option<String>,
    mut stop: tokio::sync::oneshot::Receiver<Leave>,
) {
    let mut media: Option<Media> = None;
    let outcome = session(&shared, &opts, way, token.as_deref(), &mut stop, &mut media).await;
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
    } else if shared.state() == "ended" {
        // Not told to stop: the session ended by itself; wait for removal.
        emit(json!({"event": "ended", "id": shared.id}));
        let _ = stop.await;
    } else {
        shared.set_state("closed");
    }
}

/// The viewer's session: Ok when told to stop, Err when it failed.
async fn session(
    shared: &Arc<Shared>,
    opts: &Options,
    way: Way,
    token: Option<&str>,
    stop: &mut tokio::sync::oneshot::Receiver<Leave>,
    media: &mut Option<Media>,
) -> Result<()> {
    match &opts.target {
        Target::Oriel {
            ws_url,
            token: link,
        } => {
            let token = token.unwrap_or(link);
            signalling::oriel_session(shared, opts, ws_url, token, way, stop, media).await
        }
        Target::Janus(target) => janus::janus_session(shared, opts, target, stop, media).await,
    }
}
