//! What `serve` checks before anything starts: a refused TLS setup, a bad
//! ICE or publish configuration or an unusable recording path fails here,
//! before any capture begins.

use anyhow::Result;

use crate::config::ServeArgs;
use crate::media::ice::{IceServers, TurnAuth};
use crate::tls::cert::Loaded;
use crate::tls::mode::Decision;

/// The settings `serve` derives from its flags and has checked.
pub struct Checked {
    pub playout_delay: Option<(u32, u32)>,
    pub limits: crate::signalling::limits::Limits,
    pub ice_servers: IceServers,
    pub tls_decision: Decision,
    /// The certificate served, and where it came from.
    pub tls: Option<(Loaded, String)>,
}

pub fn check(args: &ServeArgs) -> Result<Checked> {
    let playout_delay = args.playout_delay().map_err(anyhow::Error::msg)?;
    let limits = args.connection_limits().map_err(anyhow::Error::msg)?;
    if args.media.min_bitrate > args.media.bitrate {
        anyhow::bail!(
            "--min-bitrate ({}) is larger than --bitrate ({})",
            args.media.min_bitrate,
            args.media.bitrate
        );
    }
    let ice_servers = args.ice_servers().map_err(anyhow::Error::msg)?;
    log_ice_servers(&ice_servers);
    crate::publish::target::check_unique(&args.publish).map_err(anyhow::Error::msg)?;

    // TLS first: a refused or broken setup should fail before any capture starts.
    let tls_decision = crate::tls::mode::decide(
        args.tls,
        args.tls_cert.clone(),
        args.tls_key.clone(),
        args.listen,
        args.insecure_http,
    )
    .map_err(anyhow::Error::msg)?;
    let tls = crate::tls::setup(
        &tls_decision,
        &args.state.dir()?,
        args.listen,
        args.public_url.as_deref(),
    )?;

    if let Some(path) = &args.record {
        // A bad path fails at start, not after the capture is up.
        crate::media::recording::check_path(path)?;
    }
    Ok(Checked {
        playout_delay,
        limits,
        ice_servers,
        tls_decision,
        tls,
    })
}

/// Says which ICE servers are in use, never their secrets.
fn log_ice_servers(ice: &IceServers) {
    let auth = match &ice.turn {
        None => "none",
        Some((_, TurnAuth::Static { .. })) => "static username and password",
        Some((_, TurnAuth::Rest { .. })) => "REST credentials minted per session",
    };
    tracing::info!(
        stun = ice
            .stun
            .as_ref()
            .map(|s| s.browser())
            .as_deref()
            .unwrap_or("none"),
        turn = ice.turn_url().as_deref().unwrap_or("none"),
        turn_auth = auth,
        "ICE servers"
    );
}
