//! ICE servers: the STUN and TURN servers handed to each session, in the
//! browser's form (`turn:host:port?transport=udp`, RTCIceServer fields) and
//! in webrtcbin's (`turn://user:pass@host:port`). TURN credentials are either
//! static or minted per session with the TURN REST scheme that coturn's
//! `use-auth-secret` checks: username `<unix expiry>:<label>`, password
//! `base64(HMAC-SHA1(secret, username))`. Secrets never reach `Debug` output.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha1::Sha1;

/// A string that must not appear in logs (a TURN secret or password).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// TURN over UDP or TCP (the `?transport=` query of a TURN URL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// `host:port` as written in a STUN/TURN URL; IPv6 stays in brackets.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HostPort {
    host: String,
    port: u16,
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

fn parse_host_port(s: &str, default_port: u16, whole: &str) -> Result<HostPort, String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("`{whole}`: unclosed `[` in the IPv6 address"))?;
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("`{whole}`: `{h}` is not an IPv6 address"));
        }
        (format!("[{h}]"), after.strip_prefix(':'))
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (s.to_string(), None),
        }
    };
    let host_ok = !host.is_empty()
        && (host.starts_with('[')
            || host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'));
    if !host_ok {
        return Err(format!("`{whole}`: missing or invalid host"));
    }
    let port = match port {
        None => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => return Err(format!("`{whole}`: `{p}` is not a port (1..=65535)")),
        },
    };
    Ok(HostPort { host, port })
}

/// A STUN server, given as `stun:host[:port]` (browser form) or
/// `stun://host[:port]` (webrtcbin form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StunUrl(HostPort);

impl StunUrl {
    pub fn parse(s: &str) -> Result<Self, String> {
        let rest = s
            .strip_prefix("stun://")
            .or_else(|| s.strip_prefix("stun:"))
            .ok_or_else(|| format!("`{s}`: a STUN URL looks like stun:host:port"))?;
        Ok(StunUrl(parse_host_port(rest, 3478, s)?))
    }
    /// `stun:host:port`, for RTCIceServer.urls.
    pub fn browser(&self) -> String {
        format!("stun:{}", self.0)
    }
    /// `stun://host:port`, for webrtcbin's `stun-server`.
    pub fn webrtcbin(&self) -> String {
        format!("stun://{}", self.0)
    }
}

/// A TURN server: `turn:host[:port][?transport=udp|tcp]` or `turns:...`
/// (TURN over TLS). `turn://` and `turns://` are accepted too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnUrl {
    secure: bool,
    addr: HostPort,
    transport: Option<Transport>,
}

impl TurnUrl {
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad =
            || format!("`{s}`: a TURN URL looks like turn:host:port?transport=udp (or turns:)");
        let (secure, rest) = if let Some(r) = s.strip_prefix("turns:") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("turn:") {
            (false, r)
        } else {
            return Err(bad());
        };
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        if rest.contains('@') {
            return Err(format!(
                "`{s}`: put credentials in --turn-username/--turn-password or --turn-secret, not in the URL"
            ));
        }
        let (hostport, query) = match rest.split_once('?') {
            Some((h, q)) => (h, Some(q)),
            None => (rest, None),
        };
        let transport = match query {
            None => None,
            Some("transport=udp") => Some(Transport::Udp),
            Some("transport=tcp") => Some(Transport::Tcp),
            Some(q) => {
                return Err(format!(
                    "`{s}`: unknown query `{q}`; only transport=udp or transport=tcp"
                ))
            }
        };
        let default_port = if secure { 5349 } else { 3478 };
        Ok(TurnUrl {
            secure,
            addr: parse_host_port(hostport, default_port, s)?,
            transport,
        })
    }

    fn query(&self) -> &'static str {
        match self.transport {
            None => "",
            Some(Transport::Udp) => "?transport=udp",
            Some(Transport::Tcp) => "?transport=tcp",
        }
    }

    /// `turn:host:port[?transport=..]`, for RTCIceServer.urls.
    pub fn browser(&self) -> String {
        let scheme = if self.secure { "turns" } else { "turn" };
        format!("{scheme}:{}{}", self.addr, self.query())
    }

    /// `turn://user:pass@host:port[?transport=..]` for webrtcbin's
    /// `turn-server`. User and password are percent-encoded: a REST username
    /// holds a `:`, a base64 password `/`, `+` and `=`; webrtcbin 1.22
    /// unescapes both.
    pub fn webrtcbin(&self, creds: &TurnCredentials) -> Secret {
        let scheme = if self.secure { "turns" } else { "turn" };
        Secret(format!(
            "{scheme}://{}:{}@{}{}",
            utf8_percent_encode(&creds.username, USERINFO),
            utf8_percent_encode(creds.password.expose(), USERINFO),
            self.addr,
            self.query()
        ))
    }
}

/// Everything but RFC 3986 unreserved characters is escaped.
const USERINFO: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// How the TURN server checks who may allocate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnAuth {
    /// One long-term user for everyone (coturn `user=name:password`).
    Static { username: String, password: Secret },
    /// Minted per session from a secret shared with the TURN server
    /// (coturn `use-auth-secret` + `static-auth-secret`), valid for `ttl`.
    Rest { secret: Secret, ttl: Duration },
}

/// A username and password for one TURN allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnCredentials {
    pub username: String,
    pub password: Secret,
}

/// TURN REST credentials: `username = "<expiry>:<label>"`,
/// `password = base64(HMAC-SHA1(secret, username))`.
pub fn rest_credentials(secret: &Secret, expiry_unix: u64, label: &str) -> TurnCredentials {
    let username = format!("{expiry_unix}:{label}");
    // HMAC accepts keys of any length; new_from_slice cannot fail here.
    let mut mac = match Hmac::<Sha1>::new_from_slice(secret.expose().as_bytes()) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(username.as_bytes());
    let password = Secret(B64.encode(mac.finalize().into_bytes()));
    TurnCredentials { username, password }
}

/// One entry for the browser's RTCPeerConnection (RTCIceServer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserIceServer {
    pub urls: Vec<String>,
    pub username: Option<String>,
    /// Sent to that client only: it needs it to allocate.
    pub credential: Option<String>,
}

/// The URLs webrtcbin gets for one peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentIce {
    /// For `stun-server`.
    pub stun: Option<String>,
    /// For `turn-server` (holds the password).
    pub turn: Option<Secret>,
}

/// The configured STUN and TURN servers; mints what each session gets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IceServers {
    pub stun: Option<StunUrl>,
    pub turn: Option<(TurnUrl, TurnAuth)>,
}

impl IceServers {
    /// Credentials for one party of a session: static ones as configured, or
    /// REST ones that expire `ttl` after `now`, labelled with `label`.
    fn credentials(&self, label: &str, now: SystemTime) -> Option<(&TurnUrl, TurnCredentials)> {
        let (url, auth) = self.turn.as_ref()?;
        let creds = match auth {
            TurnAuth::Static { username, password } => TurnCredentials {
                username: username.clone(),
                password: password.clone(),
            },
            TurnAuth::Rest { secret, ttl } => {
                let now = now.duration_since(UNIX_EPOCH).unwrap_or_default();
                rest_credentials(secret, (now + *ttl).as_secs(), label)
            }
        };
        Some((url, creds))
    }

    /// What a browser gets in `welcome`, with freshly minted credentials.
    pub fn for_browser(&self, label: &str, now: SystemTime) -> Vec<BrowserIceServer> {
        let mut out = Vec::new();
        if let Some(stun) = &self.stun {
            out.push(BrowserIceServer {
                urls: vec![stun.browser()],
                username: None,
                credential: None,
            });
        }
        if let Some((url, creds)) = self.credentials(label, now) {
            out.push(BrowserIceServer {
                urls: vec![url.browser()],
                username: Some(creds.username),
                credential: Some(creds.password.0),
            });
        }
        out
    }

    /// What the agent's own webrtcbin for one peer gets.
    pub fn for_agent(&self, label: &str, now: SystemTime) -> AgentIce {
        AgentIce {
            stun: self.stun.as_ref().map(StunUrl::webrtcbin),
            turn: self
                .credentials(label, now)
                .map(|(url, creds)| url.webrtcbin(&creds)),
        }
    }

    /// The TURN URL in browser form, for logs (no credentials).
    pub fn turn_url(&self) -> Option<String> {
        self.turn.as_ref().map(|(u, _)| u.browser())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_credentials_match_openssl() {
        // Independent check:
        //   echo -n "1700000000:oriel-7" | openssl dgst -sha1 -hmac "s3cret" -binary | base64
        //   9h1MD2c6kgYYkFU06UpZf/F/Ok8=
        let c = rest_credentials(&Secret::new("s3cret"), 1_700_000_000, "oriel-7");
        assert_eq!(c.username, "1700000000:oriel-7");
        assert_eq!(c.password.expose(), "9h1MD2c6kgYYkFU06UpZf/F/Ok8=");
    }

    #[test]
    fn rest_expiry_is_now_plus_ttl() {
        let ice = IceServers {
            stun: None,
            turn: Some((
                TurnUrl::parse("turn:127.0.0.1:3478").unwrap(),
                TurnAuth::Rest {
                    secret: Secret::new("s3cret"),
                    ttl: Duration::from_secs(3600),
                },
            )),
        };
        let now = UNIX_EPOCH + Duration::from_secs(1_699_996_400);
        let servers = ice.for_browser("oriel-7", now);
        assert_eq!(servers.len(), 1);
        assert_eq!(servers[0].urls, vec!["turn:127.0.0.1:3478".to_string()]);
        assert_eq!(servers[0].username.as_deref(), Some("1700000000:oriel-7"));
        assert_eq!(
            servers[0].credential.as_deref(),
            Some("9h1MD2c6kgYYkFU06UpZf/F/Ok8=")
        );
    }

    #[test]
    fn turn_urls_parse_and_convert() {
        let u = TurnUrl::parse("turn:turn.example.org:3478?transport=udp").unwrap();
        assert_eq!(u.browser(), "turn:turn.example.org:3478?transport=udp");
        let creds = rest_credentials(&Secret::new("s3cret"), 1_700_000_000, "oriel-7");
        // ':' in the username and '/', '=' in the password are escaped.
        assert_eq!(
            u.webrtcbin(&creds).expose(),
            "turn://1700000000%3Aoriel-7:9h1MD2c6kgYYkFU06UpZf%2FF%2FOk8%3D@turn.example.org:3478?transport=udp"
        );
        let s = TurnUrl::parse("turns:turn.example.org?transport=tcp").unwrap();
        assert_eq!(s.browser(), "turns:turn.example.org:5349?transport=tcp");
        let plain = TurnCredentials {
            username: "alice".into(),
            password: Secret::new("p@ss word"),
        };
        assert_eq!(
            s.webrtcbin(&plain).expose(),
            "turns://alice:p%40ss%20word@turn.example.org:5349?transport=tcp"
        );
        assert_eq!(
            TurnUrl::parse("turn://[::1]:3479").unwrap().browser(),
            "turn:[::1]:3479"
        );
        assert_eq!(
            TurnUrl::parse("turn:10.0.0.1").unwrap().browser(),
            "turn:10.0.0.1:3478"
        );
    }

    #[test]
    fn bad_turn_urls_are_refused_clearly() {
        for bad in [
            "",
            "stun:host:3478",
            "http://host",
            "turn:",
            "turn:host:0",
            "turn:host:99999",
            "turn:host:3478?transport=sctp",
            "turn:host:3478?foo=bar",
            "turn:user:pass@host:3478",
            "turn:ho st:3478",
            "turn:[::1",
            "turn:[nothex]:3478",
        ] {
            let e = TurnUrl::parse(bad).expect_err(bad);
            assert!(e.contains(&format!("`{bad}`")), "{bad}: {e}");
        }
    }

    #[test]
    fn stun_urls_in_both_forms() {
        let s = StunUrl::parse("stun:stun.example.org:19302").unwrap();
        assert_eq!(s.browser(), "stun:stun.example.org:19302");
        assert_eq!(s.webrtcbin(), "stun://stun.example.org:19302");
        assert_eq!(
            StunUrl::parse("stun://10.0.0.1").unwrap().browser(),
            "stun:10.0.0.1:3478"
        );
        assert!(StunUrl::parse("turn:host").is_err());
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let ice = IceServers {
            stun: None,
            turn: Some((
                TurnUrl::parse("turn:h:1").unwrap(),
                TurnAuth::Rest {
                    secret: Secret::new("hunter2"),
                    ttl: Duration::from_secs(60),
                },
            )),
        };
        let agent = ice.for_agent("x", SystemTime::now());
        let text = format!("{ice:?} {agent:?}");
        assert!(!text.contains("hunter2"), "{text}");
        let password = rest_credentials(&Secret::new("hunter2"), 60, "x").password;
        assert!(!format!("{password:?}").contains(password.expose()));
    }
}
