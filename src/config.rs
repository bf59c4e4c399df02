//! Command-line configuration. Every flag can also be given as an `ORIEL_*`
//! environment variable (CLI wins).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::media::ice::{IceServers, Secret, StunUrl, TurnAuth, TurnUrl};

#[derive(Debug, Parser)]
#[command(
    name = "oriel",
    version,
    about = "Stream this Linux desktop to browsers over WebRTC: capture once, encode once, one peer per browser.",
    long_about = None
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log filter, e.g. `info`, `debug`, `oriel=debug,warn`.
    #[arg(
        long,
        env = "ORIEL_LOG",
        help_heading = "Global",
        default_value = "info",
        global = true
    )]
    pub log_level: String,

    /// Log format: `auto` (plain text; without timestamps or colours under
    /// systemd, since journald adds its own), `text`, or `json` (one object
    /// per line, fields included).
    #[arg(
        long,
        env = "ORIEL_LOG_FORMAT",
        help_heading = "Global",
        value_enum,
        default_value = "auto",
        global = true
    )]
    pub log_format: LogFormat,

    /// Configuration file (TOML; its keys are the long flag names, e.g.
    /// `bitrate = 6000`). Default `$XDG_CONFIG_HOME/oriel/config.toml`,
    /// read when it exists. Precedence: flags > ORIEL_* > file > defaults.
    #[arg(
        long,
        env = "ORIEL_CONFIG",
        help_heading = "Global",
        global = true,
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Auto,
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the desktop: web client, signalling and media on one port.
    Serve(Box<ServeArgs>),
    /// Show every capture backend and encoder, whether it works here and
    /// which ones `serve` would pick.
    Probe(MediaArgs),
    /// Mint, list and revoke links (controller, viewer, player).
    Link(LinkArgs),
    /// Start or stop publishing into an SFU on the running agent, or show
    /// its state (the same control as the controller's page).
    Publish(ControlArgs),
    /// Start or stop recording on the running agent, or show its state.
    Record(ControlArgs),
    /// Print the effective configuration of `serve` (with the same flags)
    /// and where each value came from: flag, environment, file or default.
    Config(Box<ServeArgs>),
}

#[derive(Debug, Clone, Args)]
pub struct StateArgs {
    /// Where the link secret and link list live (default
    /// `$XDG_STATE_HOME/oriel`, i.e. `~/.local/state/oriel`).
    #[arg(long, env = "ORIEL_STATE_DIR", help_heading = "Global", global = true)]
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LinkArgs {
    #[command(subcommand)]
    pub command: LinkCommand,
    #[command(flatten)]
    pub state: StateArgs,
}

/// `oriel publish` / `oriel record`: talks to the running agent's
/// `/api/control` with the controller link `serve` keeps in the state
/// directory.
#[derive(Debug, Args)]
pub struct ControlArgs {
    #[arg(value_enum)]
    pub action: ControlAction,
    /// Which publish target (its `name=`), when several are configured.
    pub target: Option<String>,
    /// The running agent's address.
    #[arg(
        long = "public-url",
        visible_alias = "url",
        env = "ORIEL_PUBLIC_URL",
        default_value = "http://127.0.0.1:8080/"
    )]
    pub url: String,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ControlAction {
    Start,
    Stop,
    Status,
}

/// Who a link lets in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleChoice {
    /// Keyboard, mouse and gamepad 1; one at a time.
    Controller,
    /// Watches only.
    Viewer,
    /// Drives one gamepad slot (`--slot`, 2..N).
    Player,
}

#[derive(Debug, Subcommand)]
pub enum LinkCommand {
    /// Mint a link and print its URL (the token travels in the URL fragment).
    Create {
        #[arg(long, value_enum)]
        role: RoleChoice,
        /// Gamepad slot for a player link (2..=16).
        #[arg(long, value_parser = clap::value_parser!(u8).range(2..=16))]
        slot: Option<u8>,
        /// Lifetime: e.g. `30m`, `2h`, `7d`, or `never`.
        #[arg(long, default_value = "24h")]
        ttl: String,
        /// A note shown by `oriel link list`.
        #[arg(long)]
        label: Option<String>,
        /// A viewer link that watches through the SFU oriel publishes into
        /// (`--publish janus:...`) instead of a connection to this desktop:
        /// for audiences beyond its uplink.
        #[arg(long)]
        via_sfu: bool,
        /// The agent's address as browsers reach it.
        #[arg(
            long = "public-url",
            visible_alias = "url",
            env = "ORIEL_PUBLIC_URL",
            default_value = "http://127.0.0.1:8080/"
        )]
        url: String,
    },
    /// List links with their role, expiry and state.
    List,
    /// Revoke a link; connected clients using it are disconnected.
    Revoke {
        /// The link id shown by `oriel link list`.
        id: String,
    },
}

/// Which desktop to capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CaptureChoice {
    /// Wayland in a Wayland session, else `$DISPLAY` when set, else a
    /// virtual X display started by oriel.
    Auto,
    /// The X11 display named by `$DISPLAY` (or `--display`).
    X11,
    /// Wayland through the ScreenCast portal (xdg-desktop-portal).
    Wayland,
    /// A moving test pattern; needs no display.
    Test,
}

/// Options shared by `serve` and `probe`: what to capture and how to encode.
#[derive(Debug, Clone, Args)]
pub struct MediaArgs {
    /// Capture backend.
    #[arg(
        long,
        env = "ORIEL_CAPTURE",
        help_heading = "Capture and encoding",
        value_enum,
        default_value = "auto"
    )]
    pub capture: CaptureChoice,

    /// Wayland: the monitor to show, numbered from 1 left to right. `auto`:
    /// the portal's dialog offers one. A number lets the dialog select
    /// several, and the log lists the shared ones with their numbers.
    #[arg(long, env = "ORIEL_MONITOR", help_heading = "Capture and encoding", default_value = "auto", value_parser = parse_monitor)]
    pub monitor: MonitorChoice,

    /// X display to capture (default: `$DISPLAY`).
    #[arg(long, env = "ORIEL_DISPLAY", help_heading = "Capture and encoding")]
    pub display: Option<String>,

    /// Size of the virtual display oriel starts when there is no `$DISPLAY`,
    /// and of the test pattern.
    #[arg(long, env = "ORIEL_VIRTUAL_DISPLAY_SIZE", help_heading = "Capture and encoding", default_value = "1280x720", value_parser = parse_size)]
    pub virtual_display_size: (u32, u32),

    /// Command started inside the virtual display (e.g. `xterm`), stopped with oriel.
    #[arg(long, env = "ORIEL_SESSION_CMD", help_heading = "Capture and encoding")]
    pub session_cmd: Option<String>,

    /// Capture frame rate.
    #[arg(long, env = "ORIEL_FRAMERATE", help_heading = "Capture and encoding", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=240))]
    pub framerate: u32,

    /// Video bitrate in kbit/s.
    #[arg(long, env = "ORIEL_BITRATE", help_heading = "Capture and encoding", default_value_t = 4000, value_parser = clap::value_parser!(u32).range(100..=200_000))]
    pub bitrate: u32,

    /// Force one encoder (see `oriel probe`); default: the best one that works.
    #[arg(long, env = "ORIEL_ENCODER", help_heading = "Capture and encoding")]
    pub encoder: Option<String>,

    /// Directory whose `pipelines/*.txt` override the built-in fragments.
    #[arg(long, env = "ORIEL_CONFIG_DIR", help_heading = "Capture and encoding")]
    pub config_dir: Option<PathBuf>,
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

/// Whether and how to serve HTTPS/WSS (see `oriel::tls::mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TlsChoice {
    /// Plain HTTP on loopback, self-signed HTTPS beyond it.
    Auto,
    /// Always HTTPS with a self-signed certificate kept in the state directory.
    SelfSigned,
    /// Plain HTTP (beyond loopback only with `--insecure-http`).
    Off,
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

/// Which of the shared monitors a Wayland capture shows (`--monitor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonitorChoice {
    Auto,
    /// 1 is the leftmost.
    Number(u32),
}

impl MonitorChoice {
    pub fn number(self) -> Option<u32> {
        match self {
            MonitorChoice::Auto => None,
            MonitorChoice::Number(n) => Some(n),
        }
    }
}

pub fn parse_monitor(s: &str) -> Result<MonitorChoice, String> {
    match s.trim() {
        "auto" => Ok(MonitorChoice::Auto),
        n => match n.parse::<u32>() {
            Ok(n @ 1..=64) => Ok(MonitorChoice::Number(n)),
            _ => Err(format!(
                "`{s}`: expected auto or a monitor number from 1 (leftmost)"
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

/// Parses `WIDTHxHEIGHT`.
pub fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("`{s}` is not WIDTHxHEIGHT, e.g. 1280x720"))?;
    let w: u32 = w
        .trim()
        .parse()
        .map_err(|_| format!("bad width in `{s}`"))?;
    let h: u32 = h
        .trim()
        .parse()
        .map_err(|_| format!("bad height in `{s}`"))?;
    if !(16..=8192).contains(&w) || !(16..=8192).contains(&h) {
        return Err(format!("`{s}`: width and height must be within 16..=8192"));
    }
    if !w.is_multiple_of(2) || !h.is_multiple_of(2) {
        return Err(format!(
            "`{s}`: width and height must be even (H.264 4:2:0)"
        ));
    }
    Ok((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_reject() {
        assert_eq!(parse_size("1280x720"), Ok((1280, 720)));
        assert_eq!(parse_size("1920X1080"), Ok((1920, 1080)));
        assert!(parse_size("1280").is_err());
        assert!(parse_size("axb").is_err());
        assert!(parse_size("1281x720").is_err());
        assert!(parse_size("0x0").is_err());
    }

    #[test]
    fn monitors_parse_and_reject() {
        assert_eq!(parse_monitor("auto"), Ok(MonitorChoice::Auto));
        assert_eq!(parse_monitor("2"), Ok(MonitorChoice::Number(2)));
        assert!(parse_monitor("0").is_err(), "numbered from 1");
        assert!(parse_monitor("-1").is_err());
        assert!(parse_monitor("left").is_err());
    }

    fn serve(args: &[&str]) -> Result<ServeArgs, String> {
        let cli = Cli::try_parse_from(["oriel", "serve"].iter().chain(args))
            .map_err(|e| e.to_string())?;
        match cli.command {
            Command::Serve(s) => Ok(*s),
            _ => Err("not serve".into()),
        }
    }

    #[test]
    fn turn_flags_combine_or_fail_clearly() {
        let s = serve(&["--turn", "turn:127.0.0.1:3478", "--turn-secret", "s"]).unwrap();
        let ice = s.ice_servers().unwrap();
        assert!(
            matches!(ice.turn, Some((_, TurnAuth::Rest { ttl, .. })) if ttl == Duration::from_secs(12 * 3600))
        );

        let s = serve(&[
            "--turn",
            "turn:h",
            "--turn-username",
            "u",
            "--turn-password",
            "p",
        ])
        .unwrap();
        assert!(matches!(
            s.ice_servers().unwrap().turn,
            Some((_, TurnAuth::Static { .. }))
        ));

        // Secret and static credentials exclude each other.
        let e = serve(&[
            "--turn",
            "turn:h",
            "--turn-secret",
            "s",
            "--turn-username",
            "u",
            "--turn-password",
            "p",
        ])
        .unwrap_err();
        assert!(e.contains("cannot be used with"), "{e}");
        // A username alone is not enough.
        assert!(serve(&["--turn", "turn:h", "--turn-username", "u"]).is_err());
        // TURN without credentials, credentials without TURN.
        assert!(serve(&["--turn", "turn:h"]).unwrap().ice_servers().is_err());
        assert!(serve(&["--turn-secret", "s"])
            .unwrap()
            .ice_servers()
            .is_err());
        // A bad URL names itself.
        let e = serve(&["--turn", "turn:h:3478?transport=sctp", "--turn-secret", "s"]).unwrap_err();
        assert!(e.contains("transport=sctp"), "{e}");
        assert!(serve(&[
            "--turn",
            "turn:h",
            "--turn-secret",
            "s",
            "--turn-ttl",
            "never"
        ])
        .is_err());
        // The secret is not in the parsed arguments' debug output.
        let s = serve(&["--turn", "turn:h", "--turn-secret", "hunter2"]).unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn tls_flags_parse() {
        let serve = |args: &[&str]| {
            let mut all = vec!["oriel", "serve"];
            all.extend_from_slice(args);
            match Cli::try_parse_from(all).map(|c| c.command) {
                Ok(Command::Serve(s)) => Ok(s),
                Ok(_) => panic!("not serve"),
                Err(e) => Err(e),
            }
        };
        let s = serve(&[]).unwrap();
        assert_eq!(s.tls, TlsChoice::Auto);
        assert!(!s.insecure_http && s.tls_cert.is_none() && s.tls_key.is_none());
        let s = serve(&["--tls", "self-signed", "--tls-cert", "c", "--tls-key", "k"]).unwrap();
        assert_eq!(s.tls, TlsChoice::SelfSigned);
        assert_eq!(s.tls_cert, Some(PathBuf::from("c")));
        let s = serve(&["--tls", "off", "--insecure-http"]).unwrap();
        assert!(s.tls == TlsChoice::Off && s.insecure_http);
        assert!(serve(&["--tls", "maybe"]).is_err());
    }

    #[test]
    fn playout_delay_bounds() {
        let cli = Cli::try_parse_from([
            "oriel",
            "serve",
            "--playout-delay-min",
            "100",
            "--playout-delay-max",
            "50",
        ])
        .unwrap();
        let Command::Serve(s) = cli.command else {
            panic!("not serve")
        };
        assert!(s.playout_delay().is_err());
        assert!(Cli::try_parse_from(["oriel", "serve", "--playout-delay-max", "50000"]).is_err());
    }
}
