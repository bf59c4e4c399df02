//! The command line: `--link` or `--janus` (whom to watch), `--name`,
//! `--latency-ms`.

use anyhow::{anyhow, bail, Context, Result};

pub struct Options {
    pub target: Target,
    pub name: String,
    pub latency_ms: u32,
}

/// Whom the viewers watch.
pub enum Target {
    /// oriel itself, over its WebSocket signalling.
    Oriel { ws_url: String, token: String },
    /// oriel's publisher in a Janus VideoRoom, through Janus.
    Janus(JanusTarget),
}

pub struct JanusTarget {
    /// Janus's HTTP API, e.g. `http://127.0.0.1:8088/janus`.
    pub url: String,
    pub room: u64,
    /// The publisher to subscribe to.
    pub feed: u64,
    /// One client for every viewer (its connection pool is shared).
    pub http: reqwest::Client,
}

pub fn usage() -> &'static str {
    "usage: bench_receiver --link http://HOST:PORT/#token=TOKEN [--name PREFIX] [--latency-ms N]\n\
     \x20      bench_receiver --janus http://HOST:PORT/janus,room=N[,feed=ID] [--name PREFIX] [--latency-ms N]\n\
     stdin commands: add N [way=normal|midoffer|icefail] [token=T] | remove N | leave bye|drop ID... | stats | quit"
}

pub fn parse_args() -> Result<Options> {
    let mut link = None;
    let mut janus = None;
    let mut name = "bench".to_string();
    let mut latency_ms = 0;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |flag: &str| args.next().ok_or_else(|| anyhow!("{flag} needs a value"));
        match a.as_str() {
            "--link" => link = Some(value("--link")?),
            "--janus" => janus = Some(value("--janus")?),
            "--name" => name = value("--name")?,
            "--latency-ms" => {
                latency_ms = value("--latency-ms")?
                    .parse()
                    .context("--latency-ms takes a number")?
            }
            "-h" | "--help" => {
                println!("{}", usage());
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{}", usage()),
        }
    }
    let target = match (link, janus) {
        (Some(link), None) => {
            let (ws_url, token) = ws_url_and_token(&link)?;
            Target::Oriel { ws_url, token }
        }
        (None, Some(spec)) => {
            let (url, room, feed) = janus_spec(&spec)?;
            let http = reqwest::Client::builder().build().context("HTTP client")?;
            Target::Janus(JanusTarget {
                url,
                room,
                feed,
                http,
            })
        }
        _ => bail!("exactly one of --link and --janus is required\n{}", usage()),
    };
    Ok(Options {
        target,
        name,
        latency_ms,
    })
}

/// `URL,room=N[,feed=ID]` -> (URL without a trailing `/`, N, ID).
fn janus_spec(spec: &str) -> Result<(String, u64, u64)> {
    let mut parts = spec.split(',');
    let url = parts.next().unwrap_or_default().trim_end_matches('/');
    if !url.starts_with("http://") && !url.starts_with("https://") {
        bail!("--janus takes http://HOST:PORT/janus,room=N[,feed=ID]");
    }
    let (mut room, mut feed) = (None, oriel::publish::target::DEFAULT_JANUS_ID);
    for kv in parts {
        match kv.split_once('=') {
            Some(("room", v)) => room = Some(v.parse().context("room= takes a number")?),
            Some(("feed", v)) => feed = v.parse().context("feed= takes a number")?,
            _ => bail!("--janus: unknown part {kv:?} (room=N, feed=ID)"),
        }
    }
    let room = room.ok_or_else(|| anyhow!("--janus needs room=N"))?;
    Ok((url.to_string(), room, feed))
}

/// `http://HOST:PORT/path#token=T` -> (`ws://HOST:PORT/ws`, T).
fn ws_url_and_token(link: &str) -> Result<(String, String)> {
    let (base, fragment) = link
        .split_once('#')
        .ok_or_else(|| anyhow!("the link has no #token= fragment"))?;
    let token = fragment
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .filter(|t| !t.is_empty())
        .ok_or_else(|| anyhow!("the link has no #token= fragment"))?;
    let token = percent_encoding::percent_decode_str(token)
        .decode_utf8()
        .context("the token is not UTF-8")?
        .into_owned();
    let (scheme, rest) = base
        .split_once("://")
        .ok_or_else(|| anyhow!("the link is not an http:// URL"))?;
    let ws_scheme = match scheme {
        "http" => "ws",
        // This example links tokio-tungstenite without TLS support.
        "https" => bail!("https links are not supported (no TLS in this receiver)"),
        other => bail!("unsupported link scheme {other:?}"),
    };
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    if host.is_empty() {
        bail!("the link has no host");
    }
    Ok((format!("{ws_scheme}://{host}/ws"), token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn janus_specs() {
        let (u, room, feed) = janus_spec("http://127.0.0.1:8088/janus/,room=4321").unwrap();
        assert_eq!(
            (u.as_str(), room, feed),
            ("http://127.0.0.1:8088/janus", 4321, 4_242_001)
        );
        let (_, _, feed) = janus_spec("http://h:1/janus,room=1,feed=7").unwrap();
        assert_eq!(feed, 7);
        assert!(janus_spec("http://h:1/janus").is_err());
        assert!(janus_spec("ws://h:1/janus,room=1").is_err());
        assert!(janus_spec("http://h:1/janus,room=1,pin=x").is_err());
    }

    #[test]
    fn link_to_ws_url() {
        let (u, t) = ws_url_and_token("http://127.0.0.1:8080/#token=abc.def").unwrap();
        assert_eq!(u, "ws://127.0.0.1:8080/ws");
        assert_eq!(t, "abc.def");
        let (u, _) = ws_url_and_token("http://h:1/x/?ice=relay#token=a").unwrap();
        assert_eq!(u, "ws://h:1/ws");
        assert!(ws_url_and_token("http://h:1/").is_err());
        assert!(ws_url_and_token("https://h:1/#token=a").is_err());
    }
}
