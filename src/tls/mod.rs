//! TLS for the web port: whether to use it ([`mode`]), and which
//! certificate ([`cert`]). Serving over it lives in `signalling::tls`.

pub mod cert;
pub mod mode;

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Result;

/// The certificate to serve for `decision`, and a line saying where it
/// came from; `None` for plain HTTP.
pub fn setup(
    decision: &mode::Decision,
    state_dir: &Path,
    listen: SocketAddr,
    public_url: Option<&str>,
) -> Result<Option<(cert::Loaded, String)>> {
    match decision {
        mode::Decision::Plain { .. } => Ok(None),
        mode::Decision::Given { cert, key } => {
            let loaded = cert::load(cert, key)?;
            Ok(Some((loaded, format!("from {}", cert.display()))))
        }
        mode::Decision::SelfSigned => {
            let names = cert::needed_names(listen, public_url, cert::hostname().as_deref());
            let (c, k, made) = cert::self_signed(&state_dir.join("tls"), &names)?;
            let loaded = cert::load(&c, &k)?;
            let how = if made {
                "new self-signed"
            } else {
                "self-signed"
            };
            Ok(Some((
                loaded,
                format!("{how}, {}, for {}", c.display(), names.join(", ")),
            )))
        }
    }
}
