//! HTTPS and WSS on the listening port: accept TCP, finish the TLS
//! handshake in the connection's own task (with a deadline, so scanners
//! and plain-HTTP requests cannot stall the accept loop), then hand the
//! stream to hyper with upgrades, which carries warp's WebSocket. Plain
//! HTTP sent here gets a short "use https://" answer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use tokio_rustls::TlsAcceptor;

/// The client's address on connections warp did not accept itself (the
/// TLS path), put into each request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub std::net::SocketAddr);

/// A client that has not finished its handshake by then is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `filter` over TLS until `shutdown` resolves; connections then
/// get to finish (the caller bounds how long). `failed_handshakes` counts
/// handshakes that failed or timed out.
pub async fn serve<F>(
    listener: TcpListener,
    tls: Arc<tokio_rustls::rustls::ServerConfig>,
    filter: F,
    failed_handshakes: Arc<AtomicU64>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) where
    F: warp::Filter<Error = warp::Rejection> + Clone + Send + Sync + 'static,
    F::Extract: warp::Reply,
{
    let acceptor = TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
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
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(WithClientAddr {
            inner: warp::service(filter.clone()),
            addr: ClientAddr(peer),
        });
        let failed = failed_handshakes.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let handshake = async {
                if speaks_plain_http(&tcp).await {
                    answer_plain_http(tcp).await;
                    return Err(std::io::Error::other("plain HTTP on the HTTPS port"));
                }
                acceptor.accept(tcp).await
            };
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    failed.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%peer, "TLS handshake failed: {e}");
                    return;
                }
                Err(_) => {
                    failed.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let builder = Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%peer, "HTTPS connection ended: {e}");
            }
        });
    }
    // Stop listening, then let open requests finish.
    drop(listener);
    graceful.shutdown().await;
}

/// Puts the client's address into each request: warp fills its own
/// `addr::remote()` only for connections it accepted itself, and the
/// failed-token limiter needs the address on this path too.
#[derive(Clone)]
struct WithClientAddr<S> {
    inner: S,
    addr: ClientAddr,
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
        req.extensions_mut().insert(self.addr);
        self.inner.call(req)
    }
}

/// A TLS connection starts with a handshake record (0x16); anything else
/// that is ASCII is most likely someone typing http:// by mistake.
async fn speaks_plain_http(tcp: &tokio::net::TcpStream) -> bool {
    let mut first = [0u8; 1];
    matches!(tcp.peek(&mut first).await, Ok(1) if first[0] != 0x16 && first[0].is_ascii_uppercase())
}

/// Tells a plain-HTTP visitor to use https instead of failing mutely (a
/// browser would show an empty or garbled response).
async fn answer_plain_http(mut tcp: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const BODY: &str = "This oriel agent speaks HTTPS on this port: open the address with https:// instead of http://\n";
    // Read (part of) the request first, so closing does not reset the
    // connection before the client has read the answer.
    let mut buf = [0u8; 4096];
    let _ = tcp.read(&mut buf).await;
    let answer = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tcp.write_all(answer.as_bytes()).await;
    let _ = tcp.shutdown().await;
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
