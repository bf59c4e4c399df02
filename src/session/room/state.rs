//! What the room keeps per WebSocket connection: the client and, once it
//! has joined, its media session.

use std::collections::BTreeMap;

use super::types::ClientId;
use crate::media::PeerId;
use crate::session::roles::Role;

/// Every connected client, in connection-id order.
pub(super) type Clients = BTreeMap<ClientId, Client>;

#[derive(Debug, Default)]
pub(super) struct Client {
    pub(super) session: Option<Session>,
}

#[derive(Debug)]
pub(super) struct Session {
    pub(super) peer: PeerId,
    pub(super) role: Role,
    pub(super) link_id: String,
    pub(super) name: String,
    pub(super) offered: bool,
    pub(super) answered: bool,
}
