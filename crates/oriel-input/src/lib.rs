//! Input: what browsers send on their data channels and how it reaches the
//! desktop. Nothing here knows about WebSockets, tokens or GStreamer; the
//! session layer tells the input service each peer's role.

pub mod backend;
pub mod failover;
pub mod flood;
pub mod gamepad;
pub mod keymap;
pub mod protocol;
pub mod record;
pub mod roles;
pub mod service;
pub mod uinput;
pub mod xtest;

/// Identifies one client's session (the agent's media peer id).
pub type PeerId = u64;
