//! `GET /ws`: the WebSocket upgrade, done here rather than by warp's `ws()`
//! so the session controls its buffers (8 KiB to read, not 128 KiB per
//! socket) and can still reach the raw stream when it closes. Before the
//! upgrade: the `Origin` check (403), then the connection limits (429 over
//! the per-address limit, 503 over the total), each with a plain-text body
//! that says which limit and what to do.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;
use warp::http::{header, HeaderMap, Response, StatusCode};
use warp::Filter;

use crate::metrics::Metrics;
use crate::protocol::MAX_FRAME_BYTES;
use crate::signalling::actor::ActorMsg;
use crate::signalling::counters::Refused;
use crate::signalling::limits::{Pool, Refusal};
use crate::signalling::listener::ClientAddr;
use crate::signalling::session::{self, Session};

/// What the `/ws` route needs.
pub(super) struct Upgrade {
    pub actor: mpsc::UnboundedSender<ActorMsg>,
    pub sessions: Pool,
    pub metrics: Arc<Metrics>,
    /// Extra `Origin`s allowed to open the WebSocket.
    pub allowed: Vec<String>,
    pub next_id: AtomicU64,
}

/// Each session's read buffer; frames above it grow it up to
/// `MAX_FRAME_BYTES` while they are read, then it shrinks back.
const READ_BUFFER: usize = 8 * 1024;
/// What may wait in a session's write buffer: more than the largest message
/// the agent sends (an offer is ~5 KiB, a full participants list ~100 KiB).
const MAX_WRITE_BUFFER: usize = 1024 * 1024;

fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES))
}

pub(super) fn route(
    up: Arc<Upgrade>,
) -> impl Filter<Extract = (Response<String>,), Error = warp::Rejection> + Clone {
    warp::path("ws")
        .and(warp::path::end())
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<ClientAddr>())
        .and(warp::ext::optional::<OnUpgrade>())
        .map(
            move |headers: HeaderMap, addr: Option<ClientAddr>, on: Option<OnUpgrade>| {
                upgrade(&up, &headers, addr.map(|a| a.0.ip()), on)
            },
        )
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

fn text(status: StatusCode, body: String) -> Response<String> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn upgrade(
    up: &Upgrade,
    headers: &HeaderMap,
    addr: Option<IpAddr>,
    on: Option<OnUpgrade>,
) -> Response<String> {
    let get = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let origin = get(header::ORIGIN);
    if !origin_allowed(origin, get(header::HOST), &up.allowed) {
        up.metrics.origin_refused.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            origin = origin.unwrap_or(""),
            "WebSocket refused: foreign Origin"
        );
        return text(
            StatusCode::FORBIDDEN,
            "WebSocket connections from this Origin are not allowed\n".into(),
        );
    }
    let Some(key) = websocket_key(headers) else {
        let mut r = text(
            StatusCode::UPGRADE_REQUIRED,
            "this is oriel's signalling endpoint: open it as a WebSocket\n".into(),
        );
        r.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            header::HeaderValue::from_static("13"),
        );
        return r;
    };
    let ip = addr.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let slot = match up.sessions.take(ip) {
        Ok(slot) => slot,
        Err(refusal) => return refuse(up, refusal, ip),
    };
    let Some(on) = on else {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "this connection cannot be upgraded\n".into(),
        );
    };
    let session = Session {
        id: up.next_id.fetch_add(1, Ordering::Relaxed),
        addr,
        actor: up.actor.clone(),
        counters: up.metrics.connections.clone(),
    };
    tokio::spawn(async move {
        match on.await {
            Ok(upgraded) => {
                let io = TokioIo::new(upgraded);
                let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config())).await;
                session::run(ws, session, slot).await;
            }
            Err(e) => tracing::debug!("WebSocket upgrade failed: {e}"),
        }
    });
    let mut r = Response::new(String::new());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(
        header::UPGRADE,
        header::HeaderValue::from_static("websocket"),
    );
    h.insert(
        header::CONNECTION,
        header::HeaderValue::from_static("upgrade"),
    );
    if let Ok(accept) = header::HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    r
}

/// The request's `Sec-WebSocket-Key` when it asks for a version 13
/// WebSocket (RFC 6455 4.2.1).
fn websocket_key(headers: &HeaderMap) -> Option<&str> {
    let has = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has(header::CONNECTION, "upgrade") || !has(header::UPGRADE, "websocket") {
        return None;
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .and_then(|v| v.to_str().ok())
        != Some("13")
    {
        return None;
    }
    headers
        .get(header::SEC_WEBSOCKET_KEY)
        .and_then(|v| v.to_str().ok())
        .filter(|k| !k.is_empty())
}

fn refuse(up: &Upgrade, refusal: Refusal, ip: IpAddr) -> Response<String> {
    let limits = up.sessions.limits();
    let (why, status, body) = match refusal {
        Refusal::PerAddress => (
            Refused::PerAddress,
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "too many connections from your address: at most {} at once (--max-connections-per-address); close other tabs or windows of this desktop\n",
                limits.per_address
            ),
        ),
        Refusal::Total => (
            Refused::Total,
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "this agent has its maximum of {} connections open (--max-connections); try again later\n",
                limits.total
            ),
        ),
    };
    up.metrics
        .connections
        .refused(why, ip, body.trim_end_matches('\n'));
    let mut r = text(status, body);
    r.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("10"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, header::HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn only_version_13_upgrades_have_a_key() {
        let ok = [
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ];
        assert_eq!(
            websocket_key(&headers(&ok)),
            Some("dGhlIHNhbXBsZSBub25jZQ==")
        );
        assert_eq!(
            derive_accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        for i in 0..ok.len() {
            let mut some = ok.to_vec();
            some.remove(i);
            assert_eq!(websocket_key(&headers(&some)), None, "without {}", ok[i].0);
        }
        let mut old = ok.to_vec();
        old[2] = ("sec-websocket-version", "8");
        assert_eq!(websocket_key(&headers(&old)), None);
    }

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
