//! Sessions: who is connected and what each is allowed to do. The room is a
//! plain state machine (messages in, messages out) with no sockets or
//! GStreamer inside, so it is tested by feeding it messages.

pub mod cooldown;
pub mod limiter;
pub mod links;
pub use oriel_input::roles;
pub mod room;
pub mod token;
