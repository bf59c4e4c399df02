//! Who is here: the `participants` list every joined client is sent, and
//! the display names it shows.

use super::state::Clients;
use super::types::Output;
use crate::media::PeerId;
use crate::protocol::{Participant, ServerMessage};
use crate::session::roles::Role;

/// Longest display name kept, in characters.
pub const MAX_NAME_CHARS: usize = 32;

/// Everyone's view of who is here, sent to every joined client.
pub(super) fn broadcast(clients: &Clients, out: &mut Vec<Output>) {
    let participants: Vec<Participant> = clients
        .values()
        .filter_map(|c| c.session.as_ref())
        .map(|s| Participant {
            peer_id: s.peer,
            role: s.role.name().into(),
            slot: s.role.gamepad_slot(),
            name: s.name.clone(),
        })
        .collect();
    for (id, c) in clients {
        if c.session.is_some() {
            out.push(Output::Send(
                *id,
                ServerMessage::Participants {
                    participants: participants.clone(),
                },
            ));
        }
    }
}

/// The name a joining peer is shown by: the one it gave, cleaned, or its
/// role and peer id.
pub(super) fn display_name(given: Option<&str>, role: Role, peer: PeerId) -> String {
    clean_name(given).unwrap_or_else(|| format!("{} {peer}", role.name()))
}

/// A display name fit to show others: printable, trimmed, at most
/// [`MAX_NAME_CHARS`]; `None` when nothing is left.
fn clean_name(name: Option<&str>) -> Option<String> {
    let cleaned: String = name?
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect();
    let cleaned = cleaned.trim().to_string();
    (!cleaned.is_empty()).then_some(cleaned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned() {
        assert_eq!(clean_name(Some("  Bob ")), Some("Bob".into()));
        assert_eq!(clean_name(Some("\u{0}\u{1b}[31m")), Some("[31m".into()));
        assert_eq!(clean_name(Some("   ")), None);
        assert_eq!(clean_name(None), None);
        assert_eq!(
            clean_name(Some(&"é".repeat(100))).map(|n| n.chars().count()),
            Some(32)
        );
    }
}
