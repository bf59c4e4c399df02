//! `oriel link create|list|revoke`: the links in the state directory.

use anyhow::Result;

use crate::config::{LinkArgs, LinkCommand, RoleChoice};
use crate::session::links::{self, link_url};
use crate::session::roles::Role;

pub fn run(args: LinkArgs) -> Result<()> {
    let store = args.state.open_store()?;
    match args.command {
        LinkCommand::Create {
            role,
            slot,
            ttl,
            label,
            url,
            via_sfu,
        } => {
            let role = match (role, slot) {
                (RoleChoice::Controller, None) => Role::Controller,
                (RoleChoice::Viewer, None) => Role::Viewer,
                (RoleChoice::Player, Some(slot)) => Role::Player { slot },
                (RoleChoice::Player, None) => {
                    anyhow::bail!("a player link needs --slot N (2..=16)")
                }
                (_, Some(_)) => anyhow::bail!("--slot only applies to --role player"),
            };
            if via_sfu && role != Role::Viewer {
                anyhow::bail!("--via-sfu links are view-only: use --role viewer");
            }
            let ttl = links::parse_ttl(&ttl).map_err(|e| anyhow::anyhow!("--ttl: {e}"))?;
            let (link, token) = store.create(role, ttl, label)?;
            eprintln!(
                "oriel: link {} ({}{}), {}",
                link.id,
                link.role,
                link.slot.map(|s| format!(" slot {s}")).unwrap_or_default(),
                expiry_text(link.expires)
            );
            if via_sfu {
                // The page asks the agent (with this token) where to watch.
                let base = url.split('#').next().unwrap_or(&url);
                let sep = if base.ends_with('/') { "" } else { "/" };
                println!("{base}{sep}sfu.html#token={token}");
            } else {
                println!("{}", link_url(&url, &token));
            }
        }
        LinkCommand::List => {
            let all = store.list()?;
            if all.is_empty() {
                println!("no links (create one with `oriel link create --role viewer`)");
            }
            println!(
                "{:<14} {:<11} {:<5} {:<8} {:<26} label",
                "id", "role", "slot", "state", "expires"
            );
            for l in all {
                let state = if l.revoked {
                    "revoked"
                } else if l.expires.is_some_and(|e| e <= links::now_unix()) {
                    "expired"
                } else {
                    "active"
                };
                println!(
                    "{:<14} {:<11} {:<5} {:<8} {:<26} {}",
                    l.id,
                    l.role,
                    l.slot.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
                    state,
                    expiry_text(l.expires),
                    l.label.unwrap_or_default()
                );
            }
        }
        LinkCommand::Revoke { id } => {
            let l = store.revoke(&id)?;
            println!(
                "revoked link {} ({}); connected clients using it are disconnected",
                l.id, l.role
            );
        }
    }
    Ok(())
}

fn expiry_text(expires: Option<u64>) -> String {
    match expires {
        None => "never expires".into(),
        Some(e) => {
            let now = links::now_unix();
            if e <= now {
                "expired".into()
            } else {
                let left = e - now;
                match left {
                    0..=5399 => format!("expires in {} min", left.div_ceil(60)),
                    5400..=172_799 => format!("expires in {} h", left / 3600),
                    _ => format!("expires in {} days", left / 86400),
                }
            }
        }
    }
}
