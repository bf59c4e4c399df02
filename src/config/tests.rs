//! Flag parsing: sizes, monitors, TURN, TLS and playout-delay bounds.

use super::*;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::media::ice::TurnAuth;

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
    let cli =
        Cli::try_parse_from(["oriel", "serve"].iter().chain(args)).map_err(|e| e.to_string())?;
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

#[test]
fn connection_limits_default_and_must_cover_max_clients() {
    let l = serve(&[]).unwrap().connection_limits().unwrap();
    assert_eq!((l.per_address, l.total), (32, 256));
    let l = serve(&[
        "--max-connections",
        "40",
        "--max-connections-per-address",
        "4",
    ])
    .unwrap()
    .connection_limits()
    .unwrap();
    assert_eq!((l.per_address, l.total), (4, 40));
    let e = serve(&["--max-clients", "300"])
        .unwrap()
        .connection_limits()
        .unwrap_err();
    assert!(
        e.contains("--max-connections (256) is lower than --max-clients (300)"),
        "{e}"
    );
    assert!(serve(&["--max-connections", "0"]).is_err());
}

#[test]
fn x11_capture_is_by_damage_unless_asked() {
    use crate::media::capture::X11Timing;
    assert_eq!(serve(&[]).unwrap().media.x11_capture, X11Timing::Damage);
    assert_eq!(X11Timing::default(), X11Timing::Damage);
    let s = serve(&["--x11-capture", "clock"]).unwrap();
    assert_eq!(s.media.x11_capture, X11Timing::Clock);
}

#[test]
fn colour_conversion_threads_default_to_one_per_core() {
    assert_eq!(serve(&[]).unwrap().media.convert_threads, 0);
    assert_eq!(
        serve(&["--convert-threads", "2"])
            .unwrap()
            .media
            .convert_threads,
        2
    );
    assert!(serve(&["--convert-threads", "-1"]).is_err());
    assert!(serve(&["--convert-threads", "65"]).is_err());
    let n = crate::media::encoder::worker_threads();
    assert!((1..=4).contains(&n), "{n} worker threads");
}
