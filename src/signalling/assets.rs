//! The web client (`web-client/`), embedded in the binary so that one file
//! is all there is to install.

/// `(path, content type, bytes)` for every file served under `/`.
pub const FILES: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../../web-client/index.html"),
    ),
    (
        "main.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web-client/main.js"),
    ),
    (
        "signalling.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web-client/signalling.js"),
    ),
    (
        "peer.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web-client/peer.js"),
    ),
    (
        "input.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web-client/input.js"),
    ),
    (
        "stats.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web-client/stats.js"),
    ),
    (
        "sound.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web-client/sound.js"),
    ),
    (
        "microphone.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web-client/microphone.js"),
    ),
    (
        "clipboard.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web-client/clipboard.js"),
    ),
    (
        "pointer.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web-client/pointer.js"),
    ),
    (
        "resize.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web-client/resize.js"),
    ),
    (
        "files.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web-client/files.js"),
    ),
    (
        "control.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web-client/control.js"),
    ),
    (
        "sfu.html",
        "text/html; charset=utf-8",
        include_bytes!("../../web-client/sfu.html"),
    ),
    (
        "sfu.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web-client/sfu.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../../web-client/style.css"),
    ),
];

/// Looks up a file by its path below `/` (`""` is `index.html`).
pub fn get(path: &str) -> Option<(&'static str, &'static [u8])> {
    let path = if path.is_empty() { "index.html" } else { path };
    FILES
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|(_, ct, bytes)| (*ct, *bytes))
}

#[cfg(test)]
mod tests {
    #[test]
    fn index_is_served_for_root() {
        let (ct, body) = super::get("").unwrap();
        assert!(ct.starts_with("text/html"));
        assert!(!body.is_empty());
        assert!(super::get("../Cargo.toml").is_none());
    }
}
