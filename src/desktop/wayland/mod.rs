//! Wayland capture through xdg-desktop-portal's ScreenCast interface.
//!
//! Each producer start opens a new portal session (a PipeWire node serves
//! one consumer): CreateSession, SelectSources (one monitor, cursor drawn
//! into the picture, persistent grant), Start, OpenPipeWireRemote, and the
//! capture fragment gets that fd and the stream's node. The session lives
//! as long as the producer: [`PortalSession`](session::PortalSession) is
//! dropped after the pipeline stopped, and its private D-Bus connection
//! going away ends the session on the portal's side too.
//!
//! The first Start shows a dialog on the desktop ("Screen Share": pick the
//! monitor, press Share). With `--monitor N` the dialog lets the user pick
//! several, and the capture shows the Nth of the shared monitors from the
//! left ([`pick_stream`](streams::pick_stream)); the grant then covers all
//! of them, so another number needs no new dialog. The portal answers with
//! a restore token, kept in the state directory (mode 0600): later sessions
//! pass it and get the same monitor without a dialog, across restarts of
//! oriel and of the desktop. The portal may hand out a new token each time;
//! the newest is kept.
//!
//! D-Bus work runs on the tokio runtime; the media thread hears only the
//! outcome (see [`crate::media::service::LiveSource`]).
//!
//! Here: [`Portal`] and the checks `oriel` runs before capturing. The
//! pieces: `session` opens one session, `token` keeps grants on disk,
//! `streams` numbers the shared monitors, `watch` notices a lost capture,
//! `input` injects through RemoteDesktop.

mod input;
mod session;
mod streams;
mod token;
mod watch;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ashpd::desktop::remote_desktop::RemoteDesktop;
use ashpd::desktop::screencast::Screencast;
use oriel_input::backend::Backend;

use crate::media::service::{LiveSource, SourceDone, SourceNotice};
use input::{PortalInput, RemoteInput};
use session::{connect, open_session, portal_missing, AbortOnDrop, Inner};
use token::read_token;

pub use session::{APPROVAL_NEEDED, APPROVAL_NEEDED_REMOTE, REMOTE_PERSIST_VERSION};
pub use token::{REMOTE_TOKEN_FILE, TOKEN_FILE};
pub use watch::{compositor_reachable, wayland_socket};

/// Opens screencast sessions for the media service.
#[derive(Clone)]
pub struct Portal {
    inner: Arc<Inner>,
}

impl Portal {
    /// `input`: open RemoteDesktop sessions (screen and input in one
    /// approval) and feed input through them; the backend comes with
    /// [`Portal::input_backend`]. `monitor`: see [`streams::pick_stream`].
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
        Some(Box::new(PortalInput::new(input)))
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
