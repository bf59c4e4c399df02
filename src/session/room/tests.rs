//! The room end to end: a whole session, the welcome, the protocol
//! version, `bye` and revocation.

use super::test_support::{error_code, hello, host_candidate, join, room};
use super::{Input, Output};
use crate::media::service::MediaEvent;
use crate::protocol::{ClientMessage, ErrorCode, IceServer, ServerMessage};
use crate::session::roles::Role;

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

/// Input moved from uinput to XTest mid-session: later joiners are told.
#[test]
fn welcome_says_what_injects_input_at_join_time() {
    use std::sync::{Arc, Mutex};
    let now = Arc::new(Mutex::new(("uinput", true)));
    let n = now.clone();
    let mut r = room(4).with_input(Box::new(move || {
        let (backend, gamepads) = *n.lock().unwrap();
        crate::protocol::InputInfo {
            backend: backend.into(),
            gamepads,
        }
    }));
    let mut seen = Vec::new();
    for (c, token) in [(1, "controller:c1"), (2, "viewer:v1")] {
        r.handle(Input::Connected(c));
        let out = r.handle(Input::Message(c, hello(token)));
        match &out[0] {
            Output::Send(_, ServerMessage::Welcome { input, .. }) => {
                seen.push((input.backend.clone(), input.gamepads))
            }
            other => panic!("no welcome: {other:?}"),
        }
        *now.lock().unwrap() = ("xtest", false);
    }
    assert_eq!(
        seen,
        vec![("uinput".to_string(), true), ("xtest".to_string(), false)]
    );
}

#[test]
fn only_the_controller_is_told_it_has_the_clipboard() {
    let mut r = room(4);
    let mut told = Vec::new();
    for (c, token) in [(1, "controller:c1"), (2, "viewer:v1"), (3, "player2:p2")] {
        r.handle(Input::Connected(c));
        match &r.handle(Input::Message(c, hello(token)))[0] {
            Output::Send(_, ServerMessage::Welcome { clipboard, .. }) => told.push(*clipboard),
            other => panic!("no welcome: {other:?}"),
        }
    }
    assert_eq!(told, [true, false, false]);
}

#[test]
fn only_the_controller_resizes_the_desktop() {
    let mut r = room(4);
    let resize = || ClientMessage::Resize {
        width: 1200,
        height: 750,
    };
    r.handle(Input::Connected(9));
    let early = r.handle(Input::Message(9, resize()));
    assert!(
        matches!(
            &early[..],
            [Output::Send(
                9,
                ServerMessage::Error {
                    code: ErrorCode::Unexpected,
                    ..
                }
            )]
        ),
        "{early:?}"
    );
    let mut told = Vec::new();
    for (c, token) in [(1, "controller:c1"), (2, "viewer:v1"), (3, "player2:p2")] {
        r.handle(Input::Connected(c));
        match &r.handle(Input::Message(c, hello(token)))[0] {
            Output::Send(_, ServerMessage::Welcome { resize, .. }) => told.push(*resize),
            other => panic!("no welcome: {other:?}"),
        }
    }
    assert_eq!(told, [true, false, false]);
    assert_eq!(
        r.handle(Input::Message(1, resize())),
        vec![Output::Resize(1200, 750)]
    );
    for c in [2, 3] {
        let out = r.handle(Input::Message(c, resize()));
        assert!(
            matches!(&out[..], [Output::Send(to, ServerMessage::Error { code: ErrorCode::Unauthorized, .. })] if *to == c),
            "{out:?}"
        );
    }
    assert_eq!(r.stats().errors.get(&ErrorCode::Unauthorized), Some(&2));
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
fn bye_removes_peer_and_closes() {
    let mut r = room(4);
    let p = join(&mut r, 1, "viewer:v");
    let out = r.handle(Input::Message(1, ClientMessage::Bye {}));
    assert!(out.contains(&Output::RemovePeer(p)));
    assert!(out.contains(&Output::Close(1)));
    assert!(r.handle(Input::Disconnected(1)).is_empty());
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
fn a_peer_leads_back_to_its_client_until_it_leaves() {
    let mut r = room(4);
    let p1 = join(&mut r, 1, "controller:c1");
    let p2 = join(&mut r, 2, "viewer:v1");
    assert_eq!((r.client_of(p1), r.client_of(p2)), (Some(1), Some(2)));
    r.handle(Input::Disconnected(2));
    assert_eq!(r.client_of(p2), None);
    assert_eq!(r.client_of(999), None);
}
