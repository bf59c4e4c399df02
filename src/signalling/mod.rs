//! Signalling: the warp server that carries the JSON protocol
//! (`crate::protocol`, the `oriel-protocol` crate) over a WebSocket next to
//! the web client.

pub mod assets;
pub mod control;
pub mod server;
pub mod tls;
