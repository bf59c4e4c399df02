//! The TLS decision, pure: flags and listen address in, what to serve out.
//! Browsers only grant a secure context (Gamepad API, keyboard lock) off
//! localhost over HTTPS, and beyond loopback tokens and input must not
//! travel in clear text, so plain HTTP there takes an explicit opt-in.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Whether and how to serve HTTPS/WSS (`--tls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TlsChoice {
    /// Plain HTTP on loopback, self-signed HTTPS beyond it.
    Auto,
    /// Always HTTPS with a self-signed certificate kept in the state directory.
    SelfSigned,
    /// Plain HTTP (beyond loopback only with `--insecure-http`).
    Off,
}

/// What the web port speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Plain HTTP. `exposed` is true when reachable beyond loopback (only
    /// with `--insecure-http`): warn loudly.
    Plain { exposed: bool },
    /// HTTPS with the self-signed certificate from the state directory.
    SelfSigned,
    /// HTTPS with the user's certificate chain and key.
    Given { cert: PathBuf, key: PathBuf },
}

impl Decision {
    pub fn is_tls(&self) -> bool {
        !matches!(self, Decision::Plain { .. })
    }

    /// `https` or `http`, for printed URLs.
    pub fn scheme(&self) -> &'static str {
        if self.is_tls() {
            "https"
        } else {
            "http"
        }
    }
}

/// Decides from `--tls`, `--tls-cert`, `--tls-key`, `--insecure-http` and
/// the listen address. Errors are meant to be shown as they are.
pub fn decide(
    choice: TlsChoice,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    listen: SocketAddr,
    insecure_http: bool,
) -> Result<Decision, String> {
    let loopback = listen.ip().is_loopback();
    let given = match (cert, key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (Some(_), None) => {
            return Err("--tls-cert needs --tls-key (the certificate's private key)".into())
        }
        (None, Some(_)) => {
            return Err("--tls-key needs --tls-cert (the certificate it belongs to)".into())
        }
        (None, None) => None,
    };
    match (choice, given) {
        (TlsChoice::Off, Some(_)) => {
            Err("--tls off contradicts --tls-cert/--tls-key: drop one or the other".into())
        }
        (TlsChoice::SelfSigned, Some(_)) => {
            Err("--tls self-signed contradicts --tls-cert/--tls-key: drop one or the other".into())
        }
        (TlsChoice::Auto, Some((cert, key))) => Ok(Decision::Given { cert, key }),
        (TlsChoice::SelfSigned, None) => Ok(Decision::SelfSigned),
        (TlsChoice::Auto, None) if loopback => Ok(Decision::Plain { exposed: false }),
        (TlsChoice::Auto, None) => Ok(Decision::SelfSigned),
        (TlsChoice::Off, None) if loopback => Ok(Decision::Plain { exposed: false }),
        (TlsChoice::Off, None) if insecure_http => Ok(Decision::Plain { exposed: true }),
        (TlsChoice::Off, None) => Err(format!(
            "refusing plain HTTP on {listen}: other machines can reach it, and links, tokens \
             and input would cross the network unencrypted. Use --tls auto (a self-signed \
             certificate), --tls-cert/--tls-key, or add --insecure-http to allow it anyway"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn paths() -> (Option<PathBuf>, Option<PathBuf>) {
        (Some("c.pem".into()), Some("k.pem".into()))
    }

    #[test]
    fn auto_is_plain_on_loopback_and_self_signed_beyond() {
        for lo in ["127.0.0.1:8080", "[::1]:8080", "127.0.0.2:1"] {
            assert_eq!(
                decide(TlsChoice::Auto, None, None, addr(lo), false),
                Ok(Decision::Plain { exposed: false }),
                "{lo}"
            );
        }
        for out in ["0.0.0.0:8080", "[::]:8080", "192.168.1.5:8080"] {
            assert_eq!(
                decide(TlsChoice::Auto, None, None, addr(out), false),
                Ok(Decision::SelfSigned),
                "{out}"
            );
        }
    }

    #[test]
    fn given_certificate_wins_in_auto_everywhere() {
        let (c, k) = paths();
        for a in ["127.0.0.1:8080", "0.0.0.0:8443"] {
            assert_eq!(
                decide(TlsChoice::Auto, c.clone(), k.clone(), addr(a), false),
                Ok(Decision::Given {
                    cert: "c.pem".into(),
                    key: "k.pem".into()
                })
            );
        }
    }

    #[test]
    fn half_a_pair_or_a_contradiction_is_an_error() {
        let (c, k) = paths();
        let lo = addr("127.0.0.1:8080");
        let e = decide(TlsChoice::Auto, c.clone(), None, lo, false).unwrap_err();
        assert!(e.contains("--tls-key"), "{e}");
        let e = decide(TlsChoice::Auto, None, k.clone(), lo, false).unwrap_err();
        assert!(e.contains("--tls-cert"), "{e}");
        assert!(decide(TlsChoice::Off, c.clone(), k.clone(), lo, false).is_err());
        assert!(decide(TlsChoice::SelfSigned, c, k, lo, false).is_err());
    }

    #[test]
    fn self_signed_is_always_tls() {
        for a in ["127.0.0.1:0", "0.0.0.0:0"] {
            let d = decide(TlsChoice::SelfSigned, None, None, addr(a), false).unwrap();
            assert_eq!(d, Decision::SelfSigned);
            assert_eq!(d.scheme(), "https");
        }
    }

    #[test]
    fn plain_http_beyond_loopback_needs_the_opt_in() {
        let lo = addr("127.0.0.1:8080");
        let out = addr("0.0.0.0:8080");
        assert_eq!(
            decide(TlsChoice::Off, None, None, lo, false),
            Ok(Decision::Plain { exposed: false })
        );
        let e = decide(TlsChoice::Off, None, None, out, false).unwrap_err();
        assert!(e.contains("refusing plain HTTP on 0.0.0.0:8080"), "{e}");
        assert!(e.contains("--insecure-http"), "{e}");
        let d = decide(TlsChoice::Off, None, None, out, true).unwrap();
        assert_eq!(d, Decision::Plain { exposed: true });
        assert_eq!(d.scheme(), "http");
    }
}
