//! Where to publish: `--publish` values, parsed and checked at startup.
//!
//! ```text
//! janus:http://127.0.0.1:8088/janus,room=1234[,id=N][,name=NAME][,public=URL][,start=auto|manual]
//! whip:https://example.com/whip/endpoint[,name=NAME][,start=auto|manual]
//! ```
//!
//! Secrets (the Janus room's secret and pin, a WHIP bearer token) are not
//! part of the value, which may show up in `ps` and in `oriel config`:
//! they come from their own settings and are never logged.

use std::fmt;

use crate::media::ice::Secret;
use crate::publish::janus;

/// Credentials for the targets; never logged.
#[derive(Clone, Default)]
pub struct Secrets {
    pub janus: janus::RoomSecrets,
    /// Sent as `Authorization: Bearer` to WHIP endpoints.
    pub whip_token: Option<Secret>,
}

/// The publisher id oriel uses in a Janus room unless told otherwise;
/// fixed, so a restarted agent can reclaim its own stale slot.
pub const DEFAULT_JANUS_ID: u64 = 4_242_001;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A Janus VideoRoom over Janus's HTTP API.
    Janus {
        room: u64,
        /// Our publisher id in the room.
        id: u64,
        /// Janus's HTTP API as browsers reach it, for `--via-sfu` links
        /// (defaults to the URL oriel uses).
        public: Option<String>,
    },
    /// Any WHIP endpoint (RFC 9725).
    Whip,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Unique among targets; names it in logs, metrics and controls.
    pub name: String,
    /// `http://` or `https://` URL of Janus's API or of the WHIP endpoint.
    pub url: String,
    pub kind: Kind,
    /// Publish as soon as the agent starts (else on request).
    pub autostart: bool,
}

impl Target {
    /// The Janus API URL browsers should use.
    pub fn public_url(&self) -> &str {
        match &self.kind {
            Kind::Janus {
                public: Some(p), ..
            } => p,
            _ => &self.url,
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            Kind::Janus { .. } => "janus",
            Kind::Whip => "whip",
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Janus { room, id, .. } => {
                write!(f, "{} (janus {} room {room} as {id})", self.name, self.url)
            }
            Kind::Whip => write!(f, "{} (whip {})", self.name, self.url),
        }
    }
}

/// Parses one `--publish` value.
pub fn parse(value: &str) -> Result<Target, String> {
    let (scheme, rest) = value
        .split_once(':')
        .ok_or_else(|| format!("`{value}`: expected janus:URL,room=N or whip:URL"))?;
    let mut parts = rest.split(',');
    let url = parts.next().unwrap_or_default().trim().to_string();
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 10 {
        return Err(format!(
            "`{value}`: the URL must start with http:// or https://"
        ));
    }
    let mut room = None;
    let mut id = DEFAULT_JANUS_ID;
    let mut name = None;
    let mut public = None;
    let mut autostart = true;
    for part in parts {
        let (key, val) = part
            .split_once('=')
            .ok_or_else(|| format!("`{value}`: `{part}` is not key=value"))?;
        let number = |what: &str| {
            val.parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("`{value}`: {what} must be a positive number, not `{val}`"))
        };
        match (scheme, key) {
            ("janus", "room") => room = Some(number("room")?),
            ("janus", "id") => id = number("id")?,
            ("janus", "public") => {
                if !(val.starts_with("http://") || val.starts_with("https://")) {
                    return Err(format!("`{value}`: public must be an http(s) URL"));
                }
                public = Some(val.to_string());
            }
            (_, "name") => {
                if val.is_empty()
                    || !val
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    return Err(format!(
                        "`{value}`: name may hold letters, digits, - and _ only"
                    ));
                }
                name = Some(val.to_string());
            }
            (_, "start") => {
                autostart = match val {
                    "auto" => true,
                    "manual" => false,
                    _ => return Err(format!("`{value}`: start is auto or manual, not `{val}`")),
                }
            }
            _ => return Err(format!("`{value}`: unknown option `{key}` for {scheme}")),
        }
    }
    let kind = match scheme {
        "janus" => Kind::Janus {
            room: room.ok_or_else(|| format!("`{value}`: janus needs room=N"))?,
            id,
            public,
        },
        "whip" => Kind::Whip,
        other => {
            return Err(format!(
                "`{value}`: unknown publish kind `{other}` (janus or whip)"
            ))
        }
    };
    Ok(Target {
        name: name.unwrap_or_else(|| scheme.to_string()),
        url,
        kind,
        autostart,
    })
}

/// Checks a list of targets together: names must be unique.
pub fn check_unique(targets: &[Target]) -> Result<(), String> {
    for (i, t) in targets.iter().enumerate() {
        if targets[..i].iter().any(|o| o.name == t.name) {
            return Err(format!(
                "two --publish targets are named `{}`: add name=... to one",
                t.name
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn janus_with_options() {
        let t = parse("janus:http://127.0.0.1:8088/janus,room=1234,id=7,name=big,start=manual")
            .unwrap();
        assert_eq!(t.name, "big");
        assert_eq!(t.url, "http://127.0.0.1:8088/janus");
        assert_eq!(
            t.kind,
            Kind::Janus {
                room: 1234,
                id: 7,
                public: None
            }
        );
        assert!(!t.autostart);
        assert_eq!(t.public_url(), "http://127.0.0.1:8088/janus");
    }

    #[test]
    fn whip_defaults() {
        let t = parse("whip:https://sfu.example/whip/abc").unwrap();
        assert_eq!(t.name, "whip");
        assert_eq!(t.kind, Kind::Whip);
        assert!(t.autostart);
    }

    #[test]
    fn errors_say_what_is_wrong() {
        for (value, says) in [
            ("janus:http://h:8088/janus", "needs room"),
            ("janus:http://h/janus,room=x", "positive number"),
            ("janus:http://h/janus,room=0", "positive number"),
            ("rtmp:http://h/live", "unknown publish kind"),
            ("whip:ftp://h/x", "http:// or https://"),
            ("whip:https://h/x,room=3", "unknown option `room`"),
            ("whip:https://h/x,name=a b", "letters, digits"),
            ("whip:https://h/x,start=later", "auto or manual"),
            ("whip", "expected janus"),
            ("whip:https://h/x,oops", "not key=value"),
        ] {
            let e = parse(value).unwrap_err();
            assert!(e.contains(says), "{value}: {e}");
        }
    }

    #[test]
    fn names_must_be_unique() {
        let a = parse("whip:https://h/x").unwrap();
        let b = parse("whip:https://h/y").unwrap();
        assert!(check_unique(&[a.clone(), b.clone()]).is_err());
        let b = parse("whip:https://h/y,name=second").unwrap();
        assert!(check_unique(&[a, b]).is_ok());
    }
}
