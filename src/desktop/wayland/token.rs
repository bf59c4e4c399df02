//! Restore tokens in the state directory: the portal's standing grant,
//! read back for the next session and written 0600, atomically.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The file in the state directory that keeps the portal's restore token.
pub const TOKEN_FILE: &str = "wayland-restore-token";

/// The grant of a RemoteDesktop session (screen and input) is another
/// kind of token, kept apart.
pub const REMOTE_TOKEN_FILE: &str = "wayland-remote-desktop-token";

/// The stored token; an unreadable or empty file counts as none.
pub(super) fn read_token(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let token = text.trim();
    // Tokens are short printable strings (UUIDs on GNOME); anything else
    // is not ours to send back.
    (!token.is_empty() && token.len() <= 512 && token.chars().all(|c| c.is_ascii_graphic()))
        .then(|| token.to_string())
}

/// Writes the token with mode 0600 (it is a standing permission to capture
/// the screen), atomically through a temporary file.
pub(super) fn write_token(path: &Path, token: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(token.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn token_round_trip_is_private() {
        let dir = std::env::temp_dir().join(format!("oriel-token-{}", std::process::id()));
        let path = dir.join(TOKEN_FILE);
        assert_eq!(read_token(&path), None);
        write_token(&path, "d9dbf163-c32a-49c6-94c9-eeb1cdef217a").unwrap();
        assert_eq!(
            read_token(&path).as_deref(),
            Some("d9dbf163-c32a-49c6-94c9-eeb1cdef217a")
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::write(&path, "not a token\n").unwrap();
        assert_eq!(read_token(&path), None, "spaces are refused");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
