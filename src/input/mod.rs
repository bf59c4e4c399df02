//! Input: what browsers send on their data channels and how it reaches the
//! desktop. Nothing here knows about WebSockets or roles' credentials; the
//! session layer says who may send what.

pub mod gamepad;
pub mod keymap;
pub mod protocol;
