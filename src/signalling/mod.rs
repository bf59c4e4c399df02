//! Signalling: the warp server that carries the JSON protocol
//! (`crate::protocol`, the `oriel-protocol` crate) over a WebSocket next to
//! the web client.
//!
//! `server` puts the routes together; `listener` accepts connections (and
//! TLS, `tls`) within the HTTP connection limits; `upgrade` turns `/ws`
//! into a WebSocket within the session limits (`limits`); `session` runs
//! one socket; `actor` owns the room. What was refused or cut off is
//! counted in `counters`.

mod actor;
pub mod assets;
pub mod control;
pub mod counters;
pub mod limits;
mod listener;
pub mod send_socket;
pub mod server;
mod session;
pub mod tls;
mod upgrade;
