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
//! monitor, press Share). With `--monitor N` the dialog lets the user pick
//! several, and the capture shows the Nth of the shared monitors from the
//! left ([`pick_stream`]); the grant then covers all of them, so another
//! number needs no new dialog. The portal answers with a restore token, kept in
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

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use ashpd::desktop::remote_desktop::{
    Axis, DeviceType, KeyState, RemoteDesktop, SelectDevicesOptions,
};
use ashpd::desktop::screencast::{CursorMode, Screencast, SelectSourcesOptions, SourceType};
use ashpd::desktop::{PersistMode, Session};
use ashpd::enumflags2::BitFlags;
use oriel_input::backend::{Backend, NotchAccumulator};
use oriel_input::gamepad::PadEvent;
use oriel_input::protocol::MouseButton;

use crate::media::capture;
use crate::media::service::{LiveSource, OpenedSource, SourceDone, SourceNotice, SourceSignal};

/// The file in the state directory that keeps the portal's restore token.
pub const TOKEN_FILE: &str = "wayland-restore-token";

/// The grant of a RemoteDesktop session (screen and input) is another
/// kind of token, kept apart.
pub const REMOTE_TOKEN_FILE: &str = "wayland-remote-desktop-token";

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
    /// `--monitor N`: which shared monitor, from 1 at the left.
    monitor: Option<u32>,
    /// Set when input goes through the same (RemoteDesktop) session.
    input: Option<Arc<RemoteInput>>,
    /// When the user last declined the dialog: the next one waits for
    /// [`ASK_AGAIN_AFTER`], instead of popping up again at every retry.
    declined: Mutex<Option<std::time::Instant>>,
}

/// After a declined (or closed) dialog, how long before asking again.
const ASK_AGAIN_AFTER: Duration = Duration::from_secs(60);

impl Portal {
    /// `input`: open RemoteDesktop sessions (screen and input in one
    /// approval) and feed input through them; the backend comes with
    /// [`Portal::input_backend`]. `monitor`: see [`pick_stream`].
    pub fn new(
        runtime: tokio::runtime::Handle,
        state_dir: &Path,
        framerate: u32,
        config_dir: Option<PathBuf>,
        monitor: Option<u32>,
        input: bool,
    ) -> Self {
        let input = input.then(|| RemoteInput::start(&runtime));
        Portal {
            inner: Arc::new(Inner {
                token_file: state_dir.join(if input.is_some() {
                    REMOTE_TOKEN_FILE
                } else {
                    TOKEN_FILE
                }),
                runtime,
                framerate,
                config_dir,
                monitor,
                input,
                declined: Mutex::new(None),
            }),
        }
    }

    /// The input backend that injects through the current RemoteDesktop
    /// session (`None` unless made with `input`).
    pub fn input_backend(&self) -> Option<Box<dyn Backend>> {
        let input = self.inner.input.clone()?;
        Some(Box::new(PortalInput {
            input,
            wheel_x: NotchAccumulator::default(),
            wheel_y: NotchAccumulator::default(),
        }))
    }

    /// The dialog the user sees on GNOME, for the log.
    pub fn dialog(&self) -> &'static str {
        if self.inner.input.is_some() {
            "Remote desktop"
        } else {
            "Screen Share"
        }
    }

    /// Whether a grant from an earlier approval is stored.
    pub fn has_token(&self) -> bool {
        read_token(&self.inner.token_file).is_some()
    }
}

/// The RemoteDesktop portal's interface version, or why there is none.
pub async fn remote_desktop_version() -> Result<u32, String> {
    let conn = connect().await?;
    RemoteDesktop::with_connection(conn)
        .await
        .map(|p| p.version())
        .map_err(|e| format!("no RemoteDesktop portal ({e})"))
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

/// One stream of a started session, as [`pick_stream`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shared {
    node: u32,
    position: Option<(i32, i32)>,
    size: Option<(i32, i32)>,
}

impl std::fmt::Display for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.size {
            Some((w, h)) => write!(f, "{w}x{h}")?,
            None => write!(f, "size unknown")?,
        }
        match self.position {
            Some((x, y)) => write!(f, " at {x},{y}"),
            None => write!(f, " (position unknown)"),
        }
    }
}

/// The stream to capture: with several shared monitors (`--monitor N`, or
/// a grant that covers several), the Nth from the left (ties: from the
/// top; the portal lists them in no such order), the leftmost for `auto`.
/// A number beyond the shared ones is an error that lists them: the grant
/// has to be made again with more monitors selected.
fn pick_stream(
    streams: &[ashpd::desktop::screencast::Stream],
    monitor: Option<u32>,
    token_file: &Path,
) -> Result<(u32, Option<(i32, i32)>), String> {
    if streams.is_empty() {
        return Err("the ScreenCast portal started without a stream".to_string());
    }
    let shared: Vec<Shared> = streams
        .iter()
        .map(|s| Shared {
            node: s.pipe_wire_node_id(),
            position: s.position(),
            size: s.size(),
        })
        .collect();
    let (sorted, index) = choose(shared, monitor).map_err(|list| {
        format!(
            "--monitor {}: screen sharing covers {} ({list}); to share more, select them \
             in the dialog (delete {} to be asked again)",
            monitor.unwrap_or(1),
            match streams.len() {
                1 => "1 monitor".to_string(),
                n => format!("{n} monitors"),
            },
            token_file.display()
        )
    })?;
    if sorted.len() > 1 {
        tracing::info!(
            monitors = %numbered(&sorted),
            chosen = index + 1,
            "the portal shares several monitors: --monitor N picks one"
        );
    }
    let s = sorted[index];
    Ok((s.node, s.size))
}

/// Sorts the shared monitors left to right and says which one to show
/// (its index), or, when there is no such one, their numbered list.
fn choose(mut shared: Vec<Shared>, monitor: Option<u32>) -> Result<(Vec<Shared>, usize), String> {
    // By x, then y; a stream without a position goes last.
    shared.sort_by_key(|s| s.position.unwrap_or((i32::MAX, i32::MAX)));
    let index = monitor.map_or(0, |n| n.saturating_sub(1) as usize);
    if index < shared.len() {
        Ok((shared, index))
    } else {
        Err(numbered(&shared))
    }
}

/// `1: 1280x720 at 0,0; 2: 800x600 at 1280,0`
fn numbered(shared: &[Shared]) -> String {
    shared
        .iter()
        .enumerate()
        .map(|(i, s)| format!("{}: {s}", i + 1))
        .collect::<Vec<_>>()
        .join("; ")
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

async fn open_session(inner: &Inner, notice: &Arc<SourceNotice>) -> Result<OpenedSource, String> {
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
    let watcher = inner
        .runtime
        .spawn(watch(session.clone(), watch_conn, notice.clone()));
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

/// Reports the screencast lost when the portal closes the session, when
/// the portal (front end or desktop back end) leaves the bus, or when the
/// compositor goes away. The last two are watched directly: pipewiresrc
/// keeps repeating its last frame when the stream ends, and here neither a
/// killed compositor nor a killed xdg-desktop-portal-gnome (whose session
/// mutter then stops) made the portal say Closed. An idle client connection
/// to the Wayland socket (no request is ever sent, so the compositor keeps
/// it open) ends exactly when the compositor does.
async fn watch(session: AnySession, conn: ashpd::zbus::Connection, notice: Arc<SourceNotice>) {
    let portal = async {
        use futures_util::StreamExt;
        let Ok(dbus) = ashpd::zbus::fdo::DBusProxy::new(&conn).await else {
            return std::future::pending().await;
        };
        let Ok(mut changes) = dbus.receive_name_owner_changed().await else {
            return std::future::pending().await;
        };
        while let Some(signal) = changes.next().await {
            let Ok(args) = signal.args() else {
                continue;
            };
            let name = args.name().as_str();
            let portal = name == "org.freedesktop.portal.Desktop"
                || name.starts_with("org.freedesktop.impl.portal.desktop.");
            if portal && args.new_owner().is_none() {
                return format!("the screen-sharing portal ({name}) left the session bus");
            }
        }
        std::future::pending().await
    };
    let closed = async {
        session.closed().await;
        "the screencast portal closed the session".to_string()
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
        r = portal => r,
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

/// The RemoteDesktop session input goes through right now.
#[derive(Clone)]
struct Remote {
    proxy: Arc<RemoteDesktop>,
    session: Arc<Session<RemoteDesktop>>,
    /// The screencast stream absolute positions are relative to.
    node: u32,
    size: (i32, i32),
    devices: BitFlags<DeviceType>,
}

/// One input event on its way to the portal.
#[derive(Debug, Clone, Copy)]
enum Op {
    Key(i32, bool),
    Keysym(i32, bool),
    /// Normalised 0..=65535 across the stream.
    Abs(u16, u16),
    Rel(f64, f64),
    Button(i32, bool),
    Axis(Axis, i32),
}

/// Input through the RemoteDesktop portal: the input thread queues events,
/// one task on the runtime sends them in order to whichever session is
/// open (a new one after every capture restart). Without a session (nobody
/// watching, or the capture is being restored) events are dropped.
struct RemoteInput {
    current: Mutex<Option<(u64, Remote)>>,
    next_id: AtomicU64,
    ops: tokio::sync::mpsc::UnboundedSender<Op>,
}

impl RemoteInput {
    fn start(runtime: &tokio::runtime::Handle) -> Arc<Self> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let input = Arc::new(RemoteInput {
            current: Mutex::new(None),
            next_id: AtomicU64::new(1),
            ops: tx,
        });
        runtime.spawn(inject(Arc::downgrade(&input), rx));
        input
    }

    fn set(&self, remote: Remote) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut c) = self.current.lock() {
            *c = Some((id, remote));
        }
        id
    }

    /// Forgets session `id` (and only it: a newer one may be open already).
    fn clear(&self, id: u64) {
        if let Ok(mut c) = self.current.lock() {
            if c.as_ref().is_some_and(|(i, _)| *i == id) {
                *c = None;
            }
        }
    }

    fn current(&self) -> Option<Remote> {
        self.current.lock().ok()?.as_ref().map(|(_, r)| r.clone())
    }
}

async fn inject(
    input: std::sync::Weak<RemoteInput>,
    mut ops: tokio::sync::mpsc::UnboundedReceiver<Op>,
) {
    let mut warned = false;
    while let Some(op) = ops.recv().await {
        let Some(remote) = input.upgrade().and_then(|i| i.current()) else {
            continue;
        };
        if let Err(e) = send(&remote, op).await {
            // Once per session is enough to explain a dead pointer.
            if !warned {
                tracing::warn!(devices = ?remote.devices, "RemoteDesktop portal refused input: {e}");
                warned = true;
            }
        } else {
            warned = false;
        }
    }
}

async fn send(r: &Remote, op: Op) -> ashpd::Result<()> {
    let state = |down: bool| {
        if down {
            KeyState::Pressed
        } else {
            KeyState::Released
        }
    };
    let s = r.session.as_ref();
    match op {
        Op::Key(code, down) => {
            r.proxy
                .notify_keyboard_keycode(s, code, state(down), Default::default())
                .await
        }
        Op::Keysym(sym, down) => {
            r.proxy
                .notify_keyboard_keysym(s, sym, state(down), Default::default())
                .await
        }
        Op::Abs(x, y) => {
            let (x, y) = stream_position(x, y, r.size);
            r.proxy
                .notify_pointer_motion_absolute(s, r.node, x, y, Default::default())
                .await
        }
        Op::Rel(dx, dy) => {
            r.proxy
                .notify_pointer_motion(s, dx, dy, Default::default())
                .await
        }
        Op::Button(code, down) => {
            r.proxy
                .notify_pointer_button(s, code, state(down), Default::default())
                .await
        }
        Op::Axis(axis, steps) => {
            r.proxy
                .notify_pointer_axis_discrete(s, axis, steps, Default::default())
                .await
        }
    }
}

/// 0..=65535 across the stream to stream pixels, the way the uinput and
/// XTest backends map onto the screen (65535 is the last pixel).
fn stream_position(x: u16, y: u16, (w, h): (i32, i32)) -> (f64, f64) {
    let scale = |v: u16, len: i32| (v as f64 * (len.max(1) - 1) as f64 / 65535.0).floor();
    (scale(x, w), scale(y, h))
}

/// Linux evdev button codes, which NotifyPointerButton takes.
fn button_code(b: MouseButton) -> i32 {
    match b {
        MouseButton::Left => 0x110,
        MouseButton::Right => 0x111,
        MouseButton::Middle => 0x112,
        MouseButton::Back => 0x113,    // BTN_SIDE
        MouseButton::Forward => 0x114, // BTN_EXTRA
    }
}

/// An X keysym for a character: Latin-1 maps to itself, the rest to the
/// Unicode keysym range; Enter and Tab to their function keysyms.
fn keysym(c: char) -> i32 {
    match c {
        '\n' | '\r' => 0xff0d,
        '\t' => 0xff09,
        c if (' '..='~').contains(&c) || ('\u{a0}'..='\u{ff}').contains(&c) => c as i32,
        c => 0x0100_0000 | c as i32,
    }
}

struct PortalInput {
    input: Arc<RemoteInput>,
    wheel_x: NotchAccumulator,
    wheel_y: NotchAccumulator,
}

impl PortalInput {
    fn push(&self, op: Op) -> anyhow::Result<()> {
        self.input
            .ops
            .send(op)
            .map_err(|_| anyhow::anyhow!("the portal input task has stopped"))
    }
}

impl Backend for PortalInput {
    fn name(&self) -> &'static str {
        "portal"
    }

    fn gamepads(&self) -> bool {
        false
    }

    fn key(&mut self, key: u16, down: bool) -> anyhow::Result<()> {
        self.push(Op::Key(key as i32, down))
    }

    fn text(&mut self, text: &str) -> anyhow::Result<()> {
        for c in text.chars() {
            let sym = keysym(c);
            self.push(Op::Keysym(sym, true))?;
            self.push(Op::Keysym(sym, false))?;
        }
        Ok(())
    }

    fn pointer_abs(&mut self, x: u16, y: u16) -> anyhow::Result<()> {
        self.push(Op::Abs(x, y))
    }

    fn pointer_rel(&mut self, dx: i16, dy: i16) -> anyhow::Result<()> {
        self.push(Op::Rel(dx as f64, dy as f64))
    }

    fn button(&mut self, button: MouseButton, down: bool) -> anyhow::Result<()> {
        self.push(Op::Button(button_code(button), down))
    }

    fn wheel(&mut self, dx: i16, dy: i16) -> anyhow::Result<()> {
        let x = self.wheel_x.add(dx);
        let y = self.wheel_y.add(dy);
        if x != 0 {
            self.push(Op::Axis(Axis::Horizontal, x))?;
        }
        if y != 0 {
            self.push(Op::Axis(Axis::Vertical, y))?;
        }
        Ok(())
    }

    fn gamepad_add(&mut self, _slot: u8) -> anyhow::Result<()> {
        anyhow::bail!("gamepads need /dev/uinput; the RemoteDesktop portal has none")
    }

    fn gamepad_remove(&mut self, _slot: u8) {}

    fn gamepad(&mut self, _slot: u8, _event: PadEvent) -> anyhow::Result<()> {
        anyhow::bail!("gamepads need /dev/uinput; the RemoteDesktop portal has none")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn positions_map_like_the_other_backends() {
        assert_eq!(stream_position(0, 0, (1280, 720)), (0.0, 0.0));
        assert_eq!(stream_position(16384, 16384, (1280, 720)), (319.0, 179.0));
        assert_eq!(stream_position(65535, 65535, (1280, 720)), (1279.0, 719.0));
        assert_eq!(stream_position(65535, 65535, (0, 0)), (0.0, 0.0));
    }

    fn shared(node: u32, x: i32, y: i32, w: i32, h: i32) -> Shared {
        Shared {
            node,
            position: Some((x, y)),
            size: Some((w, h)),
        }
    }

    #[test]
    fn monitors_count_from_the_left() {
        // The order mutter 43's portal gave: the right monitor first.
        let right = shared(42, 1280, 0, 800, 600);
        let left = shared(40, 0, 0, 1280, 720);
        let pick = |m| choose(vec![right, left], m).map(|(s, i)| s[i].node);
        assert_eq!(pick(None), Ok(40), "auto: the leftmost");
        assert_eq!(pick(Some(1)), Ok(40));
        assert_eq!(pick(Some(2)), Ok(42));
        assert_eq!(
            pick(Some(3)),
            Err("1: 1280x720 at 0,0; 2: 800x600 at 1280,0".to_string()),
            "out of range: the list of what is shared"
        );
        // Stacked monitors: top first; unknown positions last.
        let top = shared(1, 0, 0, 800, 600);
        let below = shared(2, 0, 600, 800, 600);
        let nowhere = Shared {
            node: 3,
            position: None,
            size: None,
        };
        let (sorted, _) = choose(vec![nowhere, below, top], None).unwrap();
        assert_eq!(sorted.iter().map(|s| s.node).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(numbered(&sorted[2..]), "1: size unknown (position unknown)");
        assert!(choose(vec![], None).is_err());
    }

    #[test]
    fn keysyms_for_text() {
        assert_eq!(keysym('a'), 0x61);
        assert_eq!(keysym('é'), 0xe9);
        assert_eq!(keysym('€'), 0x0100_20ac);
        assert_eq!(keysym('\n'), 0xff0d);
    }

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
