//! Seat rules through the room: the role comes from the token, one
//! controller and one player per slot, reconnects replace, capacity; and
//! random sequences that must keep those invariants.

use super::test_support::{added, error_code, hello, host_candidate, join, room};
use super::{Input, Output};
use crate::media::service::MediaEvent;
use crate::protocol::{ClientMessage, ErrorCode};
use crate::session::roles::Role;

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
