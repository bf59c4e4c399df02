//! The checks behind oriel's fuzz targets, one module per target. Each
//! takes the fuzzer's bytes, runs them through a parser of outside bytes
//! exactly as the agent does, and panics (a crash, to AFL) when an
//! invariant that must hold for every input does not. The binaries in
//! `src/bin/` are one-line `afl::fuzz!` wrappers around these, and the
//! unit tests below replay the checked-in corpora and regressions through
//! them without AFL.

pub mod clipboard;
pub mod config;
pub mod control;
pub mod input;
pub mod links;
pub mod signalling;
pub mod token;

/// The HMAC secret the token, links and control targets sign with.
pub const SECRET: &[u8] = b"oriel fuzz secret, 32+ bytes long";

/// Every target: name (also of `src/bin/<name>.rs` and `corpus/<name>/`),
/// its check, and the parser it covers.
pub const TARGETS: &[(&str, fn(&[u8]), &str)] = &[
    (
        "signalling",
        signalling::check,
        "oriel_protocol::parse_client_message",
    ),
    ("input", input::check, "oriel_input::protocol::decode"),
    (
        "control",
        control::check,
        "signalling::control::{parse_request, bearer_token}",
    ),
    ("token", token::check, "session::token::verify"),
    (
        "links",
        links::check,
        "session::links::{parse_links, link_token, parse_ttl}",
    ),
    ("config", config::check, "config::file::load_text"),
    (
        "clipboard",
        clipboard::check,
        "media::clipboard_channel::Assembler",
    ),
];

#[cfg(test)]
mod seeds;

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Every seed and every past crash passes its target's check.
    #[test]
    fn corpora_and_regressions_pass() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for (name, check, _) in super::TARGETS {
            let mut seen = 0;
            for dir in ["corpus", "regressions"] {
                let Ok(entries) = std::fs::read_dir(root.join(dir).join(name)) else {
                    continue;
                };
                for e in entries.flatten() {
                    let bytes = std::fs::read(e.path()).unwrap();
                    check(&bytes);
                    seen += 1;
                }
            }
            assert!(seen > 0, "no corpus for {name}");
        }
    }
}
