//! The room: tracks connected clients and their media sessions, validates
//! the order of signalling messages, and says what to send to whom and what
//! the media side must do. Inputs come from the WebSocket server and the
//! media service; outputs go back to them.
//!
//! This file holds the `Room` and its dispatch, and the steps every path
//! shares (errors, refusals, leaving); the rules live beside it:
//! `seats` (who may sit where), `routing` (which message goes to whom),
//! `participants` (the who-is-here list), `types` (what callers see) and
//! `state` (what is kept per client).

mod participants;
mod routing;
mod seats;
mod state;
mod types;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_participants;
#[cfg(test)]
mod tests_routing;
#[cfg(test)]
mod tests_seats;

use std::collections::{BTreeMap, HashMap};

use crate::media::service::MediaEvent;
use crate::media::PeerId;
use crate::protocol::{CaptureState, ClientMessage, ErrorCode, ServerMessage, PROTOCOL_VERSION};
use crate::session::roles::Role;
use routing::{Candidate, ForClient};
use seats::Seat;
use state::{Client, Clients, Session};

pub use participants::MAX_NAME_CHARS;
pub use types::{
    ClientId, Credentials, Grant, IceSource, Input, InputSource, Output, RoomConfig, RoomStats,
};

pub struct Room {
    config: RoomConfig,
    credentials: Box<dyn Credentials>,
    clients: Clients,
    by_peer: HashMap<PeerId, ClientId>,
    next_peer: PeerId,
    stats: RoomStats,
    ice: Option<IceSource>,
    input: Option<InputSource>,
    /// Whether the capture is down (lost, or waiting for the desktop) and
    /// why, while it is; joiners are told too.
    capture_lost: Option<(CaptureState, String)>,
}

impl Room {
    pub fn new(config: RoomConfig, credentials: Box<dyn Credentials>) -> Self {
        Room {
            config,
            credentials,
            clients: BTreeMap::new(),
            by_peer: HashMap::new(),
            next_peer: 1,
            stats: RoomStats::default(),
            ice: None,
            input: None,
            capture_lost: None,
        }
    }

    /// Hand every joining peer the ICE servers `ice` mints for it.
    pub fn with_ice(mut self, ice: IceSource) -> Self {
        self.ice = Some(ice);
        self
    }

    /// Tell every joining peer what `input` says then, instead of the
    /// config's fixed `input`.
    pub fn with_input(mut self, input: InputSource) -> Self {
        self.input = Some(input);
        self
    }

    pub fn stats(&self) -> &RoomStats {
        &self.stats
    }

    /// Connected WebSocket clients.
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    /// Clients with a media session.
    pub fn joined_count(&self) -> usize {
        self.by_peer.len()
    }

    /// Each media session's peer and role, for the metrics.
    pub fn sessions(&self) -> Vec<(PeerId, Role)> {
        self.clients
            .values()
            .filter_map(|c| c.session.as_ref().map(|s| (s.peer, s.role)))
            .collect()
    }

    /// Every connected client, e.g. to say goodbye on shutdown.
    pub fn client_ids(&self) -> Vec<ClientId> {
        self.clients.keys().copied().collect()
    }

    /// The client whose media session is `peer`, if it is still here.
    pub fn client_of(&self, peer: PeerId) -> Option<ClientId> {
        self.by_peer.get(&peer).copied()
    }

    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Connected(client) => {
                // Ids are unique per connection; should one come twice, the
                // old session must not be orphaned (its media branch would leak).
                if self.clients.contains_key(&client) {
                    self.leave(client, &mut out);
                }
                self.clients.insert(client, Client::default());
            }
            Input::Message(client, msg) => {
                if self.clients.contains_key(&client) {
                    self.on_message(client, msg, &mut out);
                }
            }
            Input::Refused(client, e) => self.error(client, e.code, e.message, &mut out),
            Input::Disconnected(client) => self.leave(client, &mut out),
            Input::Media(event) => self.on_media(event, &mut out),
            Input::Revoked(links) => {
                let hit: Vec<ClientId> = self
                    .clients
                    .iter()
                    .filter(|(_, c)| {
                        c.session
                            .as_ref()
                            .is_some_and(|s| links.contains(&s.link_id))
                    })
                    .map(|(id, _)| *id)
                    .collect();
                for client in hit {
                    self.end(client, "the link was revoked", &mut out);
                }
            }
        }
        out
    }

    /// Ends a client's session: bye, close, media branch removed.
    fn end(&mut self, client: ClientId, reason: &str, out: &mut Vec<Output>) {
        out.push(Output::Send(
            client,
            ServerMessage::Bye {
                reason: reason.into(),
            },
        ));
        out.push(Output::Close(client));
        self.leave(client, out);
    }

    fn error(&mut self, client: ClientId, code: ErrorCode, message: String, out: &mut Vec<Output>) {
        *self.stats.errors.entry(code).or_default() += 1;
        out.push(Output::Send(client, ServerMessage::error(code, message)));
    }

    fn session_mut(&mut self, client: ClientId) -> Option<&mut Session> {
        self.clients.get_mut(&client)?.session.as_mut()
    }

    fn on_message(&mut self, client: ClientId, msg: ClientMessage, out: &mut Vec<Output>) {
        match msg {
            ClientMessage::Ping {} => out.push(Output::Send(client, ServerMessage::Pong)),
            ClientMessage::Hello {
                protocol,
                token,
                name,
            } => self.hello(client, protocol, &token, name, out),
            ClientMessage::Answer { sdp } => match routing::answer(self.session_mut(client), sdp) {
                Ok(answer) => out.push(answer),
                Err((code, why)) => self.error(client, code, why, out),
            },
            ClientMessage::Ice {
                candidate,
                sdp_m_line_index,
                ..
            } => {
                let lines = self.config.media_lines;
                let session = self.clients.get(&client).and_then(|c| c.session.as_ref());
                match routing::candidate(session, lines, candidate, sdp_m_line_index) {
                    Ok(Candidate::Forward(ice)) => out.push(ice),
                    Ok(Candidate::End) => {}
                    Ok(Candidate::Mdns) => self.stats.mdns_candidates_dropped += 1,
                    Err((code, why)) => self.error(client, code, why, out),
                }
            }
            ClientMessage::Resize { width, height } => self.resize(client, width, height, out),
            ClientMessage::Bye {} => self.end(client, "goodbye", out),
        }
    }

    /// The controller's window size: passed on when the desktop is resized
    /// from the page; anyone else is refused (and counted).
    fn resize(&mut self, client: ClientId, width: u32, height: u32, out: &mut Vec<Output>) {
        let role = self
            .clients
            .get(&client)
            .and_then(|c| c.session.as_ref())
            .map(|s| s.role);
        let (code, why) = match role {
            Some(Role::Controller) if self.config.resize => {
                return out.push(Output::Resize(width, height));
            }
            Some(Role::Controller) => (
                ErrorCode::Unexpected,
                "this desktop is not resized from the page (see the agent's --resize)",
            ),
            Some(_) => (
                ErrorCode::Unauthorized,
                "only the controller resizes the desktop",
            ),
            None => (ErrorCode::Unexpected, "`resize` comes after `hello`"),
        };
        self.error(client, code, why.into(), out);
    }

    fn hello(
        &mut self,
        client: ClientId,
        protocol: u32,
        token: &str,
        name: Option<String>,
        out: &mut Vec<Output>,
    ) {
        if self.session_mut(client).is_some() {
            return self.error(
                client,
                ErrorCode::Unexpected,
                "already joined: `hello` is sent once".into(),
                out,
            );
        }
        if protocol != PROTOCOL_VERSION {
            return self.error(
                client,
                ErrorCode::UnsupportedProtocol,
                format!(
                    "protocol {protocol} is not supported; this agent speaks {PROTOCOL_VERSION}"
                ),
                out,
            );
        }
        // The role comes from the token alone.
        let grant = match self.credentials.check(token) {
            Ok(g) => g,
            Err(why) => return self.refuse(client, ErrorCode::Unauthorized, why, out),
        };
        match seats::seat(&self.clients, &grant, self.config.max_slot) {
            Seat::Free => {}
            Seat::Reclaim(old) => {
                self.end(old, "replaced by a new session from the same link", out)
            }
            Seat::Refused((code, why)) => return self.refuse(client, code, why, out),
        }
        if let Err((code, why)) = seats::capacity(self.by_peer.len(), self.config.max_clients) {
            return self.refuse(client, code, why, out);
        }
        let peer = self.next_peer;
        self.next_peer += 1;
        self.stats.joins += 1;
        let name = participants::display_name(name.as_deref(), grant.role, peer);
        if let Some(c) = self.clients.get_mut(&client) {
            c.session = Some(Session {
                peer,
                role: grant.role,
                link_id: grant.link_id,
                name,
                offered: false,
                answered: false,
            });
        }
        self.by_peer.insert(peer, client);
        out.push(Output::Send(
            client,
            ServerMessage::Welcome {
                peer_id: peer,
                protocol: PROTOCOL_VERSION,
                role: grant.role.name().into(),
                slot: grant.role.gamepad_slot(),
                video: self.config.video.clone(),
                input: match self.input.as_mut() {
                    Some(now) => now(),
                    None => self.config.input.clone(),
                },
                ice_servers: self.ice.as_mut().map(|mint| mint(peer)).unwrap_or_default(),
                clipboard: self.config.clipboard && grant.role == Role::Controller,
                resize: self.config.resize && grant.role == Role::Controller,
            },
        ));
        out.push(Output::AddPeer(peer, grant.role));
        if let Some((state, reason)) = &self.capture_lost {
            out.push(Output::Send(client, routing::capture_down(*state, reason)));
        }
        participants::broadcast(&self.clients, out);
    }

    /// The capture went away or came back; remembered for joiners.
    fn on_capture(&mut self, lost: Option<(CaptureState, String)>, out: &mut Vec<Output>) {
        routing::capture(&mut self.clients, lost.as_ref(), out);
        self.capture_lost = lost;
    }

    /// Refuses a join: error, bye, close.
    fn refuse(&mut self, client: ClientId, code: ErrorCode, why: String, out: &mut Vec<Output>) {
        self.error(client, code, why.clone(), out);
        out.push(Output::Send(client, ServerMessage::Bye { reason: why }));
        out.push(Output::Close(client));
        self.clients.remove(&client);
    }

    fn leave(&mut self, client: ClientId, out: &mut Vec<Output>) {
        if let Some(c) = self.clients.remove(&client) {
            if let Some(session) = c.session {
                self.by_peer.remove(&session.peer);
                out.push(Output::RemovePeer(session.peer));
                participants::broadcast(&self.clients, out);
            }
        }
    }

    fn on_media(&mut self, event: MediaEvent, out: &mut Vec<Output>) {
        let peer = match &event {
            MediaEvent::CaptureLost { reason } => {
                return self.on_capture(Some((CaptureState::Lost, reason.clone())), out)
            }
            MediaEvent::CaptureWaiting { reason } => {
                return self.on_capture(Some((CaptureState::Waiting, reason.clone())), out)
            }
            MediaEvent::CaptureRestored => return self.on_capture(None, out),
            other => match other.peer() {
                Some(peer) => peer,
                None => return,
            },
        };
        let Some(&client) = self.by_peer.get(&peer) else {
            return; // the client already left
        };
        match routing::for_client(event, self.session_mut(client)) {
            ForClient::Send(msg) => out.push(Output::Send(client, msg)),
            ForClient::Error(message) => self.error(client, ErrorCode::Media, message, out),
            ForClient::Nothing => {}
            ForClient::Failed(reason) => {
                // The media side already dropped the branch.
                self.by_peer.remove(&peer);
                if let Some(c) = self.clients.get_mut(&client) {
                    c.session = None;
                }
                *self.stats.errors.entry(ErrorCode::Media).or_default() += 1;
                out.push(Output::Send(client, ServerMessage::Bye { reason }));
                out.push(Output::Close(client));
                // Already gone on the media side; this tells input too.
                out.push(Output::RemovePeer(peer));
                participants::broadcast(&self.clients, out);
            }
        }
    }
}
