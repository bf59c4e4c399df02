//! Routing through the room: messages out of order, candidates checked,
//! media events to their client only, the capture's state to everyone.

use super::test_support::{error_code, hello, host_candidate, join, room};
use super::{Input, Output};
use crate::media::service::MediaEvent;
use crate::protocol::{CaptureState, ClientMessage, ErrorCode, ServerMessage};

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
