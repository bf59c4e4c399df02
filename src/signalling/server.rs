//! The HTTP/WebSocket server: the web client at `/`, signalling at `/ws`,
//! `/healthz`, `/metrics` and the control API, all on one port. The room
//! lives in its actor (`actor`), each socket in its session (`session`),
//! the upgrade and its checks in `upgrade`, the accept loop and the HTTP
//! connection limits in `listener`.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use warp::http::{header, Response, StatusCode};
use warp::Filter;

use crate::metrics::Metrics;
pub use crate::signalling::actor::{start_room, Outlets, ResizeSink, Signalling};
use crate::signalling::assets;
use crate::signalling::limits::{Limits, Pool};
use crate::signalling::listener::{self, Accept, ClientAddr};
use crate::signalling::upgrade::{self, Upgrade};

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
    /// How many connections may be open: WebSocket sessions, and apart
    /// from them plain HTTP connections, each against these limits.
    pub limits: Limits,
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    signalling: Signalling,
    metrics: Arc<Metrics>,
    config: ServerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let ws = upgrade::route(Arc::new(Upgrade {
        actor: signalling.tx.clone(),
        sessions: Pool::new(config.limits),
        metrics: metrics.clone(),
        allowed: config.allow_origins,
        next_id: AtomicU64::new(1),
    }));

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

    let client_ip =
        warp::ext::optional::<ClientAddr>().map(|a: Option<ClientAddr>| a.map(|a| a.0.ip()));
    let control = crate::signalling::control::routes(config.control, client_ip);
    let routes = control.or(warp::get().and(ws.or(healthz).or(prometheus).or(static_files)));
    let accept = Accept {
        http: Pool::new(config.limits),
        counters: metrics.connections.clone(),
        tls: config.tls.map(|tls| {
            (
                tokio_rustls::TlsAcceptor::from(tls),
                metrics.tls_handshake_failed.clone(),
            )
        }),
    };
    listener::serve(listener, accept, routes, shutdown).await
}

/// Binds the listening socket, with a clear error.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))
}
