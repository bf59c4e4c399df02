//! Which message goes where: a client's `answer` and `ice` to its media
//! branch (checked against the offer/answer order), and the media side's
//! events to the one client they concern, or to everyone for the capture.

use super::state::{Clients, Session};
use super::types::{Output, Problem};
use crate::media::service::MediaEvent;
use crate::protocol::{CaptureState, ErrorCode, ServerMessage};

/// A client's `answer`, for its media branch.
pub(super) fn answer(session: Option<&mut Session>, sdp: String) -> Result<Output, Problem> {
    let Some(session) = session else {
        return Err((ErrorCode::Unexpected, "`answer` before `hello`".into()));
    };
    if !session.offered {
        return Err((
            ErrorCode::Unexpected,
            "`answer` before the agent's offer".into(),
        ));
    }
    if session.answered {
        return Err((
            ErrorCode::Unexpected,
            "the offer was already answered".into(),
        ));
    }
    session.answered = true;
    Ok(Output::Answer(session.peer, sdp))
}

/// What becomes of a client's ICE candidate.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Candidate {
    /// For the client's media branch.
    Forward(Output),
    /// End of candidates: nothing to do.
    End,
    /// A `.local` (mDNS) address, dropped and counted.
    Mdns,
}

/// A client's `ice`, checked against its session and the offer's m-lines.
pub(super) fn candidate(
    session: Option<&Session>,
    media_lines: u32,
    candidate: String,
    sdp_m_line_index: u32,
) -> Result<Candidate, Problem> {
    let Some(session) = session else {
        return Err((ErrorCode::Unexpected, "`ice` before `hello`".into()));
    };
    if !session.offered {
        return Err((
            ErrorCode::Unexpected,
            "`ice` before the agent's offer".into(),
        ));
    }
    if candidate.is_empty() {
        return Ok(Candidate::End);
    }
    if sdp_m_line_index >= media_lines {
        return Err((
            ErrorCode::Malformed,
            format!(
                "sdpMLineIndex {sdp_m_line_index} does not exist (the offer has {media_lines})"
            ),
        ));
    }
    match candidate_address(&candidate) {
        None => Err((ErrorCode::Malformed, "not an ICE candidate line".into())),
        // Pending mDNS lookups crash webrtcbin 1.22 at teardown;
        // peer-reflexive candidates connect without them.
        Some(addr) if addr.ends_with(".local") => Ok(Candidate::Mdns),
        Some(_) => Ok(Candidate::Forward(Output::Ice(
            session.peer,
            sdp_m_line_index,
            candidate,
        ))),
    }
}

/// What a media event about one peer means for its client.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum ForClient {
    Send(ServerMessage),
    /// An `error` (code `media`); the session goes on.
    Error(String),
    /// The branch failed and is gone on the media side: the session ends.
    Failed(String),
    Nothing,
}

/// The client's share of a media event about its peer; `session` is that
/// client's session.
pub(super) fn for_client(event: MediaEvent, session: Option<&mut Session>) -> ForClient {
    match event {
        MediaEvent::Offer { sdp, .. } => {
            if let Some(s) = session {
                // A new offer (after the capture came back) wants a new answer.
                s.offered = true;
                s.answered = false;
            }
            ForClient::Send(ServerMessage::Offer { sdp })
        }
        MediaEvent::Ice {
            mline, candidate, ..
        } => ForClient::Send(ServerMessage::Ice {
            candidate,
            sdp_m_line_index: mline,
        }),
        MediaEvent::State { state, .. } => ForClient::Send(ServerMessage::PeerState { state }),
        MediaEvent::Error { message, .. } => ForClient::Error(message),
        // Browsers take trickled candidates.
        MediaEvent::GatheringDone { .. } => ForClient::Nothing,
        MediaEvent::CaptureLost { .. }
        | MediaEvent::CaptureWaiting { .. }
        | MediaEvent::CaptureRestored => ForClient::Nothing,
        MediaEvent::PeerFailed { reason, .. } => ForClient::Failed(reason),
        MediaEvent::Link {
            estimate_kbps,
            encoder_kbps,
            loss_permille,
            retransmitted,
            rung,
            ..
        } => ForClient::Send(ServerMessage::Link {
            estimate_kbps,
            encoder_kbps,
            loss_permille,
            retransmitted,
            rung: rung.into(),
        }),
    }
}

/// The capture went away or came back: every joined client hears it.
/// While it is away the media side holds no branches, so nobody has an
/// offer to answer; a fresh one follows when it is back.
pub(super) fn capture(
    clients: &mut Clients,
    lost: Option<&(CaptureState, String)>,
    out: &mut Vec<Output>,
) {
    let msg = match lost {
        Some((state, reason)) => capture_down(*state, reason),
        None => ServerMessage::Capture {
            state: CaptureState::Ok,
            reason: None,
        },
    };
    for (id, c) in clients.iter_mut() {
        if let Some(s) = c.session.as_mut() {
            if lost.is_some() {
                s.offered = false;
                s.answered = false;
            }
            out.push(Output::Send(*id, msg.clone()));
        }
    }
}

pub(super) fn capture_down(state: CaptureState, reason: &str) -> ServerMessage {
    ServerMessage::Capture {
        state,
        reason: Some(reason.into()),
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
