//! One publish target's task: get an offer from the media service (a
//! receive-nothing peer on the shared tee), hand it to the SFU, keep the
//! session alive, and when anything breaks remove the branch and start
//! over with backoff. Direct viewers never notice: the branch is one more
//! peer, and only it is removed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use tokio::sync::{mpsc, oneshot};

use crate::media::backoff::Backoff;
use crate::media::service::{MediaEvent, MediaHandle};
use crate::media::PeerId;
use crate::publish::janus::{self, Notice};
use crate::publish::target::{Kind, Secrets, Target};
use crate::publish::{sdp, whip};

/// How long the media side may take to offer (it may first have to start
/// the capture).
const OFFER_TIMEOUT: Duration = Duration::from_secs(15);
/// WHIP sends candidates with the offer: wait this long for gathering.
const GATHER_WAIT: Duration = Duration::from_secs(2);
/// How long leaving the SFU (destroy, DELETE) may take.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// A session that never came up is given up after this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Where a target stands, for `/metrics`, the control endpoint and the
/// controller's page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Not asked to publish.
    Stopped,
    /// Setting up the session with the SFU.
    Connecting,
    /// The SFU receives our video.
    Live,
    /// The last attempt failed; the next one is scheduled.
    Retrying,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    pub name: String,
    pub kind: &'static str,
    pub state: State,
    /// Why the last attempt failed, if it did.
    pub error: Option<String>,
    /// Attempts that failed since the agent started.
    pub failures: u64,
    /// Sessions that went live since the agent started.
    pub sessions: u64,
    /// Who asked for the current state (`config`, `controller`, ...).
    pub by: String,
}

pub enum Control {
    Start(String, oneshot::Sender<()>),
    Stop(String, oneshot::Sender<()>),
}

pub struct Publisher {
    pub target: Target,
    /// The current attempt's media peer id; each attempt takes the next
    /// (see `publish::PEER_BASE`).
    pub peer: PeerId,
    pub media: MediaHandle,
    pub secrets: Secrets,
    pub http: reqwest::Client,
    pub status: Arc<Mutex<Status>>,
}

/// How an attempt ended.
enum Ended {
    /// Asked to stop.
    Stopped(String, oneshot::Sender<()>),
    Failed(anyhow::Error),
}

impl Publisher {
    fn set(&self, f: impl FnOnce(&mut Status)) {
        if let Ok(mut s) = self.status.lock() {
            f(&mut s);
        }
    }

    pub async fn run(
        mut self,
        mut events: mpsc::UnboundedReceiver<MediaEvent>,
        mut control: mpsc::UnboundedReceiver<Control>,
    ) {
        let mut want = self.target.autostart;
        let mut backoff = Backoff::default();
        loop {
            if !want {
                self.set(|s| s.state = State::Stopped);
                // Waiting to be started; media events of old branches go.
                loop {
                    tokio::select! {
                        c = control.recv() => match c {
                            Some(Control::Start(by, done)) => {
                                // The state the reply reports is set first.
                                self.set(|s| {
                                    s.state = State::Connecting;
                                    s.by = by.clone();
                                });
                                tracing::info!(target = %self.target, by, "publishing started");
                                let _ = done.send(());
                                break;
                            }
                            Some(Control::Stop(_, done)) => { let _ = done.send(()); }
                            None => return,
                        },
                        e = events.recv() => if e.is_none() { return },
                    }
                }
                want = true;
                backoff.reset();
            }
            self.set(|s| s.state = State::Connecting);
            self.peer += 1;
            let ended = self.attempt(&mut events, &mut control, &mut backoff).await;
            self.media.remove_peer(self.peer);
            match ended {
                Ended::Stopped(by, done) => {
                    self.set(|s| {
                        s.state = State::Stopped;
                        s.by = by.clone();
                        s.error = None;
                    });
                    tracing::info!(target = %self.target, by, "publishing stopped");
                    let _ = done.send(());
                    want = false;
                }
                Ended::Failed(e) => {
                    let delay = backoff.next_delay();
                    self.set(|s| {
                        s.state = State::Retrying;
                        s.error = Some(format!("{e:#}"));
                        s.failures += 1;
                    });
                    tracing::warn!(
                        target = %self.target,
                        retry_ms = delay.as_millis() as u64,
                        "publishing failed: {e:#}"
                    );
                    let sleep = tokio::time::sleep(delay);
                    tokio::pin!(sleep);
                    loop {
                        tokio::select! {
                            _ = &mut sleep => break,
                            c = control.recv() => match c {
                                Some(Control::Stop(by, done)) => {
                                    self.set(|s| {
                                        s.state = State::Stopped;
                                        s.by = by.clone();
                                    });
                                    tracing::info!(target = %self.target, by, "publishing stopped");
                                    let _ = done.send(());
                                    want = false;
                                    break;
                                }
                                Some(Control::Start(_, done)) => { let _ = done.send(()); }
                                None => return,
                            },
                            e = events.recv() => if e.is_none() { return },
                        }
                    }
                }
            }
        }
    }

    /// One session with the SFU, until it breaks or we are told to stop.
    async fn attempt(
        &self,
        events: &mut mpsc::UnboundedReceiver<MediaEvent>,
        control: &mut mpsc::UnboundedReceiver<Control>,
        backoff: &mut Backoff,
    ) -> Ended {
        // Setup runs under `select!` so a stop request is heard at any point.
        let ready = {
            let setup = self.setup(events);
            tokio::pin!(setup);
            loop {
                tokio::select! {
                    r = &mut setup => break r,
                    c = control.recv() => match c {
                        Some(Control::Stop(by, done)) => return Ended::Stopped(by, done),
                        Some(Control::Start(_, done)) => { let _ = done.send(()); }
                        None => return Ended::Failed(anyhow!("the agent is stopping")),
                    },
                }
            }
        };
        let mut session = match ready {
            Ok(s) => s,
            Err(e) => return Ended::Failed(e),
        };
        let mut keepalive = tokio::time::interval(janus::KEEPALIVE);
        keepalive.tick().await;
        let connect_by = tokio::time::sleep(CONNECT_TIMEOUT);
        tokio::pin!(connect_by);
        let mut up = false;
        let result: Result<Ended> = async {
            loop {
                tokio::select! {
                    e = events.recv() => {
                        let Some(e) = e else { bail!("the media service stopped") };
                        if e.peer() != Some(self.peer) {
                            continue; // a removed branch's late news
                        }
                        match e {
                            MediaEvent::Ice { mline, candidate, .. } => session.candidate(mline, candidate).await?,
                            MediaEvent::GatheringDone { .. } => session.gathered().await?,
                            MediaEvent::State { state, .. } if state == "connected" && !up => {
                                up = true;
                                backoff.reset();
                                self.set(|s| {
                                    s.state = State::Live;
                                    s.error = None;
                                    s.sessions += 1;
                                });
                                tracing::info!(target = %self.target, "publishing: the SFU receives the stream");
                            }
                            MediaEvent::State { state, .. } if state == "failed" || state == "closed" => {
                                bail!("the WebRTC connection to the SFU {state}")
                            }
                            MediaEvent::PeerFailed { reason, .. } => bail!("{reason}"),
                            MediaEvent::Offer { .. } => bail!("the capture was rebuilt: publishing again"),
                            MediaEvent::Error { message, .. } => bail!("{message}"),
                            _ => {}
                        }
                    }
                    n = session.notice() => {
                        match n? {
                            Notice::Hangup(reason) => bail!("the SFU hung up: {reason}"),
                            Notice::Media(false) => tracing::warn!(target = %self.target, "the SFU says it receives no video"),
                            Notice::Media(true) | Notice::WebrtcUp => {}
                            Notice::Other(text) => tracing::debug!(target = %self.target, "SFU: {text}"),
                        }
                    }
                    _ = keepalive.tick() => session.keepalive().await?,
                    _ = &mut connect_by, if !up => bail!("no connection to the SFU within {} s", CONNECT_TIMEOUT.as_secs()),
                    c = control.recv() => match c {
                        Some(Control::Stop(by, done)) => return Ok(Ended::Stopped(by, done)),
                        Some(Control::Start(_, done)) => { let _ = done.send(()); }
                        None => bail!("the agent is stopping"),
                    },
                }
            }
        }
        .await;
        // Leave the SFU in either case: a failed session may still hold
        // our slot (Janus) or resource (WHIP); it may also be gone already.
        let _ = tokio::time::timeout(CLOSE_WAIT, session.close()).await;
        result.unwrap_or_else(Ended::Failed)
    }

    /// Everything up to the SFU's answer being applied.
    async fn setup(&self, events: &mut mpsc::UnboundedReceiver<MediaEvent>) -> Result<Signalling> {
        Ok(match &self.target.kind {
            Kind::Janus { room, id, .. } => {
                // The SFU first: while it is away no branch is built for it.
                let mut j = janus::Session::open(self.http.clone(), &self.target.url).await?;
                j.join(*room, *id, &self.secrets.janus).await?;
                self.media.add_receiver(self.peer);
                // Candidates wait in `events` meanwhile and are trickled
                // once the session runs.
                let offer = wait_offer(events, self.peer).await?;
                let answer = j.publish(&offer).await?;
                self.media.answer(self.peer, answer);
                Signalling::Janus(j)
            }
            Kind::Whip => {
                self.media.add_receiver(self.peer);
                let offer = wait_offer(events, self.peer).await?;
                let (gathered, complete) = gather(events, self.peer, GATHER_WAIT).await?;
                let full = sdp::with_candidates(&offer, &gathered, complete);
                let (resource, answer) = whip::publish(
                    self.http.clone(),
                    &self.target.url,
                    self.secrets.whip_token.clone(),
                    full,
                )
                .await?;
                tracing::info!(target = %self.target, resource = resource.url(), "WHIP session created");
                self.media.answer(self.peer, answer);
                Signalling::Whip { resource, offer }
            }
        })
    }
}

/// The offer for `peer` (events of earlier branches are skipped).
async fn wait_offer(
    events: &mut mpsc::UnboundedReceiver<MediaEvent>,
    peer: PeerId,
) -> Result<String> {
    let deadline = tokio::time::Instant::now() + OFFER_TIMEOUT;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Err(_) => bail!(
                "the media service made no offer within {} s",
                OFFER_TIMEOUT.as_secs()
            ),
            Ok(None) => bail!("the media service stopped"),
            Ok(Some(e)) if e.peer() != Some(peer) => {}
            Ok(Some(MediaEvent::Offer { sdp, .. })) => return Ok(sdp),
            Ok(Some(MediaEvent::PeerFailed { reason, .. })) => bail!("{reason}"),
            Ok(Some(_)) => {}
        }
    }
}

/// `peer`'s local candidates for at most `wait`, and whether gathering
/// completed meanwhile.
async fn gather(
    events: &mut mpsc::UnboundedReceiver<MediaEvent>,
    peer: PeerId,
    wait: Duration,
) -> Result<(Vec<(u32, String)>, bool)> {
    let mut candidates = Vec::new();
    let until = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(until, events.recv()).await {
            Err(_) => return Ok((candidates, false)),
            Ok(None) => bail!("the media service stopped"),
            Ok(Some(e)) if e.peer() != Some(peer) => {}
            Ok(Some(MediaEvent::Ice {
                mline, candidate, ..
            })) => candidates.push((mline, candidate)),
            Ok(Some(MediaEvent::GatheringDone { .. })) => return Ok((candidates, true)),
            Ok(Some(MediaEvent::PeerFailed { reason, .. })) => bail!("{reason}"),
            Ok(Some(_)) => {}
        }
    }
}

/// The SFU side of one publication.
enum Signalling {
    Janus(janus::Session),
    Whip {
        resource: whip::Resource,
        offer: String,
    },
}

impl Signalling {
    async fn candidate(&mut self, mline: u32, candidate: String) -> Result<()> {
        match self {
            Signalling::Janus(j) => j.trickle(Some((mline, &candidate))).await,
            Signalling::Whip { resource, offer } => {
                resource
                    .trickle(sdp::trickle_fragment(offer, &[candidate], false))
                    .await
            }
        }
    }

    async fn gathered(&mut self) -> Result<()> {
        match self {
            Signalling::Janus(j) => j.trickle(None).await,
            Signalling::Whip { .. } => Ok(()),
        }
    }

    async fn keepalive(&self) -> Result<()> {
        match self {
            Signalling::Janus(j) => j.keepalive().await,
            Signalling::Whip { .. } => Ok(()),
        }
    }

    /// What the SFU says; WHIP says nothing after the answer.
    async fn notice(&mut self) -> Result<Notice> {
        match self {
            Signalling::Janus(j) => j.next().await,
            Signalling::Whip { .. } => std::future::pending().await,
        }
    }

    async fn close(self) {
        match self {
            Signalling::Janus(j) => j.destroy().await,
            Signalling::Whip { resource, .. } => {
                if let Err(e) = resource.delete().await {
                    tracing::warn!("{e:#}");
                }
            }
        }
    }
}
