//! Pipeline fragments: gst-launch text kept in the top-level `pipelines/`
//! folder, embedded in the binary. A file of the same name in
//! `<config dir>/pipelines/` replaces the built-in one, so GStreamer people
//! can tune capture and encoders without touching Rust.

use std::path::{Path, PathBuf};

/// Built-in fragments, by file name without `.txt`.
const BUILTIN: &[(&str, &str)] = &[
    (
        "capture-x11",
        include_str!("../../pipelines/capture-x11.txt"),
    ),
    (
        "capture-x11-damage",
        include_str!("../../pipelines/capture-x11-damage.txt"),
    ),
    (
        "capture-wayland",
        include_str!("../../pipelines/capture-wayland.txt"),
    ),
    (
        "capture-test",
        include_str!("../../pipelines/capture-test.txt"),
    ),
    (
        "encoder-nvh264enc",
        include_str!("../../pipelines/encoder-nvh264enc.txt"),
    ),
    (
        "encoder-nvcudah264enc",
        include_str!("../../pipelines/encoder-nvcudah264enc.txt"),
    ),
    (
        "encoder-vah264enc",
        include_str!("../../pipelines/encoder-vah264enc.txt"),
    ),
    (
        "encoder-vaapih264enc",
        include_str!("../../pipelines/encoder-vaapih264enc.txt"),
    ),
    (
        "encoder-qsvh264enc",
        include_str!("../../pipelines/encoder-qsvh264enc.txt"),
    ),
    (
        "encoder-x264enc",
        include_str!("../../pipelines/encoder-x264enc.txt"),
    ),
    (
        "encoder-openh264enc",
        include_str!("../../pipelines/encoder-openh264enc.txt"),
    ),
];

/// Where a fragment came from, for `oriel probe` and the logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    BuiltIn,
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub struct Fragment {
    pub name: String,
    pub text: String,
    pub origin: Origin,
}

/// The default config directory: `$XDG_CONFIG_HOME/oriel` or `~/.config/oriel`.
pub fn default_config_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("oriel"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config/oriel"))
}

/// Loads fragment `name`, preferring `<config_dir>/pipelines/<name>.txt`.
pub fn load(name: &str, config_dir: Option<&Path>) -> std::io::Result<Fragment> {
    if let Some(dir) = config_dir {
        let path = dir.join("pipelines").join(format!("{name}.txt"));
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                return Ok(Fragment {
                    name: name.into(),
                    text,
                    origin: Origin::File(path),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("{}: {e}", path.display()),
                ))
            }
        }
    }
    BUILTIN
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, text)| Fragment {
            name: (*n).into(),
            text: (*text).into(),
            origin: Origin::BuiltIn,
        })
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no pipeline fragment named `{name}`"),
            )
        })
}

impl Fragment {
    /// The gst-launch text with comments dropped and `{key}` placeholders
    /// replaced. An unknown placeholder is an error naming it.
    pub fn render(&self, vars: &[(&str, String)]) -> Result<String, String> {
        let mut out = String::new();
        for line in self.text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            out.push_str(line);
            out.push(' ');
        }
        let mut rendered = String::with_capacity(out.len());
        let mut rest = out.as_str();
        while let Some(start) = rest.find('{') {
            rendered.push_str(&rest[..start]);
            let after = &rest[start + 1..];
            let end = after
                .find('}')
                .ok_or_else(|| format!("{}: unclosed `{{`", self.name))?;
            let key = &after[..end];
            let value = vars
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.as_str())
                .ok_or_else(|| format!("{}: unknown placeholder `{{{key}}}`", self.name))?;
            rendered.push_str(value);
            rest = &after[end + 1..];
        }
        rendered.push_str(rest);
        Ok(rendered.trim().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_builtin_with_vars() {
        let f = load("capture-test", None).unwrap();
        let text = f
            .render(&[
                ("width", "640".into()),
                ("height", "480".into()),
                ("framerate", "30".into()),
            ])
            .unwrap();
        assert!(text.starts_with("videotestsrc"));
        assert!(text.contains("width=640,height=480,framerate=30/1"));
        assert!(!text.contains('#'));
    }

    #[test]
    fn unknown_placeholder_is_named() {
        let f = load("capture-test", None).unwrap();
        let err = f.render(&[]).unwrap_err();
        assert!(err.contains("{width}"), "{err}");
    }

    #[test]
    fn config_dir_overrides() {
        let dir = std::env::temp_dir().join(format!("oriel-frag-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("pipelines")).unwrap();
        std::fs::write(dir.join("pipelines/capture-test.txt"), "videotestsrc\n").unwrap();
        let f = load("capture-test", Some(&dir)).unwrap();
        assert!(matches!(f.origin, Origin::File(_)));
        assert_eq!(f.render(&[]).unwrap(), "videotestsrc");
        let missing = load("encoder-x264enc", Some(&dir)).unwrap();
        assert_eq!(missing.origin, Origin::BuiltIn);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
