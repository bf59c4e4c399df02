//! Writes the seed corpora (`fuzz/corpus/<target>/`) from the real
//! encoders, so the seeds follow the formats:
//! `cargo test --manifest-path fuzz/Cargo.toml --lib -- --ignored write_seeds`.
//! A few hand-written invalid inputs sit beside the valid ones.

use std::path::Path;

use oriel::session::links::Link;
use oriel::session::roles::Role;
use oriel::session::token::{sign, Claims};
use oriel_input::protocol::{encode, InputMessage, MouseButton, MAX_TEXT_BYTES};
use oriel_protocol::ClientMessage;

fn write(target: &str, seeds: Vec<(String, Vec<u8>)>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in seeds {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

fn named<T: Into<Vec<u8>>>(items: Vec<(&str, T)>) -> Vec<(String, Vec<u8>)> {
    items
        .into_iter()
        .map(|(n, b)| (n.to_string(), b.into()))
        .collect()
}

fn signalling() -> Vec<(String, Vec<u8>)> {
    let sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:video0\r\n";
    let valid = [
        ClientMessage::Hello {
            protocol: 1,
            token: "djF8YWIxMnx2aWV3ZXJ8MHww.c2lnbmF0dXJl".into(),
            name: Some("Ada 世界".into()),
        },
        ClientMessage::Hello {
            protocol: 1,
            token: String::new(),
            name: None,
        },
        ClientMessage::Answer { sdp: sdp.into() },
        ClientMessage::Ice {
            candidate: "candidate:1 1 udp 2122260223 192.0.2.1 54321 typ host".into(),
            sdp_m_line_index: 0,
            sdp_mid: Some("video0".into()),
        },
        ClientMessage::Ice {
            candidate: String::new(),
            sdp_m_line_index: 1,
            sdp_mid: None,
        },
        ClientMessage::Ping {},
        ClientMessage::Bye {},
    ];
    let mut out: Vec<(String, Vec<u8>)> = valid
        .iter()
        .enumerate()
        .map(|(i, m)| (format!("valid-{i}.json"), serde_json::to_vec(m).unwrap()))
        .collect();
    out.extend(named(vec![
        (
            "hello-v2.json",
            r#"{"type":"hello","protocol":2,"token":"x"}"#,
        ),
        ("unknown-type.json", r#"{"type":"offer","sdp":"v=0"}"#),
        ("no-type.json", r#"{"sdp":"v=0"}"#),
        ("extra-field.json", r#"{"type":"ping","extra":1}"#),
        (
            "bad-field.json",
            r#"{"type":"ice","candidate":7,"sdpMLineIndex":-1}"#,
        ),
        (
            "null-name.json",
            r#"{"type":"hello","protocol":1,"token":"t","name":null}"#,
        ),
        (
            "escapes.json",
            r#"{"type":"answer","sdp":"\u0000\ud83d\ude00\"\\\/"}"#,
        ),
        ("array.json", "[1,2,3]"),
        (
            "nested.json",
            "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
        ),
        ("truncated.json", r#"{"type":"hello","proto"#),
    ]));
    out
}

fn input() -> Vec<(String, Vec<u8>)> {
    let valid = [
        InputMessage::KeyDown("KeyA".into()),
        InputMessage::KeyUp("ShiftLeft".into()),
        InputMessage::KeyDown("Digit1".into()),
        InputMessage::Text("héllo, 世界".into()),
        InputMessage::Text("a".repeat(MAX_TEXT_BYTES)),
        InputMessage::PointerAbs { x: 0, y: 65535 },
        InputMessage::PointerRel { dx: -5, dy: 300 },
        InputMessage::ButtonDown(MouseButton::Left),
        InputMessage::ButtonUp(MouseButton::Forward),
        InputMessage::Wheel { dx: 0, dy: -120 },
        InputMessage::GamepadConnect,
        InputMessage::GamepadDisconnect,
        InputMessage::GamepadButton {
            index: 16,
            value: 65535,
        },
        InputMessage::GamepadButton {
            index: 12,
            value: 40000,
        },
        InputMessage::GamepadAxis {
            index: 3,
            value: i16::MIN,
        },
        InputMessage::ReleaseAll,
    ];
    let mut out: Vec<(String, Vec<u8>)> = valid
        .iter()
        .enumerate()
        .map(|(i, m)| (format!("valid-{i:02}.bin"), encode(m)))
        .collect();
    out.extend(named(vec![
        ("version-2.bin", vec![2, 0x30]),
        ("unknown-type.bin", vec![1, 0x7f]),
        ("short-pointer.bin", vec![1, 0x10, 0, 0, 0]),
        ("bad-button.bin", vec![1, 0x12, 9]),
        ("text-length-mismatch.bin", vec![1, 0x03, 3, 0, b'a']),
        ("text-bad-utf8.bin", vec![1, 0x03, 1, 0, 0xff]),
    ]));
    out
}

fn control() -> Vec<(String, Vec<u8>)> {
    named(vec![
        (
            "publish.json",
            r#"{"publish":{"target":"big","on":true}}"#.to_string(),
        ),
        ("publish-only.json", r#"{"publish":{"on":false}}"#.into()),
        (
            "publish-null.json",
            r#"{"publish":{"target":null,"on":true}}"#.into(),
        ),
        ("record-on.json", r#"{"record":{"on":true}}"#.into()),
        ("record-off.json", r#"{"record":{"on":false}}"#.into()),
        ("record-empty.json", r#"{"record":{}}"#.into()),
        ("unknown.json", r#"{"erase":{"on":true}}"#.into()),
        (
            "two.json",
            r#"{"record":{"on":true},"publish":{"on":true}}"#.into(),
        ),
        ("bad-type.json", r#"{"record":{"on":1}}"#.into()),
        ("string-variant.json", r#""record""#.into()),
        (
            "bearer.txt",
            format!("Bearer {}", viewer_token(b"some other secret")),
        ),
        ("bearer-spaces.txt", "Bearer   abc.def  ".into()),
        ("basic.txt", "Basic dXNlcjpwYXNz".into()),
    ])
}

fn viewer_token(secret: &[u8]) -> String {
    sign(
        secret,
        &Claims {
            link_id: "a1b2c3d4e5f6".into(),
            role: Role::Viewer,
            expires: Some(1_900_000_000),
        },
    )
}

fn token() -> Vec<(String, Vec<u8>)> {
    // The target signs its input as claims text, and also tries it as a
    // whole token: both kinds of seed.
    named(vec![
        (
            "controller.txt",
            "v1|a1b2c3d4e5f6|controller|0|0".to_string(),
        ),
        (
            "viewer-expiring.txt",
            "v1|a1b2c3d4e5f6|viewer|0|1900000000".into(),
        ),
        ("player-3.txt", "v1|ff00ff00ff00|player|3|0".into()),
        ("expired.txt", "v1|a1b2|viewer|0|1700000000".into()),
        ("player-1.txt", "v1|a1b2|player|1|0".into()),
        ("viewer-slot.txt", "v1|a1b2|viewer|3|0".into()),
        ("v2.txt", "v2|a1b2|viewer|0|0".into()),
        ("empty-id.txt", "v1||viewer|0|0".into()),
        ("extra-part.txt", "v1|a1b2|viewer|0|0|x".into()),
        ("foreign-token.txt", viewer_token(b"some other secret")),
        ("bad-base64.txt", "!!!.###".into()),
    ])
}

fn links() -> Vec<(String, Vec<u8>)> {
    let link = |id: &str, role: &str, slot, expires, revoked, label: Option<&str>| Link {
        id: id.into(),
        role: role.into(),
        slot,
        created: 1_760_000_000,
        expires,
        revoked,
        label: label.map(Into::into),
    };
    let list = vec![
        link(
            "a1b2c3d4e5f6",
            "controller",
            None,
            Some(1_762_592_000),
            false,
            Some("serve"),
        ),
        link("0f1e2d3c4b5a", "viewer", None, None, false, None),
        link(
            "99aa88bb77cc",
            "player",
            Some(2),
            Some(1_760_003_600),
            true,
            Some("couch"),
        ),
    ];
    let pretty = serde_json::to_string_pretty(&serde_json::json!({ "links": list })).unwrap();
    named(vec![
        ("links.json", pretty),
        ("empty.json", r#"{"links":[]}"#.into()),
        ("no-links.json", "{}".into()),
        (
            "player-no-slot.json",
            r#"{"links":[{"id":"ab","role":"player","created":0}]}"#.into(),
        ),
        (
            "bad-slot.json",
            r#"{"links":[{"id":"ab","role":"player","slot":300,"created":0}]}"#.into(),
        ),
        ("ttl-30m.txt", "30m".into()),
        ("ttl-7d.txt", " 7d\n".into()),
        ("ttl-never.txt", "never".into()),
        ("ttl-zero.txt", "0h".into()),
        ("ttl-week.txt", "2w".into()),
    ])
}

fn config() -> Vec<(String, Vec<u8>)> {
    named(vec![
        (
            "full.toml",
            r#"# oriel configuration
capture = "x11"
monitor = "auto"
virtual-display-size = "1920x1080"
framerate = 60
bitrate = 6000
min-bitrate = 500
encoder = "x264enc"
listen = "0.0.0.0:8443"
keyframe-interval-ms = 500
playout-delay-min = 0
playout-delay-max = 50
max-clients = 8
idle-stop-ms = 1000
allow-origin = ["https://desk.example", "https://other.example"]
stun = "stun:stun.example:3478"
turn = "turn:turn.example:3478?transport=udp"
turn-secret = "s3cret"
turn-ttl = "12h"
publish = ["janus:http://127.0.0.1:8088/janus,room=1234,name=big", "whip:https://whip.example/x"]
max-players = 4
input = "auto"
tls = "auto"
insecure-http = false
log-level = "debug"
"#,
        ),
        (
            "static-turn.toml",
            "turn = \"turns:h:5349\"\nturn-username = \"u\"\nturn-password = \"p\"\n",
        ),
        (
            "conflict.toml",
            "turn-secret = \"s\"\nturn-username = \"u\"\nturn-password = \"p\"\n",
        ),
        ("flag.toml", "no-playout-delay = true\n"),
        ("bad-size.toml", "virtual-display-size = \"1281x720\"\n"),
        ("bad-type.toml", "bitrate = \"fast\"\n"),
        ("float.toml", "bitrate = 6.5\n"),
        ("unknown-key.toml", "bitrat = 6000\n"),
        ("table.toml", "[serve]\nbitrate = 6000\n"),
        ("bad-toml.toml", "bitrate = \n"),
        ("date.toml", "listen = 1979-05-27T07:32:00Z\n"),
    ])
}

#[test]
#[ignore = "writes fuzz/corpus/; run by hand when a format changes"]
fn write_seeds() {
    write("signalling", signalling());
    write("input", input());
    write("control", control());
    write("token", token());
    write("links", links());
    write("config", config());
    write("clipboard", clipboard());
}

/// Messages in the clipboard target's framing (`clipboard::messages`).
fn clipboard() -> Vec<(String, Vec<u8>)> {
    let frame = |msgs: &[(bool, &[u8])]| -> Vec<u8> {
        let mut out = Vec::new();
        for (binary, m) in msgs {
            out.push(u8::from(*binary));
            out.push(m.len() as u8);
            out.extend_from_slice(m);
        }
        out
    };
    let header = |mime: &str, size: usize| {
        format!(r#"{{"type":"clipboard","mime":"{mime}","size":{size}}}"#)
    };
    let text = header("text/plain;charset=utf-8", 11);
    let png = header("image/png", 12);
    let big = header("text/plain;charset=utf-8", 5000);
    named(vec![
        (
            "text.bin",
            frame(&[
                (false, text.as_bytes()),
                (true, "héllo".as_bytes()),
                (true, b" monde"),
            ]),
        ),
        (
            "png.bin",
            frame(&[(false, png.as_bytes()), (true, b"\x89PNG\r\n\x1a\nabcd")]),
        ),
        ("too-large.bin", frame(&[(false, big.as_bytes())])),
        ("orphan.bin", frame(&[(true, b"no header")])),
        (
            "overrun.bin",
            frame(&[
                (false, text.as_bytes()),
                (true, b"far more than eleven bytes"),
            ]),
        ),
    ])
}
