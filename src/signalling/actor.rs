//! The room actor: one task owns the [`Room`], takes what the sockets and
//! the media service report, and applies the room's outputs. Each socket
//! gets a bounded outgoing queue; a client whose queue is full is not
//! reading and is cut off (it then leaves the room like any disconnect).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};

use crate::input::service::InputHandle;
use crate::media::service::{MediaEvent, MediaHandle, PeerKind};
use crate::media::PeerId;
use crate::metrics::{Metrics, RoomSnapshot};
use crate::protocol::{ClientMessage, ErrorCode, ServerMessage};
use crate::session::cooldown::CoolDown;
use crate::session::limiter::FailureLimiter;
use crate::session::links::{revoked_ids, LinkWatcher};
use crate::session::room::{ClientId, Input, Output, Room};
use crate::signalling::counters::{Cut, Refused};

/// Messages waiting to be written to one client. A client that reads
/// keeps this near empty (the agent sends a few messages a second at
/// most); one that does not is cut off when it is full.
pub const OUTGOING_QUEUE: usize = 128;

pub(super) enum Outgoing {
    Message(ServerMessage),
    Close(u16, &'static str),
}

/// Why the agent ends a socket without going through its queue.
#[derive(Debug)]
pub(super) struct CutOff {
    pub why: Cut,
    /// WebSocket close code and reason (at most 123 bytes).
    pub code: u16,
    pub reason: String,
}

/// The actor's end of one socket.
pub(super) struct ClientLink {
    pub tx: mpsc::Sender<Outgoing>,
    /// Taken when the client is cut off.
    pub cut: Option<oneshot::Sender<CutOff>>,
    pub addr: Option<IpAddr>,
    /// The link this socket's hello came with, for the flood cool-down.
    pub token: Option<String>,
}

pub(super) enum ActorMsg {
    /// A socket opened.
    Open(ClientId, ClientLink),
    Input(Input),
    /// The input service saw this peer flood its data channels.
    Flood(PeerId, String),
    Shutdown(String, oneshot::Sender<()>),
}

/// Handle used by `main` to feed media events in and to shut down.
#[derive(Clone)]
pub struct Signalling {
    pub(super) tx: mpsc::UnboundedSender<ActorMsg>,
}

impl Signalling {
    /// Delivers a media event to the room (callable from any thread).
    pub fn media_event(&self, event: MediaEvent) {
        let _ = self.tx.send(ActorMsg::Input(Input::Media(event)));
    }

    /// Ends the session of a peer that flooded its input channels, telling
    /// it `reason` (callable from any thread).
    pub fn input_flood(&self, peer: PeerId, reason: String) {
        let _ = self.tx.send(ActorMsg::Flood(peer, reason));
    }

    /// Tells every client goodbye and closes their sockets.
    pub async fn shutdown(&self, reason: &str) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(ActorMsg::Shutdown(reason.into(), tx)).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(2), rx).await;
        }
    }
}

/// Creates the room actor. Media events may be delivered through the
/// returned handle before the server runs.
/// Told the size the controller's window asks the desktop to take; must
/// not block (it is called on the runtime).
pub type ResizeSink = Arc<dyn Fn(u32, u32) + Send + Sync>;

/// What the room's outputs reach besides the sockets.
pub struct Outlets {
    pub media: Arc<std::sync::OnceLock<MediaHandle>>,
    pub input: Option<InputHandle>,
    pub resize: Option<ResizeSink>,
}

pub fn start_room(
    room: Room,
    outlets: Outlets,
    metrics: Arc<Metrics>,
    links_path: std::path::PathBuf,
) -> Signalling {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(room_actor(room, rx, outlets, metrics));
    tokio::spawn(watch_links(links_path, tx.clone()));
    Signalling { tx }
}

/// `oriel link revoke` runs in another process and edits the link list;
/// watching the file makes revocation reach connected clients within a
/// second.
async fn watch_links(path: std::path::PathBuf, tx: mpsc::UnboundedSender<ActorMsg>) {
    let mut watcher = LinkWatcher::new(path);
    let mut tick = tokio::time::interval(LINK_POLL);
    loop {
        tick.tick().await;
        if watcher.refresh() {
            let revoked = revoked_ids(&watcher);
            if !revoked.is_empty() && tx.send(ActorMsg::Input(Input::Revoked(revoked))).is_err() {
                return;
            }
        }
        if tx.is_closed() {
            return;
        }
    }
}

/// How often the link list is checked for revocations.
const LINK_POLL: Duration = Duration::from_millis(500);

/// The sockets, as the actor writes to them.
struct Clients {
    links: HashMap<ClientId, ClientLink>,
}

impl Clients {
    /// Queues `out` for `id`; a full queue cuts the client off.
    fn send(&mut self, id: ClientId, out: Outgoing) {
        let Some(link) = self.links.get_mut(&id) else {
            return;
        };
        match link.tx.try_send(out) {
            Ok(()) | Err(TrySendError::Closed(_)) => {}
            Err(TrySendError::Full(_)) => {
                // The session counts and logs it as it closes.
                if let Some(cut) = link.cut.take() {
                    let _ = cut.send(CutOff {
                        why: Cut::NotReading,
                        code: 1008,
                        reason: format!("not reading: {OUTGOING_QUEUE} messages waiting"),
                    });
                }
            }
        }
    }

    fn message(&mut self, id: ClientId, msg: ServerMessage) {
        self.send(id, Outgoing::Message(msg));
    }

    /// Refuses a hello with `rateLimited` (saying when to try again) and
    /// closes the socket with 1008 `close_reason`.
    fn rate_limited(
        &mut self,
        id: ClientId,
        why: &str,
        wait: Duration,
        close_reason: &'static str,
    ) {
        self.message(
            id,
            ServerMessage::Error {
                code: ErrorCode::RateLimited,
                message: format!("{why}; try again in {} s", wait.as_secs().max(1)),
            },
        );
        self.send(id, Outgoing::Close(1008, close_reason));
    }
}

async fn room_actor(
    mut room: Room,
    mut rx: mpsc::UnboundedReceiver<ActorMsg>,
    outlets: Outlets,
    metrics: Arc<Metrics>,
) {
    let mut clients = Clients {
        links: HashMap::new(),
    };
    let mut limiter = FailureLimiter::default();
    let mut cooldown = CoolDown::default();
    while let Some(msg) = rx.recv().await {
        let outputs = match msg {
            ActorMsg::Open(id, link) => {
                clients.links.insert(id, link);
                continue;
            }
            ActorMsg::Flood(peer, reason) => {
                if let Some(id) = room.client_of(peer) {
                    let link = clients.links.get(&id);
                    let addr = link.and_then(|l| l.addr);
                    if let (Some(a), Some(t)) = (addr, link.and_then(|l| l.token.as_deref())) {
                        let wait = cooldown.cut(a, t, Instant::now());
                        tracing::info!(client = id, %a, wait_s = wait.as_secs(), "link kept out after an input flood");
                    }
                    metrics.connections.cut(Cut::InputFlood, addr, &reason);
                    clients.message(id, ServerMessage::Bye { reason });
                    clients.send(id, Outgoing::Close(1008, "input flood"));
                }
                continue;
            }
            ActorMsg::Input(input) => {
                let hello_from = match &input {
                    Input::Message(id, ClientMessage::Hello { token, .. }) => {
                        clients.links.get_mut(id).and_then(|l| {
                            l.token = Some(token.clone());
                            l.addr.map(|a| (*id, a, token.clone()))
                        })
                    }
                    _ => None,
                };
                if let Some((id, addr, token)) = &hello_from {
                    let (id, addr) = (*id, *addr);
                    if let Some(wait) = cooldown.blocked(addr, token, Instant::now()) {
                        metrics.connections.refused(
                            Refused::FloodCoolDown,
                            addr,
                            "a link cut off for flooding its input came back too soon",
                        );
                        clients.rate_limited(
                            id,
                            "this link was cut off for flooding its input",
                            wait,
                            "flood cool-down",
                        );
                        continue;
                    }
                    if let Some(wait) = limiter.blocked(addr, Instant::now()) {
                        metrics.token_rate_limited.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(client = id, %addr, "hello refused unchecked: too many failed tokens");
                        clients.rate_limited(
                            id,
                            "too many refused links from your address",
                            wait,
                            "rate limited",
                        );
                        continue;
                    }
                }
                let gone = match &input {
                    Input::Disconnected(id) => Some(*id),
                    _ => None,
                };
                let out = room.handle(input);
                if let Some((id, addr, _)) = hello_from {
                    let refused = out.iter().any(|o| {
                        matches!(o, Output::Send(to, ServerMessage::Error { code: ErrorCode::Unauthorized, .. }) if *to == id)
                    });
                    if refused {
                        metrics.token_failures.fetch_add(1, Ordering::Relaxed);
                        limiter.failed(addr, Instant::now());
                        tracing::info!(client = id, %addr, "link refused");
                    }
                }
                if let Some(id) = gone {
                    // Dropping the link ends that socket's session.
                    clients.links.remove(&id);
                }
                out
            }
            ActorMsg::Shutdown(reason, done) => {
                for id in room.client_ids() {
                    clients.message(
                        id,
                        ServerMessage::Bye {
                            reason: reason.clone(),
                        },
                    );
                    clients.send(id, Outgoing::Close(1001, "agent shutting down"));
                }
                let _ = done.send(());
                continue;
            }
        };
        for output in outputs {
            apply(output, &mut clients, &outlets);
        }
        if let Ok(mut snap) = metrics.room.lock() {
            *snap = RoomSnapshot {
                clients: room.client_count(),
                joined: room.joined_count(),
                stats: room.stats().clone(),
                sessions: room.sessions(),
            };
        }
    }
}

fn apply(output: Output, clients: &mut Clients, outlets: &Outlets) {
    let (media, input) = (outlets.media.get(), outlets.input.as_ref());
    match output {
        Output::Send(id, msg) => clients.message(id, msg),
        Output::Close(id) => clients.send(id, Outgoing::Close(1000, "session ended")),
        Output::AddPeer(p, role) => {
            // The role reaches input before any data channel can open.
            input.iter().for_each(|i| i.join(p, role));
            // The controller's and players' links set the encoder's bitrate.
            use crate::session::roles::Role;
            let drives = !matches!(role, Role::Viewer);
            // Viewers send nothing: their connection has no data channels;
            // only the controller's receives a microphone.
            let kind = match role {
                Role::Controller => PeerKind::Controls,
                Role::Player { .. } => PeerKind::Sends,
                Role::Viewer => PeerKind::Watches,
            };
            media.iter().for_each(|m| {
                m.add_peer(p, kind);
                m.set_driving(p, drives);
            });
        }
        Output::RemovePeer(p) => {
            media.iter().for_each(|m| m.remove_peer(p));
            input.iter().for_each(|i| i.leave(p));
        }
        Output::Answer(p, sdp) => media.iter().for_each(|m| m.answer(p, sdp.clone())),
        Output::Ice(p, mline, c) => media.iter().for_each(|m| m.ice(p, mline, c.clone())),
        Output::Resize(w, h) => outlets.resize.iter().for_each(|r| r(w, h)),
    }
}
