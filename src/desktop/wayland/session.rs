//! Opening one ScreenCast (or RemoteDesktop) session: the stored grant or
//! the dialog, Start, the PipeWire remote; and what keeps it alive.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ashpd::desktop::remote_desktop::{DeviceType, RemoteDesktop, SelectDevicesOptions};
use ashpd::desktop::screencast::{CursorMode, Screencast, SelectSourcesOptions, SourceType};
use ashpd::desktop::{PersistMode, Session};

use super::input::{Remote, RemoteInput};
use super::streams::pick_stream;
use super::token::{read_token, write_token};
use super::watch::watch;
use crate::media::capture;
use crate::media::service::{OpenedSource, SourceNotice, SourceSignal};

/// ScreenCast version that knows restore tokens (`persist_mode`).
const PERSIST_VERSION: u32 = 4;

/// RemoteDesktop version that knows restore tokens (xdg-desktop-portal
/// 1.18; Debian 12's 1.16 has version 1).
pub const REMOTE_PERSIST_VERSION: u32 = 2;

/// With a restore token the portal answers Start in a few seconds (~3.5 s
/// measured here); much longer means it did not take the token and shows
/// its dialog after all.
const TOKEN_ANSWER_WITHIN: Duration = Duration::from_secs(8);

/// What clients and the log are told while the dialog is up.
pub const APPROVAL_NEEDED: &str = "waiting for screen sharing to be approved on the desktop: \
     a \"Screen Share\" dialog is open there; select the monitor and press Share \
     (asked once: oriel remembers the choice)";

/// The same, when input goes through the RemoteDesktop portal.
pub const APPROVAL_NEEDED_REMOTE: &str = "waiting for remote desktop to be approved on the desktop: \
     a \"Remote desktop\" dialog is open there; switch on \"Allow remote interaction\" and press Share";

/// Said with [`APPROVAL_NEEDED_REMOTE`] when the portal cannot remember it.
const REMOTE_ASKS_EVERY_TIME: &str =
    " (this portal cannot remember the approval: it asks at every start of the capture)";

/// What a [`Portal`](super::Portal) shares with the sessions it opens.
pub(super) struct Inner {
    pub(super) runtime: tokio::runtime::Handle,
    pub(super) token_file: PathBuf,
    pub(super) framerate: u32,
    pub(super) config_dir: Option<PathBuf>,
    /// `--monitor N`: which shared monitor, from 1 at the left.
    pub(super) monitor: Option<u32>,
    /// Set when input goes through the same (RemoteDesktop) session.
    pub(super) input: Option<Arc<RemoteInput>>,
    /// When the user last declined the dialog: the next one waits for
    /// [`ASK_AGAIN_AFTER`], instead of popping up again at every retry.
    pub(super) declined: Mutex<Option<std::time::Instant>>,
}

/// After a declined (or closed) dialog, how long before asking again.
const ASK_AGAIN_AFTER: Duration = Duration::from_secs(60);

pub(super) async fn connect() -> Result<ashpd::zbus::Connection, String> {
    ashpd::zbus::Connection::session().await.map_err(|e| {
        format!(
            "no D-Bus session bus ({e}); --capture wayland runs inside the desktop session \
             (DBUS_SESSION_BUS_ADDRESS, XDG_RUNTIME_DIR), e.g. as a systemd user service"
        )
    })
}

pub(super) fn portal_missing(e: &ashpd::Error) -> String {
    format!(
        "no ScreenCast portal on the session bus ({e}): install xdg-desktop-portal and \
         the desktop's backend (xdg-desktop-portal-gnome on GNOME, \
         xdg-desktop-portal-kde on KDE Plasma)"
    )
}

pub(super) struct AbortOnDrop(pub(super) tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Everything that keeps one screencast alive.
pub(super) struct PortalSession {
    runtime: tokio::runtime::Handle,
    session: Option<AnySession>,
    /// The PipeWire remote; pipewiresrc works on a duplicate of it.
    _fd: OwnedFd,
    /// Watches for the session's end (see [`watch`]).
    _watch: AbortOnDrop,
    /// Input through this session stops with it.
    input: Option<(Arc<RemoteInput>, u64)>,
}

/// A ScreenCast session, or a RemoteDesktop one that also casts the screen.
#[derive(Clone)]
enum AnySession {
    Cast(Arc<Session<Screencast>>),
    Remote(Arc<Session<RemoteDesktop>>),
}

impl AnySession {
    async fn close(&self) -> ashpd::Result<()> {
        match self {
            AnySession::Cast(s) => s.close().await,
            AnySession::Remote(s) => s.close().await,
        }
    }

    /// Resolves when the portal says the session ended (never, if it
    /// cannot be watched).
    async fn closed(&self) {
        use futures_util::StreamExt;
        let stream = match self {
            AnySession::Cast(s) => s.receive_closed().await.map(|s| s.boxed()),
            AnySession::Remote(s) => s.receive_closed().await.map(|s| s.boxed()),
        };
        match stream {
            Ok(mut stream) => {
                stream.next().await;
            }
            Err(_) => std::future::pending().await,
        }
    }
}

impl Drop for PortalSession {
    fn drop(&mut self) {
        if let Some((input, id)) = self.input.take() {
            input.clear(id);
        }
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

/// What Start gave: the stream, and a token for next time.
struct Started {
    node: u32,
    size: Option<(i32, i32)>,
    token: Option<String>,
}

fn start_error(e: ashpd::Error) -> String {
    match e {
        ashpd::Error::Response(ashpd::desktop::ResponseError::Cancelled) => {
            format!("{DECLINED} (or the dialog closed) on the desktop")
        }
        e => format!("the portal did not start the session: {e}"),
    }
}

/// Awaits a Start request; when a stored grant does not answer quickly,
/// the portal shows its dialog after all, and clients are told.
async fn await_start<F, T>(start: F, token: bool, notice: &SourceNotice) -> ashpd::Result<T>
where
    F: std::future::Future<Output = ashpd::Result<T>>,
{
    tokio::pin!(start);
    match tokio::time::timeout(TOKEN_ANSWER_WITHIN, &mut start).await {
        Ok(r) => r,
        Err(_) => {
            if token {
                notice(SourceSignal::Waiting(format!(
                    "the stored screen-sharing grant was not accepted; {APPROVAL_NEEDED}"
                )));
            }
            start.await
        }
    }
}

async fn cursor_mode(proxy: &Screencast) -> CursorMode {
    match proxy.available_cursor_modes().await {
        Ok(modes) if modes.contains(CursorMode::Embedded) => CursorMode::Embedded,
        Ok(_) => {
            tracing::warn!("the portal cannot draw the pointer into the picture: it will not show");
            CursorMode::Hidden
        }
        Err(_) => CursorMode::Embedded,
    }
}

pub(super) async fn open_session(
    inner: &Inner,
    notice: &Arc<SourceNotice>,
) -> Result<OpenedSource, String> {
    let declined = inner.declined.lock().ok().and_then(|d| *d);
    if let Some(wait) = declined.and_then(|t| ASK_AGAIN_AFTER.checked_sub(t.elapsed())) {
        notice(SourceSignal::Waiting(format!(
            "screen sharing was declined on the desktop; asking again in {} s",
            wait.as_secs().max(1)
        )));
        tokio::time::sleep(wait).await;
    }
    let result = open_session_now(inner, notice).await;
    if let Ok(mut d) = inner.declined.lock() {
        *d = match &result {
            Err(e) if e.starts_with(DECLINED) => Some(std::time::Instant::now()),
            _ => None,
        };
    }
    result
}

/// How [`start_error`] begins when the user said no.
const DECLINED: &str = "screen sharing was declined";

async fn open_session_now(
    inner: &Inner,
    notice: &Arc<SourceNotice>,
) -> Result<OpenedSource, String> {
    let started = std::time::Instant::now();
    // A connection of its own: when the session is dropped, so is the
    // connection, and the portal forgets the session even if Close failed.
    let conn = connect().await?;
    let watch_conn = conn.clone();
    let proxy = Screencast::with_connection(conn.clone())
        .await
        .map_err(|e| portal_missing(&e))?;
    let stored = read_token(&inner.token_file);
    let cursor = cursor_mode(&proxy).await;
    let sources = SelectSourcesOptions::default()
        .set_sources(ashpd::enumflags2::BitFlags::from(SourceType::Monitor))
        // `--monitor N` may mean one of several: let the dialog share them.
        .set_multiple(inner.monitor.is_some())
        .set_cursor_mode(cursor);

    let (session, result, remote) = match &inner.input {
        None => {
            let version = proxy.version();
            let session = proxy
                .create_session(Default::default())
                .await
                .map_err(|e| format!("the ScreenCast portal refused a session: {e}"))?;
            let persists = version >= PERSIST_VERSION;
            let options = if persists {
                sources
                    .set_persist_mode(PersistMode::ExplicitlyRevoked)
                    .set_restore_token(stored.as_deref())
            } else {
                tracing::warn!(
                    version,
                    "this ScreenCast portal cannot remember the approval (needs version 4): \
                     every start of the capture asks on the desktop"
                );
                sources
            };
            proxy
                .select_sources(&session, options)
                .await
                .and_then(|r| r.response())
                .map_err(|e| format!("the ScreenCast portal refused the source selection: {e}"))?;
            let token = stored.is_some() && persists;
            if !token {
                notice(SourceSignal::Waiting(APPROVAL_NEEDED.to_string()));
            } else {
                tracing::debug!("screencast: using the stored restore token");
            }
            let streams = await_start(
                proxy.start(&session, None, Default::default()),
                token,
                notice,
            )
            .await
            .and_then(|r| r.response())
            .map_err(start_error)?;
            let (node, size) = pick_stream(streams.streams(), inner.monitor, &inner.token_file)?;
            let started = Started {
                node,
                size,
                token: streams.restore_token().map(str::to_string),
            };
            (AnySession::Cast(Arc::new(session)), started, None)
        }
        Some(input) => {
            // One RemoteDesktop session that also casts the screen: one
            // approval covers both, and pointer positions map onto the
            // stream.
            let rd = RemoteDesktop::with_connection(conn)
                .await
                .map_err(|e| format!("no RemoteDesktop portal on the session bus ({e})"))?;
            let version = rd.version();
            let session = rd
                .create_session(Default::default())
                .await
                .map_err(|e| format!("the RemoteDesktop portal refused a session: {e}"))?;
            let persists = version >= REMOTE_PERSIST_VERSION;
            let mut devices = SelectDevicesOptions::default()
                .set_devices(DeviceType::Keyboard | DeviceType::Pointer);
            if persists {
                devices = devices
                    .set_persist_mode(PersistMode::ExplicitlyRevoked)
                    .set_restore_token(stored.as_deref());
            }
            rd.select_devices(&session, devices)
                .await
                .and_then(|r| r.response())
                .map_err(|e| format!("the RemoteDesktop portal refused the devices: {e}"))?;
            proxy
                .select_sources(&session, sources)
                .await
                .and_then(|r| r.response())
                .map_err(|e| format!("the ScreenCast portal refused the source selection: {e}"))?;
            let token = stored.is_some() && persists;
            if !token {
                notice(SourceSignal::Waiting(format!(
                    "{APPROVAL_NEEDED_REMOTE}{}",
                    if persists { "" } else { REMOTE_ASKS_EVERY_TIME }
                )));
            }
            let selected = await_start(rd.start(&session, None, Default::default()), token, notice)
                .await
                .and_then(|r| r.response())
                .map_err(start_error)?;
            let (node, size) = pick_stream(selected.streams(), inner.monitor, &inner.token_file)?;
            if !selected.devices().contains(DeviceType::Pointer) {
                tracing::warn!("remote interaction was not allowed on the desktop: input is off");
            }
            let started = Started {
                node,
                size,
                token: selected.restore_token().map(str::to_string),
            };
            let session = Arc::new(session);
            let id = input.set(Remote {
                proxy: Arc::new(rd),
                session: session.clone(),
                node,
                size: size.unwrap_or((0, 0)),
                devices: selected.devices(),
            });
            (
                AnySession::Remote(session),
                started,
                Some((input.clone(), id)),
            )
        }
    };

    if let Some(new) = result.token.as_deref() {
        if stored.as_deref() != Some(new) {
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
    let fd = match &session {
        AnySession::Cast(s) => {
            proxy
                .open_pipe_wire_remote(s.as_ref(), Default::default())
                .await
        }
        AnySession::Remote(s) => {
            proxy
                .open_pipe_wire_remote(s.as_ref(), Default::default())
                .await
        }
    }
    .map_err(|e| format!("the ScreenCast portal gave no PipeWire remote: {e}"))?;
    let capture = capture::wayland_description(
        fd.as_raw_fd(),
        result.node,
        inner.framerate,
        inner.config_dir.as_deref(),
    )?;
    tracing::info!(
        node = result.node,
        size = ?result.size,
        input = remote.is_some(),
        ms = started.elapsed().as_millis() as u64,
        "screencast session open"
    );
    let cast = session.clone();
    let watcher = inner.runtime.spawn(watch(
        async move { cast.closed().await },
        watch_conn,
        notice.clone(),
    ));
    Ok(OpenedSource {
        capture,
        keep: Box::new(PortalSession {
            runtime: inner.runtime.clone(),
            session: Some(session),
            _fd: fd,
            _watch: AbortOnDrop(watcher.abort_handle()),
            input: remote,
        }),
    })
}
