//! The HTTP/WebSocket server: the web client at `/`, signalling at `/ws`,
//! `/healthz` and `/metrics`, all on one port. Sockets live here; the room
//! decides. One actor task owns the [`Room`] and applies its outputs.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use warp::http::{header, Response, StatusCode};
use warp::ws::{Message, WebSocket};
use warp::Filter;

use crate::input::service::InputHandle;
use crate::media::service::{MediaEvent, MediaHandle};
use crate::metrics::{Metrics, RoomSnapshot};
use crate::protocol::{
    parse_client_message, ClientMessage, ErrorCode, ParseError, ServerMessage, MAX_FRAME_BYTES,
};
use crate::session::limiter::FailureLimiter;
use crate::session::links::{revoked_ids, LinkWatcher};
use crate::session::room::{ClientId, Input, Output, Room};
use crate::signalling::assets;
use crate::signalling::tls::{self, ClientAddr};

/// A client that says nothing for this long is dropped (the web client
/// pings every 5 s).
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(30);

/// Security headers on every page: only our own scripts, styles and
/// WebSocket (and the SFU's API for `--via-sfu` viewers); never framed by
/// another origin.
fn csp(connect: &[String]) -> String {
    let extra: String = connect.iter().map(|o| format!(" {o}")).collect();
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'{extra}; \
         img-src 'self' data:; media-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )
}

enum Outgoing {
    Message(ServerMessage),
    Close(u16, &'static str),
}

enum ActorMsg {
    /// A socket opened, from this address (when known).
    Open(ClientId, mpsc::UnboundedSender<Outgoing>, Option<IpAddr>),
    Input(Input),
    Shutdown(String, oneshot::Sender<()>),
}

/// Handle used by `main` to feed media events in and to shut down.
#[derive(Clone)]
pub struct Signalling {
    tx: mpsc::UnboundedSender<ActorMsg>,
}

impl Signalling {
    /// Delivers a media event to the room (callable from any thread).
    pub fn media_event(&self, event: MediaEvent) {
        let _ = self.tx.send(ActorMsg::Input(Input::Media(event)));
    }

    /// Tells every client goodbye and closes their sockets.
    pub async fn shutdown(&self, reason: &str) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(ActorMsg::Shutdown(reason.into(), tx)).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(2), rx).await;
        }
    }
}

/// Creates the room actor. Media events may be delivered through the
/// returned handle before [`serve`] runs.
pub fn start_room(
    room: Room,
    media: Arc<std::sync::OnceLock<MediaHandle>>,
    input: Option<InputHandle>,
    metrics: Arc<Metrics>,
    links_path: std::path::PathBuf,
) -> Signalling {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(room_actor(room, rx, media, input, metrics));
    tokio::spawn(watch_links(links_path, tx.clone()));
    Signalling { tx }
}

/// `oriel link revoke` runs in another process and edits the link list;
/// watching the file makes revocation reach connected clients within a
/// second.
async fn watch_links(path: std::path::PathBuf, tx: mpsc::UnboundedSender<ActorMsg>) {
    let mut watcher = LinkWatcher::new(path);
    let mut tick = tokio::time::interval(LINK_POLL);
    loop {
        tick.tick().await;
        if watcher.refresh() {
            let revoked = revoked_ids(&watcher);
            if !revoked.is_empty() && tx.send(ActorMsg::Input(Input::Revoked(revoked))).is_err() {
                return;
            }
        }
        if tx.is_closed() {
            return;
        }
    }
}

/// How often the link list is checked for revocations.
const LINK_POLL: Duration = Duration::from_millis(500);

async fn room_actor(
    mut room: Room,
    mut rx: mpsc::UnboundedReceiver<ActorMsg>,
    media: Arc<std::sync::OnceLock<MediaHandle>>,
    input: Option<InputHandle>,
    metrics: Arc<Metrics>,
) {
    let mut clients: HashMap<ClientId, mpsc::UnboundedSender<Outgoing>> = HashMap::new();
    let mut addrs: HashMap<ClientId, IpAddr> = HashMap::new();
    let mut limiter = FailureLimiter::default();
    while let Some(msg) = rx.recv().await {
        let outputs = match msg {
            ActorMsg::Open(id, tx, addr) => {
                clients.insert(id, tx);
                if let Some(addr) = addr {
                    addrs.insert(id, addr);
                }
                continue;
            }
            ActorMsg::Input(input) => {
                let hello_from = match &input {
                    Input::Message(id, ClientMessage::Hello { .. }) => {
                        addrs.get(id).map(|a| (*id, *a))
                    }
                    _ => None,
                };
                if let Some((id, addr)) = hello_from {
                    if let Some(wait) = limiter.blocked(addr, Instant::now()) {
                        metrics.token_rate_limited.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(client = id, %addr, "hello refused unchecked: too many failed tokens");
                        if let Some(tx) = clients.get(&id) {
                            let _ = tx.send(Outgoing::Message(ServerMessage::Error {
                                code: ErrorCode::RateLimited,
                                message: format!(
                                    "too many refused links from your address; try again in {} s",
                                    wait.as_secs().max(1)
                                ),
                            }));
                            let _ = tx.send(Outgoing::Close(1008, "rate limited"));
                        }
                        continue;
                    }
                }
                let gone = match &input {
                    Input::Disconnected(id) => Some(*id),
                    _ => None,
                };
                let out = room.handle(input);
                if let Some((id, addr)) = hello_from {
                    let refused = out.iter().any(|o| {
                        matches!(o, Output::Send(to, ServerMessage::Error { code: ErrorCode::Unauthorized, .. }) if *to == id)
                    });
                    if refused {
                        metrics.token_failures.fetch_add(1, Ordering::Relaxed);
                        limiter.failed(addr, Instant::now());
                        tracing::info!(client = id, %addr, "link refused");
                    }
                }
                if let Some(id) = gone {
                    // Dropping the sender ends that socket's writer.
                    clients.remove(&id);
                    addrs.remove(&id);
                }
                out
            }
            ActorMsg::Shutdown(reason, done) => {
                for id in room.client_ids() {
                    if let Some(tx) = clients.get(&id) {
                        let _ = tx.send(Outgoing::Message(ServerMessage::Bye {
                            reason: reason.clone(),
                        }));
                        let _ = tx.send(Outgoing::Close(1001, "agent shutting down"));
                    }
                }
                let _ = done.send(());
                continue;
            }
        };
        for output in outputs {
            apply(output, &clients, media.get(), input.as_ref());
        }
        if let Ok(mut snap) = metrics.room.lock() {
            *snap = RoomSnapshot {
                clients: room.client_count(),
                joined: room.joined_count(),
                stats: room.stats().clone(),
                sessions: room.sessions(),
            };
        }
    }
}

fn apply(
    output: Output,
    clients: &HashMap<ClientId, mpsc::UnboundedSender<Outgoing>>,
    media: Option<&MediaHandle>,
    input: Option<&InputHandle>,
) {
    match output {
        Output::Send(id, msg) => {
            if let Some(tx) = clients.get(&id) {
                let _ = tx.send(Outgoing::Message(msg));
            }
        }
        Output::Close(id) => {
            if let Some(tx) = clients.get(&id) {
                let _ = tx.send(Outgoing::Close(1000, "session ended"));
            }
        }
        Output::AddPeer(p, role) => {
            // The role reaches input before any data channel can open.
            input.iter().for_each(|i| i.join(p, role));
            // The controller's and players' links set the encoder's bitrate.
            let drives = !matches!(role, crate::session::roles::Role::Viewer);
            media.iter().for_each(|m| {
                m.add_peer(p);
                m.set_driving(p, drives);
            });
        }
        Output::RemovePeer(p) => {
            media.iter().for_each(|m| m.remove_peer(p));
            input.iter().for_each(|i| i.leave(p));
        }
        Output::Answer(p, sdp) => media.iter().for_each(|m| m.answer(p, sdp.clone())),
        Output::Ice(p, mline, c) => media.iter().for_each(|m| m.ice(p, mline, c.clone())),
    }
}

/// Settings for the HTTP side.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Extra `Origin`s allowed to open the WebSocket.
    pub allow_origins: Vec<String>,
    /// Serve HTTPS/WSS with this; plain HTTP when `None`.
    pub tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    /// `/api/control` and `/api/sfu` (publishing, recording).
    pub control: Arc<crate::signalling::control::ControlPlane>,
    /// Origins pages may fetch from besides ours (the SFU's API).
    pub connect_src: Vec<String>,
}

/// Is a browser page at `origin` allowed to open our WebSocket? Our own
/// origin (same host:port as requested) always is; pages elsewhere only if
/// listed. Non-browser clients send no Origin and cannot be hijacked.
pub fn origin_allowed(origin: Option<&str>, host: Option<&str>, allowed: &[String]) -> bool {
    let Some(origin) = origin else { return true };
    if allowed.iter().any(|a| a == origin) {
        return true;
    }
    let Some(host) = host else { return false };
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    origin_host.is_some_and(|h| h.eq_ignore_ascii_case(host))
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    signalling: Signalling,
    metrics: Arc<Metrics>,
    config: ServerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let next_id = Arc::new(AtomicU64::new(1));
    let allowed = Arc::new(config.allow_origins);

    let ws_metrics = metrics.clone();
    let ws = warp::path("ws")
        .and(warp::path::end())
        .and(warp::ws())
        .and(warp::header::optional::<String>("origin"))
        .and(warp::header::optional::<String>("host"))
        .and(warp::addr::remote())
        .and(warp::ext::optional::<ClientAddr>())
        .map(
            move |ws: warp::ws::Ws,
                  origin: Option<String>,
                  host: Option<String>,
                  remote: Option<std::net::SocketAddr>,
                  tls_remote: Option<ClientAddr>| {
                let remote = remote.or(tls_remote.map(|a| a.0));
                if !origin_allowed(origin.as_deref(), host.as_deref(), &allowed) {
                    ws_metrics.origin_refused.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        origin = origin.as_deref().unwrap_or(""),
                        "WebSocket refused: foreign Origin"
                    );
                    return Box::new(warp::reply::with_status(
                        "WebSocket connections from this Origin are not allowed",
                        StatusCode::FORBIDDEN,
                    )) as Box<dyn warp::Reply>;
                }
                let id = next_id.fetch_add(1, Ordering::Relaxed);
                let tx = signalling.tx.clone();
                Box::new(
                    ws.max_message_size(MAX_FRAME_BYTES)
                        .max_frame_size(MAX_FRAME_BYTES)
                        .on_upgrade(move |socket| {
                            client_session(socket, id, remote.map(|r| r.ip()), tx)
                        }),
                )
            },
        );

    let m = metrics.clone();
    let healthz = warp::path("healthz")
        .and(warp::path::end())
        .map(move || warp::reply::json(&m.health()));
    let m = metrics.clone();
    let prometheus = warp::path("metrics").and(warp::path::end()).map(move || {
        Response::builder()
            .header(header::CONTENT_TYPE, "text/plain; version=0.0.4")
            .body(m.render())
            .unwrap_or_default()
    });
    let csp = csp(&config.connect_src);
    let static_files =
        warp::path::tail().map(
            move |tail: warp::path::Tail| match assets::get(tail.as_str()) {
                Some((content_type, body)) => Response::builder()
                    .header(header::CONTENT_TYPE, content_type)
                    .header(header::CACHE_CONTROL, "no-cache")
                    .header("Content-Security-Policy", csp.as_str())
                    .header("X-Content-Type-Options", "nosniff")
                    .header("Referrer-Policy", "no-referrer")
                    .header("X-Frame-Options", "DENY")
                    .body(body.to_vec())
                    .unwrap_or_default(),
                None => Response::builder()
                    .status(StatusCode::NOT_FOUND)
                    .body(b"not found".to_vec())
                    .unwrap_or_default(),
            },
        );

    let client_ip = warp::addr::remote()
        .and(warp::ext::optional::<ClientAddr>())
        .map(|r: Option<SocketAddr>, t: Option<ClientAddr>| r.or(t.map(|a| a.0)).map(|a| a.ip()));
    let control = crate::signalling::control::routes(config.control, client_ip);
    let routes = control.or(warp::get().and(ws.or(healthz).or(prometheus).or(static_files)));
    match config.tls {
        Some(tls_config) => {
            let failed = metrics.tls_handshake_failed.clone();
            tls::serve(listener, tls_config, routes, failed, shutdown).await
        }
        None => {
            warp::serve(routes)
                .incoming(listener)
                .graceful(shutdown)
                .run()
                .await
        }
    }
}

/// One WebSocket connection: reads frames into the room, writes what the
/// room sends back.
async fn client_session(
    socket: WebSocket,
    id: ClientId,
    addr: Option<IpAddr>,
    actor: mpsc::UnboundedSender<ActorMsg>,
) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Outgoing>();
    let own_tx = tx.clone();
    if actor.send(ActorMsg::Open(id, tx, addr)).is_err() {
        return;
    }
    let _ = actor.send(ActorMsg::Input(Input::Connected(id)));
    tracing::debug!(client = id, "client connected");

    let writer = tokio::spawn(async move {
        while let Some(out) = rx.recv().await {
            let result = match out {
                Outgoing::Message(msg) => sink.send(Message::text(msg.to_json())).await,
                Outgoing::Close(code, reason) => {
                    let _ = sink.send(Message::close_with(code, reason)).await;
                    break;
                }
            };
            if result.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });

    let refuse = |code: ErrorCode, message: String| {
        let _ = actor.send(ActorMsg::Input(Input::Refused(
            id,
            ParseError { code, message },
        )));
    };
    loop {
        let frame = match tokio::time::timeout(KEEPALIVE_TIMEOUT, stream.next()).await {
            Err(_) => {
                tracing::info!(
                    client = id,
                    "no message for {} s: dropping client",
                    KEEPALIVE_TIMEOUT.as_secs()
                );
                let _ = own_tx.send(Outgoing::Close(1001, "keepalive timeout"));
                break;
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                let text = e.to_string();
                tracing::debug!(client = id, "WebSocket error: {text}");
                if text.contains("too long")
                    || text.contains("Space limit")
                    || text.contains("too big")
                {
                    let _ = own_tx.send(Outgoing::Close(1009, "frame too large"));
                }
                break;
            }
            Ok(Some(Ok(frame))) => frame,
        };
        if frame.is_close() {
            break;
        }
        if frame.is_text() {
            match frame.to_str() {
                Ok(text) => match parse_client_message(text) {
                    Ok(msg) => {
                        let _ = actor.send(ActorMsg::Input(Input::Message(id, msg)));
                    }
                    Err(e) => refuse(e.code, e.message),
                },
                Err(()) => refuse(ErrorCode::Malformed, "text frame is not UTF-8".into()),
            }
        } else if frame.is_binary() {
            refuse(
                ErrorCode::Binary,
                "binary frames are not part of the signalling protocol".into(),
            );
        }
        // Ping/pong frames are answered by the WebSocket layer.
    }
    let _ = actor.send(ActorMsg::Input(Input::Disconnected(id)));
    drop(own_tx);
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    tracing::debug!(client = id, "client disconnected");
}

/// Binds the listening socket, with a clear error.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::origin_allowed;

    #[test]
    fn origin_rules() {
        let none: Vec<String> = vec![];
        assert!(origin_allowed(None, Some("127.0.0.1:8080"), &none));
        assert!(origin_allowed(
            Some("http://127.0.0.1:8080"),
            Some("127.0.0.1:8080"),
            &none
        ));
        assert!(origin_allowed(
            Some("https://Desk.example:8443"),
            Some("desk.example:8443"),
            &none
        ));
        assert!(!origin_allowed(
            Some("http://evil.example"),
            Some("127.0.0.1:8080"),
            &none
        ));
        assert!(!origin_allowed(
            Some("http://127.0.0.1:9999"),
            Some("127.0.0.1:8080"),
            &none
        ));
        assert!(!origin_allowed(Some("null"), Some("127.0.0.1:8080"), &none));
        assert!(!origin_allowed(Some("http://127.0.0.1:8080"), None, &none));
        let listed = vec!["https://portal.example".to_string()];
        assert!(origin_allowed(
            Some("https://portal.example"),
            Some("127.0.0.1:8080"),
            &listed
        ));
    }
}
