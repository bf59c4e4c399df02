//! Command-line configuration. Every flag can also be given as an `ORIEL_*`
//! environment variable (CLI wins), or as a key of `config.toml` (`file`).
//!
//! One file per command family: `serve.rs` (the agent), `media.rs`
//! (capture and encoding, shared with `probe`), `commands.rs` (`link`,
//! `publish`, `record`); `file.rs` puts the TOML file under all of them.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

mod commands;
pub mod file;
mod media;
mod serve;
#[cfg(test)]
mod tests;

pub use commands::{ControlAction, ControlArgs, LinkArgs, LinkCommand, RoleChoice};
pub use media::{parse_monitor, parse_size, CaptureChoice, MediaArgs, MonitorChoice};
pub use serve::{parse_input, InputChoice, PointerMode, ResizeMode, ServeArgs, TlsChoice};

#[derive(Debug, Parser)]
#[command(
    name = "oriel",
    version,
    about = "Stream this Linux desktop to browsers over WebRTC: capture once, encode once, one peer per browser.",
    long_about = None
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log filter, e.g. `info`, `debug`, `oriel=debug,warn`.
    #[arg(
        long,
        env = "ORIEL_LOG",
        help_heading = "Global",
        default_value = "info",
        global = true
    )]
    pub log_level: String,

    /// Log format: `auto` (plain text; without timestamps or colours under
    /// systemd, since journald adds its own), `text`, or `json` (one object
    /// per line, fields included).
    #[arg(
        long,
        env = "ORIEL_LOG_FORMAT",
        help_heading = "Global",
        value_enum,
        default_value = "auto",
        global = true
    )]
    pub log_format: LogFormat,

    /// Configuration file (TOML; its keys are the long flag names, e.g.
    /// `bitrate = 6000`). Default `$XDG_CONFIG_HOME/oriel/config.toml`,
    /// read when it exists. Precedence: flags > ORIEL_* > file > defaults.
    #[arg(
        long,
        env = "ORIEL_CONFIG",
        help_heading = "Global",
        global = true,
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Auto,
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the desktop: web client, signalling and media on one port.
    Serve(Box<ServeArgs>),
    /// Show every capture backend and encoder, whether it works here and
    /// which ones `serve` would pick.
    Probe(MediaArgs),
    /// Mint, list and revoke links (controller, viewer, player).
    Link(LinkArgs),
    /// Start or stop publishing into an SFU on the running agent, or show
    /// its state (the same control as the controller's page).
    Publish(ControlArgs),
    /// Start or stop recording on the running agent, or show its state.
    Record(ControlArgs),
    /// Send files to the controller's page from the desktop (the running
    /// agent offers them; the page saves them as downloads).
    Send(SendArgs),
    /// Print the effective configuration of `serve` (with the same flags)
    /// and where each value came from: flag, environment, file or default.
    Config(Box<ServeArgs>),
}
#[derive(Debug, Clone, clap::Args)]
pub struct SendArgs {
    /// The files, sent one after the other.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Clone, clap::Args)]
pub struct StateArgs {
    /// Where the link secret and link list live (default
    /// `$XDG_STATE_HOME/oriel`, i.e. `~/.local/state/oriel`).
    #[arg(long, env = "ORIEL_STATE_DIR", help_heading = "Global", global = true)]
    pub state_dir: Option<PathBuf>,
}

impl StateArgs {
    /// The state directory: `--state-dir`, else `$XDG_STATE_HOME/oriel`.
    pub fn dir(&self) -> Result<PathBuf> {
        self.state_dir
            .clone()
            .or_else(crate::session::links::default_state_dir)
            .context("no state directory: set --state-dir or $HOME")
    }

    /// The link secret and link list in the state directory.
    pub fn open_store(&self) -> Result<crate::session::links::Store> {
        crate::session::links::Store::open(&self.dir()?)
    }
}
