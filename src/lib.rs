//! oriel: a remote-desktop streaming agent. Captures the desktop once,
//! encodes it once and serves it over WebRTC to every browser that joins.
//!
//! Layout (arrows point one way): `main` wires things; `signalling` and
//! `session` drive `media`; `media` and `desktop` know nothing of the web.

pub mod config;
pub mod config_file;
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
