//! The participants list through the room: sent to everyone on join and
//! leave, with cleaned names.

use super::test_support::{join, room};
use super::{ClientId, Input, Output};
use crate::protocol::{ClientMessage, Participant, ServerMessage};

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
