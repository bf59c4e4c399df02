//! Wayland capture through xdg-desktop-portal's ScreenCast interface.
//!
//! Each producer start opens a new portal session (a PipeWire node serves
//! one consumer): CreateSession, SelectSources (one monitor, cursor drawn
//! into the picture, persistent grant), Start, OpenPipeWireRemote, and the
//! capture fragment gets that fd and the stream's node. The session lives
//! as long as the producer: [`PortalSession`] is dropped after the pipeline
//! stopped, and its private D-Bus connection going away ends the session
//! on the portal's side too.
//!
//! The first Start shows a dialog on the desktop ("Screen Share": pick the
//! monitor, press Share). The portal answers with a restore token, kept in
//! the state directory (mode 0600): later sessions pass it and get the same
//! monitor without a dialog, across restarts of oriel and of the desktop.
//! The portal may hand out a new token each time; the newest is kept.
//!
//! D-Bus work runs on the tokio runtime; the media thread hears only the
//! outcome (see [`crate::media::service::LiveSource`]).

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ashpd::desktop::screencast::{CursorMode, Screencast, SelectSourcesOptions, SourceType};
use ashpd::desktop::{PersistMode, Session};

use crate::media::capture;
use crate::media::service::{LiveSource, OpenedSource, SourceDone, SourceNotice, SourceSignal};

/// The file in the state directory that keeps the portal's restore token.
pub const TOKEN_FILE: &str = "wayland-restore-token";

/// ScreenCast version that knows restore tokens (`persist_mode`).
const PERSIST_VERSION: u32 = 4;

/// With a restore token the portal answers Start in a few seconds (~3.5 s
/// measured here); much longer means it did not take the token and shows
/// its dialog after all.
const TOKEN_ANSWER_WITHIN: Duration = Duration::from_secs(8);

/// What clients and the log are told while the dialog is up.
pub const APPROVAL_NEEDED: &str = "waiting for screen sharing to be approved on the desktop: \
     a \"Screen Share\" dialog is open there; select the monitor and press Share \
     (asked once: oriel remembers the choice)";

/// Opens screencast sessions for the media service.
#[derive(Clone)]
pub struct Portal {
    inner: Arc<Inner>,
}

struct Inner {
    runtime: tokio::runtime::Handle,
    token_file: PathBuf,
    framerate: u32,
    config_dir: Option<PathBuf>,
}

impl Portal {
    pub fn new(
        runtime: tokio::runtime::Handle,
        state_dir: &Path,
        framerate: u32,
        config_dir: Option<PathBuf>,
    ) -> Self {
        Portal {
            inner: Arc::new(Inner {
                runtime,
                token_file: state_dir.join(TOKEN_FILE),
                framerate,
                config_dir,
            }),
        }
    }

    /// Whether a grant from an earlier approval is stored.
    pub fn has_token(&self) -> bool {
        read_token(&self.inner.token_file).is_some()
    }
}

/// Checks, without opening a session (no dialog), that a Wayland capture
/// can work here: a session bus, a portal with ScreenCast, PipeWire's
/// GStreamer element. The error says what is missing. Returns the
/// interface version.
pub async fn check() -> Result<u32, String> {
    if gst::ElementFactory::find("pipewiresrc").is_none() {
        return Err(
            "GStreamer's pipewiresrc is missing (install gstreamer1.0-pipewire)".to_string(),
        );
    }
    let conn = connect().await?;
    let proxy = Screencast::with_connection(conn)
        .await
        .map_err(|e| portal_missing(&e))?;
    Ok(proxy.version())
}

async fn connect() -> Result<ashpd::zbus::Connection, String> {
    ashpd::zbus::Connection::session().await.map_err(|e| {
        format!(
            "no D-Bus session bus ({e}); --capture wayland runs inside the desktop session \
             (DBUS_SESSION_BUS_ADDRESS, XDG_RUNTIME_DIR), e.g. as a systemd user service"
        )
    })
}

fn portal_missing(e: &ashpd::Error) -> String {
    format!(
        "no ScreenCast portal on the session bus ({e}): install xdg-desktop-portal and \
         the desktop's backend (xdg-desktop-portal-gnome on GNOME, \
         xdg-desktop-portal-kde on KDE Plasma)"
    )
}

impl LiveSource for Portal {
    fn open(&self, notice: SourceNotice, done: SourceDone) -> Box<dyn Send> {
        let inner = self.inner.clone();
        let notice = Arc::new(notice);
        let task = self.inner.runtime.spawn(async move {
            let result = open_session(&inner, &notice).await;
            done(result);
        });
        // Abandoned (everyone left, oriel stops): the task and its
        // connection go, and with them a dialog still waiting for the user.
        Box::new(AbortOnDrop(task.abort_handle()))
    }
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Everything that keeps one screencast alive.
struct PortalSession {
    runtime: tokio::runtime::Handle,
    session: Option<Arc<Session<Screencast>>>,
    /// The PipeWire remote; pipewiresrc works on a duplicate of it.
    _fd: OwnedFd,
    /// Watches for the session's end (see [`watch`]).
    _watch: AbortOnDrop,
}

impl Drop for PortalSession {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            // Close says goodbye explicitly; the connection closing with
            // the last proxy would end the session as well.
            self.runtime.spawn(async move {
                if let Err(e) = session.close().await {
                    tracing::debug!("closing the screencast session: {e}");
                }
            });
        }
    }
}

async fn open_session(inner: &Inner, notice: &Arc<SourceNotice>) -> Result<OpenedSource, String> {
    let started = std::time::Instant::now();
    // A connection of its own: when the session is dropped, so is the
    // connection, and the portal forgets the session even if Close failed.
    let conn = connect().await?;
    let proxy = Screencast::with_connection(conn)
        .await
        .map_err(|e| portal_missing(&e))?;
    let version = proxy.version();
    let session = proxy
        .create_session(Default::default())
        .await
        .map_err(|e| format!("the ScreenCast portal refused a session: {e}"))?;

    let token = read_token(&inner.token_file);
    let cursor = match proxy.available_cursor_modes().await {
        Ok(modes) if modes.contains(CursorMode::Embedded) => CursorMode::Embedded,
        Ok(_) => {
            tracing::warn!("the portal cannot draw the pointer into the picture: it will not show");
            CursorMode::Hidden
        }
        Err(_) => CursorMode::Embedded,
    };
    let mut options = SelectSourcesOptions::default()
        .set_sources(ashpd::enumflags2::BitFlags::from(SourceType::Monitor))
        .set_multiple(false)
        .set_cursor_mode(cursor);
    if version >= PERSIST_VERSION {
        options = options
            .set_persist_mode(PersistMode::ExplicitlyRevoked)
            .set_restore_token(token.as_deref());
    } else {
        tracing::warn!(
            version,
            "this ScreenCast portal cannot remember the approval (needs version 4): \
             every start of the capture asks on the desktop"
        );
    }
    proxy
        .select_sources(&session, options)
        .await
        .and_then(|r| r.response())
        .map_err(|e| format!("the ScreenCast portal refused the source selection: {e}"))?;

    if token.is_none() || version < PERSIST_VERSION {
        notice(SourceSignal::Waiting(APPROVAL_NEEDED.to_string()));
    } else {
        tracing::debug!("screencast: using the stored restore token");
    }
    let request = {
        let start = proxy.start(&session, None, Default::default());
        tokio::pin!(start);
        match tokio::time::timeout(TOKEN_ANSWER_WITHIN, &mut start).await {
            Ok(r) => r,
            Err(_) => {
                if token.is_some() {
                    notice(SourceSignal::Waiting(format!(
                        "the stored screen-sharing grant was not accepted; {APPROVAL_NEEDED}"
                    )));
                }
                start.await
            }
        }
    };
    let streams = request.and_then(|r| r.response()).map_err(|e| match e {
        ashpd::Error::Response(ashpd::desktop::ResponseError::Cancelled) => {
            "screen sharing was declined (or the dialog closed) on the desktop".to_string()
        }
        e => format!("the ScreenCast portal did not start: {e}"),
    })?;
    if let Some(new) = streams.restore_token() {
        if token.as_deref() != Some(new) {
            match write_token(&inner.token_file, new) {
                Ok(()) => tracing::info!(
                    file = %inner.token_file.display(),
                    "screen sharing approved: the grant is stored, later starts need no dialog"
                ),
                Err(e) => tracing::warn!(
                    "could not store the screen-sharing grant in {}: {e}; the next start asks again",
                    inner.token_file.display()
                ),
            }
        }
    }
    let stream = streams
        .streams()
        .first()
        .ok_or("the ScreenCast portal started without a stream")?;
    let node = stream.pipe_wire_node_id();
    let fd = proxy
        .open_pipe_wire_remote(&session, Default::default())
        .await
        .map_err(|e| format!("the ScreenCast portal gave no PipeWire remote: {e}"))?;
    let capture = capture::wayland_description(
        fd.as_raw_fd(),
        node,
        inner.framerate,
        inner.config_dir.as_deref(),
    )?;
    tracing::info!(
        node,
        size = ?stream.size(),
        ms = started.elapsed().as_millis() as u64,
        "screencast session open"
    );
    let session = Arc::new(session);
    let watcher = inner.runtime.spawn(watch(session.clone(), notice.clone()));
    Ok(OpenedSource {
        capture,
        keep: Box::new(PortalSession {
            runtime: inner.runtime.clone(),
            session: Some(session),
            _fd: fd,
            _watch: AbortOnDrop(watcher.abort_handle()),
        }),
    })
}

/// Reports the screencast lost when the portal closes the session, or when
/// the compositor goes away. The latter is watched directly: when the
/// compositor dies, pipewiresrc keeps repeating its last frame and the
/// portal's backend may die with the compositor before it could say
/// Closed. An idle client connection to the Wayland socket (no request is
/// ever sent, so the compositor keeps it open) ends exactly then.
async fn watch(session: Arc<Session<Screencast>>, notice: Arc<SourceNotice>) {
    let closed = async {
        match session.receive_closed().await {
            Ok(mut stream) => {
                use futures_util::StreamExt;
                stream.next().await;
                "the screencast portal closed the session".to_string()
            }
            // Nothing to watch: leave it to the compositor watch.
            Err(_) => std::future::pending().await,
        }
    };
    let compositor = async {
        let Some(path) = wayland_socket() else {
            return std::future::pending().await;
        };
        let Ok(mut stream) = tokio::net::UnixStream::connect(&path).await else {
            return format!("cannot reach the Wayland compositor at {}", path.display());
        };
        let mut buf = [0u8; 4096];
        loop {
            use tokio::io::AsyncReadExt;
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return "the Wayland compositor went away".to_string(),
                // A compositor may still send events (e.g. on shutdown).
                Ok(_) => {}
            }
        }
    };
    let reason = tokio::select! {
        r = closed => r,
        r = compositor => r,
    };
    tracing::warn!("screencast lost: {reason}");
    notice(SourceSignal::Lost(reason));
}

/// The compositor's socket: `$WAYLAND_DISPLAY`, relative to
/// `$XDG_RUNTIME_DIR` unless absolute.
pub fn wayland_socket() -> Option<PathBuf> {
    let display = std::env::var_os("WAYLAND_DISPLAY").filter(|d| !d.is_empty())?;
    let display = PathBuf::from(display);
    if display.is_absolute() {
        return Some(display);
    }
    let dir = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty())?;
    Some(PathBuf::from(dir).join(display))
}

/// Before a new screencast after a loss: does the compositor accept
/// connections again? Without `$WAYLAND_DISPLAY` there is nothing to ask.
pub fn compositor_reachable() -> Result<(), String> {
    match wayland_socket() {
        None => Ok(()),
        Some(path) => std::os::unix::net::UnixStream::connect(&path)
            .map(drop)
            .map_err(|e| {
                format!(
                    "the Wayland compositor at {} does not answer: {e}",
                    path.display()
                )
            }),
    }
}

/// The stored token; an unreadable or empty file counts as none.
fn read_token(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let token = text.trim();
    // Tokens are short printable strings (UUIDs on GNOME); anything else
    // is not ours to send back.
    (!token.is_empty() && token.len() <= 512 && token.chars().all(|c| c.is_ascii_graphic()))
        .then(|| token.to_string())
}

/// Writes the token with mode 0600 (it is a standing permission to capture
/// the screen), atomically through a temporary file.
fn write_token(path: &Path, token: &str) -> std::io::Result<()> {
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
