//! A publisher in a Janus VideoRoom, over Janus's HTTP API (FIELD-NOTES,
//! "Publishing into an SFU"): create a session, attach the VideoRoom
//! plugin, join the room as a publisher with a fixed id, publish the offer,
//! trickle candidates, keep the session alive. Results of requests and
//! everything else Janus says arrive as events on a long poll.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::media::ice::Secret;

/// Janus drops a session after 60 s without a request.
pub const KEEPALIVE: Duration = Duration::from_secs(25);
/// How long a request's asynchronous answer may take.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// VideoRoom: "a publisher with this id is already in the room" (436), or
/// the room is full, e.g. of stale publishers (432).
const ID_EXISTS: i64 = 436;
const ROOM_FULL: i64 = 432;

/// Room credentials; never logged.
#[derive(Clone, Default)]
pub struct RoomSecrets {
    /// The room's `secret`: needed to kick our own stale publisher.
    pub secret: Option<Secret>,
    /// The room's `pin`: needed to join a protected room.
    pub pin: Option<Secret>,
}

/// One Janus session with the VideoRoom plugin attached.
pub struct Session {
    http: reqwest::Client,
    session_url: String,
    handle_url: String,
    events: mpsc::UnboundedReceiver<Result<Value, String>>,
    /// Events read while waiting for a particular transaction.
    backlog: VecDeque<Value>,
    poller: tokio::task::JoinHandle<()>,
}

/// Something Janus said about our publisher after it was set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The PeerConnection is up (DTLS done).
    WebrtcUp,
    /// Janus receives (or stopped receiving) our video.
    Media(bool),
    /// Janus closed our PeerConnection.
    Hangup(String),
    /// Anything else, for the debug log.
    Other(String),
}

fn transaction() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("oriel-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Janus's own error in an answer, if it is one.
fn janus_error(v: &Value) -> Option<String> {
    if v["janus"] == "error" {
        let code = v["error"]["code"].as_i64().unwrap_or(0);
        let reason = v["error"]["reason"].as_str().unwrap_or("no reason given");
        return Some(format!("Janus error {code}: {reason}"));
    }
    None
}

/// The VideoRoom's error inside a plugin event, if any: (code, text).
fn plugin_error(v: &Value) -> Option<(i64, String)> {
    let data = &v["plugindata"]["data"];
    data.get("error_code").map(|code| {
        (
            code.as_i64().unwrap_or(0),
            data["error"]
                .as_str()
                .unwrap_or("no reason given")
                .to_string(),
        )
    })
}

/// POSTs one request of Janus's HTTP API, with a fresh transaction unless
/// it has one; Janus's own errors become `Err`. Also used by the
/// benchmarks' Janus subscribers (examples/bench_receiver/).
pub async fn post(http: &reqwest::Client, url: &str, mut body: Value) -> Result<Value> {
    if body.get("transaction").is_none() {
        body["transaction"] = json!(transaction());
    }
    let reply = http
        .post(url)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("reaching Janus at {url}"))?;
    let status = reply.status();
    let value: Value = reply
        .json()
        .await
        .with_context(|| format!("Janus at {url} answered HTTP {status} without JSON"))?;
    if let Some(e) = janus_error(&value) {
        bail!("{e}");
    }
    Ok(value)
}

/// Starts reading the events of the session at `session_url` (long poll);
/// they arrive on the receiver, ending with an `Err` when Janus stops
/// answering or forgets the session. Abort the handle to stop.
pub fn events(
    http: reqwest::Client,
    session_url: String,
) -> (
    mpsc::UnboundedReceiver<Result<Value, String>>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    (rx, tokio::spawn(long_poll(http, session_url, tx)))
}

impl Session {
    /// Creates a session and attaches the VideoRoom plugin.
    pub async fn open(http: reqwest::Client, base: &str) -> Result<Self> {
        let base = base.trim_end_matches('/');
        let created = post(
            &http,
            base,
            json!({"janus": "create", "transaction": transaction()}),
        )
        .await?;
        let session = created["data"]["id"]
            .as_u64()
            .ok_or_else(|| anyhow!("Janus gave no session id"))?;
        let session_url = format!("{base}/{session}");
        let attached = post(
            &http,
            &session_url,
            json!({"janus": "attach", "plugin": "janus.plugin.videoroom", "transaction": transaction()}),
        )
        .await
        .context("attaching the VideoRoom plugin")?;
        let handle = attached["data"]["id"]
            .as_u64()
            .ok_or_else(|| anyhow!("Janus gave no plugin handle id"))?;
        let (events, poller) = events(http.clone(), session_url.clone());
        Ok(Session {
            http,
            handle_url: format!("{session_url}/{handle}"),
            session_url,
            events,
            backlog: VecDeque::new(),
            poller,
        })
    }

    /// Sends a plugin message; its answer comes as an event (or at once
    /// for synchronous requests, returned as is).
    async fn message(&self, body: Value, jsep: Option<Value>) -> Result<(String, Value)> {
        let t = transaction();
        let mut msg = json!({"janus": "message", "transaction": t, "body": body});
        if let Some(jsep) = jsep {
            msg["jsep"] = jsep;
        }
        let reply = post(&self.http, &self.handle_url, msg).await?;
        Ok((t, reply))
    }

    /// Waits for the event answering transaction `t`.
    async fn answer(&mut self, t: &str) -> Result<Value> {
        let deadline = tokio::time::Instant::now() + ANSWER_TIMEOUT;
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .map_err(|_| anyhow!("Janus did not answer within {} s", ANSWER_TIMEOUT.as_secs()))?
                .ok_or_else(|| anyhow!("the Janus session ended"))?
                .map_err(|e| anyhow!(e))?;
            if event["transaction"] == t && event["janus"] == "event" {
                return Ok(event);
            }
            self.backlog.push_back(event);
        }
    }

    /// Joins `room` as publisher `id`. A publisher of ours left behind by a
    /// crash holds that id for up to a minute: with the room's secret it is
    /// kicked and the join repeated.
    pub async fn join(&mut self, room: u64, id: u64, secrets: &RoomSecrets) -> Result<()> {
        for attempt in 0..2 {
            let mut body = json!({
                "request": "join", "ptype": "publisher", "room": room, "id": id, "display": "oriel",
            });
            if let Some(pin) = &secrets.pin {
                body["pin"] = json!(pin.expose());
            }
            let (t, _) = self.message(body, None).await?;
            let event = self.answer(&t).await?;
            match plugin_error(&event) {
                None => return Ok(()),
                Some((code, text)) if (code == ID_EXISTS || code == ROOM_FULL) && attempt == 0 => {
                    let Some(secret) = &secrets.secret else {
                        bail!(
                            "room {room}: {text} (error {code}); a stale publisher may hold id \
                             {id} for up to 60 s: set the room secret (--janus-secret) so oriel \
                             can remove it"
                        );
                    };
                    tracing::warn!(
                        room,
                        id,
                        "{text} (error {code}): removing the stale publisher"
                    );
                    let (_, reply) = self
                        .message(
                            json!({"request": "kick", "room": room, "id": id, "secret": secret.expose()}),
                            None,
                        )
                        .await?;
                    if let Some((code, text)) = plugin_error(&reply) {
                        bail!("room {room}: could not remove the stale publisher: {text} (error {code})");
                    }
                }
                Some((code, text)) => bail!("room {room}: {text} (error {code})"),
            }
        }
        bail!("room {room}: the stale publisher came back")
    }

    /// Publishes with `offer` and returns Janus's answer (SDP).
    pub async fn publish(&mut self, offer: &str) -> Result<String> {
        let (t, _) = self
            .message(
                json!({"request": "publish", "display": "oriel"}),
                Some(json!({"type": "offer", "sdp": offer})),
            )
            .await?;
        let event = self.answer(&t).await?;
        if let Some((code, text)) = plugin_error(&event) {
            bail!("publish refused: {text} (error {code})");
        }
        event["jsep"]["sdp"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("Janus answered the publish without an SDP answer"))
    }

    /// Trickles one local candidate, or `None` for "no more candidates".
    pub async fn trickle(&self, candidate: Option<(u32, &str)>) -> Result<()> {
        let candidate = match candidate {
            Some((mline, c)) => json!({"candidate": c, "sdpMLineIndex": mline}),
            None => json!({"completed": true}),
        };
        post(
            &self.http,
            &self.handle_url,
            json!({"janus": "trickle", "transaction": transaction(), "candidate": candidate}),
        )
        .await
        .map(|_| ())
    }

    pub async fn keepalive(&self) -> Result<()> {
        post(
            &self.http,
            &self.session_url,
            json!({"janus": "keepalive", "transaction": transaction()}),
        )
        .await
        .map(|_| ())
    }

    /// The next thing Janus says about our publisher; an error when the
    /// session is gone (Janus stopped, the session timed out).
    pub async fn next(&mut self) -> Result<Notice> {
        let event = match self.backlog.pop_front() {
            Some(e) => e,
            None => self
                .events
                .recv()
                .await
                .ok_or_else(|| anyhow!("the Janus session ended"))?
                .map_err(|e| anyhow!(e))?,
        };
        Ok(match event["janus"].as_str().unwrap_or_default() {
            "webrtcup" => Notice::WebrtcUp,
            "media" => Notice::Media(event["receiving"].as_bool().unwrap_or(false)),
            "hangup" => Notice::Hangup(event["reason"].as_str().unwrap_or("hangup").into()),
            "detached" => Notice::Hangup("the plugin handle was detached".into()),
            "timeout" => Notice::Hangup("the Janus session timed out".into()),
            other => Notice::Other(format!("{other}: {}", event["plugindata"]["data"])),
        })
    }

    /// Ends the session (leaves the room) politely.
    pub async fn destroy(self) {
        self.poller.abort();
        let _ = post(
            &self.http,
            &self.session_url,
            json!({"janus": "destroy", "transaction": transaction()}),
        )
        .await;
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.poller.abort();
    }
}

/// Reads the session's events (Janus holds each poll up to 30 s).
async fn long_poll(
    http: reqwest::Client,
    url: String,
    tx: mpsc::UnboundedSender<Result<Value, String>>,
) {
    let mut rid = 0u64;
    loop {
        rid += 1;
        let reply = http
            .get(format!("{url}?maxev=10&rid={rid}"))
            .timeout(Duration::from_secs(45))
            .send()
            .await;
        let value: Result<Value, String> = match reply {
            Ok(r) => r
                .json()
                .await
                .map_err(|e| format!("reading Janus events: {e}")),
            Err(e) => Err(format!("Janus stopped answering: {e}")),
        };
        let events = match value {
            Ok(Value::Array(list)) => list,
            Ok(v) => vec![v],
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        for event in events {
            if let Some(e) = janus_error(&event) {
                // E.g. 458 "No such session": it timed out or Janus restarted.
                let _ = tx.send(Err(e));
                return;
            }
            if event["janus"] == "keepalive" {
                continue;
            }
            if tx.send(Ok(event)).is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_read_from_both_layers() {
        let e = json!({"janus": "error", "error": {"code": 458, "reason": "No such session"}});
        assert_eq!(janus_error(&e).unwrap(), "Janus error 458: No such session");
        let p = json!({"janus": "event", "plugindata": {"data": {"videoroom": "event",
            "error_code": 436, "error": "User ID 7 already exists"}}});
        assert_eq!(
            plugin_error(&p).unwrap(),
            (436, "User ID 7 already exists".into())
        );
        let ok = json!({"janus": "event", "plugindata": {"data": {"videoroom": "joined"}}});
        assert!(plugin_error(&ok).is_none());
        assert!(janus_error(&ok).is_none());
    }
}
