//! What callers of the room see: the inputs it takes, the outputs it gives,
//! its configuration, counters, and the token check it is handed.

use std::collections::BTreeMap;

use crate::media::service::MediaEvent;
use crate::media::PeerId;
use crate::protocol::{
    ClientMessage, ErrorCode, IceServer, InputInfo, ParseError, ServerMessage, VideoInfo,
};
use crate::session::roles::Role;

/// What a valid token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub link_id: String,
    pub role: Role,
}

/// Checks a client's token: signature, expiry and revocation. The room
/// never looks inside tokens itself.
pub trait Credentials: Send {
    fn check(&mut self, token: &str) -> Result<Grant, String>;
}

/// Mints the ICE servers (with fresh TURN credentials) a joining peer gets
/// in its `welcome`. Outside the room because minting reads the clock.
pub type IceSource = Box<dyn FnMut(PeerId) -> Vec<IceServer> + Send>;

/// What a joining client is told about input (`welcome.input`), read when
/// it joins: the backend may have changed since the room was made.
pub type InputSource = Box<dyn FnMut() -> InputInfo + Send>;

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
    /// These links were revoked: their sessions end now.
    Revoked(Vec<String>),
}

/// Something to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Send(ClientId, ServerMessage),
    /// Close the client's socket (after sending what came before).
    Close(ClientId),
    /// Create a media branch for a client that joined with this role.
    AddPeer(PeerId, Role),
    RemovePeer(PeerId),
    Answer(PeerId, String),
    Ice(PeerId, u32, String),
    /// Make the desktop this size (the controller's window).
    Resize(u32, u32),
}

#[derive(Debug, Clone)]
pub struct RoomConfig {
    pub max_clients: usize,
    pub video: VideoInfo,
    pub input: InputInfo,
    /// Number of m-lines in our offers; candidates must name one of them.
    pub media_lines: u32,
    /// Highest player slot (players own slots 2..=max_slot).
    pub max_slot: u8,
    /// The desktop has a clipboard to share with the controller.
    pub clipboard: bool,
    /// The controller's page may make the desktop match its window.
    pub resize: bool,
}

/// Counters for the metrics endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomStats {
    pub joins: u64,
    pub errors: BTreeMap<ErrorCode, u64>,
    /// `.local` (mDNS) candidates dropped; see docs/architecture.md.
    pub mdns_candidates_dropped: u64,
}

/// Why the room turned a message or a join down: the `error` it sends.
pub(super) type Problem = (ErrorCode, String);
