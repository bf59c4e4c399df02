//! Seat rules: one controller, one player per slot (within the configured
//! slots), viewers unlimited; the same link takes its seat back, another
//! link is refused with `roleTaken`; and the room's overall capacity.

use super::state::Clients;
use super::types::{ClientId, Grant, Problem};
use crate::protocol::ErrorCode;
use crate::session::roles::Role;

/// Where a granted role may sit.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Seat {
    /// Nobody holds it (viewers always get this).
    Free,
    /// This client holds it on the same link: a reconnect, which replaces
    /// the old session.
    Reclaim(ClientId),
    /// The join is refused.
    Refused(Problem),
}

/// The seat `grant` asks for, given who sits where now.
pub(super) fn seat(clients: &Clients, grant: &Grant, max_slot: u8) -> Seat {
    if let Role::Player { slot } = grant.role {
        if slot > max_slot {
            return Seat::Refused((
                ErrorCode::Unauthorized,
                format!("this agent has player slots 2..={max_slot}; the link is for slot {slot}"),
            ));
        }
    }
    // Single seats (controller, each player slot): the same link takes
    // its seat back (a reconnect replaces the old session); another
    // link is refused.
    if grant.role == Role::Viewer {
        return Seat::Free;
    }
    let holder = clients.iter().find_map(|(id, c)| {
        let s = c.session.as_ref()?;
        (s.role == grant.role).then(|| (*id, s.link_id.clone()))
    });
    match holder {
        None => Seat::Free,
        Some((old, link)) if link == grant.link_id => Seat::Reclaim(old),
        Some(_) => {
            let what = match grant.role {
                Role::Player { slot } => format!("player slot {slot} is in use"),
                _ => "a controller is already connected".to_string(),
            };
            Seat::Refused((ErrorCode::RoleTaken, what))
        }
    }
}

/// Whether one more media session fits, with `joined` already served.
pub(super) fn capacity(joined: usize, max_clients: usize) -> Result<(), Problem> {
    if joined >= max_clients {
        return Err((
            ErrorCode::Full,
            format!("the agent already serves its maximum of {max_clients} clients"),
        ));
    }
    Ok(())
}
