//! The accept loop, for plain HTTP and HTTPS alike: every TCP connection
//! takes a place in the HTTP connection limits first (over them it is
//! closed at once: nothing has been asked yet that could be answered),
//! gets a small kernel send buffer, finishes its TLS handshake in its own
//! task when there is TLS, and is then served by hyper's HTTP/1 with a
//! deadline for each request's headers: a socket that never sends a
//! request, or sits idle after one, is closed after [`HEADER_TIMEOUT`].
//! An upgrade to a WebSocket leaves this pool (the session holds a place
//! in the WebSocket pool instead).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;

use crate::signalling::counters::{ConnectionCounters, Cut, Refused};
use crate::signalling::limits::{Pool, Refusal};
use crate::signalling::tls;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The client's address, put into each request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// A request's headers must be complete this long after the connection
/// opened or the previous response went out; then the connection closes.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Kernel send buffer asked for each connection (Linux doubles it). The
/// agent's answers are small (the web client is ~150 KiB); it bounds what
/// a client that does not read pins in kernel memory, and lets a stuck
/// WebSocket show as a stalled send within a few messages.
const SEND_BUFFER: usize = 64 * 1024;

/// Largest request head (and read buffer) hyper keeps per connection.
const MAX_HTTP_BUFFER: usize = 64 * 1024;

/// What the accept loop needs besides the routes.
pub(super) struct Accept {
    pub http: Pool,
    pub counters: Arc<ConnectionCounters>,
    /// HTTPS with this, and its failed-handshake counter.
    pub tls: Option<(TlsAcceptor, Arc<AtomicU64>)>,
}

/// Serves `filter` until `shutdown` resolves; open requests then get to
/// finish (the caller bounds how long).
pub(super) async fn serve<F>(
    listener: TcpListener,
    accept: Accept,
    filter: F,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) where
    F: warp::Filter<Error = warp::Rejection> + Clone + Send + Sync + 'static,
    F::Extract: warp::Reply,
{
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection task holds a clone; when all are gone, recv ends.
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let slot = match accept.http.take(peer.ip()) {
            Ok(slot) => slot,
            Err(refusal) => {
                let limits = accept.http.limits();
                let (why, detail) = match refusal {
                    Refusal::PerAddress => (
                        Refused::HttpPerAddress,
                        format!(
                            "over {} HTTP connections from one address",
                            limits.per_address
                        ),
                    ),
                    Refusal::Total => (
                        Refused::HttpTotal,
                        format!("over {} HTTP connections in total", limits.total),
                    ),
                };
                accept.counters.refused(why, peer.ip(), &detail);
                drop(tcp);
                continue;
            }
        };
        let _ = socket2::SockRef::from(&tcp).set_send_buffer_size(SEND_BUFFER);
        let conn = Conn {
            peer,
            counters: accept.counters.clone(),
            served: Arc::new(AtomicU64::new(0)),
            stop: stop_rx.clone(),
        };
        let service = TowerToHyperService::new(WithClientAddr {
            inner: warp::service(filter.clone()),
            addr: ClientAddr(peer),
            served: conn.served.clone(),
        });
        let tls = accept.tls.clone();
        let alive = alive_tx.clone();
        tokio::spawn(async move {
            let _alive = alive;
            let _slot = slot;
            let _open = ConnectionCounters::opened(&conn.counters, false);
            match tls {
                None => conn.http(tcp, service).await,
                Some((acceptor, failed)) => {
                    if let Some(stream) = tls::handshake(tcp, peer, &acceptor, &failed).await {
                        conn.http(stream, service).await;
                    }
                }
            }
        });
    }
    // Stop listening, then let open requests finish.
    drop(listener);
    let _ = stop_tx.send(true);
    drop(alive_tx);
    let _ = alive_rx.recv().await;
}

/// One accepted connection.
struct Conn {
    peer: SocketAddr,
    counters: Arc<ConnectionCounters>,
    /// Requests answered on it.
    served: Arc<AtomicU64>,
    stop: watch::Receiver<bool>,
}

impl Conn {
    async fn http<I, S>(mut self, io: I, service: S)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        S: hyper::service::HttpService<hyper::body::Incoming> + Send + 'static,
        S::Future: Send + 'static,
        S::ResBody: Send + 'static,
        <S::ResBody as hyper::body::Body>::Data: Send,
        <S::ResBody as hyper::body::Body>::Error: Into<BoxError>,
        S::Error: Into<BoxError>,
    {
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .max_buf_size(MAX_HTTP_BUFFER);
        let conn = builder
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        let mut conn = std::pin::pin!(conn);
        let result = tokio::select! {
            r = conn.as_mut() => r,
            () = stopped(&mut self.stop) => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        let Err(e) = result else { return };
        if e.is_timeout() && self.served.load(Ordering::Relaxed) == 0 {
            let detail = format!("no request within {} s", HEADER_TIMEOUT.as_secs());
            self.counters
                .cut(Cut::HttpHeaderTimeout, Some(self.peer.ip()), &detail);
        } else {
            tracing::debug!(peer = %self.peer, "HTTP connection ended: {e}");
        }
    }
}

/// Resolves once the server stops.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await.map(|_| ());
}

/// Puts the client's address into each request (warp's `addr::remote()`
/// only works for connections warp accepted itself) and counts requests.
#[derive(Clone)]
struct WithClientAddr<S> {
    inner: S,
    addr: ClientAddr,
    served: Arc<AtomicU64>,
}

impl<S, B> tower_service::Service<warp::http::Request<B>> for WithClientAddr<S>
where
    S: tower_service::Service<warp::http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: warp::http::Request<B>) -> Self::Future {
        self.served.fetch_add(1, Ordering::Relaxed);
        req.extensions_mut().insert(self.addr);
        self.inner.call(req)
    }
}

/// Errors from `accept` that concern one connection are ignored; others
/// (out of file descriptors) get a pause so the loop does not spin.
async fn accept_error(e: std::io::Error) {
    use std::io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused
    ) {
        return;
    }
    tracing::warn!("accept failed: {e}");
    tokio::time::sleep(Duration::from_millis(200)).await;
}
