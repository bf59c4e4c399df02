//! The link store: the HMAC secret and the list of links minted by
//! `oriel link create`, kept in the state directory
//! (`$XDG_STATE_HOME/oriel`, mode 0700; the secret 0600). A link is valid
//! when its token verifies and its id is listed here and not revoked; the
//! running agent re-reads the list when it changes, so `oriel link revoke`
//! reaches connected clients too.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::session::roles::Role;
use crate::session::token::{self, Claims};

const SECRET_FILE: &str = "secret";
const LINKS_FILE: &str = "links.json";

/// `$XDG_STATE_HOME/oriel` or `~/.local/state/oriel`.
pub fn default_state_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("oriel"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state/oriel"))
}

pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub id: String,
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<u8>,
    pub created: u64,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "expiry_time"
    )]
    pub expires: Option<u64>,
    #[serde(default)]
    pub revoked: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// `expires` is a Unix time; 0 is refused because a token writes "never"
/// as 0, so a link listed with `"expires": 0` would have opened forever
/// (found by fuzzing). A link that never expires leaves the field out.
fn expiry_time<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Option::<u64>::deserialize(d)? {
        Some(0) => Err(serde::de::Error::custom(
            "\"expires\" must be a Unix time after 0; leave it out for a link that never expires",
        )),
        other => Ok(other),
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct LinkFile {
    pub(crate) links: Vec<Link>,
}

/// Whether a verified token's link may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkStatus {
    Active,
    Revoked,
    Unknown,
}

pub struct Store {
    dir: PathBuf,
    secret: Vec<u8>,
}

fn random_bytes(n: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .context("reading /dev/urandom")?;
    Ok(buf)
}

impl Store {
    /// Opens the store, creating the directory and secret on first use.
    pub fn open(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
        let path = dir.join(SECRET_FILE);
        let secret = match fs::read(&path) {
            Ok(s) => {
                let mode = fs::metadata(&path)?.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
                    tracing::warn!(
                        "{} was readable by others (mode {mode:o}); set to 0600",
                        path.display()
                    );
                }
                if s.len() < 32 {
                    bail!("{} is shorter than 32 bytes: delete it to make a new one (all links become invalid)", path.display());
                }
                s
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let s = random_bytes(32)?;
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .with_context(|| format!("creating {}", path.display()))?;
                f.write_all(&s)?;
                s
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        Ok(Store {
            dir: dir.to_path_buf(),
            secret,
        })
    }

    pub fn secret(&self) -> &[u8] {
        &self.secret
    }

    pub fn links_path(&self) -> PathBuf {
        self.dir.join(LINKS_FILE)
    }

    fn load(&self) -> Result<LinkFile> {
        read_links(&self.links_path())
    }

    fn save(&self, file: &LinkFile) -> Result<()> {
        let text = serde_json::to_string_pretty(file)?;
        self.write_private(LINKS_FILE, text.as_bytes()).map(|_| ())
    }

    /// Writes `name` in the state directory, readable by the user only,
    /// atomically (a reader sees the old or the new file, never half).
    pub fn write_private(&self, name: &str, bytes: &[u8]) -> Result<PathBuf> {
        let path = self.dir.join(name);
        let tmp = self.dir.join(format!("{name}.tmp"));
        {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// Mints a link; returns it and its token.
    pub fn create(
        &self,
        role: Role,
        ttl_secs: Option<u64>,
        label: Option<String>,
    ) -> Result<(Link, String)> {
        let id: String = random_bytes(6)?
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let now = now_unix();
        let expires = ttl_secs.map(|t| now.saturating_add(t));
        let link = Link {
            id: id.clone(),
            role: role.name().into(),
            slot: match role {
                Role::Player { slot } => Some(slot),
                _ => None,
            },
            created: now,
            expires,
            revoked: false,
            label,
        };
        let token = token::sign(
            &self.secret,
            &Claims {
                link_id: id,
                role,
                expires,
            },
        );
        let mut file = self.load()?;
        file.links.push(link.clone());
        self.save(&file)?;
        Ok((link, token))
    }

    pub fn list(&self) -> Result<Vec<Link>> {
        Ok(self.load()?.links)
    }

    /// Marks a link revoked. Unknown ids are an error.
    pub fn revoke(&self, id: &str) -> Result<Link> {
        let mut file = self.load()?;
        let link = file
            .links
            .iter_mut()
            .find(|l| l.id == id)
            .ok_or_else(|| anyhow!("no link with id `{id}` (see `oriel link list`)"))?;
        link.revoked = true;
        let link = link.clone();
        self.save(&file)?;
        Ok(link)
    }
}

/// Parses the text of a links file (`links.json`): what the agent and the
/// CLI read, written by `oriel link` in another process, or by hand.
/// Public for the fuzzer (`fuzz/`) too.
pub fn parse_links(text: &str) -> Result<Vec<Link>, serde_json::Error> {
    serde_json::from_str::<LinkFile>(text).map(|f| f.links)
}

fn read_links(path: &Path) -> Result<LinkFile> {
    match fs::read_to_string(path) {
        Ok(text) => parse_links(&text)
            .map(|links| LinkFile { links })
            .with_context(|| format!("{} is not a valid link list", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(LinkFile::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The agent's view of the link list, refreshed when the file changes.
pub struct LinkWatcher {
    path: PathBuf,
    stamp: Option<(SystemTime, u64)>,
    pub(crate) links: Vec<Link>,
}

impl LinkWatcher {
    pub fn new(path: PathBuf) -> Self {
        let mut w = LinkWatcher {
            path,
            stamp: None,
            links: Vec::new(),
        };
        w.refresh();
        w
    }

    /// Re-reads the list if the file changed. Returns true when it did.
    pub fn refresh(&mut self) -> bool {
        let stamp = fs::metadata(&self.path)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())));
        if stamp == self.stamp {
            return false;
        }
        self.stamp = stamp;
        match read_links(&self.path) {
            Ok(file) => self.links = file.links,
            // Keep the last good list rather than locking everyone out.
            Err(e) => tracing::warn!("{e:#}"),
        }
        true
    }

    pub fn status(&self, id: &str) -> LinkStatus {
        match self.links.iter().find(|l| l.id == id) {
            None => LinkStatus::Unknown,
            Some(l) if l.revoked => LinkStatus::Revoked,
            Some(_) => LinkStatus::Active,
        }
    }
}

/// `URL#token=TOKEN`: the fragment never reaches server logs or Referer.
pub fn link_url(base: &str, token: &str) -> String {
    let base = base.split('#').next().unwrap_or(base);
    let sep = if base.ends_with('/') { "" } else { "/" };
    format!("{base}{sep}#token={token}")
}

/// Parses a duration such as `90s`, `30m`, `2h`, `7d`, or `never`.
pub fn parse_ttl(s: &str) -> Result<Option<u64>, String> {
    let s = s.trim();
    if s == "never" {
        return Ok(None);
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 30m, 2h, 7d or never"))?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("`{s}`: unit must be s, m, h or d")),
    };
    if n == 0 {
        return Err("a link must live longer than 0".into());
    }
    Ok(Some(n.saturating_mul(mult)))
}

/// The agent's credential check: a token must verify against the secret,
/// not be expired, and name a link that is listed and not revoked.
pub struct StoreCredentials {
    secret: Vec<u8>,
    watcher: LinkWatcher,
}

impl StoreCredentials {
    pub fn new(store: &Store) -> Self {
        StoreCredentials {
            secret: store.secret().to_vec(),
            watcher: LinkWatcher::new(store.links_path()),
        }
    }
}

impl crate::session::room::Credentials for StoreCredentials {
    fn check(&mut self, token: &str) -> Result<crate::session::room::Grant, String> {
        if token.is_empty() {
            return Err("no token: open the agent through a link (`oriel link create`)".into());
        }
        let claims =
            token::verify(&self.secret, token, now_unix()).map_err(|e| e.as_str().to_string())?;
        self.watcher.refresh();
        match self.watcher.status(&claims.link_id) {
            LinkStatus::Active => Ok(crate::session::room::Grant {
                link_id: claims.link_id,
                role: claims.role,
            }),
            LinkStatus::Revoked => Err("the link was revoked".into()),
            LinkStatus::Unknown => Err("unknown link (not in this agent's link list)".into()),
        }
    }
}

/// The token of a listed link, signed with `secret`; `None` when its role
/// and slot do not go together. Public for the fuzzer (`fuzz/`) too.
pub fn link_token(secret: &[u8], link: &Link) -> Option<String> {
    let role = match (link.role.as_str(), link.slot) {
        ("controller", None) => Role::Controller,
        ("viewer", None) => Role::Viewer,
        ("player", Some(slot)) => Role::Player { slot },
        _ => return None,
    };
    Some(token::sign(
        secret,
        &Claims {
            link_id: link.id.clone(),
            role,
            expires: link.expires,
        },
    ))
}

/// Ids of revoked links, for ending their live sessions.
pub fn revoked_ids(watcher: &LinkWatcher) -> Vec<String> {
    watcher
        .links
        .iter()
        .filter(|l| l.revoked)
        .map(|l| l.id.clone())
        .collect()
}

impl Store {
    /// The token of an existing link (tokens are deterministic: the same
    /// claims signed with the same secret).
    pub fn token_for(&self, link: &Link) -> Option<String> {
        link_token(&self.secret, link)
    }

    /// The controller link `serve` prints at start: the newest active,
    /// unexpired one labelled `serve`, or a new one (valid 30 days).
    pub fn startup_controller(&self) -> Result<(Link, String)> {
        let now = now_unix();
        let existing = self.list()?.into_iter().rev().find(|l| {
            l.label.as_deref() == Some("serve")
                && l.role == "controller"
                && !l.revoked
                && l.expires.is_none_or(|e| e > now + 86400)
        });
        if let Some(link) = existing {
            if let Some(token) = self.token_for(&link) {
                return Ok((link, token));
            }
        }
        self.create(Role::Controller, Some(30 * 86400), Some("serve".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("oriel-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn expiry_zero_is_refused_not_read_as_never() {
        let list = |exp: &str| {
            format!(r#"{{"links":[{{"id":"ab12","role":"viewer","created":1{exp}}}]}}"#)
        };
        let err = parse_links(&list(r#","expires":0"#)).unwrap_err();
        assert!(err.to_string().contains("expires"), "{err}");
        assert_eq!(
            parse_links(&list(r#","expires":5"#)).unwrap()[0].expires,
            Some(5)
        );
        assert_eq!(parse_links(&list("")).unwrap()[0].expires, None);
        assert_eq!(
            parse_links(&list(r#","expires":null"#)).unwrap()[0].expires,
            None
        );
    }

    #[test]
    fn secret_is_private_and_stable() {
        let d = temp_dir("secret");
        let s1 = Store::open(&d).unwrap();
        let mode = fs::metadata(d.join(SECRET_FILE))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        let s2 = Store::open(&d).unwrap();
        assert_eq!(s1.secret(), s2.secret());
        fs::set_permissions(d.join(SECRET_FILE), fs::Permissions::from_mode(0o644)).unwrap();
        Store::open(&d).unwrap();
        let mode = fs::metadata(d.join(SECRET_FILE))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "loosened permissions are tightened");
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn create_list_revoke_watch() {
        let d = temp_dir("links");
        let store = Store::open(&d).unwrap();
        let (link, tok) = store
            .create(Role::Player { slot: 3 }, Some(3600), None)
            .unwrap();
        let claims = token::verify(store.secret(), &tok, now_unix()).unwrap();
        assert_eq!(claims.role, Role::Player { slot: 3 });
        assert_eq!(claims.link_id, link.id);
        let mut watcher = LinkWatcher::new(store.links_path());
        assert_eq!(watcher.status(&link.id), LinkStatus::Active);
        assert_eq!(watcher.status("nope"), LinkStatus::Unknown);
        assert_eq!(store.list().unwrap().len(), 1);
        // Make sure the modification is visible even within one mtime tick.
        std::thread::sleep(std::time::Duration::from_millis(20));
        store.revoke(&link.id).unwrap();
        watcher.refresh();
        assert_eq!(watcher.status(&link.id), LinkStatus::Revoked);
        assert!(store.revoke("missing").is_err());
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn ttl_parsing() {
        assert_eq!(parse_ttl("90s"), Ok(Some(90)));
        assert_eq!(parse_ttl("30m"), Ok(Some(1800)));
        assert_eq!(parse_ttl("2h"), Ok(Some(7200)));
        assert_eq!(parse_ttl("7d"), Ok(Some(604800)));
        assert_eq!(parse_ttl("never"), Ok(None));
        assert!(parse_ttl("0h").is_err());
        assert!(parse_ttl("2w").is_err());
        assert!(parse_ttl("h").is_err());
        assert!(parse_ttl("").is_err());
    }
}
