//! The arguments of `oriel link` and of `oriel publish|record` (which talk
//! to the running agent).

use clap::{Args, Subcommand, ValueEnum};

use super::StateArgs;

#[derive(Debug, Args)]
pub struct LinkArgs {
    #[command(subcommand)]
    pub command: LinkCommand,
    #[command(flatten)]
    pub state: StateArgs,
}

/// `oriel publish` / `oriel record`: talks to the running agent's
/// `/api/control` with the controller link `serve` keeps in the state
/// directory.
#[derive(Debug, Args)]
pub struct ControlArgs {
    #[arg(value_enum)]
    pub action: ControlAction,
    /// Which publish target (its `name=`), when several are configured.
    pub target: Option<String>,
    /// The running agent's address.
    #[arg(
        long = "public-url",
        visible_alias = "url",
        env = "ORIEL_PUBLIC_URL",
        default_value = "http://127.0.0.1:8080/"
    )]
    pub url: String,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ControlAction {
    Start,
    Stop,
    Status,
}

/// Who a link lets in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleChoice {
    /// Keyboard, mouse and gamepad 1; one at a time.
    Controller,
    /// Watches only.
    Viewer,
    /// Drives one gamepad slot (`--slot`, 2..N).
    Player,
}

#[derive(Debug, Subcommand)]
pub enum LinkCommand {
    /// Mint a link and print its URL (the token travels in the URL fragment).
    Create {
        #[arg(long, value_enum)]
        role: RoleChoice,
        /// Gamepad slot for a player link (2..=16).
        #[arg(long, value_parser = clap::value_parser!(u8).range(2..=16))]
        slot: Option<u8>,
        /// Lifetime: e.g. `30m`, `2h`, `7d`, or `never`.
        #[arg(long, default_value = "24h")]
        ttl: String,
        /// A note shown by `oriel link list`.
        #[arg(long)]
        label: Option<String>,
        /// A viewer link that watches through the SFU oriel publishes into
        /// (`--publish janus:...`) instead of a connection to this desktop:
        /// for audiences beyond its uplink.
        #[arg(long)]
        via_sfu: bool,
        /// The agent's address as browsers reach it.
        #[arg(
            long = "public-url",
            visible_alias = "url",
            env = "ORIEL_PUBLIC_URL",
            default_value = "http://127.0.0.1:8080/"
        )]
        url: String,
    },
    /// List links with their role, expiry and state.
    List,
    /// Revoke a link; connected clients using it are disconnected.
    Revoke {
        /// The link id shown by `oriel link list`.
        id: String,
    },
}
