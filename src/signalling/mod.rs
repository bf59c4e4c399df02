//! Signalling: the JSON protocol spoken over the WebSocket, and the warp
//! server that carries it next to the web client.

pub mod assets;
pub mod control;
pub mod protocol;
pub mod server;
pub mod tls;
