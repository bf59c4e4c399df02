//! What the room's tests share: a fake token check, a room to test, and
//! shorthands for the messages and outputs they look at.

use super::{ClientId, Credentials, Grant, Input, Output, Room, RoomConfig};
use crate::media::service::MediaEvent;
use crate::media::PeerId;
use crate::protocol::{ClientMessage, ErrorCode, InputInfo, ServerMessage, VideoInfo};
use crate::session::roles::Role;

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

pub(super) fn room(max: usize) -> Room {
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
            clipboard: true,
            resize: true,
        },
        Box::new(FakeCredentials),
    )
}

pub(super) fn hello(token: &str) -> ClientMessage {
    ClientMessage::Hello {
        protocol: 1,
        token: token.into(),
        name: None,
    }
}

pub(super) fn error_code(out: &[Output]) -> Option<ErrorCode> {
    out.iter().find_map(|o| match o {
        Output::Send(_, ServerMessage::Error { code, .. }) => Some(*code),
        _ => None,
    })
}

pub(super) fn added(out: &[Output]) -> Option<(PeerId, Role)> {
    out.iter().find_map(|o| match o {
        Output::AddPeer(p, r) => Some((*p, *r)),
        _ => None,
    })
}

pub(super) fn host_candidate(addr: &str) -> ClientMessage {
    ClientMessage::Ice {
        candidate: format!("candidate:1 1 udp 2122260223 {addr} 54321 typ host generation 0"),
        sdp_m_line_index: 0,
        sdp_mid: Some("video0".into()),
    }
}

/// Joins client `c` with `token` and delivers the agent's offer.
pub(super) fn join(r: &mut Room, c: ClientId, token: &str) -> PeerId {
    r.handle(Input::Connected(c));
    let out = r.handle(Input::Message(c, hello(token)));
    let (peer, _) = added(&out).unwrap_or_else(|| panic!("{token} refused: {out:?}"));
    r.handle(Input::Media(MediaEvent::Offer {
        peer,
        sdp: "v=0".into(),
    }));
    peer
}
