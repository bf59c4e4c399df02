//! The real binary over a real socket, without a browser: the offer a
//! client gets, and refusals that leave the connection up. Uses the test
//! capture so that no X server is needed.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

struct Agent {
    child: Child,
    addr: String,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_agent(extra: &[&str]) -> Agent {
    let mut child = Command::new(env!("CARGO_BIN_EXE_oriel"))
        .args(["serve", "--listen", "127.0.0.1:0", "--capture", "test"])
        .args(extra)
        .env_remove("DISPLAY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start oriel");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("read");
    let addr = line
        .trim()
        .strip_prefix("oriel: serving http://")
        .and_then(|s| s.strip_suffix('/'))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    Agent { child, addr }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(agent: &Agent) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", agent.addr))
        .await
        .expect("connect");
    ws
}

async fn next_json(ws: &mut Ws) -> serde_json::Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message within 10 s")
            .expect("socket open")
            .expect("no error");
        if let Message::Text(t) = msg {
            return serde_json::from_str(t.as_str()).expect("agent sends JSON");
        }
    }
}

async fn send(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text.to_string()))
        .await
        .expect("send");
}

#[tokio::test]
async fn offer_is_sendonly_h264_with_playout_delay() {
    let agent = start_agent(&[]);
    let mut ws = connect(&agent).await;
    send(&mut ws, r#"{"type":"hello","protocol":1}"#).await;
    let welcome = next_json(&mut ws).await;
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["video"]["codec"], "H264");
    let offer = next_json(&mut ws).await;
    assert_eq!(offer["type"], "offer", "{offer}");
    let sdp = offer["sdp"].as_str().expect("sdp");
    assert!(sdp.contains("m=video"), "{sdp}");
    assert!(sdp.contains("a=sendonly"), "{sdp}");
    assert!(sdp.contains("H264/90000"), "{sdp}");
    assert!(sdp.contains("packetization-mode=1"), "{sdp}");
    assert!(
        sdp.contains("a=extmap:6 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"),
        "{sdp}"
    );
    // Candidates trickle after the offer.
    let ice = next_json(&mut ws).await;
    assert_eq!(ice["type"], "ice", "{ice}");
    assert!(ice["candidate"].as_str().unwrap().starts_with("candidate:"));
}

#[tokio::test]
async fn playout_delay_can_be_turned_off() {
    let agent = start_agent(&["--no-playout-delay"]);
    let mut ws = connect(&agent).await;
    send(&mut ws, r#"{"type":"hello","protocol":1}"#).await;
    let _welcome = next_json(&mut ws).await;
    let offer = next_json(&mut ws).await;
    let sdp = offer["sdp"].as_str().expect("sdp");
    assert!(!sdp.contains("playout-delay"), "{sdp}");
}

#[tokio::test]
async fn refusals_keep_the_connection_and_are_counted() {
    let agent = start_agent(&[]);
    let mut ws = connect(&agent).await;
    for (text, code) in [
        ("not json", "malformed"),
        (r#"{"type":"teleport"}"#, "unknownType"),
        (r#"{"type":"answer","sdp":"x"}"#, "unexpected"),
        (r#"{"type":"hello","protocol":2}"#, "unsupportedProtocol"),
    ] {
        send(&mut ws, text).await;
        let reply = next_json(&mut ws).await;
        assert_eq!(reply["type"], "error", "{text}: {reply}");
        assert_eq!(reply["code"], code, "{text}: {reply}");
    }
    send(&mut ws, r#"{"type":"ping"}"#).await;
    assert_eq!(next_json(&mut ws).await["type"], "pong");

    let metrics = http_get(&agent.addr, "/metrics").await;
    assert!(
        metrics.contains(r#"oriel_signalling_errors_total{code="malformed"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn max_clients_refuses_with_full() {
    let agent = start_agent(&["--max-clients", "1"]);
    let mut first = connect(&agent).await;
    send(&mut first, r#"{"type":"hello","protocol":1}"#).await;
    assert_eq!(next_json(&mut first).await["type"], "welcome");
    let mut second = connect(&agent).await;
    send(&mut second, r#"{"type":"hello","protocol":1}"#).await;
    let reply = next_json(&mut second).await;
    assert_eq!(reply["code"], "full", "{reply}");
    assert_eq!(next_json(&mut second).await["type"], "bye");
}

/// A plain HTTP GET over a TCP socket (no HTTP client crate needed).
async fn http_get(addr: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .expect("write");
    let mut body = String::new();
    s.read_to_string(&mut body).await.expect("read");
    body
}
