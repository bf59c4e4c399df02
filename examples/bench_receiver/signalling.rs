//! A viewer of oriel itself, over its WebSocket signalling (hello, offer and
//! answer, candidates, ping, bye).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use oriel::protocol::{ClientMessage, ServerMessage, PROTOCOL_VERSION};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::cli::Options;
use crate::output::{emit, ms_since};
use crate::peer::{media_event, Media, MediaEvent};
use crate::viewer::{Leave, Shared, Way, CLOSE_GRACE};

/// Keepalive period; the agent drops a silent client after 30 s.
const PING_EVERY: Duration = Duration::from_secs(5);

/// A candidate the agent cannot reach (the discard port on loopback, where
/// nothing listens): its checks fail.
const DEAD_CANDIDATE: &str = "candidate:1 1 UDP 2122252543 127.0.0.1 9 typ host";

/// A viewer of oriel over its WebSocket signalling. Returns Ok when told to
/// stop or when its `way` ends the session by itself.
pub async fn oriel_session(
    shared: &Arc<Shared>,
    opts: &Options,
    ws_url: &str,
    token: &str,
    way: Way,
    stop: &mut tokio::sync::oneshot::Receiver<Leave>,
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
            leave = &mut *stop => {
                if leave == Ok(Leave::Drop) {
                    // A closed tab: the socket goes without a close frame.
                    return Ok(());
                }
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
                    if way == Way::IceFail {
                        continue;
                    }
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
                        if way == Way::MidOffer {
                            shared.set_state("ended");
                            return Ok(());
                        }
                        // A new offer (after capture lost/ok) means a new connection.
                        if let Some(old) = media.take() {
                            old.shutdown().await;
                        }
                        let m = Media::start(shared.clone(), opts.latency_ms, ev_tx.clone()).await?;
                        let answer = m.answer(&sdp).await?;
                        *media = Some(m);
                        sink.send(send(&ClientMessage::Answer { sdp: answer })).await.context("sending the answer")?;
                        if way == Way::IceFail {
                            sink.send(send(&ClientMessage::Ice {
                                candidate: DEAD_CANDIDATE.into(),
                                sdp_m_line_index: 0,
                                sdp_mid: None,
                            }))
                            .await
                            .context("sending a candidate")?;
                        }
                        shared.set_state("negotiating");
                    }
                    ServerMessage::Ice { candidate, sdp_m_line_index } => {
                        match media.as_ref() {
                            Some(m) if !candidate.is_empty() && way != Way::IceFail => m.add_ice(sdp_m_line_index, &candidate),
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
                    ServerMessage::PeerState { state } if state == "failed" => {
                        bail!("the agent's side of the connection failed")
                    }
                    ServerMessage::Participants { .. }
                    | ServerMessage::Pong
                    | ServerMessage::PeerState { .. }
                    | ServerMessage::Link { .. } => {}
                }
            }
        }
    }
}
