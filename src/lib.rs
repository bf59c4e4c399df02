//! oriel: a remote-desktop streaming agent. Captures the desktop once,
//! encodes it once and serves it over WebRTC to every browser that joins.
//!
//! Layout (arrows point one way, `docs/architecture.md` is the map): `main`
//! parses the command line; `agent` wires the parts of `serve`, `cli` runs
//! the other commands; `signalling` and `session` drive `media`; `media`,
//! `desktop` and `session` know nothing of the web (`tests/layout.rs`).

pub mod agent;
pub mod cli;
pub mod config;
pub mod desktop;
pub use oriel_input as input;
pub mod media;
pub mod metrics;
pub use oriel_protocol as protocol;
pub mod publish;
pub mod session;
pub mod signalling;
pub mod systemd;
pub mod tls;
pub mod watchdog;
