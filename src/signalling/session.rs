//! One WebSocket session: frames in to the room actor, the actor's queue
//! out to the socket, in one task. Every way a client can misbehave ends
//! here with a close code and reason, a counter and a (rate-limited) log
//! line:
//!
//! - no `hello` (no `welcome` sent) within [`HELLO_TIMEOUT`]: 1008;
//! - a frame or message above `MAX_FRAME_BYTES`: 1009, refused from the
//!   frame header, before the payload is read;
//! - not reading: its queue full (the actor cuts it) or one send stalled
//!   for [`SEND_TIMEOUT`]: 1008;
//! - silent for [`KEEPALIVE_TIMEOUT`]: 1001.
//!
//! A client sending faster than [`MESSAGE_RATE`] is not cut off: its reads
//! pause until it is back under the rate, so the flood backs up into its
//! own TCP connection.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::error::CapacityError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use crate::input::flood::Bucket;
use crate::protocol::{
    parse_client_message, ErrorCode, ParseError, ServerMessage, MAX_FRAME_BYTES,
};
use crate::session::room::{ClientId, Input};
use crate::signalling::actor::{ActorMsg, ClientLink, CutOff, Outgoing, OUTGOING_QUEUE};
use crate::signalling::counters::{ConnectionCounters, Cut};
use crate::signalling::limits::Slot;

/// A client that says nothing for this long is dropped (the web client
/// pings every 5 s).
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(30);

/// A socket that has not joined (been sent `welcome`) this long after it
/// opened is closed. The web client says `hello` as soon as it is open.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// One message that takes longer than this to go out means the client
/// does not read (its TCP window stays shut).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Signalling messages a client may send a second, sustained, and at once.
/// A browser sends a burst of a dozen at join (hello, answer, candidates),
/// then a ping every 5 s.
pub const MESSAGE_RATE: f64 = 200.0;
pub const MESSAGE_BURST: f64 = 400.0;

/// How long our close frame may take to go out.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// After our close frame, how long we wait for the client to close, and
/// how much of what it still sends we read meanwhile. Closing with unread
/// data resets the connection, which can discard our close frame before
/// the client has read it; a client still sending (a 100 MiB message)
/// stops being read after this many bytes, and is reset after the wait.
const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 1024 * 1024;

/// Who a session is and where it reports.
pub(super) struct Session {
    pub id: ClientId,
    pub addr: Option<IpAddr>,
    pub actor: mpsc::UnboundedSender<ActorMsg>,
    pub counters: Arc<ConnectionCounters>,
}

/// How a session ended.
enum End {
    /// The socket broke, the client closed it, or the actor let go.
    Gone,
    /// The room closed it.
    Close(u16, String),
    Cut(CutOff),
}

impl CutOff {
    fn new(why: Cut, code: u16, reason: String) -> Self {
        CutOff { why, code, reason }
    }
}

/// Runs one session until it ends; `_slot` holds its place in the
/// WebSocket connection limits meanwhile.
pub(super) async fn run<S>(mut ws: WebSocketStream<S>, s: Session, _slot: Slot)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (tx, mut rx) = mpsc::channel::<Outgoing>(OUTGOING_QUEUE);
    let (cut_tx, mut cut_rx) = oneshot::channel();
    let link = ClientLink {
        tx,
        cut: Some(cut_tx),
        addr: s.addr,
        token: None,
    };
    if s.actor.send(ActorMsg::Open(s.id, link)).is_err() {
        return;
    }
    let _open = ConnectionCounters::opened(&s.counters, true);
    let _ = s.actor.send(ActorMsg::Input(Input::Connected(s.id)));
    tracing::debug!(client = s.id, "client connected");

    let opened = Instant::now();
    let mut heard = opened;
    let mut joined = false;
    let mut bucket = Bucket::new(MESSAGE_RATE, MESSAGE_BURST, opened.into_std());
    let end = loop {
        let now = Instant::now();
        let keepalive = heard + KEEPALIVE_TIMEOUT;
        let deadline = if joined {
            keepalive
        } else {
            keepalive.min(opened + HELLO_TIMEOUT)
        };
        // Over the message rate: no reading until it is back under.
        let pause = bucket.ready(1.0, now.into_std()).err().unwrap_or_default();
        tokio::select! {
            biased;
            cut = &mut cut_rx => break cut.map_or(End::Gone, End::Cut),
            out = rx.recv() => match out {
                Some(Outgoing::Message(msg)) => {
                    joined |= matches!(msg, ServerMessage::Welcome { .. });
                    let text = Message::text(msg.to_json());
                    tokio::select! {
                        sent = tokio::time::timeout(SEND_TIMEOUT, ws.send(text)) => match sent {
                            Ok(Ok(())) => {}
                            Ok(Err(_)) => break End::Gone,
                            Err(_) => break End::Cut(CutOff::new(
                                Cut::NotReading,
                                1008,
                                format!("not reading: a message waited {} s to go out", SEND_TIMEOUT.as_secs()),
                            )),
                        },
                        cut = &mut cut_rx => break cut.map_or(End::Gone, End::Cut),
                    }
                }
                Some(Outgoing::Close(code, reason)) => break End::Close(code, reason.into()),
                None => break End::Gone,
            },
            () = tokio::time::sleep(pause), if !pause.is_zero() => {}
            frame = ws.next(), if pause.is_zero() => {
                heard = Instant::now();
                let _ = bucket.take(1.0, heard.into_std());
                if bucket.ready(1.0, heard.into_std()).is_err() {
                    s.counters.throttled.fetch_add(1, Ordering::Relaxed);
                }
                match frame {
                    None | Some(Ok(Message::Close(_))) => break End::Gone,
                    Some(Err(WsError::Capacity(e))) => break End::Cut(CutOff::new(
                        Cut::TooLarge,
                        1009,
                        match e {
                            CapacityError::MessageTooLong { size, .. } => format!(
                                "message too big: {size} bytes, the limit is {} KiB",
                                MAX_FRAME_BYTES / 1024
                            ),
                            other => format!("message too big: {other}"),
                        },
                    )),
                    Some(Err(e)) => {
                        tracing::debug!(client = s.id, "WebSocket error: {e}");
                        break End::Gone;
                    }
                    Some(Ok(msg)) => on_frame(&s, msg),
                }
            }
            () = tokio::time::sleep_until(deadline) => {
                break End::Cut(if !joined && deadline < keepalive {
                    CutOff::new(Cut::HelloTimeout, 1008, format!("no hello within {} s", HELLO_TIMEOUT.as_secs()))
                } else {
                    CutOff::new(Cut::Keepalive, 1001, "keepalive timeout".into())
                });
            }
        }
    };
    // The room forgets the client first; closing politely may take a second.
    let _ = s.actor.send(ActorMsg::Input(Input::Disconnected(s.id)));
    drop(rx);
    match end {
        End::Gone => {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.close(None)).await;
        }
        End::Close(code, reason) => close(&mut ws, code, reason).await,
        End::Cut(c) => {
            s.counters.cut(c.why, s.addr, &c.reason);
            close(&mut ws, c.code, c.reason).await;
        }
    }
    tracing::debug!(client = s.id, "client disconnected");
}

/// One frame from the client, to the room.
fn on_frame(s: &Session, msg: Message) {
    let refuse = |code: ErrorCode, message: String| {
        let _ = s.actor.send(ActorMsg::Input(Input::Refused(
            s.id,
            ParseError { code, message },
        )));
    };
    match msg {
        Message::Text(text) => match parse_client_message(text.as_str()) {
            Ok(msg) => {
                let _ = s.actor.send(ActorMsg::Input(Input::Message(s.id, msg)));
            }
            Err(e) => refuse(e.code, e.message),
        },
        Message::Binary(_) => refuse(
            ErrorCode::Binary,
            "binary frames are not part of the signalling protocol".into(),
        ),
        // Pings are answered by the WebSocket layer; nothing else is expected.
        _ => {}
    }
}

/// Sends a close frame, then lingers so the client can read it (see
/// [`LINGER`]).
async fn close<S>(ws: &mut WebSocketStream<S>, code: u16, reason: String)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: truncate(reason, 123).into(),
    };
    let sent = tokio::time::timeout(CLOSE_TIMEOUT, ws.send(Message::Close(Some(frame)))).await;
    if !matches!(sent, Ok(Ok(()))) {
        return;
    }
    let io = ws.get_mut();
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, io.shutdown()).await;
    let _ = tokio::time::timeout(LINGER, async {
        let mut buf = vec![0u8; 16 * 1024];
        let mut read = 0;
        loop {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => read += n,
            }
            if read > LINGER_BYTES {
                // Stop reading; the client has our close frame meanwhile.
                std::future::pending::<()>().await;
            }
        }
    })
    .await;
}

/// `reason` cut to at most `max` bytes on a character boundary.
fn truncate(mut reason: String, max: usize) -> String {
    if reason.len() > max {
        let mut end = max;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn close_reasons_fit_a_control_frame() {
        assert_eq!(truncate("short".into(), 123), "short");
        let long = "é".repeat(100); // 200 bytes
        let cut = truncate(long, 123);
        assert!(cut.len() <= 123 && cut.chars().all(|c| c == 'é'));
    }
}
