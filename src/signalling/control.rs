//! The control endpoint: `/api/control` lets the controller (its page, or
//! `oriel publish|record` on the agent's machine) start and stop SFU
//! publishing and recording, and read their state; `/api/sfu` tells a
//! `--via-sfu` viewer page where to watch. Both take the link's token as
//! `Authorization: Bearer`; refused tokens are counted and rate-limited
//! per address like the WebSocket's.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Deserialize;
use serde_json::{json, Value};
use warp::http::StatusCode;
use warp::Filter;

use crate::metrics::Metrics;
use crate::publish::target::Kind;
use crate::publish::Publishing;
use crate::session::limiter::FailureLimiter;
use crate::session::roles::Role;
use crate::session::room::Credentials;

/// Recording as the control endpoint drives it (implemented over the media
/// service); calls may block briefly and run off the async runtime.
pub trait RecordControl: Send + Sync {
    fn start(&self, by: &str) -> Result<(), String>;
    fn stop(&self, by: &str) -> Result<(), String>;
    fn status(&self) -> Value;
}

pub struct ControlPlane {
    pub publishing: Publishing,
    pub recording: Option<Arc<dyn RecordControl>>,
    /// The Janus room's pin, handed to `--via-sfu` viewers.
    pub janus_pin: Option<String>,
    /// What injects input now, shown to the controller.
    pub input: Option<Arc<crate::input::failover::Health>>,
    credentials: Mutex<Box<dyn Credentials>>,
    limiter: Mutex<FailureLimiter>,
    metrics: Arc<Metrics>,
}

/// A control request's body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub enum Request {
    /// Start (`on: true`) or stop publishing to a target (the only one
    /// when `target` is left out).
    Publish {
        #[serde(default)]
        target: Option<String>,
        on: bool,
    },
    /// Start or stop recording.
    Record { on: bool },
}

/// Parses a `POST /api/control` body (the route caps it at 4096 bytes).
/// Public for the fuzzer (`fuzz/`) too.
pub fn parse_request(body: &[u8]) -> Result<Request, serde_json::Error> {
    serde_json::from_slice(body)
}

/// The token of an `Authorization` header's value, `Bearer TOKEN`.
/// Public for the fuzzer (`fuzz/`) too.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    authorization.strip_prefix("Bearer ").map(str::trim)
}

/// The User-Agent of `oriel publish|record`.
const CLI_AGENT: &str = "oriel-cli/";

pub type Reply = warp::reply::WithStatus<warp::reply::Json>;

fn reply(status: StatusCode, body: Value) -> Reply {
    warp::reply::with_status(warp::reply::json(&body), status)
}

fn error(status: StatusCode, message: impl Into<String>) -> Reply {
    reply(status, json!({ "error": message.into() }))
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane").finish_non_exhaustive()
    }
}

impl ControlPlane {
    pub fn new(
        publishing: Publishing,
        recording: Option<Arc<dyn RecordControl>>,
        janus_pin: Option<String>,
        credentials: Box<dyn Credentials>,
        metrics: Arc<Metrics>,
    ) -> Self {
        ControlPlane {
            publishing,
            recording,
            janus_pin,
            input: None,
            credentials: Mutex::new(credentials),
            limiter: Mutex::new(FailureLimiter::default()),
            metrics,
        }
    }

    /// The role behind `Authorization: Bearer TOKEN`, or the refusal.
    fn authorize(&self, auth: Option<&str>, addr: Option<IpAddr>) -> Result<Role, Reply> {
        let now = Instant::now();
        if let (Some(addr), Ok(mut limiter)) = (addr, self.limiter.lock()) {
            if let Some(wait) = limiter.blocked(addr, now) {
                self.metrics
                    .token_rate_limited
                    .fetch_add(1, Ordering::Relaxed);
                return Err(error(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "too many refused links from your address; try again in {} s",
                        wait.as_secs().max(1)
                    ),
                ));
            }
        }
        let token = auth.and_then(bearer_token);
        let checked = match (token, self.credentials.lock()) {
            (None, _) => Err("send the link's token as `Authorization: Bearer TOKEN`".to_string()),
            (Some(t), Ok(mut c)) => c.check(t).map(|g| g.role),
            (Some(_), Err(_)) => Err("credentials unavailable".to_string()),
        };
        checked.map_err(|why| {
            self.metrics.token_failures.fetch_add(1, Ordering::Relaxed);
            if let (Some(addr), Ok(mut limiter)) = (addr, self.limiter.lock()) {
                limiter.failed(addr, now);
            }
            error(StatusCode::UNAUTHORIZED, why)
        })
    }

    /// Publishing and recording state, as `GET /api/control` returns it.
    pub fn status(&self) -> Value {
        json!({
            "publish": self.publishing.statuses(),
            "recording": self.recording.as_ref().map(|r| r.status()),
            // `problem` says what is degraded (uinput lost, no gamepads).
            "input": self.input.as_ref().map(|h| json!({
                "backend": h.backend(),
                "gamepads": h.gamepads(),
                "problem": h.problem(),
                "failures": h.failures.load(Ordering::Relaxed),
            })),
        })
    }

    /// Carries out `request`; `by` names who asked, for the log.
    async fn apply(self: Arc<Self>, request: Request, by: &'static str) -> Reply {
        match request {
            Request::Publish { target, on } => {
                match self.publishing.set(target.as_deref(), on, by).await {
                    Ok(_) => reply(StatusCode::OK, self.status()),
                    Err(e) => error(StatusCode::NOT_FOUND, e),
                }
            }
            Request::Record { on } => {
                let Some(rec) = self.recording.clone() else {
                    return error(StatusCode::NOT_FOUND, "recording is not available");
                };
                let done =
                    tokio::task::spawn_blocking(
                        move || {
                            if on {
                                rec.start(by)
                            } else {
                                rec.stop(by)
                            }
                        },
                    )
                    .await
                    .unwrap_or_else(|e| Err(format!("recording control failed: {e}")));
                match done {
                    Ok(()) => reply(StatusCode::OK, self.status()),
                    Err(e) => error(StatusCode::CONFLICT, e),
                }
            }
        }
    }

    /// Where a `--via-sfu` viewer watches: the first Janus target.
    fn sfu(&self) -> Reply {
        let janus = self.publishing.targets().find_map(|t| match &t.kind {
            Kind::Janus { room, id, .. } => Some((t, *room, *id)),
            Kind::Whip => None,
        });
        match janus {
            Some((t, room, feed)) => reply(
                StatusCode::OK,
                json!({"kind": "janus", "url": t.public_url(), "room": room, "feed": feed,
                       "pin": self.janus_pin}),
            ),
            None => error(
                StatusCode::NOT_FOUND,
                "this agent publishes to no Janus room (--publish janus:...)",
            ),
        }
    }
}

/// The two routes; `addr` gives each request's client address.
pub fn routes(
    plane: Arc<ControlPlane>,
    addr: impl Filter<Extract = (Option<IpAddr>,), Error = std::convert::Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
) -> impl Filter<Extract = (Reply,), Error = warp::Rejection> + Clone + Send + Sync + 'static {
    let auth = warp::header::optional::<String>("authorization").and(addr);
    let p = plane.clone();
    let get = warp::get()
        .and(warp::path!("api" / "control"))
        .and(auth.clone())
        .map(
            move |a: Option<String>, ip| match p.authorize(a.as_deref(), ip) {
                Ok(Role::Controller) => reply(StatusCode::OK, p.status()),
                Ok(_) => error(
                    StatusCode::FORBIDDEN,
                    "only the controller's link controls publishing and recording",
                ),
                Err(r) => r,
            },
        );
    let p = plane.clone();
    let post = warp::post()
        .and(warp::path!("api" / "control"))
        .and(auth.clone())
        .and(warp::body::content_length_limit(4096))
        .and(warp::header::optional::<String>("user-agent"))
        .and(warp::body::bytes())
        .and_then(move |a: Option<String>, ip, agent: Option<String>, body: bytes::Bytes| {
            let p = p.clone();
            // `oriel publish|record` says so in its User-Agent.
            let by = if agent.is_some_and(|a| a.starts_with(CLI_AGENT)) {
                "controller (oriel CLI)"
            } else {
                "controller"
            };
            async move {
                let r = match p.authorize(a.as_deref(), ip) {
                    Ok(Role::Controller) => match parse_request(&body) {
                        Ok(req) => p.apply(req, by).await,
                        Err(e) => {
                            p.metrics.control_refused.fetch_add(1, Ordering::Relaxed);
                            error(StatusCode::BAD_REQUEST, format!(
                                "expected {{\"publish\":{{\"target\":NAME,\"on\":BOOL}}}} or {{\"record\":{{\"on\":BOOL}}}}: {e}"
                            ))
                        }
                    },
                    Ok(_) => error(StatusCode::FORBIDDEN, "only the controller's link controls publishing and recording"),
                    Err(r) => r,
                };
                Ok::<_, std::convert::Infallible>(r)
            }
        });
    let p = plane;
    let sfu =
        warp::get()
            .and(warp::path!("api" / "sfu"))
            .and(auth)
            .map(
                move |a: Option<String>, ip| match p.authorize(a.as_deref(), ip) {
                    Ok(_) => p.sfu(),
                    Err(r) => r,
                },
            );
    get.or(post).unify().or(sfu).unify()
}

/// The client side, for `oriel publish|record`: GET (no request) or POST
/// `/api/control` at `agent` with `token`; the agent's self-signed
/// certificate (`cert`, in the state directory) is trusted when present.
pub fn call(
    agent: &str,
    token: &str,
    request: Option<Value>,
    cert: Option<&std::path::Path>,
) -> anyhow::Result<Value> {
    use anyhow::Context;
    let base = agent
        .split('#')
        .next()
        .unwrap_or(agent)
        .trim_end_matches('/');
    let url = format!("{base}/api/control");
    let mut http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(15))
        .user_agent(format!("{CLI_AGENT}{}", env!("CARGO_PKG_VERSION")));
    if let Some(pem) = cert.and_then(|c| std::fs::read(c).ok()) {
        if let Ok(c) = reqwest::Certificate::from_pem(&pem) {
            http = http.add_root_certificate(c);
        }
    }
    let http = http.build().context("HTTP client")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(async {
        let req = match &request {
            Some(body) => http.post(&url).json(body),
            None => http.get(&url),
        };
        let reply = req.bearer_auth(token).send().await.with_context(|| {
            format!("reaching the agent at {url} (is `oriel serve` running there? --url)")
        })?;
        let status = reply.status();
        let body: Value = reply
            .json()
            .await
            .with_context(|| format!("the agent answered HTTP {status} without JSON"))?;
        if !status.is_success() {
            anyhow::bail!(
                "the agent refused: {} (HTTP {status})",
                body["error"].as_str().unwrap_or("no reason given")
            );
        }
        Ok(body)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_strictly() {
        let r: Request = serde_json::from_str(r#"{"publish":{"target":"big","on":true}}"#).unwrap();
        assert!(matches!(r, Request::Publish { target: Some(t), on: true } if t == "big"));
        let r: Request = serde_json::from_str(r#"{"record":{"on":false}}"#).unwrap();
        assert!(matches!(r, Request::Record { on: false }));
        for bad in [
            r#"{"record":{}}"#,
            r#"{"erase":{"on":true}}"#,
            r#"{"record":{"on":1}}"#,
            "[]",
        ] {
            assert!(serde_json::from_str::<Request>(bad).is_err(), "{bad}");
        }
    }
}
