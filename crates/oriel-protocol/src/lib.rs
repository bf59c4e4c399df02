//! The signalling protocol: one serde enum per direction, tagged by `type`,
//! camelCase fields. `docs/protocol.md` documents it for client authors.

use serde::{Deserialize, Serialize};

/// The protocol version this agent speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// Text frames above this size get a `tooLarge` error.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Frames (and fragmented messages) above this size close the socket
/// (WebSocket code 1009), refused from the frame header before the payload
/// is read. Twice [`MAX_MESSAGE_BYTES`], so a message a little too large
/// still gets a `tooLarge` error; it bounds what one socket can make the
/// agent buffer.
pub const MAX_FRAME_BYTES: usize = 128 * 1024;

/// Messages a client sends to the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum ClientMessage {
    /// Join the session; must come first. `token` is the capability token
    /// from the link's URL fragment; the role comes from it alone. The agent
    /// answers `welcome` and then sends its offer.
    #[serde(rename_all = "camelCase")]
    Hello {
        protocol: u32,
        token: String,
        /// Shown to the other participants (at most 32 characters).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// The SDP answer to the agent's offer.
    Answer { sdp: String },
    /// A trickled ICE candidate; an empty `candidate` marks the end.
    #[serde(rename_all = "camelCase")]
    Ice {
        candidate: String,
        sdp_m_line_index: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdp_mid: Option<String>,
    },
    /// The controller's window is this size (device pixels): the agent
    /// makes the desktop that size when `welcome.resize` said it would
    /// (the stream follows, no client is dropped). Others get
    /// `unauthorized`.
    Resize { width: u32, height: u32 },
    /// Keepalive; answered with `pong`.
    Ping {},
    /// Leave the session.
    Bye {},
}

/// What the agent reports about the video it sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoInfo {
    pub codec: String,
    pub encoder: String,
    pub framerate: u32,
}

/// How this agent injects input, so the client can say what works.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InputInfo {
    /// `xtest`, `uinput`, `record` or `none`.
    pub backend: String,
    /// Whether gamepads can be created (they need uinput).
    pub gamepads: bool,
}

/// A STUN or TURN server for the client's RTCPeerConnection, in the
/// browser's RTCIceServer shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceServer {
    /// `stun:host:port`, `turn:host:port?transport=udp`, `turns:...`.
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The TURN password; REST credentials are minted for this session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// One connected client, as the others see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    pub peer_id: u64,
    /// `controller`, `viewer` or `player`.
    pub role: String,
    /// The gamepad slot (controller 1, players 2..N).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<u8>,
    pub name: String,
}

/// Messages the agent sends to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ServerMessage {
    /// The join worked; an `offer` follows. `role` and `slot` are what the
    /// token grants.
    #[serde(rename_all = "camelCase")]
    Welcome {
        peer_id: u64,
        protocol: u32,
        role: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        slot: Option<u8>,
        video: VideoInfo,
        input: InputInfo,
        /// STUN/TURN servers for this session's RTCPeerConnection (may be
        /// empty: the agent is then reached directly).
        ice_servers: Vec<IceServer>,
        /// Whether this client's connection carries the desktop's
        /// clipboard (the controller's, on a desktop that has one).
        #[serde(default)]
        clipboard: bool,
        /// Whether this client may make the desktop match its window
        /// (`resize`): the controller's, on a desktop that is resized from
        /// the page (`--resize`).
        #[serde(default)]
        resize: bool,
    },
    /// Everyone connected, sent to all on every join and leave.
    Participants { participants: Vec<Participant> },
    /// The agent's SDP offer (send-only video).
    Offer { sdp: String },
    /// A trickled ICE candidate of the agent.
    #[serde(rename_all = "camelCase")]
    Ice {
        candidate: String,
        sdp_m_line_index: u32,
    },
    /// The agent-side WebRTC connection state changed.
    PeerState { state: String },
    /// How the agent sees this client's link, about once a second while
    /// media flows: its congestion estimate (kbit/s, absent before the
    /// first feedback), the shared encoder's current bitrate, the loss its
    /// feedback reports (thousandths), retransmissions sent to it, and the
    /// rung (encode) it receives.
    #[serde(rename_all = "camelCase")]
    Link {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        estimate_kbps: Option<u64>,
        encoder_kbps: u64,
        loss_permille: u64,
        retransmitted: u64,
        rung: String,
    },
    /// Reply to `ping`.
    Pong,
    /// Something the client sent was refused; the connection stays up.
    Error { code: ErrorCode, message: String },
    /// The agent ends the session; the socket closes next.
    Bye { reason: String },
    /// The desktop capture went away (`lost`, e.g. the X server died) or
    /// is back (`ok`). While lost the agent has dropped the client's WebRTC
    /// connection and retries with backoff; when back it sends a new
    /// `offer` on the same socket, to be answered with a new connection.
    Capture {
        state: CaptureState,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

/// What a `capture` message reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CaptureState {
    Lost,
    /// Down until someone acts on the desktop (e.g. approves screen
    /// sharing); otherwise like `Lost`.
    Waiting,
    Ok,
}

/// Why a client message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ErrorCode {
    /// Not JSON, not an object, or a known type with bad fields.
    Malformed,
    /// `type` missing or unknown.
    UnknownType,
    /// Above [`MAX_MESSAGE_BYTES`].
    TooLarge,
    /// A valid message at the wrong moment.
    Unexpected,
    /// `hello` with a protocol version this agent does not speak.
    UnsupportedProtocol,
    /// A binary frame on the text-only signalling channel.
    Binary,
    /// The media side could not apply what was sent, or failed.
    Media,
    /// The agent serves its maximum number of clients.
    Full,
    /// No token, or a forged, expired or revoked one.
    Unauthorized,
    /// The link's seat is taken: a controller is connected, or the
    /// player's slot is in use (by another link).
    RoleTaken,
    /// Too many refused links from this address lately; the hello was not
    /// checked. The message says when to try again.
    RateLimited,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Malformed => "malformed",
            ErrorCode::UnknownType => "unknownType",
            ErrorCode::TooLarge => "tooLarge",
            ErrorCode::Unexpected => "unexpected",
            ErrorCode::UnsupportedProtocol => "unsupportedProtocol",
            ErrorCode::Binary => "binary",
            ErrorCode::Media => "media",
            ErrorCode::Full => "full",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::RoleTaken => "roleTaken",
            ErrorCode::RateLimited => "rateLimited",
        }
    }
}

/// A refused frame: the code and a message for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub code: ErrorCode,
    pub message: String,
}

const CLIENT_TYPES: &[&str] = &["hello", "answer", "ice", "resize", "ping", "bye"];

/// Parses one text frame, telling malformed, unknown and oversized apart.
pub fn parse_client_message(text: &str) -> Result<ClientMessage, ParseError> {
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(ParseError {
            code: ErrorCode::TooLarge,
            message: format!(
                "message of {} bytes exceeds the {} byte limit",
                text.len(),
                MAX_MESSAGE_BYTES
            ),
        });
    }
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| ParseError {
        code: ErrorCode::Malformed,
        message: format!("not JSON: {e}"),
    })?;
    let Some(object) = value.as_object() else {
        return Err(ParseError {
            code: ErrorCode::Malformed,
            message: "a message must be a JSON object".into(),
        });
    };
    match object.get("type").and_then(|t| t.as_str()) {
        None => {
            return Err(ParseError {
                code: ErrorCode::UnknownType,
                message: "missing string field `type`".into(),
            })
        }
        Some(t) if !CLIENT_TYPES.contains(&t) => {
            return Err(ParseError {
                code: ErrorCode::UnknownType,
                message: format!(
                    "unknown type `{}`; expected one of {}",
                    truncate(t, 40),
                    CLIENT_TYPES.join(", ")
                ),
            })
        }
        Some(_) => {}
    }
    serde_json::from_value(value).map_err(|e| ParseError {
        code: ErrorCode::Malformed,
        message: e.to_string(),
    })
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

impl ServerMessage {
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ServerMessage::Error {
            code,
            message: message.into(),
        }
    }

    pub fn to_json(&self) -> String {
        // Serialising these plain enums cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| r#"{"type":"error"}"#.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_round_trip() {
        let all = [
            ClientMessage::Hello {
                protocol: 1,
                token: "t".into(),
                name: Some("Ada".into()),
            },
            ClientMessage::Answer {
                sdp: "v=0\r\n".into(),
            },
            ClientMessage::Ice {
                candidate: "candidate:1 1 UDP 1 127.0.0.1 5000 typ host".into(),
                sdp_m_line_index: 0,
                sdp_mid: Some("video0".into()),
            },
            ClientMessage::Ping {},
            ClientMessage::Bye {},
        ];
        for m in all {
            let text = serde_json::to_string(&m).unwrap();
            assert_eq!(parse_client_message(&text).unwrap(), m, "{text}");
        }
    }

    #[test]
    fn wire_format_is_camel_case() {
        let m = parse_client_message(
            r#"{"type":"ice","candidate":"c","sdpMLineIndex":2,"sdpMid":"0"}"#,
        )
        .unwrap();
        assert_eq!(
            m,
            ClientMessage::Ice {
                candidate: "c".into(),
                sdp_m_line_index: 2,
                sdp_mid: Some("0".into())
            }
        );
        let s = ServerMessage::Welcome {
            peer_id: 7,
            protocol: 1,
            role: "viewer".into(),
            slot: None,
            video: VideoInfo {
                codec: "H264".into(),
                encoder: "x264enc".into(),
                framerate: 30,
            },
            input: InputInfo {
                backend: "xtest".into(),
                gamepads: false,
            },
            ice_servers: vec![IceServer {
                urls: vec!["turn:127.0.0.1:3478?transport=udp".into()],
                username: Some("1700000000:oriel-7".into()),
                credential: Some("pw".into()),
            }],
            clipboard: false,
            resize: false,
        }
        .to_json();
        assert!(
            s.contains(r#""iceServers":[{"urls":["turn:127.0.0.1:3478?transport=udp"],"username":"1700000000:oriel-7","credential":"pw"}]"#),
            "{s}"
        );
        assert!(
            s.contains(r#""type":"welcome""#) && s.contains(r#""peerId":7"#),
            "{s}"
        );
        let s = ServerMessage::PeerState {
            state: "connected".into(),
        }
        .to_json();
        assert_eq!(s, r#"{"type":"peerState","state":"connected"}"#);
        let s = ServerMessage::Capture {
            state: CaptureState::Ok,
            reason: None,
        }
        .to_json();
        assert_eq!(s, r#"{"type":"capture","state":"ok"}"#);
        let s = ServerMessage::error(ErrorCode::UnknownType, "x").to_json();
        assert_eq!(s, r#"{"type":"error","code":"unknownType","message":"x"}"#);
    }

    #[test]
    fn server_messages_round_trip() {
        let all = [
            ServerMessage::Offer { sdp: "v=0".into() },
            ServerMessage::Ice {
                candidate: "c".into(),
                sdp_m_line_index: 0,
            },
            ServerMessage::Pong,
            ServerMessage::error(ErrorCode::TooLarge, "big"),
            ServerMessage::Bye {
                reason: "bye".into(),
            },
            ServerMessage::Capture {
                state: CaptureState::Lost,
                reason: Some("display :5 went away".into()),
            },
            ServerMessage::Capture {
                state: CaptureState::Ok,
                reason: None,
            },
        ];
        for m in all {
            let back: ServerMessage = serde_json::from_str(&m.to_json()).unwrap();
            assert_eq!(back, m);
        }
    }

    fn code(text: &str) -> ErrorCode {
        parse_client_message(text).unwrap_err().code
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(code("{"), ErrorCode::Malformed);
        assert_eq!(code(""), ErrorCode::Malformed);
        assert_eq!(code("[1,2]"), ErrorCode::Malformed);
        assert_eq!(code("42"), ErrorCode::Malformed);
        assert_eq!(code(r#"{"type":"hello"}"#), ErrorCode::Malformed);
        assert_eq!(
            code(r#"{"type":"hello","protocol":"1"}"#),
            ErrorCode::Malformed
        );
        assert_eq!(
            code(r#"{"type":"hello","protocol":-1}"#),
            ErrorCode::Malformed
        );
        assert_eq!(code(r#"{"type":"answer","sdp":5}"#), ErrorCode::Malformed);
        assert_eq!(
            code(r#"{"type":"ice","candidate":"c","sdpMLineIndex":4294967296}"#),
            ErrorCode::Malformed
        );
        assert_eq!(code(r#"{"type":"ping","extra":1}"#), ErrorCode::Malformed);
    }

    #[test]
    fn rejects_unknown_types() {
        assert_eq!(code(r#"{"type":"launchMissiles"}"#), ErrorCode::UnknownType);
        assert_eq!(code(r#"{"type":7}"#), ErrorCode::UnknownType);
        assert_eq!(code(r#"{"sdp":"x"}"#), ErrorCode::UnknownType);
        // Server-only types are not accepted from clients.
        assert_eq!(
            code(r#"{"type":"offer","sdp":"x"}"#),
            ErrorCode::UnknownType
        );
        let long = format!(r#"{{"type":"{}"}}"#, "x".repeat(1000));
        let e = parse_client_message(&long).unwrap_err();
        assert!(e.message.len() < 200, "echoes at most a short prefix");
    }

    #[test]
    fn rejects_oversized() {
        let big = format!(
            r#"{{"type":"answer","sdp":"{}"}}"#,
            "a".repeat(MAX_MESSAGE_BYTES)
        );
        assert_eq!(code(&big), ErrorCode::TooLarge);
        let fits = format!(r#"{{"type":"answer","sdp":"{}"}}"#, "a".repeat(1000));
        assert!(parse_client_message(&fits).is_ok());
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap fuzz: every prefix of valid messages, and junk.
        let samples = [
            r#"{"type":"ice","candidate":"c","sdpMLineIndex":2,"sdpMid":"0"}"#,
            r#"{"type":"hello","protocol":1,"token":"abc.def"}"#,
            "\u{0}\u{ffff}{\"type\":\"\u{1F600}\"}",
        ];
        for s in samples {
            for (i, _) in s.char_indices() {
                let _ = parse_client_message(&s[..i]);
            }
        }
    }
}
