//! The configuration layers through the real binary: flags > ORIEL_* >
//! config.toml > defaults, as `oriel config` reports them, and every kind of
//! file error naming the file, the line and the key.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("oriel-config-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("oriel")).expect("temp dir");
        Dir(dir)
    }
    fn file(&self) -> PathBuf {
        self.0.join("oriel").join("config.toml")
    }
    fn write(&self, text: &str) {
        std::fs::write(self.file(), text).expect("write config");
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `oriel ARGS` with `XDG_CONFIG_HOME` at `dir`, no inherited ORIEL_*
/// variables, plus `env`.
fn oriel(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_oriel"));
    for (k, _) in std::env::vars() {
        if k.starts_with("ORIEL_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("XDG_CONFIG_HOME", dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .args(args)
        .envs(env.iter().copied());
    cmd.output().expect("run oriel")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The `oriel config` line of `key`: (value, source).
fn setting(out: &str, key: &str) -> (String, String) {
    let line = out
        .lines()
        .find(|l| l.split_whitespace().next() == Some(key))
        .unwrap_or_else(|| panic!("no `{key}` in:\n{out}"));
    let (value, source) = line.split_once('#').expect("a # source");
    let value = value.trim().strip_prefix(key).unwrap_or("").trim();
    (value.to_string(), source.trim().to_string())
}

#[test]
fn precedence_is_flag_then_environment_then_file_then_default() {
    let dir = Dir::new("precedence");
    let file = dir.file().display().to_string();

    let out = oriel(&dir.0, &["config"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        setting(&stdout(&out), "bitrate"),
        ("4000".into(), "default".into())
    );
    assert!(stdout(&out).contains("(not found)"));

    dir.write("# comment\nframerate = 24\nbitrate = 5000\n");
    let out = oriel(&dir.0, &["config"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        setting(&stdout(&out), "bitrate"),
        ("5000".into(), format!("{file}:3"))
    );
    assert_eq!(
        setting(&stdout(&out), "framerate"),
        ("24".into(), format!("{file}:2"))
    );

    let env = [("ORIEL_BITRATE", "6000")];
    let out = oriel(&dir.0, &["config"], &env);
    assert_eq!(
        setting(&stdout(&out), "bitrate"),
        ("6000".into(), "environment ORIEL_BITRATE".into())
    );
    // The file still fills in what the environment left alone.
    assert_eq!(setting(&stdout(&out), "framerate").0, "24");

    let out = oriel(&dir.0, &["config", "--bitrate", "7000"], &env);
    assert_eq!(
        setting(&stdout(&out), "bitrate"),
        ("7000".into(), "command line".into())
    );
}

#[test]
fn lists_flags_and_an_explicit_file() {
    let dir = Dir::new("kinds");
    let other = dir.0.join("elsewhere.toml");
    std::fs::write(
        &other,
        "allow-origin = [\"https://a.example\", \"https://b.example\"]\nno-playout-delay = true\nlisten = \"127.0.0.1:9999\"\n",
    )
    .expect("write");
    let out = oriel(
        &dir.0,
        &["config", "--config", other.to_str().unwrap_or("")],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(
        setting(&text, "allow-origin").0,
        "https://a.example,https://b.example"
    );
    assert_eq!(setting(&text, "no-playout-delay").0, "true");
    assert_eq!(setting(&text, "listen").0, "127.0.0.1:9999");
    // The default file is not read when another one is named.
    dir.write("bitrate = 5000\n");
    let out = oriel(
        &dir.0,
        &["config", "--config", other.to_str().unwrap_or("")],
        &[],
    );
    assert_eq!(setting(&stdout(&out), "bitrate").1, "default");
}

#[test]
fn secrets_are_not_printed() {
    let dir = Dir::new("secrets");
    dir.write("turn = \"turn:127.0.0.1:3478\"\nturn-secret = \"s3cret-value\"\n");
    let out = oriel(
        &dir.0,
        &[
            "config",
            "--turn-password",
            "pw-value",
            "--turn-username",
            "u",
        ],
        &[],
    );
    // Secret and static credentials exclude each other: clap refuses.
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let out = oriel(&dir.0, &["config"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(setting(&text, "turn-secret").0, "(hidden)");
    assert!(!text.contains("s3cret-value"), "{text}");
}

#[test]
fn publish_targets_from_the_file_and_their_secrets_hidden() {
    let dir = Dir::new("publish");
    dir.write(
        "publish = [\"janus:http://127.0.0.1:8088/janus,room=1234\", \"whip:https://x.example/whip,name=edge\"]\n\
         janus-secret = \"room-s3cret\"\njanus-pin = \"pin-s3cret\"\nwhip-token = \"tok-s3cret\"\n",
    );
    let out = oriel(&dir.0, &["config"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(
        setting(&text, "publish").0,
        "janus:http://127.0.0.1:8088/janus,room=1234;whip:https://x.example/whip,name=edge"
    );
    for key in ["janus-secret", "janus-pin", "whip-token"] {
        assert_eq!(setting(&text, key).0, "(hidden)", "{key}");
    }
    assert!(!text.contains("s3cret"), "{text}");

    // A bad target is refused with file, line and what is wrong.
    dir.write("publish = [\"janus:http://127.0.0.1:8088/janus\"]\n");
    let out = oriel(&dir.0, &["config"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("config.toml:1"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("janus needs room=N"),
        "{}",
        stderr(&out)
    );

    // `;` separates targets here as in ORIEL_PUBLISH: each piece is checked
    // (the file check once took this entry whole and the command line then
    // refused its first half; found by fuzzing).
    dir.write("\npublish = [\"janus:http://127.0.0.1;9146,room=1234\"]\n");
    let out = oriel(&dir.0, &["config"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("config.toml:2"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("janus needs room=N"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_file_applies_to_link_urls_too() {
    let dir = Dir::new("link");
    dir.write("public-url = \"https://desk.example:8443/\"\n");
    let out = oriel(&dir.0, &["link", "create", "--role", "viewer"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("https://desk.example:8443/#token="),
        "{}",
        stdout(&out)
    );
}

/// Every kind of file error: exit code 2 and a message with file:line and key.
#[test]
fn file_errors_name_the_file_the_line_and_the_key() {
    let dir = Dir::new("errors");
    let file = dir.file().display().to_string();
    let cases: &[(&str, &str, &str)] = &[
        (
            "bitrat = 5000\n",
            ":1: unknown key `bitrat`",
            "did you mean `bitrate`?",
        ),
        (
            "\nframerate = \"fast\"\n",
            ":2: `framerate` must be an integer",
            "not a string",
        ),
        (
            "bitrate = 6000.5\n",
            ":1: `bitrate` must be an integer",
            "not a float",
        ),
        (
            "framerate = 500\n",
            ":1: `framerate` = 500",
            "500 is not in 1..=240",
        ),
        (
            "capture = \"vnc\"\n",
            ":1: `capture` = \"vnc\"",
            "expected one of auto, x11, wayland, test",
        ),
        (
            "listen = \"everywhere\"\n",
            ":1: `listen` = \"everywhere\"",
            "invalid socket address",
        ),
        (
            "no-playout-delay = \"yes\"\n",
            ":1: `no-playout-delay` must be a boolean",
            "not a string",
        ),
        (
            "[media]\nbitrate = 1\n",
            ":1: `media`",
            "sections are not used",
        ),
        ("bitrate = \n", ":1: not valid TOML", ""),
        (
            "virtual-display-size = \"1281x720\"\n",
            ":1: `virtual-display-size`",
            "must be even",
        ),
    ];
    for (text, at, why) in cases {
        dir.write(text);
        for args in [&["config"][..], &["serve", "--capture", "test"][..]] {
            let out = oriel(&dir.0, args, &[]);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{text:?} {args:?}: {err}");
            assert!(err.contains(&format!("{file}{at}")), "{text:?}: {err}");
            assert!(err.contains(why), "{text:?}: {err}");
        }
    }

    // A file named explicitly must exist.
    let out = oriel(
        &dir.0,
        &["config", "--config", "/nonexistent/oriel.toml"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/nonexistent/oriel.toml"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_bad_environment_value_names_the_variable() {
    let dir = Dir::new("env");
    let out = oriel(&dir.0, &["config"], &[("ORIEL_FRAMERATE", "fast")]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("fast") && err.contains("framerate"), "{err}");
}

#[test]
fn the_recording_path_comes_from_any_layer() {
    let dir = Dir::new("record");
    let file = dir.file().display().to_string();
    dir.write("record = \"/srv/rec/desk.mkv\"\n");
    let out = oriel(&dir.0, &["config"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        setting(&stdout(&out), "record"),
        ("/srv/rec/desk.mkv".into(), format!("{file}:1"))
    );
    let env = [("ORIEL_RECORD", "/tmp")];
    let out = oriel(&dir.0, &["config"], &env);
    assert_eq!(
        setting(&stdout(&out), "record"),
        ("/tmp".into(), "environment ORIEL_RECORD".into())
    );
    // A path that cannot be a recording stops `serve` before it captures.
    let out = oriel(
        &dir.0,
        &[
            "serve",
            "--capture",
            "test",
            "--listen",
            "127.0.0.1:0",
            "--record",
            "/tmp/x.mp4",
        ],
        &[],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("expected a file name ending in .mkv or an existing directory"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn connection_limits_come_from_any_layer_and_are_checked() {
    let dir = Dir::new("limits");
    let file = dir.file().display().to_string();
    dir.write("max-connections = 64\nmax-connections-per-address = 8\n");
    let out = oriel(&dir.0, &["config"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(
        setting(&text, "max-connections"),
        ("64".into(), format!("{file}:1"))
    );
    assert_eq!(
        setting(&text, "max-connections-per-address"),
        ("8".into(), format!("{file}:2"))
    );
    let env = [("ORIEL_MAX_CONNECTIONS_PER_ADDRESS", "4")];
    assert_eq!(
        setting(
            &stdout(&oriel(&dir.0, &["config"], &env)),
            "max-connections-per-address"
        ),
        (
            "4".into(),
            "environment ORIEL_MAX_CONNECTIONS_PER_ADDRESS".into()
        )
    );
    // A bad value names the key and the line.
    dir.write("max-connections = 0\n");
    let out = oriel(&dir.0, &["config"], &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("max-connections"), "{}", stderr(&out));
    // Fewer connections than clients cannot work: serve says so at start.
    dir.write("");
    let out = oriel(
        &dir.0,
        &[
            "serve",
            "--capture",
            "test",
            "--listen",
            "127.0.0.1:0",
            "--max-clients",
            "100",
            "--max-connections",
            "50",
        ],
        &[],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--max-connections (50) is lower than --max-clients (100)"),
        "{}",
        stderr(&out)
    );
    let help = stdout(&oriel(&dir.0, &["serve", "--help"], &[]));
    assert!(help.contains("--max-connections-per-address"), "{help}");
}
