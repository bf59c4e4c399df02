//! A signalling client that never reads: the "bad client" of
//! `tests/e2e/bad-clients.test.mjs` and `bench/bad-clients.mjs`. It joins
//! with a link's token, reads the `welcome`, then stops reading for good
//! while it keeps sending messages that each earn a reply (an unknown
//! `type`), so the agent's replies pile up. Its TCP receive buffer is set
//! small (as a client on a stuck network path or a hostile one would have
//! it) so the pile-up reaches the agent within seconds rather than after
//! the kernel grew the buffer to tens of MiB.
//!
//!   non_reader --url ws://HOST:PORT/ws --token TOKEN [--rate N] [--seconds S] [--local-addr IP]
//!
//! JSON lines on stdout: `{"event":"welcome","ms":..}` once joined, then
//! `{"event":"ended","ms":..,"sent":..,"how":".."}` when the agent cut it
//! off (`how`: the error sending failed with) or `--seconds` passed
//! (`how`: "still open").

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::Message;

struct Options {
    url: String,
    token: String,
    rate: u32,
    seconds: u64,
    local: Option<IpAddr>,
}

fn parse() -> Result<Options> {
    let mut o = Options {
        url: String::new(),
        token: String::new(),
        rate: 250,
        seconds: 60,
        local: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--url" => o.url = value()?,
            "--token" => o.token = value()?,
            "--rate" => o.rate = value()?.parse().context("--rate")?,
            "--seconds" => o.seconds = value()?.parse().context("--seconds")?,
            "--local-addr" => o.local = Some(value()?.parse().context("--local-addr")?),
            "-h" | "--help" => {
                println!("usage: non_reader --url ws://HOST:PORT/ws --token TOKEN [--rate N] [--seconds S] [--local-addr IP]");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (see --help)"),
        }
    }
    if o.url.is_empty() || o.token.is_empty() {
        bail!("--url and --token are required (see --help)");
    }
    Ok(o)
}

fn emit(v: serde_json::Value) {
    println!("{v}");
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let o = parse()?;
    let hostport = o
        .url
        .strip_prefix("ws://")
        .and_then(|r| r.split('/').next())
        .context("--url must be ws://HOST:PORT/...")?;
    let addr: SocketAddr = hostport
        .parse()
        .context("--url needs a numeric HOST:PORT")?;
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // The smallest receive buffer Linux allows; fixed, so it never grows.
    socket.set_recv_buffer_size(4096)?;
    if let Some(local) = o.local {
        socket.bind(SocketAddr::new(local, 0))?;
    }
    let tcp = socket.connect(addr).await.context("connecting")?;
    let (mut ws, _) = tokio_tungstenite::client_async(o.url.as_str(), tcp)
        .await
        .context("WebSocket handshake")?;
    let t0 = Instant::now();
    let hello = serde_json::json!({"type": "hello", "protocol": 1, "token": o.token});
    ws.send(Message::text(hello.to_string())).await?;
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .context("no welcome within 10 s")?
            .context("closed before welcome")??;
        if let Message::Text(t) = msg {
            let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap_or_default();
            match v["type"].as_str() {
                Some("welcome") => break,
                Some("error") => bail!("refused: {t}"),
                _ => {}
            }
        }
    }
    emit(serde_json::json!({"event": "welcome", "ms": t0.elapsed().as_millis() as u64}));
    // From here on nothing is read.
    let junk = Message::text(format!(r#"{{"type":"{}"}}"#, "x".repeat(40)));
    let gap = Duration::from_secs_f64(1.0 / f64::from(o.rate.max(1)));
    let end = t0 + Duration::from_secs(o.seconds);
    let mut sent = 0u64;
    let mut next = Instant::now();
    let how = loop {
        if Instant::now() >= end {
            break "still open".to_string();
        }
        match tokio::time::timeout(Duration::from_secs(5), ws.send(junk.clone())).await {
            Ok(Ok(())) => sent += 1,
            Ok(Err(e)) => break e.to_string(),
            // Our own send stalls once the agent stops reading us in turn.
            Err(_) => continue,
        }
        next += gap;
        tokio::time::sleep_until(next.into()).await;
    };
    emit(serde_json::json!({
        "event": "ended",
        "ms": t0.elapsed().as_millis() as u64,
        "sent": sent,
        "how": how,
    }));
    Ok(())
}
