//! A subscriber of oriel's publisher in a Janus VideoRoom, over Janus's HTTP
//! API (as web-client/sfu.js does it).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use oriel::publish::janus;
use serde_json::json;
use tokio::sync::mpsc;

use crate::cli::{JanusTarget, Options};
use crate::output::{emit, ms_since};
use crate::peer::{media_event, Media, MediaEvent};
use crate::viewer::{Leave, Shared, CLOSE_GRACE};

/// Janus drops a session after 60 s without a request (tests/janus).
const JANUS_KEEPALIVE: Duration = Duration::from_secs(25);

/// A subscriber of oriel's publisher through Janus: the session is
/// destroyed on the way out (Janus then closes its PeerConnection and
/// forgets the subscriber), whatever ended it.
pub async fn janus_session(
    shared: &Arc<Shared>,
    opts: &Options,
    janus: &JanusTarget,
    stop: &mut tokio::sync::oneshot::Receiver<Leave>,
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
    stop: &mut tokio::sync::oneshot::Receiver<Leave>,
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
