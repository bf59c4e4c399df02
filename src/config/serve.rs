//! `oriel serve`: everything the agent is told at start.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{MediaArgs, StateArgs};
use crate::media::ice::{IceServers, Secret, StunUrl, TurnAuth, TurnUrl};
pub use crate::tls::mode::TlsChoice;

/// Who draws the pointer (`--pointer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PointerMode {
    /// The pages, from the desktop's pointer images and places.
    Page,
    /// The capture, into the picture every client gets.
    Video,
}

/// Whether the controller's page resizes the desktop (`--resize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ResizeMode {
    /// On for oriel's own virtual display, off otherwise.
    Auto,
    On,
    Off,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub media: MediaArgs,

    /// Address for HTTP(S) and WebSocket. Anything but loopback is reachable
    /// by others: there oriel serves HTTPS unless told otherwise (`--tls`).
    #[arg(
        long,
        env = "ORIEL_LISTEN",
        help_heading = "Serving",
        default_value = "127.0.0.1:8080"
    )]
    pub listen: SocketAddr,

    /// The desktop's clipboard shared with the controller's page, both
    /// ways (X11; `off`: neither way).
    #[arg(long, env = "ORIEL_CLIPBOARD", help_heading = "Serving", default_value = "on", value_parser = parse_on_off)]
    pub clipboard: bool,

    /// Files both ways with the controller's page: what it uploads (dropped
    /// on the page or picked) is saved on the desktop, and `oriel send FILE`
    /// on the desktop offers files to it (`off`: neither).
    #[arg(long, env = "ORIEL_FILES", help_heading = "Serving", default_value = "on", value_parser = parse_on_off)]
    pub files: bool,

    /// Where uploads are saved [default: $XDG_DOWNLOAD_DIR, else ~/Downloads].
    #[arg(long, env = "ORIEL_UPLOAD_DIR", help_heading = "Serving")]
    pub upload_dir: Option<PathBuf>,

    /// The largest file the controller may upload, in bytes.
    #[arg(long, env = "ORIEL_UPLOAD_MAX_BYTES", help_heading = "Serving", default_value_t = 2 << 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub upload_max_bytes: u64,

    /// Who draws the pointer. `page`: each page draws it from the desktop's
    /// pointer images, so the controller's moves with its own mouse, with
    /// no delay, and viewers draw the remote one where it is (X11; Wayland
    /// draws it into the stream). `video`: drawn into the stream.
    #[arg(
        long,
        env = "ORIEL_POINTER",
        help_heading = "Serving",
        value_enum,
        default_value = "page"
    )]
    pub pointer: PointerMode,

    /// The desktop takes the size of the controller's window (device
    /// pixels, through RandR). `auto`: on for oriel's own virtual display
    /// (up to 3840x2160), off on a real user's X display, where `on` makes
    /// it so (never silently: the user's own monitor changes mode).
    #[arg(
        long,
        env = "ORIEL_RESIZE",
        help_heading = "Serving",
        value_enum,
        default_value = "auto"
    )]
    pub resize: ResizeMode,

    /// The largest text clipboard passed either way, in bytes.
    #[arg(long, env = "ORIEL_CLIPBOARD_MAX_TEXT", help_heading = "Serving", default_value_t = 1 << 20, value_parser = clap::value_parser!(u64).range(1..=(64 << 20)))]
    pub clipboard_max_text: u64,

    /// The largest image clipboard (PNG) passed either way, in bytes.
    #[arg(long, env = "ORIEL_CLIPBOARD_MAX_IMAGE", help_heading = "Serving", default_value_t = 8 << 20, value_parser = clap::value_parser!(u64).range(1..=(64 << 20)))]
    pub clipboard_max_image: u64,

    /// At most one forced keyframe per this many milliseconds; requests in
    /// between are coalesced into the next one.
    #[arg(
        long,
        env = "ORIEL_KEYFRAME_INTERVAL_MS",
        help_heading = "Capture and encoding",
        default_value_t = 250
    )]
    pub keyframe_interval_ms: u64,

    /// Playout-delay RTP extension sent to browsers, minimum (ms, 0..=40950).
    #[arg(long, env = "ORIEL_PLAYOUT_DELAY_MIN", help_heading = "Capture and encoding", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=40950))]
    pub playout_delay_min: u32,

    /// Playout-delay RTP extension sent to browsers, maximum (ms, 0..=40950).
    #[arg(long, env = "ORIEL_PLAYOUT_DELAY_MAX", help_heading = "Capture and encoding", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=40950))]
    pub playout_delay_max: u32,

    /// Do not send the playout-delay extension at all (the browser then
    /// buffers frames for smoothness).
    #[arg(
        long,
        env = "ORIEL_NO_PLAYOUT_DELAY",
        help_heading = "Capture and encoding"
    )]
    pub no_playout_delay: bool,

    /// Record the shared stream from the start, without re-encoding, until
    /// oriel stops: a file ending in `.mkv` (Matroska; a killed agent
    /// still leaves a playable file), or an existing directory for
    /// `oriel-YYYYMMDD-HHMMSSZ.mkv` (UTC) inside. An existing file is never
    /// overwritten: `NAME-2.mkv`, `NAME-3.mkv`, ... are used instead, also
    /// for the next file after the capture was lost and came back.
    /// Recording keeps the capture running with nobody watching.
    #[arg(
        long,
        env = "ORIEL_RECORD",
        help_heading = "Recording",
        value_name = "PATH"
    )]
    pub record: Option<PathBuf>,

    /// Maximum number of connected clients.
    #[arg(long, env = "ORIEL_MAX_CLIENTS", help_heading = "Serving", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_clients: u32,

    /// Most WebSocket connections open at once, joined or not; further
    /// ones are refused (HTTP 503). Plain HTTP connections (page loads,
    /// scrapes) are counted apart against the same number. At least
    /// --max-clients.
    #[arg(long, env = "ORIEL_MAX_CONNECTIONS", help_heading = "Serving", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub max_connections: u32,

    /// Most WebSocket connections from one address (an IPv4 address or an
    /// IPv6 /64) at once; further ones are refused (HTTP 429). Everyone
    /// behind one NAT or reverse proxy shares it. Plain HTTP connections
    /// are counted apart against the same number.
    #[arg(long, env = "ORIEL_MAX_CONNECTIONS_PER_ADDRESS", help_heading = "Serving", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub max_connections_per_address: u32,

    /// Keep capturing this long after the last client left, so a reload
    /// does not restart the encoder (ms).
    #[arg(
        long,
        env = "ORIEL_IDLE_STOP_MS",
        help_heading = "Capture and encoding",
        default_value_t = 2000
    )]
    pub idle_stop_ms: u64,

    /// Extra allowed WebSocket `Origin`s (the agent's own origin is always allowed).
    #[arg(
        long = "allow-origin",
        env = "ORIEL_ALLOW_ORIGINS",
        help_heading = "Serving",
        value_delimiter = ','
    )]
    pub allow_origins: Vec<String>,

    /// STUN server for the agent and every browser: `stun:host:port`
    /// (`stun://host:port` works too).
    #[arg(long, env = "ORIEL_STUN", help_heading = "ICE servers (STUN/TURN)", value_parser = StunUrl::parse)]
    pub stun: Option<StunUrl>,

    /// TURN server for the agent and every browser:
    /// `turn:host:port?transport=udp|tcp`, or `turns:` for TURN over TLS.
    /// Needs --turn-secret, or --turn-username and --turn-password.
    #[arg(long, env = "ORIEL_TURN", help_heading = "ICE servers (STUN/TURN)", value_parser = TurnUrl::parse)]
    pub turn: Option<TurnUrl>,

    /// Static TURN username (coturn `user=NAME:PASSWORD`), shared by all sessions.
    #[arg(
        long,
        env = "ORIEL_TURN_USERNAME",
        help_heading = "ICE servers (STUN/TURN)",
        requires = "turn_password"
    )]
    pub turn_username: Option<String>,

    /// Static TURN password; never logged.
    #[arg(long, env = "ORIEL_TURN_PASSWORD", help_heading = "ICE servers (STUN/TURN)", requires = "turn_username", value_parser = parse_secret)]
    pub turn_password: Option<Secret>,

    /// TURN REST shared secret (coturn `use-auth-secret`,
    /// `static-auth-secret`): each session gets its own credentials that
    /// expire after --turn-ttl. Never logged. Excludes static credentials.
    #[arg(
        long,
        env = "ORIEL_TURN_SECRET", help_heading = "ICE servers (STUN/TURN)",
        value_parser = parse_secret,
        conflicts_with_all = ["turn_username", "turn_password"]
    )]
    pub turn_secret: Option<Secret>,

    /// Lifetime of minted TURN credentials (`--turn-secret`): e.g. `30m`, `12h`, `2d`.
    #[arg(long, env = "ORIEL_TURN_TTL", help_heading = "ICE servers (STUN/TURN)", default_value = "12h", value_parser = parse_turn_ttl)]
    pub turn_ttl: Duration,

    /// Publish the shared encode into an SFU, for audiences larger than
    /// this desktop can serve (repeatable): `janus:URL,room=N[,id=N]`
    /// (Janus VideoRoom over its HTTP API, e.g. http://host:8088/janus) or
    /// `whip:URL` (any WHIP endpoint). Options: `name=NAME`,
    /// `start=auto|manual` (publish at startup, the default, or when the
    /// controller or `oriel publish start` asks), for Janus
    /// `public=URL` (its API as browsers reach it, for `--via-sfu` links).
    #[arg(
        long,
        env = "ORIEL_PUBLISH",
        help_heading = "Publishing (SFU)",
        value_delimiter = ';',
        value_parser = crate::publish::target::parse
    )]
    pub publish: Vec<crate::publish::target::Target>,

    /// The Janus room's `secret`: lets oriel remove its own stale publisher
    /// (left by a crash) instead of waiting up to a minute. Never logged.
    #[arg(long, env = "ORIEL_JANUS_SECRET", help_heading = "Publishing (SFU)", value_parser = parse_secret)]
    pub janus_secret: Option<Secret>,

    /// The Janus room's `pin`, if it has one; also given to `--via-sfu`
    /// viewers. Never logged.
    #[arg(long, env = "ORIEL_JANUS_PIN", help_heading = "Publishing (SFU)", value_parser = parse_secret)]
    pub janus_pin: Option<Secret>,

    /// Bearer token for WHIP endpoints. Never logged.
    #[arg(long, env = "ORIEL_WHIP_TOKEN", help_heading = "Publishing (SFU)", value_parser = parse_secret)]
    pub whip_token: Option<Secret>,

    /// Highest player slot: players own gamepads 2..=N.
    #[arg(long, env = "ORIEL_MAX_PLAYERS", help_heading = "Serving", default_value_t = 4, value_parser = clap::value_parser!(u8).range(2..=16))]
    pub max_players: u8,

    /// The agent's address as browsers reach it, for printed links
    /// (default: http(s)://LISTEN/); its host joins the self-signed
    /// certificate's names.
    #[arg(long, env = "ORIEL_PUBLIC_URL", help_heading = "Serving")]
    pub public_url: Option<String>,

    /// How input is injected: `auto` (uinput when /dev/uinput is writable,
    /// else XTest on the X display, or on Wayland the RemoteDesktop portal
    /// when it can remember its approval), `uinput`, `xtest`, `portal`
    /// (Wayland's RemoteDesktop portal, in the screencast's session),
    /// `record:PATH` (JSON lines, for tests), or `none`.
    #[arg(long, env = "ORIEL_INPUT", help_heading = "Serving", default_value = "auto", value_parser = parse_input)]
    pub input: InputChoice,

    /// HTTPS/WSS: `auto` (plain HTTP on a loopback address, a self-signed
    /// certificate beyond loopback), `self-signed` (always) or `off`.
    #[arg(
        long,
        env = "ORIEL_TLS",
        help_heading = "TLS",
        value_enum,
        default_value = "auto"
    )]
    pub tls: TlsChoice,

    /// PEM certificate chain to serve (with `--tls-key`); replaces the
    /// self-signed one.
    #[arg(long, env = "ORIEL_TLS_CERT", help_heading = "TLS")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for `--tls-cert`.
    #[arg(long, env = "ORIEL_TLS_KEY", help_heading = "TLS")]
    pub tls_key: Option<PathBuf>,

    /// Allow plain HTTP on an address other machines can reach (tokens and
    /// input then travel unencrypted).
    #[arg(long, env = "ORIEL_INSECURE_HTTP", help_heading = "TLS")]
    pub insecure_http: bool,

    #[command(flatten)]
    pub state: StateArgs,
}

/// Where input goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputChoice {
    Auto,
    Uinput,
    XTest,
    /// Wayland's RemoteDesktop portal, in the screencast's session.
    Portal,
    Record(PathBuf),
    None,
}

pub fn parse_input(s: &str) -> Result<InputChoice, String> {
    match s {
        "auto" => Ok(InputChoice::Auto),
        "xtest" => Ok(InputChoice::XTest),
        "uinput" => Ok(InputChoice::Uinput),
        "none" => Ok(InputChoice::None),
        "portal" => Ok(InputChoice::Portal),
        _ => match s.strip_prefix("record:") {
            Some(path) if !path.is_empty() => Ok(InputChoice::Record(PathBuf::from(path))),
            _ => Err(format!(
                "`{s}`: expected auto, uinput, xtest, portal, record:PATH or none"
            )),
        },
    }
}

impl ServeArgs {
    pub fn keyframe_interval(&self) -> Duration {
        Duration::from_millis(self.keyframe_interval_ms)
    }

    /// The STUN and TURN servers, checked for consistency: a TURN server
    /// needs credentials, credentials need a TURN server.
    pub fn ice_servers(&self) -> Result<IceServers, String> {
        let auth = match (&self.turn_secret, &self.turn_username, &self.turn_password) {
            (Some(secret), _, _) => Some(TurnAuth::Rest {
                secret: secret.clone(),
                ttl: self.turn_ttl,
            }),
            (None, Some(username), Some(password)) => Some(TurnAuth::Static {
                username: username.clone(),
                password: password.clone(),
            }),
            _ => None,
        };
        let turn = match (&self.turn, auth) {
            (Some(url), Some(auth)) => Some((url.clone(), auth)),
            (Some(_), None) => return Err(
                "--turn needs credentials: --turn-secret, or --turn-username and --turn-password"
                    .into(),
            ),
            (None, Some(_)) => return Err("TURN credentials were given without --turn".into()),
            (None, None) => None,
        };
        Ok(IceServers {
            stun: self.stun.clone(),
            turn,
        })
    }

    /// The connection limits, checked against --max-clients: every client
    /// that may join needs a connection.
    pub fn connection_limits(&self) -> Result<crate::signalling::limits::Limits, String> {
        if self.max_connections < self.max_clients {
            return Err(format!(
                "--max-connections ({}) is lower than --max-clients ({}): every client needs a connection",
                self.max_connections, self.max_clients
            ));
        }
        Ok(crate::signalling::limits::Limits {
            per_address: self.max_connections_per_address as usize,
            total: self.max_connections as usize,
        })
    }

    /// `(min, max)` in milliseconds, or `None` when disabled.
    pub fn playout_delay(&self) -> Result<Option<(u32, u32)>, String> {
        if self.no_playout_delay {
            return Ok(None);
        }
        if self.playout_delay_min > self.playout_delay_max {
            return Err(format!(
                "--playout-delay-min ({}) is larger than --playout-delay-max ({})",
                self.playout_delay_min, self.playout_delay_max
            ));
        }
        Ok(Some((self.playout_delay_min, self.playout_delay_max)))
    }
}

fn parse_secret(s: &str) -> Result<Secret, String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    Ok(Secret::new(s))
}

fn parse_turn_ttl(s: &str) -> Result<Duration, String> {
    match crate::session::links::parse_ttl(s)? {
        Some(secs) => Ok(Duration::from_secs(secs)),
        None => Err("TURN credentials must expire: give a duration such as 12h".into()),
    }
}

/// `on` or `off` (also `true`/`false`, `yes`/`no`, `1`/`0`).
fn parse_on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        _ => Err(format!("`{s}`: say on or off")),
    }
}
