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

use std::collections::{BTreeMap, HashMap};

use crate::media::service::MediaEvent;
use crate::media::PeerId;
use crate::protocol::{CaptureState, ClientMessage, ErrorCode, ServerMessage, PROTOCOL_VERSION};
use crate::session::roles::Role;
use routing::{Candidate, ForClient};
use seats::Seat;
use state::{Client, Clients, Session};

pub use participants::MAX_NAME_CHARS;
pub use types::{ClientId, Credentials, Grant, IceSource, Input, Output, RoomConfig, RoomStats};

pub struct Room {
    config: RoomConfig,
    credentials: Box<dyn Credentials>,
    clients: Clients,
    by_peer: HashMap<PeerId, ClientId>,
    next_peer: PeerId,
    stats: RoomStats,
    ice: Option<IceSource>,
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
            capture_lost: None,
        }
    }

    /// Hand every joining peer the ICE servers `ice` mints for it.
    pub fn with_ice(mut self, ice: IceSource) -> Self {
        self.ice = Some(ice);
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
            ClientMessage::Bye {} => {
                out.push(Output::Send(
                    client,
                    ServerMessage::Bye {
                        reason: "goodbye".into(),
                    },
                ));
                out.push(Output::Close(client));
                self.leave(client, out);
            }
        }
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
                input: self.config.input.clone(),
                ice_servers: self.ice.as_mut().map(|mint| mint(peer)).unwrap_or_default(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{IceServer, InputInfo, Participant, VideoInfo};

    /// Tokens in tests read `<role>:<link>`, e.g. `controller:c1`,
    /// `viewer:v1`, `player3:p3`; anything else is forged.
    struct FakeCredentials;

    impl Credentials for FakeCredentials {
        fn check(&mut self, token: &str) -> Result<Grant, String> {
            let (role, link) = token.split_once(':').ok_or("forged token")?;
            let role = match role {
                "controller" => Role::Controller,
                "viewer" => Role::Viewer,
                p if p.starts_with("player") => Role::Player {
                    slot: p[6..].parse().map_err(|_| "forged token")?,
                },
                _ => return Err("forged token".into()),
            };
            Ok(Grant {
                link_id: link.into(),
                role,
            })
        }
    }

    fn room(max: usize) -> Room {
        Room::new(
            RoomConfig {
                max_clients: max,
                video: VideoInfo {
                    codec: "H264".into(),
                    encoder: "x264enc".into(),
                    framerate: 30,
                },
                input: InputInfo {
                    backend: "record".into(),
                    gamepads: true,
                },
                media_lines: 2,
                max_slot: 4,
            },
            Box::new(FakeCredentials),
        )
    }

    fn hello(token: &str) -> ClientMessage {
        ClientMessage::Hello {
            protocol: 1,
            token: token.into(),
            name: None,
        }
    }

    fn error_code(out: &[Output]) -> Option<ErrorCode> {
        out.iter().find_map(|o| match o {
            Output::Send(_, ServerMessage::Error { code, .. }) => Some(*code),
            _ => None,
        })
    }

    fn added(out: &[Output]) -> Option<(PeerId, Role)> {
        out.iter().find_map(|o| match o {
            Output::AddPeer(p, r) => Some((*p, *r)),
            _ => None,
        })
    }

    fn host_candidate(addr: &str) -> ClientMessage {
        ClientMessage::Ice {
            candidate: format!("candidate:1 1 udp 2122260223 {addr} 54321 typ host generation 0"),
            sdp_m_line_index: 0,
            sdp_mid: Some("video0".into()),
        }
    }

    /// Joins client `c` with `token` and delivers the agent's offer.
    fn join(r: &mut Room, c: ClientId, token: &str) -> PeerId {
        r.handle(Input::Connected(c));
        let out = r.handle(Input::Message(c, hello(token)));
        let (peer, _) = added(&out).unwrap_or_else(|| panic!("{token} refused: {out:?}"));
        r.handle(Input::Media(MediaEvent::Offer {
            peer,
            sdp: "v=0".into(),
        }));
        peer
    }

    #[test]
    fn welcome_carries_ice_servers_minted_per_peer() {
        let mut r = room(4).with_ice(Box::new(|peer| {
            vec![IceServer {
                urls: vec!["turn:127.0.0.1:3478".into()],
                username: Some(format!("1700000000:oriel-{peer}")),
                credential: Some("pw".into()),
            }]
        }));
        let mut names = Vec::new();
        for (c, token) in [(1, "controller:c1"), (2, "viewer:v1")] {
            r.handle(Input::Connected(c));
            let out = r.handle(Input::Message(c, hello(token)));
            match &out[0] {
                Output::Send(_, ServerMessage::Welcome { ice_servers, .. }) => {
                    names.push(ice_servers[0].username.clone())
                }
                other => panic!("no welcome: {other:?}"),
            }
        }
        assert_eq!(
            names,
            vec![
                Some("1700000000:oriel-1".to_string()),
                Some("1700000000:oriel-2".to_string())
            ]
        );
    }

    #[test]
    fn happy_path() {
        let mut r = room(4);
        r.handle(Input::Connected(1));
        let out = r.handle(Input::Message(1, hello("controller:c1")));
        assert!(matches!(
            &out[0],
            Output::Send(1, ServerMessage::Welcome { peer_id: 1, role, slot: Some(1), .. }) if role == "controller"
        ));
        assert_eq!(out[1], Output::AddPeer(1, Role::Controller));
        let out = r.handle(Input::Media(MediaEvent::Offer {
            peer: 1,
            sdp: "offer".into(),
        }));
        assert_eq!(
            out,
            vec![Output::Send(
                1,
                ServerMessage::Offer {
                    sdp: "offer".into()
                }
            )]
        );
        let out = r.handle(Input::Message(
            1,
            ClientMessage::Answer {
                sdp: "answer".into(),
            },
        ));
        assert_eq!(out, vec![Output::Answer(1, "answer".into())]);
        let out = r.handle(Input::Message(1, host_candidate("10.0.0.2")));
        assert!(matches!(&out[0], Output::Ice(1, 0, c) if c.contains("10.0.0.2")));
        let out = r.handle(Input::Media(MediaEvent::Ice {
            peer: 1,
            mline: 0,
            candidate: "c".into(),
        }));
        assert!(matches!(
            &out[0],
            Output::Send(1, ServerMessage::Ice { .. })
        ));
        let out = r.handle(Input::Disconnected(1));
        assert_eq!(out, vec![Output::RemovePeer(1)]);
        assert_eq!(r.client_count(), 0);
        assert_eq!(r.joined_count(), 0);
    }

    #[test]
    fn waiting_for_the_desktop_reaches_everyone_and_joiners() {
        let mut r = room(4);
        join(&mut r, 1, "viewer:v");
        r.handle(Input::Connected(2));
        let waiting = ServerMessage::Capture {
            state: CaptureState::Waiting,
            reason: Some("approve it on the desktop".into()),
        };
        let out = r.handle(Input::Media(MediaEvent::CaptureWaiting {
            reason: "approve it on the desktop".into(),
        }));
        assert_eq!(out, vec![Output::Send(1, waiting.clone())]);
        let out = r.handle(Input::Message(2, hello("viewer:v")));
        assert!(out.contains(&Output::Send(2, waiting)));
        assert_eq!(
            serde_json::to_value(CaptureState::Waiting).unwrap(),
            serde_json::json!("waiting")
        );
    }

    #[test]
    fn capture_lost_and_back_reaches_everyone_and_allows_a_new_answer() {
        let mut r = room(4);
        let p1 = join(&mut r, 1, "viewer:v");
        let answer = |sdp: &str| ClientMessage::Answer { sdp: sdp.into() };
        r.handle(Input::Message(1, answer("a1")));
        r.handle(Input::Connected(2)); // connected, not joined: not told
        let out = r.handle(Input::Media(MediaEvent::CaptureLost {
            reason: "X display :5 went away".into(),
        }));
        assert_eq!(
            out,
            vec![Output::Send(
                1,
                ServerMessage::Capture {
                    state: CaptureState::Lost,
                    reason: Some("X display :5 went away".into())
                }
            )]
        );
        // While lost there is no offer to answer.
        let out = r.handle(Input::Message(1, answer("late")));
        assert_eq!(error_code(&out), Some(ErrorCode::Unexpected));
        // A client joining meanwhile hears it right after welcome.
        let out = r.handle(Input::Message(2, hello("viewer:v")));
        assert!(out.contains(&Output::Send(
            2,
            ServerMessage::Capture {
                state: CaptureState::Lost,
                reason: Some("X display :5 went away".into())
            }
        )));
        let out = r.handle(Input::Media(MediaEvent::CaptureRestored));
        let ok = ServerMessage::Capture {
            state: CaptureState::Ok,
            reason: None,
        };
        assert_eq!(out, vec![Output::Send(1, ok.clone()), Output::Send(2, ok)]);
        // The fresh offer is answered like the first one.
        r.handle(Input::Media(MediaEvent::Offer {
            peer: p1,
            sdp: "v=0 again".into(),
        }));
        let out = r.handle(Input::Message(1, answer("a2")));
        assert_eq!(out, vec![Output::Answer(p1, "a2".into())]);
    }

    #[test]
    fn role_comes_from_the_token_only() {
        let mut r = room(8);
        for (c, token, role) in [
            (1, "viewer:v", Role::Viewer),
            (2, "player2:p2", Role::Player { slot: 2 }),
            (3, "controller:c", Role::Controller),
        ] {
            r.handle(Input::Connected(c));
            let out = r.handle(Input::Message(c, hello(token)));
            assert_eq!(added(&out).map(|a| a.1), Some(role), "{token}");
        }
        for (c, token) in [(4, ""), (5, "admin:x"), (6, "garbage")] {
            r.handle(Input::Connected(c));
            let out = r.handle(Input::Message(c, hello(token)));
            assert_eq!(error_code(&out), Some(ErrorCode::Unauthorized), "{token}");
            assert!(out.contains(&Output::Close(c)));
            assert!(added(&out).is_none());
        }
        // A slot beyond the configured players is refused.
        r.handle(Input::Connected(7));
        let out = r.handle(Input::Message(7, hello("player9:p9")));
        assert_eq!(error_code(&out), Some(ErrorCode::Unauthorized));
    }

    #[test]
    fn one_controller_one_player_per_slot_reconnect_replaces() {
        let mut r = room(8);
        let c1 = join(&mut r, 1, "controller:c1");
        // Another controller link is refused while c1 is connected.
        r.handle(Input::Connected(2));
        let out = r.handle(Input::Message(2, hello("controller:c2")));
        assert_eq!(error_code(&out), Some(ErrorCode::RoleTaken));
        // The same link reconnecting replaces the old session.
        r.handle(Input::Connected(3));
        let out = r.handle(Input::Message(3, hello("controller:c1")));
        assert!(out.contains(&Output::Close(1)), "{out:?}");
        assert!(out.contains(&Output::RemovePeer(c1)));
        assert_eq!(added(&out).map(|a| a.1), Some(Role::Controller));
        // Players: one per slot, same rules.
        join(&mut r, 4, "player2:p2");
        r.handle(Input::Connected(5));
        let out = r.handle(Input::Message(5, hello("player2:other")));
        assert_eq!(error_code(&out), Some(ErrorCode::RoleTaken));
        join(&mut r, 6, "player3:p3");
        // Viewers share a link freely.
        join(&mut r, 7, "viewer:v");
        join(&mut r, 8, "viewer:v");
        assert_eq!(r.joined_count(), 5);
        // After the controller leaves, another controller link may join.
        r.handle(Input::Disconnected(3));
        join(&mut r, 9, "controller:c2");
    }

    #[test]
    fn participants_are_broadcast_on_join_and_leave() {
        let mut r = room(8);
        join(&mut r, 1, "controller:c");
        r.handle(Input::Connected(2));
        let out = r.handle(Input::Message(
            2,
            ClientMessage::Hello {
                protocol: 1,
                token: "player2:p".into(),
                name: Some(" Ada\u{7}\n ".into()),
            },
        ));
        let lists: Vec<(ClientId, Vec<Participant>)> = out
            .iter()
            .filter_map(|o| match o {
                Output::Send(c, ServerMessage::Participants { participants }) => {
                    Some((*c, participants.clone()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(lists.len(), 2, "both clients told");
        let list = &lists[0].1;
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].name, "Ada");
        assert_eq!(list[1].role, "player");
        assert_eq!(list[1].slot, Some(2));
        assert_eq!(list[0].name, "controller 1");
        let out = r.handle(Input::Disconnected(2));
        assert!(out.iter().any(|o| matches!(
            o,
            Output::Send(1, ServerMessage::Participants { participants }) if participants.len() == 1
        )));
    }

    #[test]
    fn revoking_a_link_ends_its_sessions() {
        let mut r = room(8);
        let v1 = join(&mut r, 1, "viewer:shared");
        let v2 = join(&mut r, 2, "viewer:shared");
        join(&mut r, 3, "viewer:other");
        let out = r.handle(Input::Revoked(vec!["shared".into()]));
        for (c, p) in [(1, v1), (2, v2)] {
            assert!(out.contains(&Output::Close(c)));
            assert!(out.contains(&Output::RemovePeer(p)));
        }
        assert!(!out.contains(&Output::Close(3)));
        assert_eq!(r.joined_count(), 1);
    }

    #[test]
    fn out_of_order_messages_are_refused_and_connection_kept() {
        let mut r = room(4);
        r.handle(Input::Connected(1));
        let out = r.handle(Input::Message(1, ClientMessage::Answer { sdp: "x".into() }));
        assert_eq!(error_code(&out), Some(ErrorCode::Unexpected));
        let out = r.handle(Input::Message(1, host_candidate("1.2.3.4")));
        assert_eq!(error_code(&out), Some(ErrorCode::Unexpected));
        r.handle(Input::Message(1, hello("viewer:v")));
        // Answer before the offer arrived.
        let out = r.handle(Input::Message(1, ClientMessage::Answer { sdp: "x".into() }));
        assert_eq!(error_code(&out), Some(ErrorCode::Unexpected));
        let out = r.handle(Input::Message(1, hello("viewer:v")));
        assert_eq!(error_code(&out), Some(ErrorCode::Unexpected));
        r.handle(Input::Media(MediaEvent::Offer {
            peer: 1,
            sdp: "o".into(),
        }));
        r.handle(Input::Message(1, ClientMessage::Answer { sdp: "a".into() }));
        let out = r.handle(Input::Message(1, ClientMessage::Answer { sdp: "a".into() }));
        assert_eq!(error_code(&out), Some(ErrorCode::Unexpected));
        assert!(!out.iter().any(|o| matches!(o, Output::Close(_))));
        assert_eq!(
            r.handle(Input::Message(1, ClientMessage::Ping {})),
            vec![Output::Send(1, ServerMessage::Pong)]
        );
        assert_eq!(r.stats().errors[&ErrorCode::Unexpected], 5);
    }

    #[test]
    fn wrong_protocol_version() {
        let mut r = room(4);
        r.handle(Input::Connected(1));
        let out = r.handle(Input::Message(
            1,
            ClientMessage::Hello {
                protocol: 99,
                token: "viewer:v".into(),
                name: None,
            },
        ));
        assert_eq!(error_code(&out), Some(ErrorCode::UnsupportedProtocol));
        assert_eq!(r.joined_count(), 0);
    }

    #[test]
    fn mdns_candidates_are_dropped_others_validated() {
        let mut r = room(4);
        join(&mut r, 1, "viewer:v");
        let out = r.handle(Input::Message(
            1,
            host_candidate("3f1c2d4e-aaaa-bbbb-cccc-0123456789ab.local"),
        ));
        assert!(out.is_empty());
        assert_eq!(r.stats().mdns_candidates_dropped, 1);
        let out = r.handle(Input::Message(
            1,
            ClientMessage::Ice {
                candidate: "garbage".into(),
                sdp_m_line_index: 0,
                sdp_mid: None,
            },
        ));
        assert_eq!(error_code(&out), Some(ErrorCode::Malformed));
        let out = r.handle(Input::Message(
            1,
            ClientMessage::Ice {
                candidate: "candidate:1 1 udp 1 1.2.3.4 5 typ host".into(),
                sdp_m_line_index: 7,
                sdp_mid: None,
            },
        ));
        assert_eq!(error_code(&out), Some(ErrorCode::Malformed));
        // End-of-candidates is accepted silently.
        let out = r.handle(Input::Message(
            1,
            ClientMessage::Ice {
                candidate: String::new(),
                sdp_m_line_index: 0,
                sdp_mid: None,
            },
        ));
        assert!(out.is_empty());
    }

    #[test]
    fn max_clients_enforced() {
        let mut r = room(2);
        join(&mut r, 1, "viewer:v");
        join(&mut r, 2, "viewer:v");
        r.handle(Input::Connected(3));
        let out = r.handle(Input::Message(3, hello("viewer:v")));
        assert_eq!(error_code(&out), Some(ErrorCode::Full));
        assert!(out.contains(&Output::Close(3)));
        assert!(added(&out).is_none());
        // Room frees up when someone leaves.
        r.handle(Input::Disconnected(1));
        r.handle(Input::Connected(4));
        let out = r.handle(Input::Message(4, hello("viewer:v")));
        assert!(added(&out).is_some());
    }

    #[test]
    fn media_events_reach_only_their_client() {
        let mut r = room(4);
        let p1 = join(&mut r, 1, "viewer:v");
        let p2 = join(&mut r, 2, "viewer:v");
        let out = r.handle(Input::Media(MediaEvent::State {
            peer: p2,
            state: "connected".into(),
        }));
        assert_eq!(
            out,
            vec![Output::Send(
                2,
                ServerMessage::PeerState {
                    state: "connected".into()
                }
            )]
        );
        let out = r.handle(Input::Media(MediaEvent::PeerFailed {
            peer: p1,
            reason: "boom".into(),
        }));
        assert_eq!(
            out[0],
            Output::Send(
                1,
                ServerMessage::Bye {
                    reason: "boom".into()
                }
            )
        );
        assert_eq!(out[1], Output::Close(1));
        assert!(out.contains(&Output::RemovePeer(p1)));
        // The failed peer is not removed twice when its socket closes.
        assert!(!r
            .handle(Input::Disconnected(1))
            .iter()
            .any(|o| matches!(o, Output::RemovePeer(_))));
        // Events for peers whose client left are ignored.
        assert!(r
            .handle(Input::Media(MediaEvent::Offer {
                peer: p1,
                sdp: "x".into()
            }))
            .is_empty());
    }

    #[test]
    fn bye_removes_peer_and_closes() {
        let mut r = room(4);
        let p = join(&mut r, 1, "viewer:v");
        let out = r.handle(Input::Message(1, ClientMessage::Bye {}));
        assert!(out.contains(&Output::RemovePeer(p)));
        assert!(out.contains(&Output::Close(1)));
        assert!(r.handle(Input::Disconnected(1)).is_empty());
    }

    /// Random sequences of everything a client and the media side can do:
    /// the room never panics, never seats two controllers or two players in
    /// one slot, and never has more joined sessions than connections.
    #[test]
    fn random_sequences_keep_the_invariants() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let tokens = [
            "controller:c1",
            "controller:c2",
            "viewer:v",
            "player2:p2",
            "player2:q2",
            "player3:p3",
            "bad",
        ];
        for _ in 0..200 {
            let mut r = room(6);
            for _ in 0..200 {
                let c = next(8) + 1;
                let peer = next(40) + 1;
                let input = match next(10) {
                    0 | 1 => Input::Connected(c),
                    2 | 3 => Input::Message(c, hello(tokens[next(tokens.len() as u64) as usize])),
                    4 => Input::Message(c, ClientMessage::Answer { sdp: "a".into() }),
                    5 => Input::Message(c, host_candidate("10.1.1.1")),
                    6 => Input::Disconnected(c),
                    7 => Input::Media(MediaEvent::Offer {
                        peer,
                        sdp: "o".into(),
                    }),
                    8 => Input::Media(MediaEvent::PeerFailed {
                        peer,
                        reason: "x".into(),
                    }),
                    _ => Input::Revoked(vec!["v".into(), "p2".into()]),
                };
                r.handle(input);
                assert!(r.joined_count() <= r.client_count());
                let roles: Vec<Role> = r
                    .clients
                    .values()
                    .filter_map(|c| c.session.as_ref().map(|s| s.role))
                    .collect();
                assert!(roles.iter().filter(|x| **x == Role::Controller).count() <= 1);
                for slot in 2..=4 {
                    assert!(
                        roles
                            .iter()
                            .filter(|x| **x == Role::Player { slot })
                            .count()
                            <= 1
                    );
                }
                assert_eq!(r.by_peer.len(), r.joined_count());
            }
        }
    }
}
