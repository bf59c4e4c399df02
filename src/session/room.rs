//! The room: tracks connected clients and their media sessions, validates
//! the order of signalling messages, and says what to send to whom and what
//! the media side must do. Inputs come from the WebSocket server and the
//! media service; outputs go back to them.

use std::collections::{BTreeMap, HashMap};

use crate::media::service::MediaEvent;
use crate::media::PeerId;
use crate::signalling::protocol::{
    ClientMessage, ErrorCode, ParseError, ServerMessage, VideoInfo, PROTOCOL_VERSION,
};

/// One WebSocket connection.
pub type ClientId = u64;

/// Something that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A WebSocket connection opened.
    Connected(ClientId),
    /// A client sent a valid message.
    Message(ClientId, ClientMessage),
    /// A client sent a frame that failed to parse.
    Refused(ClientId, ParseError),
    /// A WebSocket connection closed (cleanly or not).
    Disconnected(ClientId),
    /// The media service reported something.
    Media(MediaEvent),
}

/// Something to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Send(ClientId, ServerMessage),
    /// Close the client's socket (after sending what came before).
    Close(ClientId),
    AddPeer(PeerId),
    RemovePeer(PeerId),
    Answer(PeerId, String),
    Ice(PeerId, u32, String),
}

#[derive(Debug, Clone)]
pub struct RoomConfig {
    pub max_clients: usize,
    pub video: VideoInfo,
    /// Number of m-lines in our offers; candidates must name one of them.
    pub media_lines: u32,
}

/// Counters for the metrics endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomStats {
    pub joins: u64,
    pub errors: BTreeMap<ErrorCode, u64>,
    /// `.local` (mDNS) candidates dropped; see docs/architecture.md.
    pub mdns_candidates_dropped: u64,
}

#[derive(Debug, Default)]
struct Client {
    session: Option<Session>,
}

#[derive(Debug)]
struct Session {
    peer: PeerId,
    offered: bool,
    answered: bool,
}

pub struct Room {
    config: RoomConfig,
    clients: BTreeMap<ClientId, Client>,
    by_peer: HashMap<PeerId, ClientId>,
    next_peer: PeerId,
    stats: RoomStats,
}

impl Room {
    pub fn new(config: RoomConfig) -> Self {
        Room {
            config,
            clients: BTreeMap::new(),
            by_peer: HashMap::new(),
            next_peer: 1,
            stats: RoomStats::default(),
        }
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

    /// Every connected client, e.g. to say goodbye on shutdown.
    pub fn client_ids(&self) -> Vec<ClientId> {
        self.clients.keys().copied().collect()
    }

    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Connected(client) => {
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
        }
        out
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
            ClientMessage::Hello { protocol } => self.hello(client, protocol, out),
            ClientMessage::Answer { sdp } => {
                let Some(session) = self.session_mut(client) else {
                    return self.error(
                        client,
                        ErrorCode::Unexpected,
                        "`answer` before `hello`".into(),
                        out,
                    );
                };
                if !session.offered {
                    return self.error(
                        client,
                        ErrorCode::Unexpected,
                        "`answer` before the agent's offer".into(),
                        out,
                    );
                }
                if session.answered {
                    return self.error(
                        client,
                        ErrorCode::Unexpected,
                        "the offer was already answered".into(),
                        out,
                    );
                }
                session.answered = true;
                let peer = session.peer;
                out.push(Output::Answer(peer, sdp));
            }
            ClientMessage::Ice {
                candidate,
                sdp_m_line_index,
                ..
            } => {
                let lines = self.config.media_lines;
                let Some(session) = self.session_mut(client) else {
                    return self.error(
                        client,
                        ErrorCode::Unexpected,
                        "`ice` before `hello`".into(),
                        out,
                    );
                };
                if !session.offered {
                    return self.error(
                        client,
                        ErrorCode::Unexpected,
                        "`ice` before the agent's offer".into(),
                        out,
                    );
                }
                let peer = session.peer;
                if candidate.is_empty() {
                    return; // end of candidates: nothing to do
                }
                if sdp_m_line_index >= lines {
                    return self.error(
                        client,
                        ErrorCode::Malformed,
                        format!("sdpMLineIndex {sdp_m_line_index} does not exist (the offer has {lines})"),
                        out,
                    );
                }
                match candidate_address(&candidate) {
                    None => self.error(
                        client,
                        ErrorCode::Malformed,
                        "not an ICE candidate line".into(),
                        out,
                    ),
                    // Pending mDNS lookups crash webrtcbin 1.22 at teardown;
                    // peer-reflexive candidates connect without them.
                    Some(addr) if addr.ends_with(".local") => {
                        self.stats.mdns_candidates_dropped += 1
                    }
                    Some(_) => out.push(Output::Ice(peer, sdp_m_line_index, candidate)),
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

    fn hello(&mut self, client: ClientId, protocol: u32, out: &mut Vec<Output>) {
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
        if self.by_peer.len() >= self.config.max_clients {
            let max = self.config.max_clients;
            self.error(
                client,
                ErrorCode::Full,
                format!("the agent already serves its maximum of {max} clients"),
                out,
            );
            out.push(Output::Send(
                client,
                ServerMessage::Bye {
                    reason: "full".into(),
                },
            ));
            out.push(Output::Close(client));
            self.clients.remove(&client);
            return;
        }
        let peer = self.next_peer;
        self.next_peer += 1;
        self.stats.joins += 1;
        if let Some(c) = self.clients.get_mut(&client) {
            c.session = Some(Session {
                peer,
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
                video: self.config.video.clone(),
            },
        ));
        out.push(Output::AddPeer(peer));
    }

    fn leave(&mut self, client: ClientId, out: &mut Vec<Output>) {
        if let Some(c) = self.clients.remove(&client) {
            if let Some(session) = c.session {
                self.by_peer.remove(&session.peer);
                out.push(Output::RemovePeer(session.peer));
            }
        }
    }

    fn on_media(&mut self, event: MediaEvent, out: &mut Vec<Output>) {
        let peer = match &event {
            MediaEvent::Offer { peer, .. }
            | MediaEvent::Ice { peer, .. }
            | MediaEvent::State { peer, .. }
            | MediaEvent::Error { peer, .. }
            | MediaEvent::PeerFailed { peer, .. } => *peer,
        };
        let Some(&client) = self.by_peer.get(&peer) else {
            return; // the client already left
        };
        match event {
            MediaEvent::Offer { sdp, .. } => {
                if let Some(s) = self.session_mut(client) {
                    s.offered = true;
                }
                out.push(Output::Send(client, ServerMessage::Offer { sdp }));
            }
            MediaEvent::Ice {
                mline, candidate, ..
            } => out.push(Output::Send(
                client,
                ServerMessage::Ice {
                    candidate,
                    sdp_m_line_index: mline,
                },
            )),
            MediaEvent::State { state, .. } => {
                out.push(Output::Send(client, ServerMessage::PeerState { state }))
            }
            MediaEvent::Error { message, .. } => self.error(client, ErrorCode::Media, message, out),
            MediaEvent::PeerFailed { reason, .. } => {
                // The media side already dropped the branch.
                self.by_peer.remove(&peer);
                if let Some(c) = self.clients.get_mut(&client) {
                    c.session = None;
                }
                *self.stats.errors.entry(ErrorCode::Media).or_default() += 1;
                out.push(Output::Send(client, ServerMessage::Bye { reason }));
                out.push(Output::Close(client));
            }
        }
    }
}

/// The connection address of an ICE candidate line
/// (`candidate:<foundation> <component> <transport> <priority> <address> <port> typ ...`).
fn candidate_address(candidate: &str) -> Option<&str> {
    let line = candidate.strip_prefix("a=").unwrap_or(candidate);
    let rest = line.strip_prefix("candidate:")?;
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    if fields.len() < 8 || fields[6] != "typ" {
        return None;
    }
    Some(fields[4])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(max: usize) -> Room {
        Room::new(RoomConfig {
            max_clients: max,
            video: VideoInfo {
                codec: "H264".into(),
                encoder: "x264enc".into(),
                framerate: 30,
            },
            media_lines: 1,
        })
    }

    fn hello() -> ClientMessage {
        ClientMessage::Hello { protocol: 1 }
    }

    fn error_code(out: &[Output]) -> Option<ErrorCode> {
        out.iter().find_map(|o| match o {
            Output::Send(_, ServerMessage::Error { code, .. }) => Some(*code),
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

    /// Joins client `c` and delivers the agent's offer; returns its peer.
    fn join(r: &mut Room, c: ClientId) -> PeerId {
        r.handle(Input::Connected(c));
        let out = r.handle(Input::Message(c, hello()));
        let peer = out
            .iter()
            .find_map(|o| match o {
                Output::AddPeer(p) => Some(*p),
                _ => None,
            })
            .expect("AddPeer");
        r.handle(Input::Media(MediaEvent::Offer {
            peer,
            sdp: "v=0".into(),
        }));
        peer
    }

    #[test]
    fn happy_path() {
        let mut r = room(4);
        r.handle(Input::Connected(1));
        let out = r.handle(Input::Message(1, hello()));
        assert!(matches!(
            out[0],
            Output::Send(1, ServerMessage::Welcome { peer_id: 1, .. })
        ));
        assert_eq!(out[1], Output::AddPeer(1));
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
    fn out_of_order_messages_are_refused_and_connection_kept() {
        let mut r = room(4);
        r.handle(Input::Connected(1));
        let out = r.handle(Input::Message(1, ClientMessage::Answer { sdp: "x".into() }));
        assert_eq!(error_code(&out), Some(ErrorCode::Unexpected));
        let out = r.handle(Input::Message(1, host_candidate("1.2.3.4")));
        assert_eq!(error_code(&out), Some(ErrorCode::Unexpected));
        r.handle(Input::Message(1, hello()));
        // Answer before the offer arrived.
        let out = r.handle(Input::Message(1, ClientMessage::Answer { sdp: "x".into() }));
        assert_eq!(error_code(&out), Some(ErrorCode::Unexpected));
        let out = r.handle(Input::Message(1, hello()));
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
        let out = r.handle(Input::Message(1, ClientMessage::Hello { protocol: 99 }));
        assert_eq!(error_code(&out), Some(ErrorCode::UnsupportedProtocol));
        assert_eq!(r.joined_count(), 0);
    }

    #[test]
    fn mdns_candidates_are_dropped_others_validated() {
        let mut r = room(4);
        join(&mut r, 1);
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
        join(&mut r, 1);
        join(&mut r, 2);
        r.handle(Input::Connected(3));
        let out = r.handle(Input::Message(3, hello()));
        assert_eq!(error_code(&out), Some(ErrorCode::Full));
        assert!(out.contains(&Output::Close(3)));
        assert!(!out.iter().any(|o| matches!(o, Output::AddPeer(_))));
        // Room frees up when someone leaves.
        r.handle(Input::Disconnected(1));
        r.handle(Input::Connected(4));
        let out = r.handle(Input::Message(4, hello()));
        assert!(out.iter().any(|o| matches!(o, Output::AddPeer(_))));
    }

    #[test]
    fn media_events_reach_only_their_client() {
        let mut r = room(4);
        let p1 = join(&mut r, 1);
        let p2 = join(&mut r, 2);
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
            out,
            vec![
                Output::Send(
                    1,
                    ServerMessage::Bye {
                        reason: "boom".into()
                    }
                ),
                Output::Close(1)
            ]
        );
        // The failed peer is not removed twice when its socket closes.
        assert!(r.handle(Input::Disconnected(1)).is_empty());
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
        let p = join(&mut r, 1);
        let out = r.handle(Input::Message(1, ClientMessage::Bye {}));
        assert!(out.contains(&Output::RemovePeer(p)));
        assert!(out.contains(&Output::Close(1)));
        assert!(r.handle(Input::Disconnected(1)).is_empty());
    }

    #[test]
    fn candidate_address_parsing() {
        assert_eq!(
            candidate_address("candidate:842163049 1 udp 1677729535 192.0.2.1 46154 typ srflx raddr 0.0.0.0 rport 0"),
            Some("192.0.2.1")
        );
        assert_eq!(
            candidate_address("a=candidate:1 1 udp 1 ::1 5 typ host"),
            Some("::1")
        );
        assert_eq!(candidate_address("candidate:1 1 udp"), None);
        assert_eq!(candidate_address("hello"), None);
    }
}
