//! HTTPS and WSS on the listening port: the TLS handshake of one accepted
//! connection, in that connection's own task and with a deadline, so
//! scanners and plain-HTTP requests cannot stall the accept loop (which
//! lives in `listener`). Plain HTTP sent here gets a short "use https://"
//! answer.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// A client that has not finished its handshake by then is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The TLS stream of `tcp`, or `None` when the handshake failed or timed
/// out (counted in `failed`).
pub(super) async fn handshake(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: &TlsAcceptor,
    failed: &AtomicU64,
) -> Option<TlsStream<TcpStream>> {
    let handshake = async {
        if speaks_plain_http(&tcp).await {
            answer_plain_http(tcp).await;
            return Err(std::io::Error::other("plain HTTP on the HTTPS port"));
        }
        acceptor.accept(tcp).await
    };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(e)) => {
            failed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, "TLS handshake failed: {e}");
            None
        }
        Err(_) => {
            failed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}

/// A TLS connection starts with a handshake record (0x16); anything else
/// that is ASCII is most likely someone typing http:// by mistake.
async fn speaks_plain_http(tcp: &TcpStream) -> bool {
    let mut first = [0u8; 1];
    matches!(tcp.peek(&mut first).await, Ok(1) if first[0] != 0x16 && first[0].is_ascii_uppercase())
}

/// Tells a plain-HTTP visitor to use https instead of failing mutely (a
/// browser would show an empty or garbled response).
async fn answer_plain_http(mut tcp: TcpStream) {
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
