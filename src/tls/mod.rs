//! TLS for the web port: whether to use it ([`mode`]), and which
//! certificate ([`cert`]). Serving over it lives in `signalling::tls`.

pub mod cert;
pub mod mode;
