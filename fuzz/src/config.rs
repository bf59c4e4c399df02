//! The configuration file (`config.toml`): TOML, every key checked by its
//! flag's own value parser, then put under the command line.

use std::path::Path;

use clap::error::ErrorKind;
use oriel::config::file::{load_text, render, LoadError};
use oriel::config::Command;

const PATH: &str = "/fuzz/config.toml";

pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match load_text(["oriel", "serve"], Path::new(PATH), Some(text)) {
        Ok(loaded) => {
            assert!(render(&loaded).starts_with("# configuration file: "));
            // The checks `serve` makes on its settings at start.
            if let Command::Serve(s) = &loaded.cli.command {
                let _ = s.keyframe_interval();
                let _ = s.ice_servers();
                let _ = s.playout_delay();
                let _ = s.media.encoder_settings();
            }
        }
        // A bad file is an error naming the file (and line).
        Err(LoadError::File(m)) => assert!(m.starts_with(PATH), "{m}"),
        // Values the file check let through are taken by the command line;
        // only combinations of keys may still be refused there.
        Err(LoadError::Cli(e)) => assert!(
            matches!(
                e.kind(),
                ErrorKind::ArgumentConflict | ErrorKind::MissingRequiredArgument
            ),
            "{:?}: {e}",
            e.kind()
        ),
    }
}
